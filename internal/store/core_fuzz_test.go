package store_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// Run with: go test -run '^$' -fuzz FuzzUnmarshalRecord -fuzztime 15s ./internal/store

// FuzzUnmarshalRecord: decoding whatever bytes a damaged or hostile log holds never panics,
// and what decodes encodes again to a record that decodes the same.
func FuzzUnmarshalRecord(f *testing.F) {
	for _, s := range []string{
		`{"k":1,"ep":{"id":"ep_01m8c5xqc618gn4dm48kckvhy7","url":"https://a.example.com","name":"n","description":"","event_types":[],"active":true,"consecutive_failures":0,"secret":"whsec_x","created_at":"2026-11-26T15:00:00Z","updated_at":"2026-11-26T15:00:00Z"}}`,
		`{"k":2,"ep_id":"ep_01m8c5xqc618gn4dm48kckvhy7"}`,
		`{"k":3,"ev":{"id":"evt_01m8c5xqc618gn4dm48kckvhy7","type":"incident.opened","body":"e30=","idem":"k","at":"2026-11-26T15:00:00Z","dlv":[{"id":"dlv_01m8c5xqc618gn4dm48kckvhy8","ep":"ep_01m8c5xqc618gn4dm48kckvhy7"}]}}`,
		`{"k":4,"at":{"dlv":"dlv_01m8c5xqc618gn4dm48kckvhy8","a":{"n":1,"at":"2026-11-26T15:00:00Z","status_code":500,"duration_ms":3},"s":"pending","r":"2026-11-26T15:01:00Z","f":0}}`,
		`{"k":4,"at":{"dlv":"x","a":{"n":1,"at":"bad"},"s":"failed","f":-1,"d":"gone"}}`,
		`{"k":1}`, `{"k":9,"ep_id":"x"}`, `{"k":"1"}`, `{"ev":{"body":"!!"}}`, `{}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	// Seeds in whatever encoding Marshal uses for each kind.
	at := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	for _, r := range []*store.Record{
		{Kind: store.KindEventAccepted, Event: &store.EventRecord{ID: "evt_01m8c5xqc618gn4dm48kckvhy7", Type: "incident.opened",
			Body: []byte(`{"id":"evt_01m8c5xqc618gn4dm48kckvhy7","data":{}}`), IdempotencyKey: "k", At: at,
			Deliveries: []store.DeliveryRecord{{ID: "dlv_01m8c5xqc618gn4dm48kckvhy8", EndpointID: "ep_01m8c5xqc618gn4dm48kckvhy7"}}}},
		{Kind: store.KindEventAccepted, Event: &store.EventRecord{ID: "evt_01m8c5xqc618gn4dm48kckvhy9", Type: "test.ping", Test: true, At: at}},
		{Kind: store.KindAttempt, Attempt: &store.AttemptRecord{DeliveryID: "dlv_01m8c5xqc618gn4dm48kckvhy8",
			Attempt: store.Attempt{N: 2, At: at, StatusCode: 503, Error: "", DurationMS: 12}, Status: "pending", RetryAt: at.Add(time.Minute), Failures: 3}},
		{Kind: store.KindAttempt, Attempt: &store.AttemptRecord{DeliveryID: "dlv_01m8c5xqc618gn4dm48kckvhy8",
			Attempt: store.Attempt{N: 6, At: at, Error: "timeout"}, Status: "failed", Failures: 10, Disable: "consecutive_failures"}},
		{Kind: store.KindEndpointDelete, EndpointID: "ep_01m8c5xqc618gn4dm48kckvhy7"},
		{Kind: store.KindResend, Resend: &store.ResendRecord{DeliveryID: "dlv_01m8c5xqc618gn4dm48kckvhy8",
			EventID: "evt_01m8c5xqc618gn4dm48kckvhy7", Type: "incident.opened", Body: []byte(`{"data":{}}`), At: at}},
	} {
		b, err := r.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := store.UnmarshalRecord(b)
		if err != nil {
			if rec != nil {
				t.Fatalf("a record with an error: %+v", rec)
			}
			return
		}
		if rec.Kind < store.KindEndpointPut || rec.Kind > store.KindResend {
			t.Fatalf("accepted kind %d", rec.Kind)
		}
		enc, err := rec.Marshal()
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		rec2, err := store.UnmarshalRecord(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		enc2, err := rec2.Marshal()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("not stable:\n%s\n%s", enc, enc2)
		}
	})
}
