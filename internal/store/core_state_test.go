package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

func TestCoreIDsSortByCreation(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	var ids []string
	for i := range 300 {
		ep, err := f.s.CreateEndpoint(api.EndpointInput{URL: coreStr("https://a.example.com"), Name: coreStr("n")}, "whsec_x")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ep.ID)
		switch {
		case i == 100:
			f.clock.Add(time.Millisecond)
		case i == 200:
			f.clock.Add(-time.Hour) // the clock steps back: ids still grow
		}
	}
	for i, id := range ids {
		if !store.ValidID("ep_", id) {
			t.Fatalf("id %q is not valid", id)
		}
		if i > 0 && id <= ids[i-1] {
			t.Fatalf("id %d %q does not sort after %q", i, id, ids[i-1])
		}
	}
	eps, _, _ := f.s.Endpoints("", api.MaxPageLimit)
	got := make([]string, len(eps))
	for i, ep := range eps {
		got[i] = ep.ID
	}
	if !slices.Equal(got, ids[:len(got)]) || len(got) != api.MaxPageLimit {
		t.Errorf("list is not in creation order")
	}
}

func TestCoreValidID(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	good := f.endpoint("a").ID
	tests := []struct {
		prefix, id string
		want       bool
	}{
		{"ep_", good, true},
		{"ep_", "ep_00000000000000000000000000", true},
		{"ep_", "ep_7zzzzzzzzzzzzzzzzzzzzzzzzz", true},
		{"ep_", "ep_8zzzzzzzzzzzzzzzzzzzzzzzzz", false}, // more than 128 bits
		{"dlv_", good, false},
		{"ep_", "ep_" + strings.Repeat("0", 25), false},
		{"ep_", "ep_" + strings.Repeat("0", 27), false},
		{"ep_", "ep_0000000000000000000000000i", false},
		{"ep_", "ep_0000000000000000000000000l", false},
		{"ep_", "ep_0000000000000000000000000o", false},
		{"ep_", "ep_0000000000000000000000000u", false},
		{"ep_", "ep_0000000000000000000000000A", false},
		{"ep_", "EP_00000000000000000000000000", false},
		{"ep_", "", false},
		{"ep_", "ep_", false},
		{"ep_", "xx_00000000000000000000000000", false},
	}
	for _, tt := range tests {
		if got := store.ValidID(tt.prefix, tt.id); got != tt.want {
			t.Errorf("ValidID(%q, %q) = %v, want %v", tt.prefix, tt.id, got, tt.want)
		}
	}
	for _, s := range []string{"dlv_00000000000000000000000000", "dlv_7zzzzzzzzzzzzzzzzzzzzzzzzz"} {
		id, ok := store.ParseDeliveryID(s)
		if !ok || id.String() != s {
			t.Errorf("ParseDeliveryID(%q) = %v %v", s, id, ok)
		}
	}
	if _, ok := store.ParseDeliveryID("ep_00000000000000000000000000"); ok {
		t.Error("ParseDeliveryID accepts an endpoint id")
	}
}

func TestCoreFanOut(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	all := f.endpoint("all")
	opened := f.endpoint("opened", api.TypeIncidentOpened)
	two := f.endpoint("two", api.TypeIncidentResolved, api.TypeDeployIngested)
	off := f.endpoint("off")
	f.setActive(off.ID, false)
	tests := []struct {
		typ  string
		want []string
	}{
		{api.TypeIncidentOpened, []string{all.ID, opened.ID}},
		{api.TypeIncidentAcknowledged, []string{all.ID}},
		{api.TypeIncidentResolved, []string{all.ID, two.ID}},
		{api.TypeDeployIngested, []string{all.ID, two.ID}},
	}
	for _, tt := range tests {
		before := map[string]int{}
		for _, id := range []string{all.ID, opened.ID, two.ID, off.ID} {
			before[id] = len(f.deliveriesOf(id))
		}
		res := f.ingest(tt.typ, "")
		if res.Deliveries != len(tt.want) || !strings.HasPrefix(res.EventID, "evt_") {
			t.Errorf("%s: %+v, want %d deliveries", tt.typ, res, len(tt.want))
		}
		for id, n := range before {
			ds := f.deliveriesOf(id)
			want := n
			if slices.Contains(tt.want, id) {
				want++
				if d := ds[0]; d.EventID != res.EventID || d.EventType != tt.typ || d.EndpointID != id || d.Status != api.StatusPending {
					t.Errorf("%s: delivery %+v", tt.typ, d)
				}
			}
			if len(ds) != want {
				t.Errorf("%s: endpoint %s has %d deliveries, want %d", tt.typ, id, len(ds), want)
			}
		}
	}
	// Filters apply to later events only; an empty list means all again.
	f.update(opened.ID, api.EndpointInput{EventTypes: &[]string{}})
	if res := f.ingest(api.TypeIncidentAcknowledged, ""); res.Deliveries != 2 {
		t.Errorf("after clearing the filter: %+v, want 2", res)
	}
	// Every delivery was announced as ready, due now.
	for _, r := range f.ready.take() {
		if r.EndpointID == off.ID {
			t.Errorf("a delivery to an inactive endpoint was announced: %+v", r)
		}
	}
}

