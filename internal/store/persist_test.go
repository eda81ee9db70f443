package store

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// failingFS fails every File.Sync once armed, as a disk that stops accepting writes would.
type failingFS struct {
	wal.OSFS
	armed     atomic.Bool
	readsFail atomic.Bool
}

type failingFile struct {
	wal.File
	fs *failingFS
}

func (f *failingFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return failingFile{File: file, fs: f}, nil
}

func (f failingFile) ReadAt(p []byte, off int64) (int, error) {
	if f.fs.readsFail.Load() {
		return 0, errors.New("injected: read failed")
	}
	return f.File.ReadAt(p, off)
}

func (f failingFile) Sync() error {
	if f.fs.armed.Load() {
		return errors.New("injected: fsync failed")
	}
	return f.File.Sync()
}

func persistInput(url, name string) api.EndpointInput {
	return api.EndpointInput{URL: &url, Name: &name}
}

// TestPersistRefusesAfterFsyncFailure: once the log cannot fsync, the store acknowledges
// nothing more (the relay answers 503) and reports the failure for health checks.
func TestPersistRefusesAfterFsyncFailure(t *testing.T) {
	ffs := &failingFS{}
	s, err := Open(Options{Dir: t.TempDir(), WAL: wal.Options{FS: ffs}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_x"); err != nil {
		t.Fatal(err)
	}
	if s.Err() != nil {
		t.Fatalf("healthy store reports %v", s.Err())
	}
	ffs.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, wal.ErrFailed) {
			t.Fatalf("ingest after fsync failure = %v, want wal.ErrFailed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest hung after an fsync failure")
	}
	if !errors.Is(s.Err(), wal.ErrFailed) {
		t.Fatalf("Err() = %v, want wal.ErrFailed", s.Err())
	}
	// Sticky: later changes are refused at once, before touching memory.
	before, _, _ := s.Endpoints("", 10)
	if _, err := s.CreateEndpoint(persistInput("https://b.example/h", "b"), "whsec_y"); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("create after failure = %v, want wal.ErrFailed", err)
	}
	after, _, _ := s.Endpoints("", 10)
	if len(after) != len(before) {
		t.Fatalf("a refused create changed memory: %d endpoints, was %d", len(after), len(before))
	}
}

