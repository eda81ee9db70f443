package store

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// snapFS injects faults into the snapshot's temp file only: writes that fail as on a full
// disk, and an fsync held until released.
type snapFS struct {
	wal.OSFS
	mu         sync.Mutex
	failWrites bool
	gate       chan struct{} // non-nil: the temp file's fsync waits for it
	inSync     chan struct{}
}

type snapFile struct {
	wal.File
	fs *snapFS
}

func (f *snapFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil || filepath.Base(name) != tmpSnapshotName {
		return file, err
	}
	return snapFile{File: file, fs: f}, nil
}

func (f snapFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	fail := f.fs.failWrites
	f.fs.mu.Unlock()
	if fail {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f snapFile) Sync() error {
	f.fs.mu.Lock()
	gate, in := f.fs.gate, f.fs.inSync
	f.fs.mu.Unlock()
	if gate != nil {
		in <- struct{}{}
		<-gate
	}
	return f.File.Sync()
}

func seedStore(t *testing.T, s *Store, events int) api.Endpoint {
	t.Helper()
	ep, err := s.CreateEndpoint(persistInput("https://a.example/h", "a"), "whsec_a")
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, s, events)
	return ep
}

func ingest(t *testing.T, s *Store, n int) {
	t.Helper()
	for range n {
		if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{"pad":"` + strings.Repeat("x", 500) + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotFailureRemovesTempAndSparesWAL: a snapshot that fails on a full disk removes
// its temp file, keeps the snapshot before it, and leaves the WAL healthy.
func TestSnapshotFailureRemovesTempAndSparesWAL(t *testing.T) {
	dir := t.TempDir()
	sfs := &snapFS{}
	s, err := Open(Options{Dir: dir, WAL: wal.Options{FS: sfs}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	seedStore(t, s, 10)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, snapshotName))
	ingest(t, s, 10)
	sfs.mu.Lock()
	sfs.failWrites = true
	sfs.mu.Unlock()
	if err := s.Snapshot(); err == nil {
		t.Fatal("a snapshot on a full disk succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, tmpSnapshotName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the failed snapshot left its temp file: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, snapshotName)); !bytes.Equal(now, good) {
		t.Fatal("the failed snapshot changed the one before it")
	}
	if s.Err() != nil {
		t.Fatalf("a failed snapshot failed the WAL: %v", s.Err())
	}
	ingest(t, s, 1)
}

// TestSnapshotDoesNotStopIngest: while a snapshot is being written and fsynced, ingest goes on
// (the store's lock is held only to copy the state).
func TestSnapshotDoesNotStopIngest(t *testing.T) {
	sfs := &snapFS{gate: make(chan struct{}), inSync: make(chan struct{}, 1)}
	s, err := Open(Options{Dir: t.TempDir(), WAL: wal.Options{FS: sfs}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seedStore(t, s, 100)
	var once sync.Once
	release := func() { once.Do(func() { close(sfs.gate) }) }
	t.Cleanup(func() { release(); _ = s.Close() })
	snapDone := make(chan error, 1)
	go func() { snapDone <- s.Snapshot() }()
	<-sfs.inSync // the snapshot is in its fsync now
	ingested := make(chan error, 1)
	go func() {
		_, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)})
		ingested <- err
	}()
	select {
	case err := <-ingested:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest waited for the snapshot's I/O")
	}
	release()
	if err := <-snapDone; err != nil {
		t.Fatal(err)
	}
	sfs.mu.Lock()
	sfs.gate = nil
	sfs.mu.Unlock()
}

// TestSnapshotDamagedNewestFallsBack: with the newest snapshot damaged, the store starts from
// the previous one and the WAL after it, with nothing lost, says so at ERROR, and moves the
// damaged file aside so the next snapshot does not rotate it over the good one.
func TestSnapshotDamagedNewestFallsBack(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, WAL: wal.Options{SegmentSize: 64 << 10}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ep := seedStore(t, s, 50)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	ingest(t, s, 50)
	if err := s.Close(); err != nil { // the second snapshot; the first is now the previous one
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, prevSnapshotName)); err != nil {
		t.Fatalf("the previous snapshot was not kept: %v", err)
	}
	path := filepath.Join(dir, snapshotName)
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	var mu sync.Mutex
	opts.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	s2, err := Open(opts)
	if err != nil {
		t.Fatalf("open with a damaged newest snapshot: %v", err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	if sec, err := s2.Secret(ep.ID); err != nil || sec != "whsec_a" {
		t.Fatalf("endpoint after the fallback: %q, %v", sec, err)
	}
	if n := len(s2.Pending()); n != 100 {
		t.Fatalf("%d deliveries pending after the fallback, want 100", n)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, "previous snapshot") {
		t.Fatalf("the fallback was not logged at ERROR:\n%s", out)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, snapshotName+".damaged-*"))
	if len(aside) != 1 {
		t.Fatalf("damaged snapshot copies: %v, want one", aside)
	}
	if err := s2.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, prevSnapshotName)); err != nil {
		t.Fatalf("after the next snapshot there is no previous one: %v", err)
	}
}

// TestSnapshotNoneUsableRefuses: with no usable snapshot and a log that no longer starts at
// its first segment, Open refuses with ErrNoUsableSnapshot (and suggests no repair), instead
// of starting with the endpoints gone; with the whole log still there it replays it all.
func TestSnapshotNoneUsableRefuses(t *testing.T) {
	for _, compacted := range []bool{false, true} {
		dir := t.TempDir()
		opts := Options{Dir: dir, WAL: wal.Options{SegmentSize: 16 << 10}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour,
			HistoryPayloadBytes: -1}
		s, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		ep := seedStore(t, s, 60)
		if compacted {
			for range 2 { // the second snapshot compacts what the first one covers
				for _, r := range s.Pending() {
					if _, ok := s.Begin(r.Delivery, time.Now()); ok {
						if _, err := s.Finish(Outcome{Delivery: r.Delivery, Success: true, Attempt: Attempt{N: 1, At: time.Now()}}); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := s.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{snapshotName, prevSnapshotName} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
		_, statErr := os.Stat(filepath.Join(dir, "wal", "0000000000000001.wal"))
		if compacted != errors.Is(statErr, fs.ErrNotExist) {
			t.Fatalf("compacted=%v but segment 1: %v", compacted, statErr)
		}
		s2, err := Open(opts)
		if compacted {
			if !errors.Is(err, ErrNoUsableSnapshot) || strings.Contains(err.Error(), "--wal-repair") {
				t.Fatalf("open without a snapshot over a compacted log: %v; want ErrNoUsableSnapshot and no repair hint", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("open without a snapshot over the whole log: %v", err)
		}
		if sec, err := s2.Secret(ep.ID); err != nil || sec != "whsec_a" {
			t.Fatalf("endpoint replayed from the whole log: %q, %v", sec, err)
		}
		_ = s2.Close()
	}
}

// TestSnapshotCloseShrinksLog: after a backlog drained, a clean Close leaves about one
// segment of log, not every segment kept since the previous snapshot.
func TestSnapshotCloseShrinksLog(t *testing.T) {
	dir := t.TempDir()
	// No fsync: this is about which files are kept, and 1,000 sequential fsyncs are slow.
	opts := Options{Dir: dir, WAL: wal.Options{SegmentSize: 16 << 10, Sync: wal.SyncNone}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour,
		HistoryPayloadBytes: -1} // no resend window: only what replay and live payloads need
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	seedStore(t, s, 0)
	for range 1000 { // small events: the drain's attempt records then fill several segments
		if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Snapshot(); err != nil { // a snapshot while the backlog is queued
		t.Fatal(err)
	}
	for _, r := range s.Pending() {
		if _, ok := s.Begin(r.Delivery, time.Now()); ok {
			if _, err := s.Finish(Outcome{Delivery: r.Delivery, Success: true, Attempt: Attempt{N: 1, At: time.Now()}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	grown := len(s.wal.Segments())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if len(segs) > 2 {
		t.Fatalf("after a drained backlog and a clean close the log keeps %d segments (had %d)", len(segs), grown)
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := len(s2.Pending()); n != 0 {
		t.Fatalf("%d pending after reopen, want 0", n)
	}
}

// TestSnapshotMissingNewestUsesPrevious: a crash between a snapshot's two renames leaves only
// snapshot.prev (and the temp file); the store starts from it and the log, nothing lost, and
// says so at WARN, not as damage.
func TestSnapshotMissingNewestUsesPrevious(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, WAL: wal.Options{SegmentSize: 16 << 10}, SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ep := seedStore(t, s, 20)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	ingest(t, s, 20)
	if err := s.Close(); err != nil { // the second snapshot; the first is snapshot.prev
		t.Fatal(err)
	}
	// As if the crash came after "snapshot -> snapshot.prev" and before "tmp -> snapshot".
	newest := filepath.Join(dir, snapshotName)
	if err := os.Rename(filepath.Join(dir, prevSnapshotName), filepath.Join(dir, prevSnapshotName+".old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(newest, filepath.Join(dir, prevSnapshotName)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tmpSnapshotName), []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	opts.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	s2, err := Open(opts)
	if err != nil {
		t.Fatalf("open with only the previous snapshot: %v", err)
	}
	defer s2.Close()
	if sec, err := s2.Secret(ep.ID); err != nil || sec != "whsec_a" {
		t.Fatalf("endpoint: %q, %v", sec, err)
	}
	if n := len(s2.Pending()); n != 40 {
		t.Fatalf("%d pending, want 40", n)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, "no newest snapshot") {
		t.Fatalf("want one WARN about the missing newest snapshot and no ERROR:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpSnapshotName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stale temp file is still there: %v", err)
	}
}