func TestCoreIdempotency(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	first := f.ingest(api.TypeIncidentOpened, "key-1")
	again := f.ingest(api.TypeIncidentOpened, "key-1")
	if again != first {
		t.Errorf("repeat = %+v, want the first result %+v", again, first)
	}
	if r, err := f.s.Ingest(api.IngestInput{Type: api.TypeIncidentResolved, Data: []byte(`{"k":1}`), IdempotencyKey: "key-1"}); !errors.Is(err, store.ErrIdempotencyKeyReused) {
		t.Errorf("key-1 for another type = %+v, %v; want ErrIdempotencyKeyReused", r, err)
	}
	if n := len(f.deliveriesOf(ep.ID)); n != 1 {
		t.Errorf("%d deliveries after a repeated key, want 1", n)
	}
	other := f.ingest(api.TypeIncidentOpened, "key-2")
	if other.EventID == first.EventID || len(f.deliveriesOf(ep.ID)) != 2 {
		t.Errorf("a new key made no new event: %+v", other)
	}
	// No key: never deduplicated.
	a, b := f.ingest(api.TypeIncidentOpened, ""), f.ingest(api.TypeIncidentOpened, "")
	if a.EventID == b.EventID {
		t.Error("events without a key were deduplicated")
	}
	// A key whose event fanned out to nothing is remembered too.
	f.setActive(ep.ID, false)
	none := f.ingest(api.TypeIncidentOpened, "key-3")
	f.setActive(ep.ID, true)
	if again := f.ingest(api.TypeIncidentOpened, "key-3"); again != none || again.Deliveries != 0 {
		t.Errorf("repeat of a zero-delivery key = %+v, want %+v", again, none)
	}
}

// TestCoreAttemptOutcomes walks one delivery through Begin and Finish.
func TestCoreAttemptOutcomes(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	f.ingest(api.TypeIncidentOpened, "")
	d := f.only(ep.ID)

	job, ok := f.begin(d.ID)
	if !ok || job.N != 1 || job.Delivery.String() != d.ID || job.EndpointID != ep.ID || job.Secret != "whsec_a" ||
		job.URL != "https://hooks.example.com/a" || job.EventType != api.TypeIncidentOpened || job.Test {
		t.Fatalf("Begin = %+v %v", job, ok)
	}
	if !strings.Contains(string(job.Body), `"data":{"k":1}`) || !strings.HasPrefix(string(job.Body), `{"id":"`+d.EventID+`"`) {
		t.Errorf("body = %s", job.Body)
	}
	if _, ok := f.begin(d.ID); ok {
		t.Error("Begin claimed a delivery already in flight")
	}
	now := f.clock.Now()
	retryAt := now.Add(time.Minute)
	if _, err := f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 1, At: now, StatusCode: 500, DurationMS: 7}, RetryAt: retryAt}); err != nil {
		t.Fatal(err)
	}
	got := f.only(ep.ID)
	if got.Status != api.StatusPending || got.NextAttemptAt == nil || !got.NextAttemptAt.Equal(retryAt) || len(got.Attempts) != 1 ||
		*got.Attempts[0].StatusCode != 500 || got.Attempts[0].Error != nil || got.Attempts[0].DurationMS != 7 {
		t.Errorf("after a retryable failure: %+v", got)
	}
	if r := f.ready.take(); len(r) == 0 || !r[len(r)-1].Due.Equal(retryAt) {
		t.Errorf("the retry was not announced for %v: %+v", retryAt, r)
	}
	if _, ok := f.begin(d.ID); ok {
		t.Error("Begin claimed a delivery before it is due")
	}
	if ep := f.endpointView(ep.ID); ep.ConsecutiveFailures != 0 {
		t.Errorf("a retried attempt counted as a failed delivery: %d", ep.ConsecutiveFailures)
	}

	f.clock.Add(time.Minute)
	job, ok = f.begin(d.ID)
	if !ok || job.N != 2 {
		t.Fatalf("second Begin = %+v %v", job, ok)
	}
	errMsg := "timeout: no complete response within 10s"
	if _, err := f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 2, At: f.clock.Now(), Error: errMsg}}); err != nil {
		t.Fatal(err)
	}
	got = f.only(ep.ID)
	if got.Status != api.StatusFailed || got.NextAttemptAt != nil || len(got.Attempts) != 2 ||
		got.Attempts[1].StatusCode != nil || got.Attempts[1].Error == nil || *got.Attempts[1].Error != errMsg {
		t.Errorf("after the last attempt failed: %+v", got)
	}
	if ep := f.endpointView(ep.ID); ep.ConsecutiveFailures != 1 {
		t.Errorf("consecutive_failures = %d, want 1", ep.ConsecutiveFailures)
	}
	if _, ok := f.begin(d.ID); ok {
		t.Error("Begin claimed a failed delivery")
	}

	// A success resets the counter.
	f.ingest(api.TypeIncidentOpened, "")
	next := f.deliveriesOf(ep.ID)[0]
	if _, ok := f.attempt(next.ID, 204, 0); !ok {
		t.Fatal("not begun")
	}
	if got := f.deliveriesOf(ep.ID)[0]; got.Status != api.StatusSucceeded || *got.Attempts[0].StatusCode != 204 {
		t.Errorf("after success: %+v", got)
	}
	if ep := f.endpointView(ep.ID); ep.ConsecutiveFailures != 0 {
		t.Errorf("consecutive_failures after a success = %d", ep.ConsecutiveFailures)
	}
	if _, err := f.s.Delivery(next.ID); err != nil {
		t.Errorf("Delivery(%s): %v", next.ID, err)
	}
	if _, err := f.s.Delivery("dlv_00000000000000000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown delivery: %v", err)
	}
}
