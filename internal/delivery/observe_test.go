package delivery

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// TestSenderClassifiesResults: each kind of answer or failure gets its Result.
func TestSenderClassifiesResults(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(204)
		case "/500":
			w.WriteHeader(500)
		case "/gone":
			w.WriteHeader(410)
		case "/redirect":
			w.Header().Set("Location", "/ok")
			w.WriteHeader(301)
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
	t.Cleanup(func() { close(release) }) // runs first: lets the hanging handler return
	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/x"
	ln.Close()

	secret, _ := signature.GenerateSecret()
	open := netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}
	for _, tt := range []struct {
		name   string
		policy netpolicy.Policy
		url    string
		secret string
		want   Result
	}{
		{"2xx", open, srv.URL + "/ok", secret, ResultSuccess},
		{"500", open, srv.URL + "/500", secret, ResultHTTPError},
		{"410", open, srv.URL + "/gone", secret, ResultHTTPError},
		{"redirect", open, srv.URL + "/redirect", secret, ResultHTTPError},
		{"timeout", open, srv.URL + "/hang", secret, ResultTimeout},
		{"closed before a response", open, srv.URL + "/close", secret, ResultNetwork},
		{"connection refused", open, closed, secret, ResultNetwork},
		{"http refused by policy", netpolicy.Policy{AllowPrivate: true}, srv.URL + "/ok", secret, ResultRefused},
		{"loopback refused by policy", netpolicy.Policy{AllowHTTP: true}, srv.URL + "/ok", secret, ResultRefused},
		{"unusable secret", open, srv.URL + "/ok", "not-a-secret", ResultLocal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSender(Config{Timeout: 300 * time.Millisecond, Policy: tt.policy, UserAgent: "u"})
			res := s.send(store.Job{Delivery: testDelivery(t, "dlv_01h00000000000000000000005"), URL: tt.url,
				Secret: tt.secret, Body: []byte(`{}`), N: 1})
			if res.class != tt.want {
				t.Errorf("class = %s, want %s (attempt %+v)", res.class, tt.want, res.attempt)
			}
			if res.took <= 0 {
				t.Errorf("took = %s", res.took)
			}
		})
	}
	for r := range NumResults + 1 {
		if r.String() == "" {
			t.Errorf("Result(%d) has no name", r)
		}
	}
}

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu        sync.Mutex
	results   []Result
	succeeded int
	failed    int
	latencies []time.Duration
	disabled  []string
}

func (r *recorder) Attempt(res Result, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
}

func (r *recorder) Finished(ok bool, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.succeeded++
		r.latencies = append(r.latencies, latency)
	} else {
		r.failed++
	}
}

func (r *recorder) Disabled(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disabled = append(r.disabled, reason)
}

// TestEngineObserver: the engine tells its Observer of every attempt, every delivery that
// ends, and every endpoint its outcomes disable; a retried attempt ends no delivery.
func TestEngineObserver(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(200)
		case "/gone":
			w.WriteHeader(410)
		default:
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(srv.Close)
	rec := &recorder{}
	e := New(Config{Schedule: []time.Duration{10 * time.Millisecond}, Timeout: time.Second,
		Policy: netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}, UserAgent: "u", Observer: rec})
	st := store.New(store.Options{OnReady: e.Ready, OnStop: e.Drop, DisableAfter: 1})
	e.SetStore(st)
	for _, path := range []string{"/ok", "/500", "/gone"} {
		url, name := srv.URL+path, path
		if _, err := st.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_"+
			"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err != nil {
			t.Fatal(err)
		}
	}
	e.Start()
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	before := time.Now()
	if _, err := st.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		done := rec.succeeded+rec.failed == 3
		rec.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deliveries did not finish within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	slices.Sort(rec.results)
	// /500 is tried twice (one retry), /gone once: 410 ends the delivery at once.
	want := []Result{ResultSuccess, ResultHTTPError, ResultHTTPError, ResultHTTPError}
	if !slices.Equal(rec.results, want) {
		t.Errorf("attempts = %v, want %v", rec.results, want)
	}
	if rec.succeeded != 1 || rec.failed != 2 {
		t.Errorf("finished: %d succeeded, %d failed; want 1 and 2", rec.succeeded, rec.failed)
	}
	if len(rec.latencies) != 1 || rec.latencies[0] <= 0 || rec.latencies[0] > time.Since(before)+time.Millisecond {
		t.Errorf("latencies = %v, want one between 0 and %s", rec.latencies, time.Since(before))
	}
	slices.Sort(rec.disabled)
	if want := []string{api.DisabledConsecutiveFailures, api.DisabledGone}; !slices.Equal(rec.disabled, want) {
		t.Errorf("disabled = %v, want %v", rec.disabled, want)
	}
}
