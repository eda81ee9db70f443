package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	o := opts(dir)
	o.SegmentSize = 4096
	w, _ := openT(t, o, Position{})
	var recs []rec
	for i := range 300 {
		n := 1 + (i*7919)%700
		if i == 150 {
			n = 6000 // larger than a segment: it gets one to itself
		}
		recs = append(recs, appendT(t, w, payload(uint64(i), n))...)
	}
	closeT(t, w)

	segs := segmentsOnDisk(t, dir)
	if len(segs) < 20 {
		t.Fatalf("only %d segments for ~100 KiB in 4 KiB segments", len(segs))
	}
	for i, seq := range segs {
		if seq != uint64(i+1) {
			t.Fatalf("segments on disk %v, want 1..%d", segs, len(segs))
		}
		b := readFileT(t, segPath(dir, seq))
		if !bytes.Equal(b[:8], segmentMagic[:]) || binary.LittleEndian.Uint64(b[8:16]) != seq {
			t.Fatalf("segment %d header %x", seq, b[:16])
		}
	}
	for i, r := range recs {
		size := int64(frameSize(len(r.data)))
		end := r.pos.Offset + size
		if end > fileSize(t, segPath(dir, r.pos.Segment)) {
			t.Fatalf("record %d at %+v runs past its segment file", i, r.pos)
		}
		if end > o.SegmentSize && r.pos.Offset != segmentHeaderSize {
			t.Fatalf("record %d at %+v (%d bytes) straddles the segment size", i, r.pos, size)
		}
		if r.pos.Offset%8 != 0 {
			t.Fatalf("record %d at unaligned %+v", i, r.pos)
		}
	}
	w, got := openT(t, o, Position{})
	defer closeT(t, w)
	sameRecs(t, got, recs)
	checkReadAt(t, w, recs)
	if !slices.Equal(w.Segments(), segs) {
		t.Fatalf("Segments() %v, on disk %v", w.Segments(), segs)
	}
}

func segmentsOnDisk(t *testing.T, dir string) []uint64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []uint64
	for _, e := range ents {
		var seq uint64
		if _, err := fmt.Sscanf(e.Name(), "%016x.wal", &seq); err != nil || e.Name() != fmt.Sprintf("%016x.wal", seq) {
			t.Fatalf("unexpected file %q in the log dir", e.Name())
		}
		segs = append(segs, seq)
	}
	return segs
}

// TestRotateAndReplayFrom: Rotate returns the start of a fresh segment; Open from there
// replays only what came after.
func TestRotateAndReplayFrom(t *testing.T) {
	dir := t.TempDir()
	o := opts(dir)
	w, _ := openT(t, o, Position{})
	before := appendT(t, w, []byte("a"), []byte("b"))
	from := w.Rotate()
	if from != (Position{2, segmentHeaderSize}) {
		t.Fatalf("Rotate = %+v, want the start of segment 2", from)
	}
	if again := w.Rotate(); again != from {
		t.Fatalf("Rotate with nothing appended = %+v, want %+v again", again, from)
	}
	after := appendT(t, w, []byte("c"), []byte("d"))
	if after[0].pos != from {
		t.Fatalf("first record after Rotate at %+v, want %+v", after[0].pos, from)
	}
	closeT(t, w)

	w, got := openT(t, o, from)
	sameRecs(t, got, after)
	closeT(t, w)
	w, got = openT(t, o, Position{})
	sameRecs(t, got, append(before, after...))
	// Replay from a record boundary inside a segment.
	closeT(t, w)
	w, got = openT(t, o, after[1].pos)
	defer closeT(t, w)
	sameRecs(t, got, after[1:])
}

// TestRotateThenNothing: a Rotate followed by no append, then a restart from its position,
// whether or not the new segment reached the disk before the stop.
func TestRotateThenNothing(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run(fmt.Sprintf("segment lost=%v", lost), func(t *testing.T) {
			dir := t.TempDir()
			o := opts(dir)
			w, _ := openT(t, o, Position{})
			appendT(t, w, []byte("a"))
			from := w.Rotate()
			closeT(t, w)
			if !lost && fileSize(t, segPath(dir, from.Segment)) != segmentHeaderSize {
				t.Fatal("Rotate's segment was not created")
			}
			if lost {
				if err := os.Remove(segPath(dir, from.Segment)); err != nil {
					t.Fatal(err)
				}
			}
			w, got := openT(t, o, from)
			if len(got) != 0 {
				t.Fatalf("replayed %d records from the rotation point", len(got))
			}
			more := appendT(t, w, []byte("b"))
			if more[0].pos != from {
				t.Fatalf("append at %+v, want %+v", more[0].pos, from)
			}
			closeT(t, w)
			w, got = openT(t, o, from)
			defer closeT(t, w)
			sameRecs(t, got, more)
		})
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	o := opts(dir)
	o.SegmentSize = 4096
	w, _ := openT(t, o, Position{})
	defer closeT(t, w)
	var recs []rec
	for i := range 40 {
		recs = append(recs, appendT(t, w, payload(uint64(i), 500))...)
	}
	segs := w.Segments()
	tail := segs[len(segs)-1]
	if len(segs) < 4 {
		t.Fatalf("segments %v", segs)
	}
	if err := w.Remove(tail); err == nil {
		t.Fatal("Remove of the tail segment succeeded")
	}
	if err := w.Remove(tail + 1); err == nil {
		t.Fatal("Remove of a future segment succeeded")
	}
	for _, seq := range segs[:2] {
		if err := w.Remove(seq); err != nil {
			t.Fatalf("Remove(%d): %v", seq, err)
		}
		if _, err := os.Stat(segPath(dir, seq)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("segment %d still on disk: %v", seq, err)
		}
	}
	if err := w.Remove(segs[0]); err != nil {
		t.Fatalf("second Remove of a removed segment: %v", err)
	}
	if !slices.Equal(w.Segments(), segs[2:]) {
		t.Fatalf("Segments() %v, want %v", w.Segments(), segs[2:])
	}
	for _, r := range recs {
		_, err := w.ReadAt(r.pos)
		if removed := r.pos.Segment <= segs[1]; removed != (err != nil) {
			t.Fatalf("ReadAt %+v in a removed segment=%v: %v", r.pos, removed, err)
		}
	}
	// The log still appends, and a restart from its first remaining segment works; one from
	// a removed segment, or from the start (no snapshot), does not.
	more := appendT(t, w, []byte("more"))
	closeT(t, w)
	if _, _, err := openCollect(o, Position{}); !errors.Is(err, ErrHistoryMissing) {
		t.Fatalf("Open from the start after segment 1 was removed: %v, want ErrHistoryMissing", err)
	}
	w2, got := openT(t, o, Position{segs[2], segmentHeaderSize})
	var want []rec
	for _, r := range recs {
		if r.pos.Segment > segs[1] {
			want = append(want, r)
		}
	}
	sameRecs(t, got, append(want, more...))
	closeT(t, w2)
	if _, _, err := openCollect(o, recs[0].pos); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open from a removed segment: %v, want ErrCorrupt", err)
	}
}

