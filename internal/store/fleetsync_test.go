package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

func fleetState(id string, version int64, active bool) store.EndpointState {
	at := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	st := store.EndpointState{ID: id, URL: "https://a.example/h", Name: "a", EventTypes: []string{}, Active: active,
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CreatedAt: at, UpdatedAt: at.Add(time.Duration(version) * time.Second),
		Version: version}
	if !active {
		st.DisabledReason = api.DisabledConsecutiveFailures
	}
	return st
}

// TestSyncEndpointVersions: a synced state is applied only when newer than the one held; a
// disable holds the endpoint's deliveries and tells OnStop, a re-enable resumes them; the
// synced mark and the versions survive a restart.
func TestSyncEndpointVersions(t *testing.T) {
	dir := t.TempDir()
	var stopped []string
	var mu sync.Mutex
	opts := store.Options{Dir: dir, WAL: wal.Options{Sync: wal.SyncNone}, SharedCounter: true,
		OnStop: func(id string) { mu.Lock(); stopped = append(stopped, id); mu.Unlock() }}
	f := newCoreFixture(t, opts)
	const id = "ep_01m8c5xqc02hd66h7026x3c9s3"
	if f.s.Synced() {
		t.Fatal("a new store says it synced")
	}
	if err := f.s.SyncEndpoint(fleetState(id, 5, true)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkSynced(); err != nil {
		t.Fatal(err)
	}
	f.ingest(api.TypeIncidentOpened, "")
	if err := f.s.SyncEndpoint(fleetState(id, 4, false)); err != nil { // stale: ignored
		t.Fatal(err)
	}
	if ep := f.endpointView(id); !ep.Active {
		t.Fatal("a stale state was applied")
	}
	if err := f.s.SyncEndpoint(fleetState(id, 7, false)); err != nil {
		t.Fatal(err)
	}
	if d := f.only(id); d.Status != api.StatusHeld || len(stopped) != 1 {
		t.Fatalf("after a synced disable: %s, OnStop told %v", d.Status, stopped)
	}
	f.ready.take()
	if err := f.s.SyncEndpoint(fleetState(id, 8, true)); err != nil {
		t.Fatal(err)
	}
	if r := f.ready.take(); len(r) != 1 || !r[0].Resume {
		t.Fatalf("a synced re-enable announced %+v, want a resume", r)
	}
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	g := newCoreFixture(t, opts)
	if !g.s.Synced() {
		t.Error("the synced mark did not survive a restart")
	}
	if err := g.s.SyncEndpoint(fleetState(id, 8, false)); err != nil {
		t.Fatal(err)
	}
	if ep := g.endpointView(id); !ep.Active {
		t.Error("after a restart a state of the same version was applied: the version was lost")
	}
	if err := g.s.SyncDelete(id); err != nil {
		t.Fatal(err)
	}
	if err := g.s.SyncDelete(id); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

// TestSharedCounterReports: with SharedCounter the store never disables an endpoint by itself
// and reports each ended delivery once, keyed by series.
func TestSharedCounterReports(t *testing.T) {
	var mu sync.Mutex
	var got []store.OutcomeReport
	f := newCoreFixture(t, store.Options{DisableAfter: 1, SharedCounter: true,
		OnOutcome: func(r store.OutcomeReport) { mu.Lock(); got = append(got, r); mu.Unlock() }})
	ep := f.endpoint("a")
	f.ingest(api.TypeIncidentOpened, "")
	d := f.only(ep.ID).ID
	f.attempt(d, 500, time.Millisecond) // retried: no report
	f.clock.Add(time.Millisecond)
	f.attempt(d, 500, 0) // failed for good
	if v := f.endpointView(ep.ID); !v.Active || v.ConsecutiveFailures != 0 {
		t.Fatalf("the store decided by itself: %+v", v)
	}
	if _, err := f.s.Resend(ep.ID, d); err != nil {
		t.Fatal(err)
	}
	f.attempt(d, 410, 0)
	f.ingest(api.TypeIncidentOpened, "")
	f.attempt(f.deliveriesOf(ep.ID)[0].ID, 200, 0)
	ping, _ := f.s.SendTest(ep.ID)
	f.attempt(ping, 500, 0) // a test: never reported
	want := []store.OutcomeReport{{EndpointID: ep.ID, Key: d}, {EndpointID: ep.ID, Key: d + "#2", Gone: true},
		{EndpointID: ep.ID, Key: f.deliveriesOf(ep.ID)[1].ID, Success: true}}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("reports %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("report %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if v := f.endpointView(ep.ID); !v.Active {
		t.Error("a 410 disabled the endpoint locally: in fleet mode the fleet decides")
	}
}
