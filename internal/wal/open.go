package wal

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Open opens (or creates) the log in opts.Dir and replays every record from `from` (the zero
// Position means from the first segment) through fn, in order. fn's data is only valid during
// the call. A torn tail is truncated; corruption before it fails with a *CorruptError unless
// opts.Repair is set.
func Open(opts Options, from Position, fn func(pos Position, data []byte) error) (*WAL, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize < segmentHeaderSize+frameHeaderSize+8+commitFrameSize {
		return nil, fmt.Errorf("wal: segment size %d is too small", opts.SegmentSize)
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SlowFsync <= 0 {
		opts.SlowFsync = DefaultSlowFsync
	}
	if opts.LazyDelay == 0 {
		opts.LazyDelay = DefaultLazyDelay
	}
	w := &WAL{
		opts:    opts,
		fs:      opts.FS,
		log:     opts.Logger,
		pending: newBatch(),
		readers: make(map[uint64]File),
		flushed: make(chan struct{}),
	}
	w.cond = sync.NewCond(&w.mu)
	w.sealed = sync.NewCond(&w.mu)
	if err := w.fs.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create dir %s: %w", opts.Dir, err)
	}
	names, err := w.fs.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", opts.Dir, err)
	}
	for _, name := range names {
		if seq, ok := parseSegmentName(name); ok {
			w.segments = append(w.segments, seq)
		}
	}
	if err := w.recover(from, fn); err != nil {
		w.closeReaders()
		return nil, err
	}
	go w.flushLoop()
	return w, nil
}

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, ".wal")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	// Only the name path() gives seq: "…A.wal" is not segment 10, whose file is "…a.wal".
	return seq, err == nil && seq > 0 && fmt.Sprintf("%016x", seq) == hex
}

// recover replays segments from `from` on, repairs or refuses damage, and opens the tail.
func (w *WAL) recover(from Position, fn func(Position, []byte) error) error {
	if from == (Position{}) && len(w.segments) > 0 && w.segments[0] != 1 {
		return fmt.Errorf("%w: the oldest segment is %s, earlier ones were removed after a snapshot; "+
			"the state they held can only come from that snapshot (restore it from a backup)",
			ErrHistoryMissing, w.path(w.segments[0]))
	}
	if from.Segment == 0 {
		from.Segment = 1
		if len(w.segments) > 0 {
			from.Segment = w.segments[0]
		}
	}
	if from.Offset < segmentHeaderSize {
		from.Offset = segmentHeaderSize
	}
	var replay []uint64
	for _, seq := range w.segments {
		if seq >= from.Segment {
			replay = append(replay, seq)
		}
	}
	if len(replay) > 0 && replay[0] != from.Segment {
		ce := &CorruptError{File: w.path(from.Segment), Offset: from.Offset, Reason: "segment named by the replay position is missing"}
		if from.Offset == segmentHeaderSize {
			ce.Repair = repairFrom
		}
		if !w.opts.Repair || ce.Repair == "" {
			return ce
		}
		if err := w.moveAside(replay, ce); err != nil {
			return err
		}
		replay = nil
	}
	// The snapshot may name a segment that a crash kept from being created: start it now.
	if len(replay) == 0 {
		if from.Offset > segmentHeaderSize {
			return &CorruptError{File: w.path(from.Segment), Offset: from.Offset, Reason: "segment named by the replay position is missing"}
		}
		f, err := w.createSegment(from.Segment)
		if err != nil {
			return err
		}
		w.file, w.fileSeq, w.fileOff = f, from.Segment, segmentHeaderSize
		w.tailSeg, w.tailOff = from.Segment, segmentHeaderSize
		return nil
	}
	for i := 1; i < len(replay); i++ {
		if replay[i] != replay[i-1]+1 {
			ce := &CorruptError{File: w.path(replay[i-1] + 1), Reason: "segment missing from the sequence", Repair: repairGap}
			if !w.opts.Repair {
				return ce
			}
			if err := w.moveAside(replay[i:], ce); err != nil {
				return err
			}
			replay = replay[:i]
			break
		}
	}
	var end int64
	for i, seq := range replay {
		last := i == len(replay)-1
		start := int64(segmentHeaderSize)
		if seq == from.Segment {
			start = from.Offset
		}
		stop, err := w.replaySegment(seq, start, last, fn)
		if err != nil {
			ce, ok := err.(*CorruptError)
			if !ok || !w.opts.Repair || ce.Repair == "" {
				return err
			}
			if err := w.repair(ce, seq, replay[i+1:]); err != nil {
				return err
			}
			end, last = ce.Offset, true
			replay = replay[:i+1]
		} else {
			end = stop
		}
		if last {
			break
		}
	}
	tail := replay[len(replay)-1]
	if v, err := w.segmentVersion(tail); err != nil {
		return err
	} else if v != segmentVersionCurrent {
		// Appends never mix formats in one segment: an older tail is sealed as it is.
		f, err := w.createSegment(tail + 1)
		if err != nil {
			return err
		}
		w.log.Info("wal: tail segment has an older format; appending to a new segment", "file", w.path(tail), "version", v)
		w.file, w.fileSeq, w.fileOff = f, tail+1, segmentHeaderSize
		w.tailSeg, w.tailOff = tail+1, segmentHeaderSize
		return nil
	}
	f, err := w.fs.OpenFile(w.path(tail), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open segment %d for append: %w", tail, err)
	}
	w.file, w.fileSeq, w.fileOff = f, tail, end
	w.tailSeg, w.tailOff, w.writing = tail, end, tail
	return nil
}

