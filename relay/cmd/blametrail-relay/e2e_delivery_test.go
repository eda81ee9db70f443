package main_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// checkDeliveryRequest asserts what DESIGN.md promises a receiver: the headers, in both
// families with identical values, a valid signature, and the envelope around data.
func checkDeliveryRequest(t *testing.T, req relaytest.Request, secret, eventType, eventID string, data []byte) {
	t.Helper()
	h := req.Header
	want := map[string]string{
		"Content-Type":       "application/json",
		"User-Agent":         "BlameTrail-Webhooks/test",
		"X-BlameTrail-Event": eventType,
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want exactly %q", k, got, v)
		}
	}
	pairs := [][2]string{
		{"X-BlameTrail-Delivery", "webhook-id"},
		{"X-BlameTrail-Timestamp", "webhook-timestamp"},
		{"X-BlameTrail-Signature", "webhook-signature"},
	}
	for _, p := range pairs {
		a, b := h.Values(p[0]), h.Values(p[1])
		if len(a) != 1 || len(b) != 1 || a[0] != b[0] || a[0] == "" {
			t.Errorf("%s = %q and %s = %q, want one identical value each", p[0], a, p[1], b)
		}
	}
	if id := h.Get("X-BlameTrail-Delivery"); !strings.HasPrefix(id, "dlv_") {
		t.Errorf("X-BlameTrail-Delivery = %q, want dlv_…", id)
	}
	ts, err := strconv.ParseInt(h.Get("X-BlameTrail-Timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("X-BlameTrail-Timestamp = %q, want Unix seconds of now", h.Get("X-BlameTrail-Timestamp"))
	}
	sig := h.Get("X-BlameTrail-Signature")
	if !strings.HasPrefix(sig, "v1,") || len(sig) != signature.SignatureLen {
		t.Errorf("X-BlameTrail-Signature = %q, want v1,<base64 HMAC-SHA256>", sig)
	}
	if err := signature.VerifyHeaders(secret, h, req.Body); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}

	var env struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(req.Body, &env); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, req.Body)
	}
	if keys := jsonKeys(t, req.Body); !slices.Equal(keys, []string{"data", "id", "timestamp", "type"}) {
		t.Errorf("body keys = %v", keys)
	}
	if !strings.HasPrefix(env.ID, "evt_") || (eventID != "" && env.ID != eventID) {
		t.Errorf("body id = %q, want %q", env.ID, eventID)
	}
	if env.Type != eventType {
		t.Errorf("body type = %q, want %q", env.Type, eventType)
	}
	if at, err := time.Parse(time.RFC3339, env.Timestamp); err != nil || !strings.HasSuffix(env.Timestamp, "Z") ||
		time.Since(at).Abs() > time.Minute {
		t.Errorf("body timestamp = %q, want RFC 3339 UTC of now", env.Timestamp)
	}
	if data != nil {
		wantBody := `{"id":"` + env.ID + `","type":"` + eventType + `","timestamp":"` + env.Timestamp + `","data":` + string(data) + `}`
		if string(req.Body) != wantBody {
			t.Errorf("body =\n %s\nwant data exactly as posted:\n %s", req.Body, wantBody)
		}
	}
}

