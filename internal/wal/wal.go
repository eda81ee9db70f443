package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// SyncPolicy says when appended records are fsynced.
type SyncPolicy int

const (
	SyncBatch  SyncPolicy = iota // group commit: one fsync per batch of concurrent appends
	SyncAlways                   // one fsync per record
	SyncNone                     // no fsync: survives a process crash, not power loss
)

// ParseSyncPolicy reads "batch", "always" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "batch":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("wal: unknown fsync policy %q (batch, always, none)", s)
}

// Sentinel errors.
var (
	// ErrCorrupt is damage before the tail of the log; see CorruptError.
	ErrCorrupt = errors.New("wal: corrupt log")
	// ErrFailed is returned by every append after a write or fsync failed.
	ErrFailed = errors.New("wal: log failed")
	// ErrClosed is returned by appends (and reads of segments not yet open) after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrHistoryMissing is returned by Open from the zero Position (no snapshot) when the
	// oldest segment is not segment 1: earlier ones were removed, and the state they held
	// can only come from a snapshot. Repair cannot help.
	ErrHistoryMissing = errors.New("wal: log history missing")
)

// CorruptError names where the damage is.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
	// Repair says what Open with Options.Repair does about this damage (the operator's
	// --wal-repair); it is empty when Repair cannot fix it, and for errors from ReadAt.
	Repair string
}

// Repair hints: each is what Open with Options.Repair then does.
const (
	repairTruncate = "keep a copy of the damaged segment and truncate at the last good record"
	repairGap      = "keep the segments before the gap and move the later ones aside"
	repairFrom     = "move the later segments aside and start a new segment at the replay position"
)

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("wal: corrupt log: %s in file %q at offset %d", e.Reason, e.File, e.Offset)
	if e.Repair == repairTruncate {
		// The reason names where the damage is; Offset is where a repair would cut.
		msg = fmt.Sprintf("wal: corrupt log: %s in file %q; the last good record ends at offset %d", e.Reason, e.File, e.Offset)
	}
	if e.Repair != "" {
		msg += " (start with --wal-repair to " + e.Repair + ")"
	}
	return msg
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Options configures a log. The zero value of each field takes the default.
type Options struct {
	Dir         string
	SegmentSize int64 // rotate past this many bytes (default 64 MiB)
	Sync        SyncPolicy
	FS          FS // default OSFS
	Logger      *slog.Logger
	// Repair, when Open finds corruption before the tail, keeps a copy of the damaged
	// segment and truncates at the last good record instead of refusing.
	Repair bool
	// OnFsync, when set, is told how long each fsync of a segment file took (the metrics'
	// fsync histogram). It is called from the flusher and must not block.
	OnFsync func(time.Duration)
	// SlowFsync is how long an fsync may take before it is logged as a warning, as etcd
	// does (default 1 s): a slow disk delays every acknowledgement behind it.
	SlowFsync time.Duration
	// LazyDelay is how long records appended with AppendLazy may wait for a record someone
	// waits for, so that one write and one fsync cover both (default 10 ms; negative: no
	// wait, AppendLazy is Append). It bounds what a crash can take back of them.
	LazyDelay time.Duration
}

// DefaultLazyDelay is how long lazy records wait for company by default.
const DefaultLazyDelay = 10 * time.Millisecond

// DefaultSlowFsync is the fsync duration past which a warning is logged.
const DefaultSlowFsync = time.Second

// DefaultSegmentSize is 64 MiB.
const DefaultSegmentSize = 64 << 20

// Position addresses a record: its segment and the offset of its frame.
type Position struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
}

// WAL is an open log. Append is safe for concurrent use, but its order is the order of calls,
// so callers that need a total order serialise their calls.
type WAL struct {
	opts Options
	fs   FS
	log  *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond // wakes the flusher
	sealed   *sync.Cond // wakes Remove when writing moves on
	tailSeg  uint64     // segment of the next append
	tailOff  int64      // offset of the next append
	pending  *batch
	inflight *batch // the batch the flusher is writing, if any
	failed   error
	closed   bool
	segments []uint64 // existing segment files, ascending
	writing  uint64   // segment the flusher writes: every earlier one is fsynced and closed
	written  int64    // bytes appended since Open, for callers that snapshot by volume

	file    File // the segment being written; owned by the flusher
	fileSeq uint64
	fileOff int64 // size of file: where the flusher's next write lands

	readMu  sync.Mutex
	readers map[uint64]File

	flushed chan struct{}
}

// batch is what one write (and, with SyncBatch, one fsync) covers. buf holds frames as they
// go on disk, commit frames included: Append and the cuts reserve each commit's slot under
// w.mu, so positions are exact; the flusher fills the slots in outside it.
type batch struct {
	buf  []byte
	cuts []cut // where later records start going into a new segment
	open bool  // buf ends with records that no commit slot closes yet
	// urgent: someone waits for the batch (an Append, a Barrier, a wait called), so the
	// flusher takes it now; until then it holds only lazy records, and timer makes it
	// urgent after LazyDelay.
	urgent bool
	timer  *time.Timer
	done   chan struct{}
	err    error
}

