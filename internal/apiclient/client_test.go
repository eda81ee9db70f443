package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// server is a fake relay: handler answers each request; it also records them.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	at   []time.Time
}

func newServer(t *testing.T, handler func(n int, w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.at = append(s.at, time.Now())
		s.mu.Unlock()
		handler(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func newClient(t *testing.T, url string, opts ...Option) *Client {
	t.Helper()
	c, err := New(url, "tok_secret", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestNewValidatesArguments(t *testing.T) {
	tests := []struct{ url, token string }{
		{"127.0.0.1:8080", "t"}, // no scheme
		{"ftp://relay", "t"},
		{"http://", "t"},
		{"", "t"},
		{"http://127.0.0.1:8080", ""},
	}
	for _, tt := range tests {
		if _, err := New(tt.url, tt.token); err == nil {
			t.Errorf("New(%q, %q) succeeded", tt.url, tt.token)
		}
	}
	if _, err := New("https://relay.internal:8443/base/", "t"); err != nil {
		t.Errorf("New with a base path: %v", err)
	}
}

func TestRequestHeadersAndBody(t *testing.T) {
	var body map[string]any
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&body)
		writeJSON(w, http.StatusCreated, api.Endpoint{ID: "ep_1", Secret: "whsec_x"})
	})
	c := newClient(t, s.URL+"/", WithUserAgent("Terraform/1.11.4 terraform-provider-blametrail/test"))
	active := false
	ep, err := c.CreateEndpoint(context.Background(), EndpointCreate{URL: "https://h.example/x", Name: "n", Active: &active})
	if err != nil {
		t.Fatal(err)
	}
	if ep.ID != "ep_1" || ep.Secret != "whsec_x" {
		t.Errorf("decoded %+v", ep)
	}
	r := s.reqs[0]
	for h, want := range map[string]string{
		"Authorization": "Bearer tok_secret",
		"User-Agent":    "Terraform/1.11.4 terraform-provider-blametrail/test",
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if r.Method != "POST" || r.URL.Path != "/api/webhooks/endpoints" {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	// Omitted optional fields stay absent, so the relay applies its defaults.
	if _, ok := body["event_types"]; ok || body["active"] != false || len(body) != 3 {
		t.Errorf("body %v", body)
	}
}

func TestPatchSendsOnlySetFields(t *testing.T) {
	var raw map[string]json.RawMessage
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&raw)
		writeJSON(w, http.StatusOK, api.Endpoint{ID: "ep_1"})
	})
	all := []string{}
	if _, err := newClient(t, s.URL).UpdateEndpoint(context.Background(), "ep_1", EndpointPatch{EventTypes: &all}); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || string(raw["event_types"]) != "[]" {
		t.Errorf("PATCH body %v, want only event_types: []", raw)
	}
	if s.reqs[0].Method != "PATCH" || s.reqs[0].URL.Path != "/api/webhooks/endpoints/ep_1" {
		t.Errorf("request %s %s", s.reqs[0].Method, s.reqs[0].URL.Path)
	}
}

func TestTypedErrors(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		sentinel error
		field    string
	}{
		{404, `{"error":{"code":"endpoint_not_found","message":"endpoint ep_1 not found"}}`, ErrEndpointNotFound, ""},
		{401, `{"error":{"code":"unauthorized","message":"invalid api token"}}`, ErrUnauthorized, ""},
		{403, `{"error":{"code":"forbidden","message":"this is the ingest token"}}`, ErrForbidden, ""},
		{409, `{"error":{"code":"endpoint_disabled","message":"disabled"}}`, ErrConflict, ""},
		{422, `{"error":{"code":"invalid_url","message":"url must use https","field":"url"}}`, ErrValidation, "url"},
		{500, `not json`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			_, err := newClient(t, s.URL).Endpoint(context.Background(), "ep_1")
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != tt.status || ae.Field != tt.field {
				t.Fatalf("err = %#v", err)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			for _, other := range []error{ErrNotFound, ErrEndpointNotFound, ErrUnauthorized, ErrForbidden, ErrConflict, ErrValidation} {
				if other != tt.sentinel && errors.Is(err, other) && (tt.sentinel != ErrEndpointNotFound || other != ErrNotFound) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
			if s.count() != 1 {
				t.Errorf("%d requests; a %d must not be retried", s.count(), tt.status)
			}
		})
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, api.ErrorBody{})
			return
		}
		writeJSON(w, http.StatusOK, api.EventTypeList{Data: []string{"incident.opened"}})
	})
	got, err := newClient(t, s.URL).EventTypes(context.Background())
	if err != nil || len(got) != 1 {
		t.Fatalf("EventTypes = %v, %v", got, err)
	}
	if gap := s.at[1].Sub(s.at[0]); gap < time.Second {
		t.Errorf("retried after %s; Retry-After asked for 1s", gap)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: api.ErrorDetail{Code: "unavailable"}})
	})
	_, err := newClient(t, s.URL, WithRetries(2, 10*time.Millisecond)).Endpoint(context.Background(), "ep_1")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v", err)
	}
	if s.count() != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", s.count())
	}
}