// segmentVersion reads the format version from a segment's header, which replay checked.
func (w *WAL) segmentVersion(seq uint64) (int, error) {
	f, err := w.fs.OpenFile(w.path(seq), os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("wal: open segment %d: %w", seq, err)
	}
	defer f.Close()
	h := make([]byte, segmentHeaderSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		return 0, fmt.Errorf("wal: read header of segment %d: %w", seq, err)
	}
	return segmentVersionOf(h, seq), nil
}

// replaySegment feeds one segment's records from start to fn and returns the offset where
// its valid records end. In the last segment a torn tail is truncated; anything else that does
// not decode is a *CorruptError.
func (w *WAL) replaySegment(seq uint64, start int64, last bool, fn func(Position, []byte) error) (int64, error) {
	name := w.path(seq)
	data, err := ReadFile(w.fs, name)
	if err != nil {
		return 0, fmt.Errorf("wal: read segment %d: %w", seq, err)
	}
	if last && partialHeader(data, seq) {
		// Created, but its header never reached the disk whole: it holds no record.
		w.log.Warn("wal: rewriting the header of an empty last segment", "file", name, "bytes", len(data))
		if start > segmentHeaderSize {
			return 0, &CorruptError{File: name, Offset: start, Reason: "replay position is past the end of the segment"}
		}
		return segmentHeaderSize, w.rewriteHeader(seq)
	}
	version := segmentVersionOf(data, seq)
	if version == 0 {
		return 0, &CorruptError{File: name, Offset: 0, Reason: "bad segment header", Repair: repairTruncate}
	}
	if start > int64(len(data)) {
		return 0, &CorruptError{File: name, Offset: start, Reason: "snapshot position is past the end of the segment"}
	}
	if version == segmentVersion1 {
		return w.replayV1(name, seq, data, start, last, fn)
	}
	return w.replayV2(name, seq, data, start, last, fn)
}

// partialHeader says whether data is what an interrupted write of seq's header can leave:
// at most the header's length, every byte either the header's or zero.
func partialHeader(data []byte, seq uint64) bool {
	if len(data) > segmentHeaderSize {
		return false
	}
	if len(data) == segmentHeaderSize && segmentVersionOf(data, seq) != 0 {
		return false
	}
	v1, v2 := segmentHeaderVersion(seq, segmentVersion1), segmentHeaderVersion(seq, segmentVersion2)
	for i, c := range data {
		if c != 0 && c != v1[i] && c != v2[i] {
			return false
		}
	}
	return true
}

