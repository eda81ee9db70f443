package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// persister is the durable side of a Store: the snapshot file and the compaction that follows
// each snapshot.
type persister struct {
	fs       wal.FS
	path     string
	snapMu   sync.Mutex // one snapshot at a time
	from     wal.Position
	written  int64 // wal.Written() when the last snapshot was taken
	lastSize int64 // bytes of the last snapshot
	lastAt   time.Time
	stop     chan struct{}
	done     chan struct{}
	close    sync.Once
	closeErr error
}

// Open returns a store backed by opts.Dir: it loads the snapshot, replays the WAL after it,
// and starts taking snapshots in the background. With an empty Dir it is New.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return New(opts), nil
	}
	s, err := newStore(opts)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	fsys := opts.WAL.FS
	if fsys == nil {
		fsys = wal.OSFS{}
	}
	if err := fsys.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", opts.Dir, err)
	}
	s.durable = true
	s.persist = persister{fs: fsys, path: filepath.Join(opts.Dir, "snapshot"), stop: make(chan struct{}), done: make(chan struct{})}
	from, err := s.loadSnapshot()
	if err != nil {
		return nil, err
	}
	wopts := opts.WAL
	wopts.Dir = filepath.Join(opts.Dir, "wal")
	wopts.FS = fsys
	wopts.Logger = s.log
	replayed := 0
	w, err := wal.Open(wopts, from, func(pos wal.Position, data []byte) error {
		rec, err := UnmarshalRecord(data)
		if err != nil {
			return err
		}
		if rec.Event != nil {
			rec.Event.Body = append([]byte(nil), rec.Event.Body...) // data is only valid during the call
		}
		s.apply(rec, pos)
		replayed++
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.wal = w
	s.persist.from, s.persist.lastAt = from, time.Now()
	pending := 0
	for _, d := range s.deliveries {
		if d.open() {
			pending++
		}
	}
	s.log.Info("state recovered", "dir", opts.Dir, "endpoints", len(s.endpoints), "pending_deliveries", pending,
		"records_replayed", replayed, "segments", len(w.Segments()), "duration", time.Since(start).String())
	go s.persistLoop()
	return s, nil
}

func (s *Store) loadSnapshot() (wal.Position, error) {
	f, err := s.persist.fs.OpenFile(s.persist.path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return wal.Position{}, nil
	}
	if err != nil {
		return wal.Position{}, fmt.Errorf("store: open snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return wal.Position{}, fmt.Errorf("store: stat snapshot: %w", err)
	}
	from, err := s.readSnapshot(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return wal.Position{}, fmt.Errorf("store: %s: %w", s.persist.path, err)
	}
	s.persist.lastSize = st.Size()
	return from, nil
}

// persistLoop snapshots when enough log has accumulated (at least SnapshotBytes, and at least
// twice the size of the last snapshot, so snapshot writing stays below half of log writing
// however large the backlog) or when SnapshotInterval passed with changes.
func (s *Store) persistLoop() {
	defer close(s.persist.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.persist.stop:
			return
		case <-t.C:
		}
		// Snapshot, which callers may also run, sets these under snapMu.
		s.persist.snapMu.Lock()
		since := s.wal.Written() - s.persist.written
		due := since >= max(s.opts.SnapshotBytes, 2*s.persist.lastSize) ||
			(since > 0 && time.Since(s.persist.lastAt) >= s.opts.SnapshotInterval)
		s.persist.snapMu.Unlock()
		if due && s.wal.Err() == nil {
			if err := s.Snapshot(); err != nil {
				s.log.Error("snapshot failed; the WAL keeps growing until one succeeds", "err", err)
			}
		}
	}
}

// Snapshot writes the whole state to the snapshot file and deletes WAL segments that neither
// replay nor a live payload needs any more.
func (s *Store) Snapshot() error {
	if s.wal == nil {
		return nil
	}
	p := &s.persist
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	start := time.Now()

	var from wal.Position
	var refs map[uint64]int
	var written int64
	// The state is streamed to the file under the lock, so it matches the log position
	// exactly without copying a large backlog.
	s.mu.Lock()
	from = s.wal.Rotate()
	written = s.wal.Written()
	refs = make(map[uint64]int, len(s.segRefs))
	for k, v := range s.segRefs {
		refs[k] = v
	}
	var size int64
	err := wal.WriteFileAtomicFunc(p.fs, p.path, func(w io.Writer) error {
		cw := &countingWriter{w: w}
		err := s.writeSnapshot(cw, from)
		size = cw.n
		return err
	})
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	p.from, p.written, p.lastSize, p.lastAt = from, written, size, time.Now()

	// Segments before the snapshot that hold no payload still live as of the snapshot are
	// not needed by any restart from here on.
	removed := 0
	for _, seg := range s.wal.Segments() {
		if seg < from.Segment && refs[seg] == 0 {
			if err := s.wal.Remove(seg); err != nil {
				return fmt.Errorf("store: compact: %w", err)
			}
			removed++
		}
	}
	s.log.Info("snapshot written", "bytes", size, "replay_from_segment", from.Segment,
		"segments_removed", removed, "duration", time.Since(start).String())
	return nil
}

// Close takes a last snapshot, so the next start replays little, and closes the log. Later
// calls return the first call's result.
func (s *Store) Close() error {
	if s.wal == nil {
		return nil
	}
	s.persist.close.Do(func() {
		close(s.persist.stop)
		<-s.persist.done
		var err error
		if s.wal.Err() == nil {
			err = s.Snapshot()
		}
		if cerr := s.wal.Close(); err == nil {
			err = cerr
		}
		s.persist.closeErr = err
	})
	return s.persist.closeErr
}

// Err reports a failed log: the store then refuses every change.
func (s *Store) Err() error {
	if s.wal == nil {
		return nil
	}
	return s.wal.Err()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
