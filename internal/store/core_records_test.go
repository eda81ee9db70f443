package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// coreDurable is a durable store that never snapshots on its own, so the WAL holds every
// record of the test.
func coreDurable(t *testing.T, dir string) *coreFixture {
	return newCoreFixture(t, store.Options{
		Dir: dir, DisableAfter: 2, HistoryLimit: 3,
		SnapshotBytes: 1 << 40, SnapshotInterval: 24 * time.Hour,
		WAL: wal.Options{Sync: wal.SyncBatch},
	})
}

// coreHistory drives a store through every kind of record and decision.
func coreHistory(t *testing.T, f *coreFixture) {
	a := f.endpoint("a")
	b := f.endpoint("b", api.TypeIncidentOpened)
	c := f.endpoint("c")
	d := f.endpoint("d")
	e := f.endpoint("e", api.TypeDeployIngested)
	f.update(a.ID, api.EndpointInput{Name: coreStr("A"), Description: coreStr("described"),
		EventTypes: &[]string{api.TypeIncidentOpened, api.TypeIncidentResolved}})
	f.ingest(api.TypeIncidentOpened, "k1")
	f.ingest(api.TypeIncidentResolved, "")
	f.ingest(api.TypeIncidentOpened, "k1") // repeat: no record of its own effect

	// a: a retry, then success.
	first := f.deliveriesOf(a.ID)[1]
	f.attempt(first.ID, 500, time.Millisecond)
	f.clock.Add(time.Millisecond)
	f.attempt(first.ID, 200, 0)
	// b: gone.
	f.attempt(f.deliveriesOf(b.ID)[0].ID, 410, 0)
	// c: two failed deliveries disable it (DisableAfter 2), the third is held.
	for _, dl := range f.deliveriesOf(c.ID)[:2] {
		f.failDelivery(dl.ID, 1)
	}
	f.ingest(api.TypeIncidentAcknowledged, "")
	// a test ping, succeeded.
	dlv, err := f.s.SendTest(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.attempt(dlv, 200, 0)
	// a: more finished deliveries than the history keeps.
	for range 4 {
		f.ingest(api.TypeIncidentResolved, "")
		f.deliverAll(a.ID, 200)
	}
	// c re-enabled: its held deliveries resume; a failed one is resent and fails once more.
	f.setActive(c.ID, true)
	failed := f.deliveriesOf(c.ID)[1].ID
	if _, err := f.s.Resend(c.ID, failed); err != nil {
		t.Fatal(err)
	}
	f.attempt(failed, 500, time.Hour)
	// d: has history, then is deleted.
	f.deliverAll(d.ID, 200)
	if err := f.s.DeleteEndpoint(d.ID); err != nil {
		t.Fatal(err)
	}
	// e: a pending delivery with a retry due later, then held by hand.
	f.ingest(api.TypeDeployIngested, "k2")
	f.attempt(f.deliveriesOf(e.ID)[0].ID, 503, time.Hour)
	f.ingest(api.TypeDeployIngested, "")
	f.setActive(e.ID, false)
}

func corePendingSet(s *store.Store) []string {
	var out []string
	for _, r := range s.Pending() {
		out = append(out, r.Delivery.String()+"@"+r.Due.UTC().Format(time.RFC3339Nano)+"@"+r.EndpointID)
	}
	slices.Sort(out)
	return out
}

// coreReadWAL copies a live store's WAL directory and reads every record back.
func coreReadWAL(t *testing.T, dir string) [][]byte {
	t.Helper()
	src := filepath.Join(dir, "wal")
	dst := filepath.Join(t.TempDir(), "wal")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var recs [][]byte
	w, err := wal.Open(wal.Options{Dir: dst}, wal.Position{}, func(_ wal.Position, data []byte) error {
		recs = append(recs, bytes.Clone(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestCoreRecordsRoundTripAndReplay: every record the store logged survives Marshal and
// UnmarshalRecord unchanged, and replaying them into a fresh store rebuilds exactly the state
// the API showed; so does reopening the directory.
func TestCoreRecordsRoundTripAndReplay(t *testing.T) {
	dir := t.TempDir()
	f := coreDurable(t, dir)
	coreHistory(t, f)
	want := coreView(t, f.s)
	wantPending := corePendingSet(f.s)
	if len(wantPending) == 0 {
		t.Fatal("the history should leave something pending")
	}

	raw := coreReadWAL(t, dir)
	if len(raw) < 20 {
		t.Fatalf("only %d records in the WAL", len(raw))
	}
	kinds := map[int]int{}
	fresh := store.New(store.Options{DisableAfter: 2, HistoryLimit: 3, Now: f.clock.Now})
	for i, b := range raw {
		rec, err := store.UnmarshalRecord(b)
		if err != nil {
			t.Fatalf("record %d: %v\n%s", i, err, b)
		}
		kinds[rec.Kind]++
		again, err := rec.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("record %d does not round-trip:\n%s\n%s", i, b, again)
		}
		rec2, err := store.UnmarshalRecord(again)
		if err != nil {
			t.Fatal(err)
		}
		fresh.Replay(rec2)
	}
	for _, k := range []int{store.KindEndpointPut, store.KindEndpointDelete, store.KindEventAccepted, store.KindAttempt, store.KindResend} {
		if kinds[k] == 0 {
			t.Errorf("the history produced no record of kind %d: %v", k, kinds)
		}
	}
	if got := coreView(t, fresh); got != want {
		t.Errorf("replayed state differs:\n got %s\nwant %s", got, want)
	}
	if got := corePendingSet(fresh); !slices.Equal(got, wantPending) {
		t.Errorf("replayed pending = %v, want %v", got, wantPending)
	}
	// Idempotency keys are part of the state: a repeat gets the first answer from both.
	var answers []store.IngestResult
	for _, s := range []*store.Store{f.s, fresh} {
		res, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{"k":1}`), IdempotencyKey: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, res)
	}
	if answers[0] != answers[1] || answers[0].Deliveries != 4 {
		t.Errorf("repeat of k1 = %+v, want the same first answer (4 deliveries) from both stores", answers)
	}

	// Reopening the directory (snapshot at Close, then the WAL) shows the same state too.
	want = coreView(t, f.s)
	wantPending = corePendingSet(f.s)
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	g := coreDurable(t, dir)
	if got := coreView(t, g.s); got != want {
		t.Errorf("reopened state differs:\n got %s\nwant %s", got, want)
	}
	if got := corePendingSet(g.s); !slices.Equal(got, wantPending) {
		t.Errorf("reopened pending = %v, want %v", got, wantPending)
	}
}

// TestCoreIDsAfterRestartWithClockBehind: ids made after a restart sort after the ones read
// back even when the clock now reads an earlier time (a clock stepped back across a restart).
// Lists paginate by id, and an endpoint's deliveries are searched by id, so an id that sorts
// too early puts the endpoint list out of creation order and breaks delivery lookups.
func TestCoreIDsAfterRestartWithClockBehind(t *testing.T) {
	check := func(t *testing.T, s *store.Store, clock *coreClock, before []string, epID string) {
		t.Helper()
		ep, err := s.CreateEndpoint(api.EndpointInput{URL: coreStr("https://z.example.com"), Name: coreStr("z")}, "whsec_z")
		if err != nil {
			t.Fatal(err)
		}
		if last := before[len(before)-1]; ep.ID <= last {
			t.Errorf("endpoint made after restart %s sorts before %s", ep.ID, last)
		}
		for range 3 {
			if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		ds, _, err := s.Deliveries(epID, "", api.MaxPageLimit)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(ds); i++ {
			if ds[i].ID >= ds[i-1].ID {
				t.Errorf("deliveries not newest first after restart: %s then %s", ds[i-1].ID, ds[i].ID)
			}
		}
		// Every delivery is still found by its id, and pages through its cursor.
		for _, d := range ds {
			if _, err := s.Delivery(d.ID); err != nil {
				t.Errorf("Delivery(%s): %v", d.ID, err)
			}
		}
		if len(ds) > 1 {
			page, _, err := s.Deliveries(epID, ds[0].ID, api.MaxPageLimit)
			if err != nil || len(page) != len(ds)-1 {
				t.Errorf("page after cursor %s: %d deliveries (%v), want %d", ds[0].ID, len(page), err, len(ds)-1)
			}
		}
	}
	history := func(f *coreFixture) ([]string, string) {
		a := f.endpoint("a")
		b := f.endpoint("b")
		for range 3 {
			f.ingest(api.TypeIncidentOpened, "")
		}
		return []string{a.ID, b.ID}, a.ID
	}

	t.Run("replay", func(t *testing.T) {
		dir := t.TempDir()
		f := coreDurable(t, dir)
		ids, epID := history(f)
		clock := newCoreClock()
		clock.Add(-time.Hour)
		fresh := store.New(store.Options{Now: clock.Now})
		for _, b := range coreReadWAL(t, dir) {
			rec, err := store.UnmarshalRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			fresh.Replay(rec)
		}
		check(t, fresh, clock, ids, epID)
	})
	t.Run("reopen", func(t *testing.T) {
		dir := t.TempDir()
		f := coreDurable(t, dir)
		ids, epID := history(f)
		if err := f.close(); err != nil {
			t.Fatal(err)
		}
		clock := newCoreClock()
		clock.Add(-time.Hour)
		s, err := store.Open(store.Options{Dir: dir, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		check(t, s, clock, ids, epID)
	})
}

// TestCoreSnapshotWhileBackgroundLoopRuns: Snapshot is exported and may be called while the
// store's own snapshot loop (which wakes every second) checks whether one is due; under the
// race detector this shows any unsynchronised bookkeeping between the two.
func TestCoreSnapshotWhileBackgroundLoopRuns(t *testing.T) {
	f := newCoreFixture(t, store.Options{Dir: t.TempDir(), SnapshotBytes: 1 << 20, SnapshotInterval: time.Second})
	ep := f.endpoint("a")
	deadline := time.Now().Add(1500 * time.Millisecond) // past at least one tick of the loop
	for time.Now().Before(deadline) {
		f.ingest(api.TypeIncidentOpened, "")
		if err := f.s.Snapshot(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(f.deliveriesOf(ep.ID)) == 0 {
		t.Fatal("no deliveries")
	}
}
