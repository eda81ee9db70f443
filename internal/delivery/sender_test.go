package delivery

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// TestSenderJudgesResponses sends one attempt per case to a real server on 127.0.0.1 and
// checks how the answer is judged.
func TestSenderJudgesResponses(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var last *http.Request
	var lastBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last, lastBody = r, body
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(200)
		case "/accepted":
			w.WriteHeader(202)
		case "/big":
			w.WriteHeader(200)
			_, _ = w.Write([]byte(strings.Repeat("x", maxResponseBody*2)))
		case "/500":
			w.WriteHeader(500)
		case "/gone":
			w.WriteHeader(410)
		case "/redirect":
			w.Header().Set("Location", "/ok")
			w.WriteHeader(302)
		case "/429":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
		case "/503":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(503)
		case "/500-retry-after":
			w.Header().Set("Retry-After", "7") // only 429 and 503 are honoured
			w.WriteHeader(500)
		case "/hang":
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		case "/close":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	secret, _ := signature.GenerateSecret()
	s := newSender(Config{
		Timeout:   300 * time.Millisecond,
		Policy:    netpolicy.Policy{AllowHTTP: true, AllowPrivate: true},
		UserAgent: "BlameTrail-Webhooks/unit",
	})
	tests := []struct {
		path       string
		success    bool
		gone       bool
		code       int
		errHas     string
		retryAfter time.Duration
	}{
		{path: "/ok", success: true, code: 200},
		{path: "/accepted", success: true, code: 202},
		{path: "/big", success: true, code: 200},
		{path: "/500", code: 500},
		{path: "/gone", gone: true, code: 410},
		{path: "/redirect", code: 302, errHas: "redirect"},
		{path: "/429", code: 429, retryAfter: 7 * time.Second},
		{path: "/503", code: 503, retryAfter: 3 * time.Second},
		{path: "/500-retry-after", code: 500},
		{path: "/hang", errHas: "timeout"},
		{path: "/close", errHas: ""},
	}
	body := []byte(`{"id":"evt_1","type":"incident.opened","timestamp":"2026-11-26T15:00:00Z","data":{}}`)
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			job := store.Job{Delivery: testDelivery(t, "dlv_01h00000000000000000000001"), EndpointID: "ep_unit", EventType: "incident.opened",
				URL: srv.URL + tt.path, Secret: secret, Body: body, N: 3}
			res := s.send(job)
			if res.success != tt.success || res.gone != tt.gone || res.attempt.StatusCode != tt.code || res.retryAfter != tt.retryAfter {
				t.Errorf("result = %+v, want success %v gone %v code %d retryAfter %s", res, tt.success, tt.gone, tt.code, tt.retryAfter)
			}
			wantErr := tt.errHas != "" || tt.path == "/close"
			if (res.attempt.Error != "") != wantErr || !strings.Contains(res.attempt.Error, tt.errHas) {
				t.Errorf("error = %q, want one containing %q: %v", res.attempt.Error, tt.errHas, wantErr)
			}
			if res.attempt.N != 3 || res.attempt.At.IsZero() || res.attempt.DurationMS < 0 {
				t.Errorf("attempt = %+v", res.attempt)
			}
		})
	}
	// The last request that arrived carries the contract's headers and verifies.
	s.send(store.Job{Delivery: testDelivery(t, "dlv_01h00000000000000000000002"), EventType: "incident.resolved", URL: srv.URL + "/ok", Secret: secret, Body: body, N: 1})
	mu.Lock()
	r, got := last, lastBody
	mu.Unlock()
	if string(got) != string(body) {
		t.Errorf("body = %s", got)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "User-Agent": "BlameTrail-Webhooks/unit",
		"X-BlameTrail-Event": "incident.resolved", "X-BlameTrail-Delivery": "dlv_01h00000000000000000000002", "webhook-id": "dlv_01h00000000000000000000002"} {
		if r.Header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.Header.Get(k), v)
		}
	}
	if err := signature.VerifyHeaders(secret, r.Header, got); err != nil {
		t.Errorf("signature: %v", err)
	}
}

// TestSenderRefusesByPolicy: the scheme and the network policy are enforced at send time too.
func TestSenderRefusesByPolicy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a refused destination was contacted")
	}))
	t.Cleanup(srv.Close)
	secret, _ := signature.GenerateSecret()
	for _, tt := range []struct {
		name   string
		policy netpolicy.Policy
		url    string
	}{
		{"http without AllowHTTP", netpolicy.Policy{AllowPrivate: true}, srv.URL + "/x"},
		{"loopback without AllowPrivate", netpolicy.Policy{AllowHTTP: true}, srv.URL + "/x"},
		{"other scheme", netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}, "ftp://127.0.0.1/x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSender(Config{Timeout: time.Second, Policy: tt.policy, UserAgent: "u"})
			res := s.send(store.Job{Delivery: testDelivery(t, "dlv_01h00000000000000000000003"), URL: tt.url, Secret: secret, Body: []byte(`{}`), N: 1})
			if res.success || res.attempt.StatusCode != 0 || res.attempt.Error == "" {
				t.Errorf("result = %+v, want a refusal", res)
			}
		})
	}
	s := newSender(Config{Timeout: time.Second, Policy: netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}, UserAgent: "u"})
	res := s.send(store.Job{Delivery: testDelivery(t, "dlv_01h00000000000000000000004"), URL: srv.URL, Secret: "not-a-secret", Body: []byte(`{}`), N: 1})
	if res.success || !strings.Contains(res.attempt.Error, "secret") {
		t.Errorf("unusable secret: %+v", res)
	}
	if got := describe(errors.New("other"), time.Second); got != "request failed" {
		t.Errorf("describe(other) = %q, want a fixed phrase, not the error's own text", got)
	}
}

func testDelivery(t *testing.T, s string) store.DeliveryID {
	t.Helper()
	id, ok := store.ParseDeliveryID(s)
	if !ok {
		t.Fatalf("bad delivery id %q", s)
	}
	return id
}