func TestDeliveryHeadersAndBody(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, nil)
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL + "?tenant=a%20b"})
	// Odd spacing, key order, unicode and escapes must reach the receiver byte for byte.
	data := `{"z":1,  "a":[1,2.50,{"é":"\u00e9\n"}], "nested":{"deep":{"x":null}},"big":12345678901234567890}`
	status, body, _ := r.Do("POST", "/api/events", "application/json", r.Token,
		[]byte(`{"type":"incident.resolved","id":"evt-source-1","data":`+data+`}`))
	if status != http.StatusAccepted {
		t.Fatalf("ingest = %d %s", status, body)
	}
	var res api.IngestResult
	_ = json.Unmarshal(body, &res)
	if keys := jsonKeys(t, body); !slices.Equal(keys, []string{"deliveries", "id"}) || res.Deliveries != 1 || !strings.HasPrefix(res.ID, "evt_") {
		t.Errorf("ingest answer = %s, want {id: evt_…, deliveries: 1}", body)
	}
	reqs := waitCount(t, rc, 1)
	checkDeliveryRequest(t, reqs[0], ep.Secret, "incident.resolved", res.ID, []byte(data))
	if reqs[0].Path != "/hook" {
		t.Errorf("path = %q", reqs[0].Path)
	}

	ds := waitFinished(t, r, ep.ID, 1)
	d := ds[0]
	if d.ID != reqs[0].Header.Get("X-BlameTrail-Delivery") || d.EventID != res.ID || d.EventType != "incident.resolved" ||
		d.EndpointID != ep.ID || d.Status != api.StatusSucceeded || d.NextAttemptAt != nil || len(d.Attempts) != 1 {
		t.Fatalf("delivery = %+v", d)
	}
	a := d.Attempts[0]
	if a.N != 1 || a.StatusCode == nil || *a.StatusCode != 200 || a.Error != nil || a.DurationMS < 0 || time.Since(a.At).Abs() > time.Minute {
		t.Errorf("attempt = %+v", a)
	}
	// The raw delivery JSON carries every contract field.
	_, raw, _ := r.Do("GET", "/api/webhooks/endpoints/"+ep.ID+"/deliveries", "", r.Token, nil)
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(raw, &list)
	if len(list.Data) != 1 {
		t.Fatalf("deliveries = %s", raw)
	}
	wantKeys := []string{"attempts", "endpoint_id", "event_id", "event_type", "id", "next_attempt_at", "status"}
	if keys := jsonKeys(t, list.Data[0]); !slices.Equal(keys, wantKeys) {
		t.Errorf("delivery keys = %v, want %v", keys, wantKeys)
	}
	if !strings.Contains(string(raw), `"error":null`) || !strings.Contains(string(raw), `"next_attempt_at":null`) {
		t.Errorf("a successful attempt should show error null and next_attempt_at null: %s", raw)
	}
}

// TestDeliveryPersistentFailure: a receiver that always answers 500 gets 1 + 5 attempts, the
// same delivery id on each, with gaps that follow the growing schedule. Its steps are at least
// 125ms apart even after ±10% jitter (the ×2 test schedule leaves only 70ms between its first
// two), so scheduling noise on a loaded machine cannot reorder them.
func TestDeliveryPersistentFailure(t *testing.T) {
	t.Parallel()
	rcA := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	rcB := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "50ms,200ms,400ms,700ms,1000ms"}})
	epA := createEndpoint(t, r, apiclient.EndpointCreate{URL: rcA.URL})
	epB := createEndpoint(t, r, apiclient.EndpointCreate{URL: rcB.URL})
	res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"incident": "inc_1"})
	if res.Deliveries != 2 {
		t.Fatalf("ingest = %+v, want 2 deliveries", res)
	}
	ids := map[string]string{}
	for _, c := range []struct {
		ep api.Endpoint
		rc *relaytest.Receiver
	}{{epA, rcA}, {epB, rcB}} {
		ds := waitFinished(t, r, c.ep.ID, 1)
		d := ds[0]
		if d.Status != api.StatusFailed || d.NextAttemptAt != nil || len(d.Attempts) != 6 {
			t.Fatalf("delivery = %+v, want failed after 6 attempts, next_attempt_at null", d)
		}
		for i, a := range d.Attempts {
			if a.N != i+1 || a.StatusCode == nil || *a.StatusCode != 500 || a.Error != nil {
				t.Errorf("attempt %d = %+v, want n %d status 500", i, a, i+1)
			}
		}
		reqs := c.rc.Requests()
		if len(reqs) != 6 {
			t.Fatalf("receiver got %d requests, want 6", len(reqs))
		}
		var gaps []time.Duration
		for i, req := range reqs {
			checkDeliveryRequest(t, req, c.ep.Secret, api.TypeIncidentOpened, res.ID, []byte(`{"incident":"inc_1"}`))
			if got := req.Header.Get("X-BlameTrail-Delivery"); got != d.ID {
				t.Errorf("attempt %d has delivery id %q, want %q on every retry", i+1, got, d.ID)
			}
			if string(req.Body) != string(reqs[0].Body) {
				t.Errorf("attempt %d body differs from the first", i+1)
			}
			if i > 0 {
				gaps = append(gaps, req.At.Sub(reqs[i-1].At))
			}
		}
		for i := 1; i < len(gaps); i++ {
			if gaps[i] <= gaps[i-1] {
				t.Errorf("backoff does not grow: gaps %v", gaps)
				break
			}
		}
		ids[c.ep.ID] = d.ID
		if got := getEndpoint(t, r, c.ep.ID); !got.Active || got.ConsecutiveFailures != 1 {
			t.Errorf("endpoint after one failed delivery = %+v, want active with consecutive_failures 1", got)
		}
	}
	if ids[epA.ID] == ids[epB.ID] {
		t.Errorf("two endpoints share delivery id %s", ids[epA.ID])
	}
}

