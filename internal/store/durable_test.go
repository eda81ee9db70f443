package store

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// TestDurableFailedWriteLeavesNoTrace: when a write fails (a full disk), the request fails,
// a repeat of its idempotency key is not answered from memory, reads do not show it, and after
// a restart the state is as if the request never came, while everything acknowledged before
// is there.
func TestDurableFailedWriteLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	ffs := &failingFS{}
	s, err := Open(Options{Dir: dir, WAL: wal.Options{FS: ffs}})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_a")
	if err != nil {
		t.Fatal(err)
	}
	acked, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`), IdempotencyKey: "acked"})
	if err != nil {
		t.Fatal(err)
	}

	ffs.writesFail.Store(true)
	lost := api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{"n":2}`), IdempotencyKey: "lost"}
	if r, err := s.Ingest(lost); err == nil {
		t.Fatalf("ingest on a full disk answered %+v", r)
	}
	if r, err := s.Ingest(lost); err == nil {
		t.Fatalf("the repeat of a key whose event was never stored answered %+v", r)
	}
	if r, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`), IdempotencyKey: "acked"}); err == nil {
		t.Fatalf("a failed log still answers from memory: %+v", r)
	}
	if got, err := s.Endpoint(ep.ID); err == nil {
		t.Fatalf("a failed log still shows %+v", got)
	}
	if _, _, err := s.Deliveries(ep.ID, "", 10); err == nil {
		t.Fatal("a failed log still lists deliveries")
	}
	_ = s.Close()

	s2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	if got, err := s2.Secret(ep.ID); err != nil || got != "whsec_a" {
		t.Fatalf("endpoint after restart: %q, %v", got, err)
	}
	if r, err := s2.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`), IdempotencyKey: "acked"}); err != nil || r != acked {
		t.Fatalf("acknowledged key after restart: %+v, %v; want %+v", r, err, acked)
	}
	r, err := s2.Ingest(lost)
	if err != nil || r.EventID == acked.EventID || r.Deliveries != 1 {
		t.Fatalf("the failed key after restart: %+v, %v; want a new event", r, err)
	}
	if n := len(s2.Pending()); n != 2 {
		t.Fatalf("%d deliveries pending after restart, want 2 (the acknowledged event and the new one)", n)
	}
}

// TestDurableDisableShownOnlyWhenDurable: an attempt that disables its endpoint is not
// reported (Finish's answer, the OnStop hook), nor shown by a read, until its record is
// durable; attempts that change no endpoint state are still not waited for.
func TestDurableDisableShownOnlyWhenDurable(t *testing.T) {
	g := &gatedFS{gate: make(chan struct{})}
	var stopped sync.Map
	s, err := Open(Options{Dir: t.TempDir(), WAL: wal.Options{FS: g}, DisableAfter: 2,
		OnStop: func(id string) { stopped.Store(id, true) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var release sync.Once
	open := func() { release.Do(func() { g.armed.Store(false); close(g.gate) }) }
	t.Cleanup(open)
	ep, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_a")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	pending := s.Pending()
	fail := func(r Ready) (string, error) {
		if _, ok := s.Begin(r.Delivery, time.Now()); !ok {
			t.Fatalf("delivery %s not claimable", r.Delivery)
		}
		return s.Finish(Outcome{Delivery: r.Delivery, Attempt: Attempt{N: 1, At: time.Now(), StatusCode: 500}})
	}

	g.armed.Store(true)
	// The first failed delivery changes only the counter: Finish does not wait for its fsync.
	if reason, err := fail(pending[0]); err != nil || reason != "" {
		t.Fatalf("first failure: %q, %v", reason, err)
	}
	type answer struct {
		reason string
		err    error
	}
	finished, read := make(chan answer, 1), make(chan api.Endpoint, 1)
	go func() { r, err := fail(pending[1]); finished <- answer{r, err} }()
	go func() {
		for { // read once the disable is applied in memory, which is before it is durable
			s.mu.Lock()
			applied := !s.endpoints[ep.ID].Active
			s.mu.Unlock()
			if applied {
				break
			}
			time.Sleep(time.Millisecond)
		}
		got, _ := s.Endpoint(ep.ID)
		read <- got
	}()
	select {
	case a := <-finished:
		t.Fatalf("Finish reported %+v before the disable was durable", a)
	case got := <-read:
		t.Fatalf("a read showed %+v before the disable was durable", got)
	case <-time.After(300 * time.Millisecond):
	}
	if _, ok := stopped.Load(ep.ID); ok {
		t.Fatal("OnStop heard of the disable before it was durable")
	}
	open()
	if a := <-finished; a.err != nil || a.reason != api.DisabledConsecutiveFailures {
		t.Fatalf("Finish after the fsync: %+v", a)
	}
	if got := <-read; got.Active || got.DisabledReason == nil {
		t.Fatalf("read after the fsync: %+v, want disabled", got)
	}
	if _, ok := stopped.Load(ep.ID); !ok {
		t.Fatal("OnStop was not told of the disable")
	}
}

// TestDurableOversizedRecordChangesNothing: a record larger than the WAL holds is refused
// with ErrTooLarge before it is applied, and the log stays healthy.
func TestDurableOversizedRecordChangesNothing(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_a"); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, wal.MaxRecordSize)
	big[0], big[len(big)-1] = '"', '"'
	for i := 1; i < len(big)-1; i++ {
		big[i] = 'x'
	}
	_, err = s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: big, IdempotencyKey: "big"})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized event: %v, want ErrTooLarge", err)
	}
	if s.Err() != nil {
		t.Fatalf("an oversized record failed the log: %v", s.Err())
	}
	s.mu.Lock()
	_, known := s.idem.Peek("big")
	n := len(s.deliveries)
	s.mu.Unlock()
	if known || n != 0 {
		t.Fatalf("the refused event left state behind: key known %v, %d deliveries", known, n)
	}
	if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
		t.Fatalf("ingest after the refusal: %v", err)
	}
}