// replayV2 replays a version 2 segment chunk by chunk: a chunk's records reach fn only once
// the commit frame that closes it checks out (its own CRC, its start at the end of the
// previous commit, the CRC of the chunk's bytes). The first chunk that does not is a torn
// tail if no intact commit follows it in the last segment, and corruption otherwise.
func (w *WAL) replayV2(name string, seq uint64, data []byte, from int64, last bool, fn func(Position, []byte) error) (int64, error) {
	off := int64(segmentHeaderSize) // start of the chunk under test: end of the last good commit
	fromOK := from == off
	for off < int64(len(data)) {
		p, bad := off, error(nil)
		for bad == nil {
			if p == int64(len(data)) {
				bad = errNoCommit
				break
			}
			if int64(len(data))-p < frameHeaderSize {
				bad = errShortFrame
				break
			}
			if isCommit(binary.LittleEndian.Uint32(data[p:])) {
				break
			}
			_, size, err := decodeFrame(data[p:])
			if err != nil {
				bad = err
				break
			}
			p += int64(size)
		}
		if bad == nil {
			bad = checkCommit(data, off, p)
		}
		if bad != nil {
			if from > off {
				return 0, &CorruptError{File: name, Offset: from, Reason: fmt.Sprintf("replay position is past the last good commit (%d)", off)}
			}
			if last && !commitAfter(data, off) {
				cut := int64(len(data)) - off
				w.log.Warn("wal: truncating torn tail", "file", name, "offset", off, "bytes", cut,
					"reason", fmt.Sprintf("%v at offset %d", bad, p))
				if err := w.truncate(name, off); err != nil {
					return 0, err
				}
				return off, nil
			}
			reason := bad.Error()
			if p != off {
				reason = fmt.Sprintf("%v at offset %d", bad, p)
			}
			return 0, &CorruptError{File: name, Offset: off, Reason: reason, Repair: repairTruncate}
		}
		for q := off; q < p; {
			n := int64(binary.LittleEndian.Uint32(data[q:]))
			if q == from {
				fromOK = true
			}
			if q >= from {
				rec := data[q+frameHeaderSize : q+frameHeaderSize+n]
				if err := fn(Position{Segment: seq, Offset: q}, rec); err != nil {
					return 0, fmt.Errorf("wal: replay record in segment %d at %d: %w", seq, q, err)
				}
			}
			q += int64(frameSize(int(n)))
		}
		off = p + commitFrameSize
		fromOK = fromOK || off == from
	}
	if !fromOK {
		return 0, &CorruptError{File: name, Offset: from, Reason: "replay position is not at a record"}
	}
	return off, nil
}

// checkCommit checks the commit frame at p that closes the chunk starting at off.
func checkCommit(data []byte, off, p int64) error {
	start, crc, err := decodeCommit(data[p:])
	switch {
	case err != nil:
		return err
	case start != off || p == off:
		return errCommitGap
	case crc != chunkChecksum(data[off:p]):
		return errCommitCRC
	}
	return nil
}

// commitAfter looks for a commit frame past off that is whole and matches the bytes it
// covers. Power loss cannot make one: only the last chunk was not yet fsynced, and its commit
// only checks out if all of it reached the disk. Finding one means damage in the middle.
func commitAfter(data []byte, off int64) bool {
	for p := off + frameHeaderSize; p+commitFrameSize <= int64(len(data)); p += 8 {
		if !isCommit(binary.LittleEndian.Uint32(data[p:])) {
			continue
		}
		start, crc, err := decodeCommit(data[p:])
		if err == nil && start >= off && start < p && start%8 == 0 && crc == chunkChecksum(data[start:p]) {
			return true
		}
	}
	return false
}

// replayV1 replays a version 1 segment (no commit frames) frame by frame: a bad frame in the
// last segment with no valid frame after it is a torn tail.
func (w *WAL) replayV1(name string, seq uint64, data []byte, start int64, last bool, fn func(Position, []byte) error) (int64, error) {
	off := start
	for off < int64(len(data)) {
		rec, size, err := decodeFrame(data[off:])
		if err == nil {
			if err := fn(Position{Segment: seq, Offset: off}, rec); err != nil {
				return 0, fmt.Errorf("wal: replay record in segment %d at %d: %w", seq, off, err)
			}
			off += int64(size)
			continue
		}
		if last && !validFrameAfter(data, off) {
			cut := int64(len(data)) - off
			w.log.Warn("wal: truncating torn tail", "file", name, "offset", off, "bytes", cut, "reason", err.Error())
			if err := w.truncate(name, off); err != nil {
				return 0, err
			}
			return off, nil
		}
		return 0, &CorruptError{File: name, Offset: off, Reason: err.Error(), Repair: repairTruncate}
	}
	return off, nil
}

// validFrameAfter looks for any intact frame past a bad one. Finding one means the bad frame
// is not a torn end but damage in the middle.
func validFrameAfter(data []byte, off int64) bool {
	for p := off + frameHeaderSize; p+frameHeaderSize <= int64(len(data)); p += 8 {
		if _, _, err := decodeFrame(data[p:]); err == nil {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (w *WAL) closeReaders() {
	for seq, f := range w.readers {
		f.Close()
		delete(w.readers, seq)
	}
	if w.file != nil {
		w.file.Close()
	}
}
