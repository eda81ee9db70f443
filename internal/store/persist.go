package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Snapshot file names under Options.Dir. The previous snapshot is kept so that a damaged
// newest one costs a longer replay, not the endpoints and their secrets.
const (
	snapshotName     = "snapshot"
	prevSnapshotName = "snapshot.prev"
	tmpSnapshotName  = "snapshot.tmp"
)

// ErrNoUsableSnapshot: no snapshot could be read and the WAL no longer holds the whole history,
// so the state before its first segment is lost. The relay refuses to start on it.
var ErrNoUsableSnapshot = errors.New("store: no usable snapshot")

// persister is the durable side of a Store: the snapshot files and the compaction that follows
// each snapshot.
type persister struct {
	fs       wal.FS
	dir      string
	snapMu   sync.Mutex // one snapshot at a time
	from     wal.Position
	prevFrom wal.Position // where the previous snapshot replays from: compaction keeps it usable
	written  int64        // wal.Written() when the last snapshot was taken
	lastSize int64        // bytes of the last snapshot
	lastAt   time.Time
	stop     chan struct{}
	done     chan struct{}
	close    sync.Once
	closeErr error
}

func (p *persister) path(name string) string { return filepath.Join(p.dir, name) }

// Open returns a store backed by opts.Dir: it loads the newest usable snapshot, replays the WAL
// after it, and starts taking snapshots in the background. With an empty Dir it is New.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return New(opts), nil
	}
	start := time.Now()
	fsys := opts.WAL.FS
	if fsys == nil {
		fsys = wal.OSFS{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.ReadOnly {
		// Reading must not create an empty state where the caller expected a relay's.
		if _, err := fsys.ReadDir(filepath.Join(opts.Dir, "wal")); err != nil {
			return nil, fmt.Errorf("store: %s holds no relay state to read: %w", opts.Dir, err)
		}
	} else {
		if err := fsys.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", opts.Dir, err)
		}
		// A snapshot interrupted by a crash or a full disk leaves its temp file: never read,
		// and left alone it holds disk space the WAL needs.
		if err := fsys.Remove(filepath.Join(opts.Dir, tmpSnapshotName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: remove stale %s: %w", tmpSnapshotName, err)
		}
	}

	// The newest snapshot, else the previous one, else the whole log. Each try starts from an
	// empty store: a snapshot that fails part way has already restored some of itself.
	var newestErr error
	for _, name := range []string{snapshotName, prevSnapshotName, ""} {
		s, err := newStore(opts)
		if err != nil {
			return nil, err
		}
		s.durable = true
		s.persist = persister{fs: fsys, dir: opts.Dir, stop: make(chan struct{}), done: make(chan struct{})}
		var from wal.Position
		if name != "" {
			from, err = s.loadSnapshot(name)
			if err != nil {
				if name == snapshotName && !errors.Is(err, fs.ErrNotExist) {
					newestErr = err
					log.Error("newest snapshot is unusable; trying the previous snapshot and the WAL after it",
						"file", s.persist.path(name), "err", err)
				} else if !errors.Is(err, fs.ErrNotExist) {
					log.Error("previous snapshot is unusable", "file", s.persist.path(name), "err", err)
				}
				continue
			}
			if name == prevSnapshotName && newestErr == nil {
				// A crash between a snapshot's two renames leaves only the previous one.
				log.Warn("no newest snapshot; starting from the previous one and the WAL after it", "file", s.persist.path(name))
			}
		}
		if err := s.openWAL(from, start); err != nil {
			if errors.Is(err, wal.ErrHistoryMissing) {
				why := "there is no snapshot"
				if newestErr != nil {
					why = "the newest snapshot is damaged (" + newestErr.Error() + ") and no previous one is usable"
				}
				return nil, fmt.Errorf("%w in %s: %s, and the WAL no longer begins at its first segment, so the "+
					"endpoints and secrets before it exist only in a snapshot; restore %s from a backup "+
					"(repairing the log cannot rebuild them): %v", ErrNoUsableSnapshot, opts.Dir, why, s.persist.path(snapshotName), err)
			}
			return nil, err
		}
		if newestErr != nil && !opts.ReadOnly {
			s.moveAsideDamaged()
		}
		return s, nil
	}
	return nil, errors.New("store: no way to open the state") // not reached: the last try always returns
}

// openWAL replays the log from `from` and starts the snapshot loop.
func (s *Store) openWAL(from wal.Position, start time.Time) error {
	wopts := s.opts.WAL
	wopts.Dir = filepath.Join(s.opts.Dir, "wal")
	wopts.FS = s.persist.fs
	wopts.Logger = s.log
	replayed := 0
	w, err := wal.Open(wopts, from, func(pos wal.Position, data []byte) error {
		rec, err := UnmarshalRecord(data)
		if err != nil {
			return err
		}
		// data is only valid during the call
		if rec.Event != nil {
			rec.Event.Body = append([]byte(nil), rec.Event.Body...)
		}
		if rec.Resend != nil {
			rec.Resend.Body = append([]byte(nil), rec.Resend.Body...)
		}
		s.apply(rec, pos)
		replayed++
		return nil
	})
	if err != nil {
		return err
	}
	s.wal = w
	s.persist.from, s.persist.prevFrom, s.persist.lastAt = from, from, time.Now()
	pending := 0
	for _, d := range s.deliveries {
		if d.open() {
			pending++
		}
	}
	s.log.Info("state recovered", "dir", s.opts.Dir, "endpoints", len(s.endpoints), "pending_deliveries", pending,
		"records_replayed", replayed, "segments", len(w.Segments()), "duration", time.Since(start).String())
	if s.opts.ReadOnly {
		close(s.persist.done) // no snapshot loop
		return nil
	}
	go s.persistLoop()
	return nil
}

// moveAsideDamaged renames a damaged newest snapshot out of the way once the store started
// without it, so the next snapshot does not rotate it over the good previous one.
func (s *Store) moveAsideDamaged() {
	p := &s.persist
	aside := p.path(snapshotName + ".damaged-" + strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := p.fs.Rename(p.path(snapshotName), aside); err != nil {
		s.log.Error("move the damaged snapshot aside", "err", err)
		return
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		s.log.Error("fsync data dir", "err", err)
	}
	s.log.Warn("damaged snapshot kept for inspection", "file", aside)
}

func (s *Store) loadSnapshot(name string) (wal.Position, error) {
	path := s.persist.path(name)
	f, err := s.persist.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return wal.Position{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return wal.Position{}, fmt.Errorf("store: stat %s: %w", path, err)
	}
	from, err := s.readSnapshot(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return wal.Position{}, fmt.Errorf("store: %s: %w", path, err)
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
	var lastSkipLog time.Time
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
			err := s.Snapshot()
			switch {
			case err == nil:
			case errors.Is(err, errSnapshotSkipped):
				// Retried every second while the disk is this full: say so once a minute.
				if time.Since(lastSkipLog) >= time.Minute {
					s.log.Warn("snapshot skipped for lack of disk space; the WAL keeps growing until one succeeds", "err", err)
					lastSkipLog = time.Now()
				}
			default:
				s.log.Error("snapshot failed; the WAL keeps growing until one succeeds", "err", err)
			}
		}
	}
}

// Snapshot writes the whole state to the snapshot file and deletes WAL segments that neither
// replay (from this snapshot or the previous one) nor a live payload needs any more.
//
// The store's lock is held only to copy the state (see capture); the file is written, fsynced
// and renamed without it, so ingest and deliveries go on meanwhile. A snapshot that fails
// leaves the previous files as they were and removes its temp file; it never fails the WAL.
func (s *Store) Snapshot() error {
	if s.wal == nil {
		return nil
	}
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	p := &s.persist
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	start := time.Now()

	if free, ok := freeBytes(p.fs, p.dir); ok && free < p.lastSize+walReserve(s.segmentSize()) {
		// Writing the snapshot could take the room the WAL needs to acknowledge events.
		return fmt.Errorf("%w: %d bytes free, the last snapshot took %d and the WAL needs room to go on",
			errSnapshotSkipped, free, p.lastSize)
	}
	// The copy's array is allocated (and zeroed) before the lock is taken, a little larger
	// than the backlog just counted: with a million deliveries that is 24 MB the lock holder
	// would otherwise wait for, garbage collector assists included.
	s.mu.Lock()
	slots := s.deliverySlots()
	s.mu.Unlock()
	buf := make([]capDelivery, slots+slots/8+1024)
	s.mu.Lock()
	held := time.Now()
	c := s.capture(buf)
	s.mu.Unlock()
	captured := time.Since(held)

	size, err := s.writeSnapshotFile(c)
	if err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	p.prevFrom, p.from, p.written, p.lastSize, p.lastAt = p.from, c.from, c.written, size, time.Now()

	// Segments before both snapshots' replay points that hold no payload still live as of this
	// snapshot are needed by no restart from here on (payloads only ever stop being live),
	// except those history still refers to, kept within a budget so that deliveries can be
	// resent.
	keep := s.historyKeep(c, p.prevFrom.Segment)
	removed := 0
	for _, seg := range s.wal.Segments() {
		if seg < p.prevFrom.Segment && c.refs[seg] == 0 && !keep[seg] {
			if c.hist[seg] > 0 {
				s.log.Info("resend window: payloads compacted past --history-payload-bytes", "segment", seg,
					"deliveries", c.hist[seg], "budget_bytes", s.opts.HistoryPayloadBytes)
			}
			if err := s.wal.Remove(seg); err != nil {
				return fmt.Errorf("store: compact: %w", err)
			}
			removed++
		}
	}
	if s.opts.OnSnapshot != nil {
		s.opts.OnSnapshot(time.Since(start))
	}
	s.log.Info("snapshot written", "bytes", size, "replay_from_segment", c.from.Segment,
		"segments_removed", removed, "capture", captured.String(), "duration", time.Since(start).String())
	return nil
}

// historyKeep picks the segments below `before` that hold no live payload but hold payloads of
// deliveries in history: the newest first, while they fit in Options.HistoryPayloadBytes.
func (s *Store) historyKeep(c *capture, before uint64) map[uint64]bool {
	var segs []uint64
	for seg, n := range c.hist {
		if n > 0 && seg < before && c.refs[seg] == 0 {
			segs = append(segs, seg)
		}
	}
	slices.Sort(segs)
	keep := make(map[uint64]bool, len(segs))
	budget := s.opts.HistoryPayloadBytes
	for i := len(segs) - 1; i >= 0; i-- {
		size := s.wal.SegmentBytes(segs[i])
		if size > budget {
			break
		}
		budget -= size
		keep[segs[i]] = true
	}
	return keep
}

// errSnapshotSkipped: too little free space to write a snapshot without endangering the WAL.
var errSnapshotSkipped = errors.New("store: snapshot skipped")

// walReserve is the free space a snapshot leaves for the WAL: a segment, at most 4 MiB.
func walReserve(segment int64) int64 { return min(segment, 4<<20) }

func (s *Store) segmentSize() int64 {
	if s.opts.WAL.SegmentSize > 0 {
		return s.opts.WAL.SegmentSize
	}
	return wal.DefaultSegmentSize
}

// writeSnapshotFile writes c to the temp file, waits until everything the capture saw is
// durable in the WAL (a snapshot must never hold what a failed write took back), then makes it
// the newest snapshot and the one before it the previous.
func (s *Store) writeSnapshotFile(c *capture) (size int64, err error) {
	p := &s.persist
	tmp := p.path(tmpSnapshotName)
	f, err := p.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			if rerr := p.fs.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				s.log.Error("remove the temp file of a failed snapshot", "file", tmp, "err", rerr)
			}
		}
	}()
	bw := bufio.NewWriterSize(&syncingWriter{f: f}, 256<<10)
	cw := &countingWriter{w: bw}
	if err := c.write(cw); err != nil {
		return 0, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := c.durable(); err != nil {
		return 0, fmt.Errorf("the state it holds is not durable: %w", err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := p.fs.Rename(p.path(snapshotName), p.path(prevSnapshotName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("keep the previous snapshot: %w", err)
	}
	if err := p.fs.Rename(tmp, p.path(snapshotName)); err != nil {
		return 0, fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		// The renames may not be durable; both files are whole, so the next start reads
		// either. Report it, and compact nothing on the strength of it.
		return 0, fmt.Errorf("fsync dir %s: %w", p.dir, err)
	}
	return cw.n, nil
}

// Close takes a last snapshot (none when ReadOnly), so the next start replays little, and
// closes the log. Later calls return the first call's result.
func (s *Store) Close() error {
	if s.wal == nil {
		return nil
	}
	s.persist.close.Do(func() {
		close(s.persist.stop)
		<-s.persist.done
		var err error
		if s.opts.ReadOnly {
			s.persist.closeErr = s.wal.Close()
			return
		}
		if s.wal.Err() == nil {
			err = s.Snapshot()
		}
		if err == nil && s.keptForPrevious() > s.persist.lastSize {
			// The segments kept only so that the previous snapshot stays usable outweigh a
			// snapshot: take one more, which lets compaction drop them (after a drained
			// backlog this turns hundreds of MiB of log into two small snapshots).
			err = s.Snapshot()
		}
		if cerr := s.wal.Close(); err == nil {
			err = cerr
		}
		s.persist.closeErr = err
	})
	return s.persist.closeErr
}

// keptForPrevious estimates the bytes of log kept only for the previous snapshot: segments
// from its replay point up to the newest snapshot's.
func (s *Store) keptForPrevious() int64 {
	p := &s.persist
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	n := int64(0)
	for _, seg := range s.wal.Segments() {
		if seg >= p.prevFrom.Segment && seg < p.from.Segment {
			n++
		}
	}
	return n * s.segmentSize()
}

// Err reports a failed log: the store then refuses every change.
func (s *Store) Err() error {
	if s.wal == nil {
		return nil
	}
	return s.wal.Err()
}

// syncingWriter fsyncs the snapshot file every snapshotSyncEvery bytes as it is written. One
// fsync of a few hundred MiB at the end would hold the file system's journal while it flushes,
// and the WAL's own fsyncs (every acknowledgement) would wait behind it; small steps let them
// interleave.
type syncingWriter struct {
	f       wal.File
	pending int
}

const snapshotSyncEvery = 8 << 20

func (w *syncingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.pending += n
	if err == nil && w.pending >= snapshotSyncEvery {
		w.pending = 0
		err = w.f.Sync()
	}
	return n, err
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