func TestRetryWaitIsCappedAndCancellable(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, http.StatusTooManyRequests, api.ErrorBody{})
	})
	start := time.Now()
	_, err := newClient(t, s.URL, WithRetries(1, 50*time.Millisecond)).Endpoint(context.Background(), "ep_1")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s; the wait must be capped by maxWait", err, time.Since(start))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = newClient(t, s.URL).Endpoint(ctx, "ep_1")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s; cancelling must end the wait", err, time.Since(start))
	}
}

// TestConnectionRefusedFailsFast: a relay that is down is retried briefly (it may be
// starting) and then reported within seconds, not after the HTTP timeout.
func TestConnectionRefusedFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, err = newClient(t, "http://"+addr).Endpoint(context.Background(), "ep_1")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to report a refused connection", d)
	}
}

// TestRedirectsAreNotFollowed: following one would send the bearer token elsewhere.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	other := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { leaked.Store(true) })
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	})
	_, err := newClient(t, s.URL).Endpoint(context.Background(), "ep_1")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusFound {
		t.Fatalf("err = %v, want the 302 as an error", err)
	}
	if leaked.Load() {
		t.Error("the redirect was followed")
	}
}

func TestAllEndpointsFollowsCursor(t *testing.T) {
	const total, page = 5, 2
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("limit"); got != strconv.Itoa(api.MaxPageLimit) {
			t.Errorf("limit = %q, want the largest page", got)
		}
		start := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			fmt.Sscanf(c, "ep_%d", &start)
			start++
		}
		var out api.EndpointList
		for i := start; i < min(start+page, total); i++ {
			out.Data = append(out.Data, api.Endpoint{ID: fmt.Sprintf("ep_%d", i)})
		}
		if end := start + page; end < total {
			next := fmt.Sprintf("ep_%d", end-1)
			out.NextCursor = &next
		}
		writeJSON(w, http.StatusOK, out)
	})
	eps, err := newClient(t, s.URL).AllEndpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != total || eps[0].ID != "ep_0" || eps[total-1].ID != "ep_4" {
		t.Errorf("got %d endpoints %v", len(eps), eps)
	}
	if s.count() != 3 {
		t.Errorf("%d requests, want 3 pages", s.count())
	}
}

func TestDeleteAndSecretPaths(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "DELETE":
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, http.StatusOK, api.Secret{Secret: "whsec_abc"})
		}
	})
	c := newClient(t, s.URL)
	if err := c.DeleteEndpoint(context.Background(), "ep_1"); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Secret(context.Background(), "ep_1")
	if err != nil || sec != "whsec_abc" {
		t.Fatalf("Secret = %q, %v", sec, err)
	}
	if p := s.reqs[1].URL.Path; p != "/api/webhooks/endpoints/ep_1/secret" {
		t.Errorf("secret path %q", p)
	}
	// Ids are path-escaped, so an id cannot reach another route.
	_, _ = c.Endpoint(context.Background(), "../../event-types")
	if p := s.reqs[2].URL.EscapedPath(); p != "/api/webhooks/endpoints/..%2F..%2Fevent-types" {
		t.Errorf("escaped path %q", p)
	}
}

// TestProxyErrorsRetryOnlyIdempotentCalls: a 502/504 from a proxy may hide a create that
// happened, so a POST is not sent twice; a GET is.
func TestProxyErrorsRetryOnlyIdempotentCalls(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusGatewayTimeout} {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) })
		c := newClient(t, s.URL, WithRetries(2, 10*time.Millisecond))
		if _, err := c.CreateEndpoint(context.Background(), EndpointCreate{URL: "https://h.example", Name: "n"}); err == nil {
			t.Fatal("create succeeded")
		}
		if s.count() != 1 {
			t.Errorf("%d: POST sent %d times, want once", status, s.count())
		}
		if _, err := c.Endpoint(context.Background(), "ep_1"); err == nil {
			t.Fatal("read succeeded")
		}
		if s.count() != 1+3 {
			t.Errorf("%d: GET sent %d times, want 1 + 2 retries", status, s.count()-1)
		}
	}
}