// TestIdempotencyKeyReusedWithAnotherBody: a key that comes back with another type or data is
// refused (ErrIdempotencyKeyReused), never answered with the first event's result; the same
// request again still gets the first result; both hold after a restart from the snapshot and
// after one that replays the log.
func TestIdempotencyKeyReusedWithAnotherBody(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_a"); err != nil {
		t.Fatal(err)
	}
	first := api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{"incident_id":"inc_1"}`), IdempotencyKey: "k"}
	want, err := s.Ingest(first)
	if err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		if got, err := s.Ingest(first); err != nil || got != want {
			t.Fatalf("%s: the same request again: %+v, %v; want %+v", when, got, err, want)
		}
		for _, other := range []api.IngestInput{
			{Type: api.TypeIncidentOpened, Data: []byte(`{"incident_id":"inc_2"}`), IdempotencyKey: "k"},
			{Type: api.TypeIncidentResolved, Data: first.Data, IdempotencyKey: "k"},
		} {
			if got, err := s.Ingest(other); !errors.Is(err, ErrIdempotencyKeyReused) {
				t.Fatalf("%s: key reused for %s %s: %+v, %v; want ErrIdempotencyKeyReused", when, other.Type, other.Data, got, err)
			}
		}
	}
	check(s, "live")
	if err := s.wal.Close(); err != nil { // no snapshot: the next open replays the log
		t.Fatal(err)
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	check(s2, "after replay")
	if err := s2.Close(); err != nil { // with a snapshot
		t.Fatal(err)
	}
	s3, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	check(s3, "after a snapshot")
}

// TestDurableCoversLazyAttempts: an attempt's record is not on disk when Finish returns (it
// waits for company, see wal.AppendLazy), so a crash then takes its state back; Durable makes
// it durable, which is what the fleet's deliveries view waits for before it shows a state.
func TestDurableCoversLazyAttempts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, WAL: wal.Options{LazyDelay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	r := s.Pending()[0]
	if _, ok := s.Begin(r.Delivery, time.Now()); !ok {
		t.Fatal("not claimable")
	}
	if _, err := s.Finish(Outcome{Delivery: r.Delivery, Attempt: Attempt{N: 1, At: time.Now(), StatusCode: 200}, Success: true}); err != nil {
		t.Fatal(err)
	}
	// statusAfterCrash opens a copy of what is on disk now, as a kill -9 would leave it.
	statusAfterCrash := func() string {
		t.Helper()
		crashed := t.TempDir()
		if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(Options{Dir: crashed})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		d, err := s2.Delivery(r.Delivery.String())
		if err != nil {
			t.Fatal(err)
		}
		return d.Status
	}
	if got := statusAfterCrash(); got != api.StatusPending {
		t.Fatalf("right after Finish a crash leaves the delivery %s; want pending (the attempt's record waits for company)", got)
	}
	if err := s.Durable(); err != nil {
		t.Fatal(err)
	}
	if got := statusAfterCrash(); got != api.StatusSucceeded {
		t.Fatalf("after Durable a crash leaves the delivery %s, want succeeded", got)
	}
}
