package store

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// failingFS fails every File.Sync once armed, as a disk that stops accepting writes would.
type failingFS struct {
	wal.OSFS
	armed      atomic.Bool
	readsFail  atomic.Bool
	writesFail atomic.Bool // a full disk: the write fails and nothing of it reaches the file
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

func (f failingFile) Write(p []byte) (int, error) {
	if f.fs.writesFail.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.Write(p)
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
	count := func() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.order) }
	before := count()
	if _, err := s.CreateEndpoint(persistInput("https://b.example/h", "b"), "whsec_y"); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("create after failure = %v, want wal.ErrFailed", err)
	}
	if after := count(); after != before {
		t.Fatalf("a refused create changed memory: %d endpoints, was %d", after, before)
	}
	// And reads do not show what the failed fsync may have lost.
	if _, _, err := s.Endpoints("", 10); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("list after failure = %v, want wal.ErrFailed", err)
	}
}

// TestPersistWALShrinksAfterDrain: once a backlog is delivered and a snapshot taken, the
// segments that held it are deleted: disk use follows live data, not history.
func TestPersistWALShrinksAfterDrain(t *testing.T) {
	dir := t.TempDir()
	// No resend window: this is about the segments live payloads need (see
	// TestResendWindowKeepsHistorySegments for the ones history keeps).
	opts := Options{Dir: dir, WAL: wal.Options{SegmentSize: 64 << 10}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour,
		HistoryPayloadBytes: -1}
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
	// What is left: the segment the previous snapshot replays from (kept so a damaged newest
	// snapshot can fall back to it) and the one being written.
	if n := len(s.wal.Segments()); n > 2 {
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
	if err := s.captureAt(wal.Position{Segment: 3, Offset: 16}, nil).write(&good); err != nil {
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

// TestPersistPayloadReadErrorFailsAttempt: a payload that cannot be read back is handed to the
// engine as a failed attempt (not offered again every second forever), logged at ERROR once per
// event, counted, and never counted against the endpoint; a read that recovers delivers it.
func TestPersistPayloadReadErrorFailsAttempt(t *testing.T) {
	ffs := &failingFS{}
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, nil))
	s, err := Open(Options{Dir: t.TempDir(), WAL: wal.Options{FS: ffs}, PayloadCache: 1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ep, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_x")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the cache holds one body: the first is read back from the log
		if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	first := s.Pending()[0]
	ffs.readsFail.Store(true)
	now := time.Now()
	for n := 1; n <= 3; n++ {
		job, ok := s.Begin(first.Delivery, now)
		if !ok || job.PayloadErr == nil || job.Body != nil {
			t.Fatalf("attempt %d: Begin without its payload: ok=%v err=%v body=%q; want the job with PayloadErr", n, ok, job.PayloadErr, job.Body)
		}
		o := Outcome{Delivery: first.Delivery, Local: true, Attempt: Attempt{N: n, At: now, Error: "payload unreadable"}}
		if n < 3 {
			o.RetryAt = now // due again at once, for the test
		}
		if _, err := s.Finish(o); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Delivery(first.Delivery.String())
	if err != nil || d.Status != api.StatusFailed || len(d.Attempts) != 3 {
		t.Fatalf("after the schedule ran out: %+v, %v; want failed with 3 attempts", d, err)
	}
	if got, _ := s.Endpoint(ep.ID); got.ConsecutiveFailures != 0 || !got.Active {
		t.Fatalf("a relay-side failure counted against the endpoint: %+v", got)
	}
	if n := s.PayloadReadErrors(); n != 3 {
		t.Fatalf("PayloadReadErrors = %d, want 3", n)
	}
	logMu.Lock()
	errorLines := strings.Count(logs.String(), `"level":"ERROR"`)
	logMu.Unlock()
	if errorLines != 1 {
		t.Fatalf("%d ERROR lines for one unreadable event, want 1:\n%s", errorLines, logs.String())
	}

	// A read error that goes away: the next attempt carries the body.
	second := s.Pending()[0]
	ffs.readsFail.Store(false)
	s.payloads.Purge()
	job, ok := s.Begin(second.Delivery, now)
	if !ok || job.PayloadErr != nil || len(job.Body) == 0 {
		t.Fatalf("Begin with a readable payload: ok=%v err=%v body=%q", ok, job.PayloadErr, job.Body)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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