// TestPersistWALShrinksAfterDrain: once a backlog is delivered and a snapshot taken, the
// segments that held it are deleted: disk use follows live data, not history.
func TestPersistWALShrinksAfterDrain(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, WAL: wal.Options{SegmentSize: 64 << 10}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ep, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_x")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	for range 500 {
		if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: body}); err != nil {
			t.Fatal(err)
		}
	}
	grown := len(s.wal.Segments())
	if grown < 5 {
		t.Fatalf("500 events of 1 KiB made only %d segments of 64 KiB", grown)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.wal.Segments()); n < grown {
		t.Fatalf("a snapshot removed segments still holding pending payloads: %d -> %d", grown, n)
	}
	for _, r := range s.Pending() {
		if _, ok := s.Begin(r.Delivery, time.Now()); !ok {
			t.Fatalf("delivery %s not claimable", r.Delivery)
		}
		if _, err := s.Finish(Outcome{Delivery: r.Delivery, Success: true, Attempt: Attempt{N: 1, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.wal.Segments()); n > 1 {
		t.Fatalf("after the backlog drained the WAL still has %d segments (had %d)", n, grown)
	}
	// And the compacted state reopens with the endpoint's history intact.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	ds, _, err := s2.Deliveries(ep.ID, "", 250)
	if err != nil || len(ds) != 100 || ds[0].Status != api.StatusSucceeded {
		t.Fatalf("history after compaction and reopen: %d deliveries, err %v", len(ds), err)
	}
}

// FuzzReadSnapshot: a damaged snapshot is refused with ErrBadSnapshot, never a panic.
func FuzzReadSnapshot(f *testing.F) {
	s := New(Options{})
	url, name := "https://a.example/h", "a"
	if _, err := s.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_x"); err != nil {
		f.Fatal(err)
	}
	if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{"a":1}`), IdempotencyKey: "k"}); err != nil {
		f.Fatal(err)
	}
	var good bytes.Buffer
	if err := s.writeSnapshot(&good, wal.Position{Segment: 3, Offset: 16}); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte(snapshotMagic + "END 00000000 0\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fresh := New(Options{})
		fresh.durable = true
		if _, err := fresh.readSnapshot(bytes.NewReader(b)); err != nil && !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
		}
	})
}

// TestPersistPayloadReadErrorRetries: when a payload that fell out of the cache cannot be read
// back, the delivery is offered again a little later instead of being forgotten until a restart.
func TestPersistPayloadReadErrorRetries(t *testing.T) {
	ffs := &failingFS{}
	var mu sync.Mutex
	var readies []Ready
	s, err := Open(Options{Dir: t.TempDir(), WAL: wal.Options{FS: ffs}, PayloadCache: 1,
		OnReady: func(r Ready) { mu.Lock(); readies = append(readies, r); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_x"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the cache holds one body: the first is read back from the log
		if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	first := s.Pending()[0]
	ffs.readsFail.Store(true)
	mu.Lock()
	readies = nil
	mu.Unlock()
	now := time.Now()
	if _, ok := s.Begin(first.Delivery, now); ok {
		t.Fatal("Begin succeeded without its payload")
	}
	mu.Lock()
	got := append([]Ready(nil), readies...)
	mu.Unlock()
	if len(got) != 1 || got[0].Delivery != first.Delivery || got[0].Due.Before(now.Add(500*time.Millisecond)) {
		t.Fatalf("after a failed payload read the store offered %+v, want the delivery again about 1s later", got)
	}
	ffs.readsFail.Store(false)
	job, ok := s.Begin(first.Delivery, now.Add(2*time.Second))
	if !ok || len(job.Body) == 0 {
		t.Fatalf("Begin after the read recovered: ok=%v body=%q", ok, job.Body)
	}
}

// gatedFS holds every fsync until released, to keep a record "not yet durable" on purpose.
type gatedFS struct {
	wal.OSFS
	armed atomic.Bool
	gate  chan struct{}
}

type gatedFile struct {
	wal.File
	fs *gatedFS
}

func (g *gatedFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	f, err := g.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gatedFile{File: f, fs: g}, nil
}

func (f gatedFile) Sync() error {
	if f.fs.armed.Load() {
		<-f.fs.gate
	}
	return f.File.Sync()
}

// TestPersistDuplicateKeyWaitsForDurability: a repeat of an idempotency key that arrives
// while the first event is still being fsynced is not answered before the first is durable.
func TestPersistDuplicateKeyWaitsForDurability(t *testing.T) {
	g := &gatedFS{gate: make(chan struct{})}
	s, err := Open(Options{Dir: t.TempDir(), WAL: wal.Options{FS: g}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var release sync.Once
	open := func() { release.Do(func() { g.armed.Store(false); close(g.gate) }) }
	t.Cleanup(open) // runs before Close: a failing test must not leave the flusher blocked
	g.armed.Store(true)
	in := api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`), IdempotencyKey: "k"}
	type answer struct {
		r   IngestResult
		err error
	}
	first, second := make(chan answer, 1), make(chan answer, 1)
	go func() { r, err := s.Ingest(in); first <- answer{r, err} }()
	// Wait until the first event is applied in memory (its key is known), then repeat it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		_, known := s.idem.Peek("k")
		s.mu.Unlock()
		if known {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first ingest never reached the store")
		}
		time.Sleep(time.Millisecond)
	}
	go func() { r, err := s.Ingest(in); second <- answer{r, err} }()
	select {
	case a := <-second:
		t.Fatalf("the repeat was answered (%+v) before the first event was durable", a)
	case <-time.After(200 * time.Millisecond):
	}
	open()
	a, b := <-first, <-second
	if a.err != nil || b.err != nil || a.r != b.r {
		t.Fatalf("first %+v, repeat %+v: want the same answer, no errors", a, b)
	}
}
