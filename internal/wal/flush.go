package wal

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// flushLoop writes batches in order until Close; it is the only writer of segment files.
func (w *WAL) flushLoop() {
	defer close(w.flushed)
	for {
		w.mu.Lock()
		for (w.pending.empty() || !w.pending.urgent) && !w.closed {
			w.cond.Wait()
		}
		if w.pending.empty() && w.closed {
			w.mu.Unlock()
			return
		}
		w.commitLocked()
		b := w.pending
		if b.timer != nil {
			b.timer.Stop()
		}
		w.pending = newBatch()
		w.inflight = b
		failed := w.failed
		w.mu.Unlock()

		err := failed
		if err == nil {
			if err = w.writeBatch(b); err != nil {
				w.log.Error("wal failed: no further records will be acknowledged", "err", err)
				w.mu.Lock()
				w.failed = err
				w.sealed.Broadcast()
				w.mu.Unlock()
			}
		}
		if err != nil {
			b.err = fmt.Errorf("%w: %v", ErrFailed, err)
		}
		// Waits outlive the batch (Barrier hands them to readers): keep its bytes no longer.
		b.buf, b.cuts = nil, nil
		w.mu.Lock()
		if w.inflight == b {
			w.inflight = nil
		}
		w.mu.Unlock()
		close(b.done)
	}
}

func (w *WAL) writeBatch(b *batch) error {
	off, ci, dirty := 0, 0, false
	for off < len(b.buf) || ci < len(b.cuts) {
		if ci < len(b.cuts) && b.cuts[ci].off == off {
			if err := w.startSegment(b.cuts[ci].seg); err != nil {
				return err
			}
			ci++
			continue
		}
		end := len(b.buf)
		if ci < len(b.cuts) {
			end = b.cuts[ci].off
		}
		// Fill in the commit slots of this segment's part: each covers the bytes since the
		// previous one. With SyncAlways each record and its commit are written and fsynced
		// on their own; otherwise the part goes in one write.
		chunk := off
		for p := off; p < end; {
			n := binary.LittleEndian.Uint32(b.buf[p:])
			if !isCommit(n) {
				p += frameSize(int(n))
				continue
			}
			fillCommit(b.buf[p:p+commitFrameSize], w.fileOff+int64(chunk-off), b.buf[chunk:p])
			p += commitFrameSize
			chunk = p
			if w.opts.Sync == SyncAlways {
				if err := w.write(b.buf[off:p]); err != nil {
					return err
				}
				if err := w.fsync(w.file, w.fileSeq); err != nil {
					return fmt.Errorf("wal: fsync segment %d: %w", w.fileSeq, err)
				}
				off = p
			}
		}
		if off < end {
			if err := w.write(b.buf[off:end]); err != nil {
				return err
			}
			dirty = true
		}
		off = end
	}
	if dirty && w.opts.Sync == SyncBatch {
		if err := w.fsync(w.file, w.fileSeq); err != nil {
			return fmt.Errorf("wal: fsync segment %d: %w", w.fileSeq, err)
		}
	}
	return nil
}

// fsync syncs a segment file, tells Options.OnFsync how long it took, and warns when it took
// longer than Options.SlowFsync.
func (w *WAL) fsync(f File, seq uint64) error {
	start := time.Now()
	err := f.Sync()
	d := time.Since(start)
	if w.opts.OnFsync != nil {
		w.opts.OnFsync(d)
	}
	if d > w.opts.SlowFsync {
		w.log.Warn("wal: slow fsync", "segment", seq, "took", d.String(), "expected", "< "+w.opts.SlowFsync.String())
	}
	return err
}

func (w *WAL) write(b []byte) error {
	if _, err := w.file.Write(b); err != nil {
		return fmt.Errorf("wal: write segment %d: %w", w.fileSeq, err)
	}
	w.fileOff += int64(len(b))
	return nil
}

// startSegment seals the current segment and creates seq. A sealed segment is fsynced whole,
// which is what lets recovery treat damage outside the last segment as corruption.
func (w *WAL) startSegment(seq uint64) error {
	if w.file != nil {
		if w.opts.Sync != SyncNone {
			if err := w.fsync(w.file, w.fileSeq); err != nil {
				return fmt.Errorf("wal: fsync segment %d: %w", w.fileSeq, err)
			}
		}
		if err := w.file.Close(); err != nil {
			return fmt.Errorf("wal: close segment %d: %w", w.fileSeq, err)
		}
		w.file = nil
	}
	f, err := w.createSegment(seq)
	if err != nil {
		return err
	}
	w.file, w.fileSeq, w.fileOff = f, seq, segmentHeaderSize
	return nil
}

func (w *WAL) createSegment(seq uint64) (File, error) {
	name := w.path(seq)
	f, err := w.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: create segment %d: %w", seq, err)
	}
	if _, err := f.Write(segmentHeader(seq)); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: write header of segment %d: %w", seq, err)
	}
	if w.opts.Sync != SyncNone {
		if err := w.fsync(f, seq); err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: fsync segment %d: %w", seq, err)
		}
	}
	if err := w.fs.SyncDir(w.opts.Dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: fsync dir after creating segment %d: %w", seq, err)
	}
	w.mu.Lock()
	w.segments = append(w.segments, seq)
	w.writing = seq
	w.sealed.Broadcast()
	w.mu.Unlock()
	return f, nil
}