// TestRemoveWaitsForSeal: right after Rotate the old segment may still be written by the
// flusher; Remove waits until it is sealed instead of unlinking a file in use (or skipping
// one not yet created).
func TestRemoveWaitsForSeal(t *testing.T) {
	ffs := newFaultFS()
	o := opts(t.TempDir())
	o.FS = ffs
	w, _ := openT(t, o, Position{})
	defer closeT(t, w)

	entered, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	defer unblock() // before Close, which waits for the flusher, even when the test fails
	ffs.mu.Lock()
	ffs.beforeSync = func(string) { once.Do(func() { close(entered); <-release }) }
	ffs.mu.Unlock()

	_, wait := w.Append([]byte("in segment 1"))
	<-entered // the flusher holds segment 1 open
	from := w.Rotate()
	removed := make(chan error, 1)
	go func() { removed <- w.Remove(from.Segment - 1) }()
	select {
	case err := <-removed:
		t.Fatalf("Remove returned (%v) while segment 1 was being written", err)
	case <-time.After(100 * time.Millisecond):
	}
	unblock()
	if err := waitT(t, wait); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-removed:
		if err != nil {
			t.Fatalf("Remove after sealing: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Remove hung")
	}
	if !slices.Equal(w.Segments(), []uint64{2}) {
		t.Fatalf("Segments() %v, want [2]", w.Segments())
	}
}

// TestMissingSegment: a hole in the sequence is corruption, naming the missing file; a replay
// that starts after the hole does not need it. (TestRepairHints repairs it.)
func TestMissingSegment(t *testing.T) {
	dir, _ := buildLog(t, 4096, 3000, 3000, 3000, 3000)
	if err := os.Remove(segPath(dir, 2)); err != nil {
		t.Fatal(err)
	}
	_, _, err := openCollect(opts(dir), Position{})
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.File != segPath(dir, 2) {
		t.Fatalf("Open with segment 2 missing: %v", err)
	}
	w, got := openT(t, opts(dir), Position{3, segmentHeaderSize})
	defer closeT(t, w)
	if len(got) != 2 {
		t.Fatalf("replay from segment 3: %d records", len(got))
	}
}

// TestSegmentNames: only canonical segment names count; other files are left alone.
func TestSegmentNames(t *testing.T) {
	dir, recs := buildLog(t, 0, 10)
	for _, name := range []string{"000000000000000A.wal", "0000000000000000.wal", "1.wal",
		"0000000000000001.wal.damaged-1", "snapshot", "0000000000000001.wal.tmp"} {
		writeFileT(t, dir+"/"+name, []byte("junk"))
	}
	w, got := openT(t, opts(dir), Position{})
	defer closeT(t, w)
	sameRecs(t, got, recs)
	if !slices.Equal(w.Segments(), []uint64{1}) {
		t.Fatalf("Segments() %v", w.Segments())
	}
}

// TestOpenOptions: defaults apply and a segment too small to hold a record is refused.
func TestOpenOptions(t *testing.T) {
	o := Options{Dir: t.TempDir() + "/nested/wal"}
	w, _ := openT(t, o, Position{})
	if w.opts.SegmentSize != DefaultSegmentSize || w.opts.Sync != SyncBatch {
		t.Fatalf("defaults: %+v", w.opts)
	}
	closeT(t, w)
	o.SegmentSize = 31
	if _, _, err := openCollect(o, Position{}); err == nil {
		t.Fatal("Open with a 31-byte segment size succeeded")
	}
	// An error from the replay callback stops Open.
	boom := errors.New("boom")
	dir, _ := buildLog(t, 0, 5)
	_, err := Open(opts(dir), Position{}, func(Position, []byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Open with a failing callback: %v", err)
	}
}
