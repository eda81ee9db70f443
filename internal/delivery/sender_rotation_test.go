package delivery

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// TestSenderSignsWithBothSecretsDuringOverlap: while the previous secret is valid, both
// signature headers carry "v1,<new> v1,<old>", so a receiver holding either verifies; once
// it has expired only the new secret signs.
func TestSenderSignsWithBothSecretsDuringOverlap(t *testing.T) {
	headers := make(chan http.Header, 1)
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		headers <- r.Header.Clone()
		bodies <- b
	}))
	t.Cleanup(srv.Close)
	oldSecret, _ := signature.GenerateSecret()
	newSecret, _ := signature.GenerateSecret()
	s := newSender(Config{Timeout: 2 * time.Second, Policy: netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}})
	body := []byte(`{"id":"evt_1","type":"incident.opened","data":{}}`)

	tests := []struct {
		name        string
		prevExpires time.Time
		sigs        int
		oldVerifies bool
	}{
		{"overlap", time.Now().Add(time.Hour), 2, true},
		{"expired", time.Now().Add(-time.Second), 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.send(store.Job{Delivery: testDelivery(t, "dlv_01h00000000000000000000020"), EventType: "incident.opened",
				URL: srv.URL, Secret: newSecret, PrevSecret: oldSecret, PrevExpires: tt.prevExpires, Body: body, N: 1})
			if !res.success {
				t.Fatalf("attempt failed: %+v", res.attempt)
			}
			h, b := <-headers, <-bodies
			for _, name := range []string{signature.HeaderSignature, signature.HeaderBlameTrailSignature} {
				if n := len(strings.Fields(h.Get(name))); n != tt.sigs {
					t.Errorf("%s holds %d signatures, want %d: %q", name, n, tt.sigs, h.Get(name))
				}
			}
			if !strings.HasPrefix(h.Get(signature.HeaderSignature), mustSign(t, newSecret, h, b)) {
				t.Errorf("the new secret's signature is not first: %q", h.Get(signature.HeaderSignature))
			}
			if err := signature.VerifyHeaders(newSecret, h, b); err != nil {
				t.Errorf("receiver with the new secret: %v", err)
			}
			err := signature.VerifyHeaders(oldSecret, h, b)
			if tt.oldVerifies && err != nil {
				t.Errorf("receiver with the old secret during the overlap: %v", err)
			}
			if !tt.oldVerifies && err == nil {
				t.Error("receiver with the old secret still verifies after the expiry")
			}
		})
	}
}

func mustSign(t *testing.T, secret string, h http.Header, body []byte) string {
	t.Helper()
	ts, err := strconv.ParseInt(h.Get(signature.HeaderTimestamp), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signature.Sign(secret, h.Get(signature.HeaderID), time.Unix(ts, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
