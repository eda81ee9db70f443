package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// TestNotFoundCodes: only endpoint_not_found is ErrEndpointNotFound; every 404 is ErrNotFound.
func TestNotFoundCodes(t *testing.T) {
	tests := []struct {
		body         string
		endpointGone bool
	}{
		{`{"error":{"code":"endpoint_not_found","message":"endpoint ep_1 not found"}}`, true},
		{`{"error":{"code":"route_not_found","message":"no route /api/api/x"}}`, false},
		{`{"error":{"code":"delivery_not_found","message":"x"}}`, false},
		{`{"error":{"code":"not_found","message":"x"}}`, false},
		{`404 page not found`, false},
		{``, false},
	}
	for _, tt := range tests {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, tt.body)
		})
		_, err := newClient(t, s.URL).Endpoint(context.Background(), "ep_1")
		if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrEndpointNotFound) != tt.endpointGone {
			t.Errorf("%s: err = %v; ErrEndpointNotFound %v, want %v", tt.body, err, errors.Is(err, ErrEndpointNotFound), tt.endpointGone)
		}
	}
}

// TestErrorSaysWhatAnswered: an answer that is not a relay error is described by its status,
// content type and the start of its body, on one line, with the token cut out.
func TestErrorSaysWhatAnswered(t *testing.T) {
	tests := []struct {
		ct, body, want string
	}{
		{"text/plain; charset=utf-8", "404 page not found\n",
			`GET /api/webhooks/endpoints/ep_1 answered HTTP 404, text/plain; charset=utf-8: "404 page not found"`},
		{"text/html", "<html>\n<head><title>Not   Found</title></head>",
			`answered HTTP 404, text/html: "<html> <head><title>Not Found</title></head>"`},
		{"", "", `answered HTTP 404, no content type: empty body`},
		{"text/plain", strings.Repeat("x", 300), `"` + strings.Repeat("x", 100) + `…"`},
		{"text/plain", "echo: Authorization: Bearer tok_secret", `"echo: Authorization: Bearer <redacted>"`},
		{"text/plain", "bad \xff byte", "\"bad \ufffd byte\""},
		{"application/json", `{"error":{"code":"route_not_found","message":"no route /x"}}`,
			`GET /api/webhooks/endpoints/ep_1 answered HTTP 404 (route_not_found): no route /x`},
	}
	for _, tt := range tests {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if tt.ct != "" {
				w.Header().Set("Content-Type", tt.ct)
			} else {
				w.Header()["Content-Type"] = nil
			}
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, tt.body)
		})
		_, err := newClient(t, s.URL).Endpoint(context.Background(), "ep_1")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want it to contain %s", err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok_secret") {
			t.Errorf("err names the token: %v", err)
		}
	}
}

func TestConfirm(t *testing.T) {
	relay := func(info string) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/info" || r.Header.Get("Authorization") != "Bearer tok_secret" {
				t.Errorf("request %s %s", r.Method, r.URL.Path)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, info)
		}
	}
	status := func(code int, ct, body string) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}
	}
	tests := []struct {
		name     string
		handler  func(int, http.ResponseWriter, *http.Request)
		sentinel error  // nil: confirmed
		want     string // substring of the error
	}{
		{"relay", relay(`{"name":"blametrail-relay","api_version":1,"version":"1.2.3"}`), nil, ""},
		{"relay with more fields", relay(`{"name":"blametrail-relay","api_version":1,"version":"1.2.3","x":1}`), nil, ""},
		{"other name", relay(`{"name":"other","api_version":1}`), ErrNotRelay, `answered name "other"`},
		{"newer api", relay(`{"name":"blametrail-relay","api_version":2,"version":"9.0.0"}`), ErrNotRelay, "api_version 2"},
		{"empty object", relay(`{}`), ErrNotRelay, `answered name ""`},
		{"html 200", status(200, "text/html", "<html>welcome</html>"), ErrNotRelay, `HTTP 200, text/html: "<html>welcome</html>"`},
		{"plain 404", status(404, "text/plain", "404 page not found"), ErrNotRelay, `GET /api/info answered HTTP 404, text/plain: "404 page not found"`},
		{"route_not_found", status(404, "application/json", `{"error":{"code":"route_not_found","message":"no route /api/api/info"}}`), ErrNotRelay, "(route_not_found)"},
		{"endpoint_not_found to everything", status(404, "application/json", `{"error":{"code":"endpoint_not_found","message":"x"}}`), ErrNotRelay, "(endpoint_not_found)"},
		{"relay refuses the token", status(401, "application/json", `{"error":{"code":"unauthorized","message":"invalid api token"}}`), ErrUnauthorized, "invalid api token"},
		{"other server's 401", status(401, "text/plain", "login first"), ErrNotRelay, "login first"},
		{"relay's ingest token", status(403, "application/json", `{"error":{"code":"forbidden","message":"this is the ingest token"}}`), ErrForbidden, "this is the ingest token"},
		{"other server's 403", status(403, "text/html", "<h1>Forbidden</h1>"), ErrNotRelay, "Forbidden"},
		{"proxy error", status(502, "text/html", "bad gateway"), nil, "HTTP 502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.handler)
			c := newClient(t, s.URL, WithRetries(0, 0))
			info, err := c.Confirm(context.Background())
			if tt.want == "" {
				if err != nil || info.Version != "1.2.3" {
					t.Fatalf("Confirm = %+v, %v", info, err)
				}
				// Kept: a second call asks nothing.
				if _, err := c.Confirm(context.Background()); err != nil || s.count() != 1 {
					t.Errorf("second Confirm: %v after %d requests, want 1", err, s.count())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Confirm error = %v, want it to contain %s", err, tt.want)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v is not %v", err, tt.sentinel)
			}
			if tt.sentinel == nil && errors.Is(err, ErrNotRelay) {
				t.Errorf("error %v must not claim the server is not a relay", err)
			}
			// Kept for a moment (the next waves of a Terraform run's reads), then not: a relay
			// that was starting is asked again.
			if _, again := c.Confirm(context.Background()); again == nil || again.Error() != err.Error() || s.count() != 1 {
				t.Errorf("Confirm right after a failure: %v after %d requests, want the same failure after 1", again, s.count())
			}
			c.failureTTL = 0
			_, _ = c.Confirm(context.Background())
			if s.count() != 2 {
				t.Errorf("%d requests after two failed Confirms, want 2", s.count())
			}
		})
	}
}

