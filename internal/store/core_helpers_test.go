package store_test

// Helpers for the state-machine tests (core_*_test.go). They drive the store only through
// its exported API, the way the relay does: the handlers' calls, and Begin and Finish per
// attempt as the delivery engine makes them, under a fake clock.

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

type coreClock struct {
	mu sync.Mutex
	t  time.Time
}

func newCoreClock() *coreClock {
	return &coreClock{t: time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)}
}

func (c *coreClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *coreClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder keeps what a store hook was told, for a test to take.
type recorder[T any] struct {
	mu    sync.Mutex
	items []T
}

func (r *recorder[T]) add(x T) {
	r.mu.Lock()
	r.items = append(r.items, x)
	r.mu.Unlock()
}

func (r *recorder[T]) take() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.items
	r.items = nil
	return out
}

// coreReadyLog records what the store announced through OnReady.
type coreReadyLog = recorder[store.Ready]

type coreFixture struct {
	t     *testing.T
	s     *store.Store
	clock *coreClock
	ready *coreReadyLog
	close func() error // closes a durable store once
}

// newCoreFixture returns a memory-only store (opts.Dir empty) or, with opts.Dir set, a
// durable one that is closed at cleanup.
func newCoreFixture(t *testing.T, opts store.Options) *coreFixture {
	t.Helper()
	f := &coreFixture{t: t, clock: newCoreClock(), ready: &coreReadyLog{}}
	opts.Now = f.clock.Now
	opts.OnReady = f.ready.add
	if opts.Dir == "" {
		f.s = store.New(opts)
		return f
	}
	s, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	var once sync.Once
	var err2 error
	f.close = func() error { once.Do(func() { err2 = s.Close() }); return err2 }
	t.Cleanup(func() { _ = f.close() })
	return f
}

func coreStr(s string) *string { return &s }

func (f *coreFixture) endpoint(name string, types ...string) api.Endpoint {
	f.t.Helper()
	in := api.EndpointInput{URL: coreStr("https://hooks.example.com/" + name), Name: coreStr(name)}
	if types != nil {
		in.EventTypes = &types
	}
	ep, err := f.s.CreateEndpoint(in, "whsec_"+name)
	if err != nil {
		f.t.Fatal(err)
	}
	f.clock.Add(time.Millisecond)
	return ep
}

func (f *coreFixture) update(id string, in api.EndpointInput) api.Endpoint {
	f.t.Helper()
	ep, err := f.s.UpdateEndpoint(id, in)
	if err != nil {
		f.t.Fatal(err)
	}
	f.clock.Add(time.Millisecond)
	return ep
}

func (f *coreFixture) setActive(id string, active bool) api.Endpoint {
	f.t.Helper()
	return f.update(id, api.EndpointInput{Active: &active})
}

func (f *coreFixture) ingest(typ, key string) store.IngestResult {
	f.t.Helper()
	res, err := f.s.Ingest(api.IngestInput{Type: typ, Data: []byte(`{"k":1}`), IdempotencyKey: key})
	if err != nil {
		f.t.Fatal(err)
	}
	f.clock.Add(time.Millisecond)
	return res
}

// deliveriesOf returns an endpoint's deliveries, newest first.
func (f *coreFixture) deliveriesOf(epID string) []api.Delivery {
	f.t.Helper()
	ds, _, err := f.s.Deliveries(epID, "", api.MaxPageLimit)
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func (f *coreFixture) only(epID string) api.Delivery {
	f.t.Helper()
	ds := f.deliveriesOf(epID)
	if len(ds) != 1 {
		f.t.Fatalf("endpoint %s has %d deliveries, want 1", epID, len(ds))
	}
	return ds[0]
}

func coreDeliveryID(t *testing.T, s string) store.DeliveryID {
	t.Helper()
	id, ok := store.ParseDeliveryID(s)
	if !ok {
		t.Fatalf("bad delivery id %q", s)
	}
	return id
}

// begin claims a delivery at the fake clock's now.
func (f *coreFixture) begin(dlvID string) (store.Job, bool) {
	f.t.Helper()
	return f.s.Begin(coreDeliveryID(f.t, dlvID), f.clock.Now())
}

// attempt claims a delivery and records an outcome: 2xx succeeds, 410 is gone, anything else
// fails and is retried after retry (0 = no retry left). ok is false when Begin refused.
func (f *coreFixture) attempt(dlvID string, code int, retry time.Duration) (disabled string, ok bool) {
	f.t.Helper()
	now := f.clock.Now()
	job, ok := f.begin(dlvID)
	if !ok {
		return "", false
	}
	o := store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: job.N, At: now, StatusCode: code, DurationMS: 3}}
	switch {
	case code >= 200 && code < 300:
		o.Success = true
	case code == 410:
		o.Gone = true
	case retry > 0:
		o.RetryAt = now.Add(retry)
	}
	disabled, err := f.s.Finish(o)
	if err != nil {
		f.t.Fatal(err)
	}
	return disabled, true
}

// failDelivery fails a delivery's attempts until none is left (retries of them retried).
func (f *coreFixture) failDelivery(dlvID string, retries int) string {
	f.t.Helper()
	var disabled string
	for i := 0; i <= retries; i++ {
		retry := time.Duration(0)
		if i < retries {
			retry = time.Millisecond
		}
		d, ok := f.attempt(dlvID, 500, retry)
		if !ok {
			f.t.Fatalf("attempt %d of %s not begun", i+1, dlvID)
		}
		disabled = d
		f.clock.Add(time.Millisecond)
	}
	return disabled
}

// deliverAll makes one attempt with code for every delivery of ep that Begin accepts.
func (f *coreFixture) deliverAll(epID string, code int) {
	f.t.Helper()
	for _, d := range f.deliveriesOf(epID) {
		f.attempt(d.ID, code, 0)
	}
	f.clock.Add(time.Millisecond)
}

func (f *coreFixture) endpointView(id string) api.Endpoint {
	f.t.Helper()
	ep, err := f.s.Endpoint(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return ep
}

func coreReason(ep api.Endpoint) string {
	if ep.DisabledReason == nil {
		return ""
	}
	return *ep.DisabledReason
}

// coreView is everything the API shows of a store, as JSON, for comparing two stores. It also
// checks the metrics' per-endpoint counts against the deliveries (see checkStats).
func coreView(t *testing.T, s *store.Store) string {
	t.Helper()
	checkStats(t, s)
	type epView struct {
		Endpoint   api.Endpoint
		Secret     string
		Deliveries []api.Delivery
	}
	var out []epView
	eps, _, err := s.Endpoints("", api.MaxPageLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		sec, err := s.Secret(ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		ds, _, err := s.Deliveries(ep.ID, "", api.MaxPageLimit)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, epView{ep, sec, ds})
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