type cut struct {
	off int
	seg uint64
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

func (b *batch) empty() bool { return len(b.buf) == 0 && len(b.cuts) == 0 }

func (w *WAL) path(seq uint64) string {
	return filepath.Join(w.opts.Dir, fmt.Sprintf("%016x.wal", seq))
}

// Append queues a record and returns its position and a wait that returns once the record is
// durable under the sync policy (or the error that stopped it). It never blocks on I/O.
func (w *WAL) Append(data []byte) (Position, func() error) {
	return w.append(data, false)
}

// AppendLazy is Append for a record that nobody waits for yet: it is written (and fsynced)
// with the next record someone waits for, or after Options.LazyDelay, whichever comes first,
// instead of costing a write and an fsync of its own. Its order among records is the order of
// calls, as with Append. Calling the wait it returns makes the record urgent.
//
// Use it where losing the record to a crash is allowed (its effect already happened and is
// repeated on replay), and nothing is announced before it is durable.
func (w *WAL) AppendLazy(data []byte) (Position, func() error) {
	return w.append(data, w.opts.LazyDelay > 0 && w.opts.Sync != SyncAlways)
}

func (w *WAL) append(data []byte, lazy bool) (Position, func() error) {
	w.mu.Lock()
	if err := w.stateErr(); err != nil {
		w.mu.Unlock()
		return Position{}, func() error { return err }
	}
	if len(data) == 0 || len(data) > MaxRecordSize {
		w.mu.Unlock()
		err := fmt.Errorf("wal: record of %d bytes (1..%d allowed)", len(data), MaxRecordSize)
		return Position{}, func() error { return err }
	}
	size := int64(frameSize(len(data)))
	if w.tailOff+size+commitFrameSize > w.opts.SegmentSize && w.tailOff > segmentHeaderSize {
		w.cutLocked()
	}
	pos := Position{Segment: w.tailSeg, Offset: w.tailOff}
	b := w.pending
	b.buf = appendFrame(b.buf, data)
	if w.opts.Sync == SyncAlways {
		// Every record is its own chunk: record, commit, fsync.
		b.buf = appendCommitSlot(b.buf)
		size += commitFrameSize
	} else {
		b.open = true
	}
	w.tailOff += size
	w.written += size
	if !lazy || b.urgent { // an urgent batch may have been empty when the flusher last looked
		w.urgeLocked(b)
		w.mu.Unlock()
		return pos, func() error { <-b.done; return b.err }
	}
	if !b.urgent && b.timer == nil {
		b.timer = time.AfterFunc(w.opts.LazyDelay, func() { w.urge(b) })
	}
	w.mu.Unlock()
	return pos, func() error { w.urge(b); <-b.done; return b.err }
}

// urgeLocked makes b urgent and wakes the flusher for it. Harmless for a batch already taken.
func (w *WAL) urgeLocked(b *batch) {
	b.urgent = true
	w.cond.Signal()
}

func (w *WAL) urge(b *batch) {
	w.mu.Lock()
	w.urgeLocked(b)
	w.mu.Unlock()
}

// Barrier returns a wait that returns once every record appended before the call is durable
// under the sync policy, or the error that stopped it. Readers use it so that they never show
// state whose record a crash or a failed write could still take back.
func (w *WAL) Barrier() func() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.pending
	if b.empty() {
		b = w.inflight
	}
	if b == nil {
		err := w.stateErr()
		if errors.Is(err, ErrClosed) {
			err = nil // everything appended was written by Close
		}
		return func() error { return err }
	}
	w.urgeLocked(b)
	return func() error { <-b.done; return b.err }
}

// Rotate makes the next append start a new segment and returns where that will be. Callers
// snapshot their state at this position: replay from it needs no earlier segment.
func (w *WAL) Rotate() Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tailOff > segmentHeaderSize && w.stateErr() == nil {
		w.cutLocked()
		w.urgeLocked(w.pending)
	}
	return Position{Segment: w.tailSeg, Offset: w.tailOff}
}

func (w *WAL) cutLocked() {
	w.commitLocked()
	w.tailSeg++
	w.tailOff = segmentHeaderSize
	w.pending.cuts = append(w.pending.cuts, cut{off: len(w.pending.buf), seg: w.tailSeg})
}

// commitLocked reserves the commit frame that closes the records pending in the current
// segment, if any.
func (w *WAL) commitLocked() {
	if b := w.pending; b.open {
		b.buf = appendCommitSlot(b.buf)
		b.open = false
		w.tailOff += commitFrameSize
		w.written += commitFrameSize
	}
}