// TestConfirmConcurrentShareOneRequest: Terraform reads many resources at once, and each one
// confirms the relay first. Against a server that never answers, those calls must share one
// GET /api/info and fail together after one request timeout, not queue up behind each other
// for one timeout each (30 resources x 30 s was a quarter of an hour).
func TestConfirmConcurrentShareOneRequest(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select { // hang, as a black-holed address does, until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	const timeout = 300 * time.Millisecond
	c := newClient(t, s.URL, WithRetries(0, 0), WithHTTPClient(&http.Client{Timeout: timeout}))
	c.failureTTL = time.Hour // a caller the scheduler starts late still finds the failure
	const callers = 10
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := c.Confirm(context.Background())
			errs <- err
		}()
	}
	for range callers {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "Client.Timeout") {
			t.Errorf("Confirm error = %v, want the request timeout", err)
		}
	}
	// Serialised, ten callers would send ten requests and wait ten timeouts; shared, they send
	// one. The count is the assertion, not the time: a slow machine must not fail it.
	if n := s.count(); n != 1 {
		t.Errorf("%d concurrent Confirms sent %d requests, want them to share one", callers, n)
	}
	// The next wave of reads, right after, gets the same failure without asking; once the
	// failure is older than failureTTL, a call asks again.
	before := s.count()
	if _, err := c.Confirm(context.Background()); err == nil || s.count() != before {
		t.Errorf("Confirm right after the failure: %v after %d more requests, want the failure without a request",
			err, s.count()-before)
	}
	c.confirmMu.Lock()
	c.failureTTL = 0
	c.confirmMu.Unlock()
	_, _ = c.Confirm(context.Background())
	if s.count() != before+1 {
		t.Errorf("a Confirm after the failure expired did not ask again")
	}
}

// TestConfirmWaiterOutlivesCanceledAsker: a caller whose own context ends while it asks does
// not hand that failure to the callers waiting on it; they ask again.
func TestConfirmWaiterOutlivesCanceledAsker(t *testing.T) {
	first := make(chan struct{})
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			close(first)
			<-r.Context().Done() // the asker's context ends first
			return
		}
		writeJSON(w, http.StatusOK, api.Info{Name: api.RelayName, APIVersion: api.APIVersion, Version: "1.2.3"})
	})
	c := newClient(t, s.URL, WithRetries(0, 0))
	askerCtx, cancel := context.WithCancel(context.Background())
	askerErr := make(chan error, 1)
	go func() {
		_, err := c.Confirm(askerCtx)
		askerErr <- err
	}()
	<-first
	waiterErr := make(chan error, 1)
	go func() {
		_, err := c.Confirm(context.Background())
		waiterErr <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the waiter find the request in flight
	cancel()
	if err := <-askerErr; !errors.Is(err, context.Canceled) {
		t.Errorf("asker: %v, want context.Canceled", err)
	}
	if err := <-waiterErr; err != nil {
		t.Errorf("waiter: %v, want the relay confirmed by its own request", err)
	}
	if s.count() != 2 {
		t.Errorf("%d requests, want 2", s.count())
	}
}

func TestBaseURLMasksCredentials(t *testing.T) {
	c, err := New("https://user:pass@relay.example:8443/", "tok")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL(); got != "https://user:xxxxx@relay.example:8443" {
		t.Errorf("BaseURL = %q", got)
	}
}

// TestRequestLog: one call per request, retries included, with method, path, status and
// duration, and nothing that could carry the token.
func TestRequestLog(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, api.EventTypeList{})
	})
	var logs []RequestLog
	c := newClient(t, s.URL, WithRetries(2, time.Millisecond), WithRequestLog(func(_ context.Context, l RequestLog) {
		logs = append(logs, l)
	}))
	if _, err := c.ListEndpoints(context.Background(), "ep_1", 5); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 {
		t.Fatalf("%d log calls, want 2: %+v", len(logs), logs)
	}
	for i, l := range logs {
		want := []int{http.StatusServiceUnavailable, http.StatusOK}[i]
		if l.Method != "GET" || l.Path != "/api/webhooks/endpoints" || l.Status != want || l.Attempt != i+1 || l.Duration <= 0 || l.Err != nil {
			t.Errorf("log %d = %+v", i, l)
		}
		if strings.Contains(fmt.Sprintf("%+v", l), "tok_secret") {
			t.Errorf("log %d holds the token", i)
		}
	}
}
