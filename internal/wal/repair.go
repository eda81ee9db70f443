package wal

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (w *WAL) truncate(name string, size int64) error {
	f, err := w.fs.OpenFile(name, os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open %s to truncate: %w", name, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("wal: truncate %s at %d: %w", name, size, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync %s after truncate: %w", name, err)
	}
	return nil
}

func (w *WAL) rewriteHeader(seq uint64) error {
	name := w.path(seq)
	f, err := w.fs.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open %s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.Write(segmentHeader(seq)); err != nil {
		return fmt.Errorf("wal: write header of %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync %s: %w", name, err)
	}
	return nil
}

// repair keeps a copy of the damaged segment, truncates it at the last good record, and moves
// every later segment aside, so the log ends where the good records end.
func (w *WAL) repair(ce *CorruptError, seq uint64, later []uint64) error {
	suffix, err := w.damagedSuffix()
	if err != nil {
		return err
	}
	data, err := ReadFile(w.fs, ce.File)
	if err != nil {
		return fmt.Errorf("wal: repair: read %s: %w", ce.File, err)
	}
	if err := WriteFileAtomic(w.fs, ce.File+suffix, data); err != nil {
		return fmt.Errorf("wal: repair: keep a copy of %s: %w", ce.File, err)
	}
	off := ce.Offset
	if off > int64(len(data)) {
		// Truncating would extend the file with zeros, not cut damage off.
		return ce
	}
	if off < segmentHeaderSize {
		off = 0
	}
	// Move later segments aside before truncating, newest first, and make that durable: a
	// crash part way then leaves the damage in place (so the next Open finds it again) and
	// never a clean-looking log with a hole in the middle.
	for _, s := range slices.Backward(later) {
		if err := w.fs.Rename(w.path(s), w.path(s)+suffix); err != nil {
			return fmt.Errorf("wal: repair: move segment %d aside: %w", s, err)
		}
	}
	if err := w.fs.SyncDir(w.opts.Dir); err != nil {
		return fmt.Errorf("wal: repair: fsync dir: %w", err)
	}
	w.segments = w.segments[:len(w.segments)-len(later)]
	if err := w.truncate(ce.File, off); err != nil {
		return err
	}
	if off == 0 {
		if err := w.rewriteHeader(seq); err != nil {
			return err
		}
		ce.Offset = segmentHeaderSize
	}
	w.log.Warn("wal: repaired corruption", "file", ce.File, "offset", ce.Offset, "reason", ce.Reason,
		"copy", ce.File+suffix, "bytes_dropped", int64(len(data))-ce.Offset, "later_segments_moved", len(later))
	return nil
}

// now is the clock behind ".damaged-" names; tests fix it.
var now = time.Now

// damagedSuffix returns ".damaged-<unix nanoseconds>", with "-2", "-3"… added when a file in
// the directory already ends with it, so a repair never overwrites an earlier one's copies.
func (w *WAL) damagedSuffix() (string, error) {
	names, err := w.fs.ReadDir(w.opts.Dir)
	if err != nil {
		return "", fmt.Errorf("wal: repair: list %s: %w", w.opts.Dir, err)
	}
	base := ".damaged-" + strconv.FormatInt(now().UnixNano(), 10)
	for n := 1; ; n++ {
		suffix := base
		if n > 1 {
			suffix += "-" + strconv.Itoa(n)
		}
		if !slices.ContainsFunc(names, func(name string) bool {
			return strings.HasSuffix(name, suffix) || strings.HasSuffix(name, suffix+".tmp")
		}) {
			return suffix, nil
		}
	}
}

// moveAside renames segs (ascending) to "<name>.damaged-…", newest first, makes that durable,
// drops them from the log, and logs what was lost.
func (w *WAL) moveAside(segs []uint64, ce *CorruptError) error {
	suffix, err := w.damagedSuffix()
	if err != nil {
		return err
	}
	var bytes int64
	for _, s := range slices.Backward(segs) {
		if f, err := w.fs.OpenFile(w.path(s), os.O_RDONLY, 0); err == nil {
			if st, err := f.Stat(); err == nil {
				bytes += st.Size()
			}
			f.Close()
		}
		if err := w.fs.Rename(w.path(s), w.path(s)+suffix); err != nil {
			return fmt.Errorf("wal: repair: move segment %d aside: %w", s, err)
		}
	}
	if err := w.fs.SyncDir(w.opts.Dir); err != nil {
		return fmt.Errorf("wal: repair: fsync dir: %w", err)
	}
	w.segments = slices.DeleteFunc(w.segments, func(s uint64) bool { _, found := slices.BinarySearch(segs, s); return found })
	w.log.Warn("wal: repaired a missing segment by moving later segments aside", "missing", ce.File, "reason", ce.Reason,
		"segments_moved", len(segs), "first_moved", w.path(segs[0]), "last_moved", w.path(segs[len(segs)-1]),
		"bytes_moved", bytes, "suffix", suffix)
	return nil
}