// TestDeliveryOutcomes: how one attempt is judged, each case on its own relay (fan-out
// would otherwise mix them) with a 500ms attempt timeout and a quick schedule.
func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, r *relaytest.Relay, ep api.Endpoint, rc *relaytest.Receiver)
	firstAttempt := func(t *testing.T, r *relaytest.Relay, ep api.Endpoint) api.Attempt {
		t.Helper()
		ds := waitDeliveries(t, r, ep.ID, "a first attempt", func(ds []api.Delivery) bool { return len(ds) == 1 && len(ds[0].Attempts) > 0 })
		return ds[0].Attempts[0]
	}
	failedWith := func(substr string) check {
		return func(t *testing.T, r *relaytest.Relay, ep api.Endpoint, _ *relaytest.Receiver) {
			a := firstAttempt(t, r, ep)
			if a.StatusCode != nil || a.Error == nil || !strings.Contains(strings.ToLower(*a.Error), substr) {
				t.Errorf("attempt = %+v, want no status and an error mentioning %q", a, substr)
			}
			if a.Error != nil {
				t.Logf("error: %s", *a.Error)
			}
			if d := allDeliveries(t, r, ep.ID)[0]; d.Status != api.StatusPending && d.Status != api.StatusFailed {
				t.Errorf("status after a failed attempt = %s", d.Status)
			}
		}
	}
	succeededAfter := func(n int, codes ...int) check {
		return func(t *testing.T, r *relaytest.Relay, ep api.Endpoint, rc *relaytest.Receiver) {
			d := waitFinished(t, r, ep.ID, 1)[0]
			if d.Status != api.StatusSucceeded || len(d.Attempts) != n {
				t.Fatalf("delivery = %+v, want succeeded after %d attempts", d, n)
			}
			for i, a := range d.Attempts {
				if a.StatusCode == nil || *a.StatusCode != codes[i] {
					t.Errorf("attempt %d = %+v, want status %d", i+1, a, codes[i])
				}
			}
			if got := getEndpoint(t, r, ep.ID); got.ConsecutiveFailures != 0 || !got.Active {
				t.Errorf("endpoint = %+v", got)
			}
			if rc.Count() != n {
				t.Errorf("receiver got %d requests, want %d", rc.Count(), n)
			}
		}
	}
	var redirectTarget *relaytest.Receiver
	tests := []struct {
		name    string
		handler func(t *testing.T) func(http.ResponseWriter, *relaytest.Request)
		check   check
	}{
		{
			name: "2xx other than 200 succeeds",
			handler: func(*testing.T) func(http.ResponseWriter, *relaytest.Request) {
				return relaytest.Status(http.StatusNoContent)
			},
			check: succeededAfter(1, 204),
		},
		{
			name:    "500 then 200 succeeds on the retry",
			handler: func(*testing.T) func(http.ResponseWriter, *relaytest.Request) { return sequence(500, 200) },
			check:   succeededAfter(2, 500, 200),
		},
		{
			name:    "404 then 201",
			handler: func(*testing.T) func(http.ResponseWriter, *relaytest.Request) { return sequence(404, 201) },
			check:   succeededAfter(2, 404, 201),
		},
		{
			name: "302 is not followed",
			handler: func(t *testing.T) func(http.ResponseWriter, *relaytest.Request) {
				redirectTarget = relaytest.NewReceiver(t, nil)
				return func(w http.ResponseWriter, _ *relaytest.Request) {
					w.Header().Set("Location", redirectTarget.URL)
					w.WriteHeader(http.StatusFound)
				}
			},
			check: func(t *testing.T, r *relaytest.Relay, ep api.Endpoint, rc *relaytest.Receiver) {
				d := waitFinished(t, r, ep.ID, 1)[0]
				if d.Status != api.StatusFailed || len(d.Attempts) != 6 {
					t.Errorf("delivery = %+v, want failed after 6 attempts", d)
				}
				a := d.Attempts[0]
				if a.StatusCode == nil || *a.StatusCode != 302 || a.Error == nil || !strings.Contains(*a.Error, "redirect") {
					t.Errorf("attempt = %+v, want status 302 and a redirect error", a)
				}
				if n := redirectTarget.Count(); n != 0 {
					t.Errorf("the Location target got %d requests: the redirect was followed", n)
				}
				if rc.Count() != 6 {
					t.Errorf("receiver got %d requests, want 6", rc.Count())
				}
			},
		},
		{
			name: "410 disables the endpoint at once",
			handler: func(*testing.T) func(http.ResponseWriter, *relaytest.Request) {
				return relaytest.Status(http.StatusGone)
			},
			check: func(t *testing.T, r *relaytest.Relay, ep api.Endpoint, rc *relaytest.Receiver) {
				got := waitEndpoint(t, r, ep.ID, "endpoint to be disabled", func(e api.Endpoint) bool { return !e.Active })
				if got.DisabledReason == nil || *got.DisabledReason != api.DisabledGone {
					t.Errorf("endpoint = %+v, want disabled_reason gone", got)
				}
				d := waitFinished(t, r, ep.ID, 1)[0]
				if d.Status != api.StatusFailed || len(d.Attempts) != 1 || *d.Attempts[0].StatusCode != 410 {
					t.Errorf("delivery = %+v, want failed after one 410 attempt", d)
				}
				// The delivery is finished (failed): no retry can follow, so no need to wait.
				if rc.Count() != 1 {
					t.Errorf("receiver got %d requests after a 410, want 1", rc.Count())
				}
				if res := ingest(t, r, api.TypeIncidentOpened, map[string]any{}); res.Deliveries != 0 {
					t.Errorf("ingest to a gone endpoint = %+v, want no delivery", res)
				}
			},
		},
		{
			name: "hang past the timeout",
			handler: func(t *testing.T) func(http.ResponseWriter, *relaytest.Request) {
				return blockUntil(releaseAtCleanup(t), 5*time.Second, 200)
			},
			check: failedWith("timeout"),
		},
		{
			name:    "connection closed without an answer",
			handler: func(*testing.T) func(http.ResponseWriter, *relaytest.Request) { return hijackClose },
			check:   failedWith(""),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", fastSchedule, "--delivery-timeout", "500ms"}})
			rc := relaytest.NewReceiver(t, nil)
			rc.SetHandler(tt.handler(t))
			ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
			ingest(t, r, api.TypeIncidentOpened, map[string]any{"case": tt.name})
			tt.check(t, r, ep, rc)
			checkAlive(t, r)
		})
	}
}

