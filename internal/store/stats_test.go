package store_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// checkStats compares EndpointStats with what the API lists: Queued is the number of pending
// and held deliveries, Active the endpoint's flag. coreView calls it, so every test that
// compares a replayed or reopened store with the live one checks the counts kept by apply and
// restore too.
func checkStats(t *testing.T, s *store.Store) {
	t.Helper()
	eps, _, err := s.Endpoints("", api.MaxPageLimit)
	if err != nil {
		t.Fatal(err)
	}
	stats := s.EndpointStats(nil)
	if len(stats) != len(eps) {
		t.Fatalf("EndpointStats lists %d endpoints, the API %d", len(stats), len(eps))
	}
	for i, ep := range eps {
		want := 0
		cursor := ""
		for {
			ds, next, err := s.Deliveries(ep.ID, cursor, api.MaxPageLimit)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Status == api.StatusPending || d.Status == api.StatusHeld {
					want++
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
		got := stats[i]
		if got.ID != ep.ID || got.Queued != want || got.Active != ep.Active {
			t.Errorf("EndpointStats[%d] = %+v, want {ID:%s Queued:%d Active:%v}", i, got, ep.ID, want, ep.Active)
		}
	}
}

// TestEndpointStatsFollowDeliveries: the queue depth per endpoint follows ingest, attempts,
// holds, auto-disable and deletion, and survives a restart.
func TestEndpointStatsFollowDeliveries(t *testing.T) {
	dir := t.TempDir()
	var snapshots atomic.Int64
	f := newCoreFixture(t, store.Options{Dir: dir, DisableAfter: 2, OnSnapshot: func(d time.Duration) {
		if d > 0 {
			snapshots.Add(1)
		}
	}})
	a := f.endpoint("a")
	b := f.endpoint("b")
	c := f.endpoint("c")
	for range 3 {
		f.ingest(api.TypeIncidentOpened, "")
	}
	queued := func() map[string]int {
		m := map[string]int{}
		for _, st := range f.s.EndpointStats(nil) {
			m[st.ID] = st.Queued
		}
		return m
	}
	if q := queued(); q[a.ID] != 3 || q[b.ID] != 3 || q[c.ID] != 3 {
		t.Fatalf("after 3 events: %v, want 3 each", q)
	}
	f.deliverAll(a.ID, 200)
	ds := f.deliveriesOf(b.ID)
	f.failDelivery(ds[0].ID, 0)
	f.attempt(ds[1].ID, 500, time.Hour) // retried later: still queued
	f.setActive(c.ID, false)            // held: still queued
	if q := queued(); q[a.ID] != 0 || q[b.ID] != 2 || q[c.ID] != 3 {
		t.Fatalf("after deliveries: %v, want a=0 b=2 c=3", q)
	}
	checkStats(t, f.s)
	f.failDelivery(ds[2].ID, 0) // the second failure in a row disables b
	if got := f.endpointView(b.ID); got.Active {
		t.Fatal("b should be disabled after 2 failed deliveries")
	}
	checkStats(t, f.s)
	if err := f.s.DeleteEndpoint(a.ID); err != nil {
		t.Fatal(err)
	}
	want := coreView(t, f.s) // checks the stats too
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	if snapshots.Load() == 0 {
		t.Error("OnSnapshot was not told of the snapshot Close takes")
	}
	g := newCoreFixture(t, store.Options{Dir: dir, DisableAfter: 2})
	if got := coreView(t, g.s); got != want {
		t.Errorf("reopened state differs:\n got %s\nwant %s", got, want)
	}
	var active, disabled int
	for _, st := range g.s.EndpointStats(nil) {
		if st.Active {
			active++
		} else {
			disabled++
		}
	}
	if active != 0 || disabled != 2 {
		t.Errorf("after restart: %d active, %d disabled endpoints, want 0 and 2", active, disabled)
	}
	if g.s.WALBytes() <= 0 {
		t.Errorf("WALBytes = %d for a store with a log", g.s.WALBytes())
	}
}

// TestJobAcceptedAndOnIngest: a job carries its event's accepted time, and OnIngest hears of
// each accepted event once, not of a repeated idempotency key.
func TestJobAcceptedAndOnIngest(t *testing.T) {
	var types []string
	f := newCoreFixture(t, store.Options{OnIngest: func(typ string) { types = append(types, typ) }})
	ep := f.endpoint("a")
	accepted := f.clock.Now()
	first := f.ingest(api.TypeIncidentOpened, "key")
	if again := f.ingest(api.TypeIncidentOpened, "key"); again != first {
		t.Fatalf("repeat = %+v, want the first result %+v", again, first)
	}
	f.ingest(api.TypeIncidentResolved, "")
	if want := []string{api.TypeIncidentOpened, api.TypeIncidentResolved}; !slices.Equal(types, want) {
		t.Errorf("OnIngest heard %v, want %v", types, want)
	}
	ds := f.deliveriesOf(ep.ID) // newest first
	job, ok := f.begin(ds[len(ds)-1].ID)
	if !ok {
		t.Fatal("Begin refused")
	}
	if !job.Accepted.Equal(accepted) {
		t.Errorf("job.Accepted = %s, want %s", job.Accepted, accepted)
	}
}