func (w *WAL) stateErr() error {
	if w.closed {
		return ErrClosed
	}
	if w.failed != nil {
		return fmt.Errorf("%w: %v", ErrFailed, w.failed)
	}
	return nil
}

// Err reports the failure that stopped the log, or nil while it is healthy.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return fmt.Errorf("%w: %v", ErrFailed, w.failed)
	}
	return nil
}

// Written is how many bytes were appended since Open, commit frames included.
func (w *WAL) Written() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

// DiskBytes is the size of the segment files on disk, read from the file system (one stat per
// segment; a log has few). Segments that cannot be read are left out.
func (w *WAL) DiskBytes() int64 {
	var n int64
	for _, seq := range w.Segments() {
		f, err := w.fs.OpenFile(w.path(seq), os.O_RDONLY, 0)
		if err != nil {
			continue // removed since the list was taken
		}
		if st, err := f.Stat(); err == nil {
			n += st.Size()
		}
		f.Close()
	}
	return n
}

// SegmentBytes is the size of one segment file, 0 when it cannot be read (removed, say).
func (w *WAL) SegmentBytes(seq uint64) int64 {
	f, err := w.fs.OpenFile(w.path(seq), os.O_RDONLY, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// Segments lists the segment files, oldest first.
func (w *WAL) Segments() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.segments)
}

// ReadAt returns a copy of the record at pos, checking its CRC.
func (w *WAL) ReadAt(pos Position) ([]byte, error) {
	f, err := w.reader(pos.Segment)
	if err != nil {
		return nil, err
	}
	var h [frameHeaderSize]byte
	if _, err := f.ReadAt(h[:], pos.Offset); err != nil {
		return nil, fmt.Errorf("wal: read segment %d at %d: %w", pos.Segment, pos.Offset, err)
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n == 0 || n > MaxRecordSize {
		return nil, &CorruptError{File: w.path(pos.Segment), Offset: pos.Offset, Reason: "bad record length"}
	}
	data := make([]byte, n)
	if _, err := f.ReadAt(data, pos.Offset+frameHeaderSize); err != nil {
		return nil, fmt.Errorf("wal: read segment %d at %d: %w", pos.Segment, pos.Offset, err)
	}
	if checksum(h[0:4], data) != binary.LittleEndian.Uint32(h[4:8]) {
		return nil, &CorruptError{File: w.path(pos.Segment), Offset: pos.Offset, Reason: "CRC mismatch"}
	}
	return data, nil
}

func (w *WAL) reader(seq uint64) (File, error) {
	w.readMu.Lock()
	defer w.readMu.Unlock()
	if f, ok := w.readers[seq]; ok {
		return f, nil
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed { // Close has closed the readers, or will: do not open one it would miss
		return nil, ErrClosed
	}
	f, err := w.fs.OpenFile(w.path(seq), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: open segment %d for reading: %w", seq, err)
	}
	w.readers[seq] = f
	return f, nil
}

// Remove deletes a segment the caller no longer needs (a snapshot covers it and no live
// record is read from it). The segment being written cannot be removed. A segment that Rotate
// (or a full segment) ended is removed once the flusher has sealed it.
func (w *WAL) Remove(seq uint64) error {
	w.mu.Lock()
	// Before the flusher reaches the cut, seq may still be written to, or not exist yet.
	for seq >= w.writing && seq < w.tailSeg && w.failed == nil {
		w.urgeLocked(w.pending) // the cut may sit behind lazy records
		w.sealed.Wait()
	}
	if seq >= w.writing {
		w.mu.Unlock()
		return fmt.Errorf("wal: segment %d is not sealed", seq)
	}
	i, ok := slices.BinarySearch(w.segments, seq)
	if !ok {
		w.mu.Unlock()
		return nil
	}
	w.segments = slices.Delete(w.segments, i, i+1)
	w.mu.Unlock()

	w.readMu.Lock()
	if f, ok := w.readers[seq]; ok {
		f.Close()
		delete(w.readers, seq)
	}
	w.readMu.Unlock()
	if err := w.fs.Remove(w.path(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wal: remove segment %d: %w", seq, err)
	}
	if err := w.fs.SyncDir(w.opts.Dir); err != nil {
		return fmt.Errorf("wal: fsync dir after removing segment %d: %w", seq, err)
	}
	return nil
}

// Close writes what is queued, then closes the files. Appends after Close fail.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.flushed

	var err error
	if w.file != nil {
		if w.opts.Sync != SyncNone && w.Err() == nil {
			err = w.file.Sync()
		}
		if cerr := w.file.Close(); err == nil {
			err = cerr
		}
	}
	w.readMu.Lock()
	for seq, f := range w.readers {
		f.Close()
		delete(w.readers, seq)
	}
	w.readMu.Unlock()
	return err
}