// sequence answers the given statuses in turn, then repeats the last.
func sequence(codes ...int) func(http.ResponseWriter, *relaytest.Request) {
	var n atomic.Int32
	return func(w http.ResponseWriter, _ *relaytest.Request) {
		i := int(n.Add(1)) - 1
		w.WriteHeader(codes[min(i, len(codes)-1)])
	}
}

// TestRetryAfter: a 429 or 503 with Retry-After delays the next attempt at least that long,
// capped at twice the scheduled delay. The schedule's first step is 600ms, so the cap is
// 1.2s and Retry-After: 1 must stretch the gap to about a second.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		code       int
		retryAfter string
		minGap     time.Duration
		maxGap     time.Duration // generous: only shows the value was capped
	}{
		{"429 Retry-After 1", http.StatusTooManyRequests, "1", 950 * time.Millisecond, 10 * time.Second},
		{"503 Retry-After 1", http.StatusServiceUnavailable, "1", 950 * time.Millisecond, 10 * time.Second},
		{"429 Retry-After 30 is capped", http.StatusTooManyRequests, "30", 1150 * time.Millisecond, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			rc := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", tt.retryAfter)
					w.WriteHeader(tt.code)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "600ms,600ms"}})
			ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
			ingest(t, r, api.TypeIncidentAcknowledged, map[string]any{})
			d := waitFinished(t, r, ep.ID, 1)[0]
			if d.Status != api.StatusSucceeded || len(d.Attempts) != 2 || *d.Attempts[0].StatusCode != tt.code {
				t.Fatalf("delivery = %+v", d)
			}
			reqs := rc.Requests()
			gap := reqs[1].At.Sub(reqs[0].At)
			if gap < tt.minGap || gap > tt.maxGap {
				t.Errorf("gap between attempts = %s, want %s..%s", gap, tt.minGap, tt.maxGap)
			}
		})
	}
}
