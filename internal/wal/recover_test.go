package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildLog writes records of the given sizes into a fresh log and returns its dir and records.
func buildLog(t *testing.T, segSize int64, sizes ...int) (string, []rec) {
	t.Helper()
	dir := t.TempDir()
	o := opts(dir)
	o.SegmentSize, o.Sync = segSize, SyncNone
	w, _ := openT(t, o, Position{})
	var recs []rec
	for i, n := range sizes {
		recs = append(recs, appendT(t, w, payload(uint64(i), n))...)
	}
	closeT(t, w)
	return dir, recs
}

// TestTornTail cuts the last segment at every byte of its last record's frame (header, data
// and padding) and of the commit frame after it. Open truncates the partial record, says so, and the log carries on.
func TestTornTail(t *testing.T) {
	for _, lastSize := range []int{1, 8, 13, 100, 600} {
		t.Run(fmt.Sprintf("last=%d", lastSize), func(t *testing.T) {
			src, recs := buildLog(t, 0, 50, 7, 300, lastSize)
			last := recs[len(recs)-1]
			name := segPath(src, 1)
			pristine := readFileT(t, name)
			if int64(len(pristine)) != last.pos.Offset+int64(frameSize(lastSize)+commitFrameSize) {
				t.Fatalf("segment is %d bytes, want the last frame and its commit to end it", len(pristine))
			}
			for cut := range frameSize(lastSize) + commitFrameSize {
				dir := t.TempDir()
				seg := segPath(dir, 1)
				writeFileT(t, seg, pristine[:last.pos.Offset+int64(cut)])
				logger, logs := newLogger()
				o := opts(dir)
				o.Logger, o.Sync = logger, SyncNone
				w, got := openT(t, o, Position{})
				sameRecs(t, got, recs[:len(recs)-1])
				if cut > 0 {
					want := fmt.Sprintf("bytes=%d", cut)
					if l := logs.String(); !strings.Contains(l, "truncating torn tail") || !strings.Contains(l, want) {
						t.Fatalf("cut %d: no truncation line with %s:\n%s", cut, want, l)
					}
				}
				if sz := fileSize(t, seg); sz != last.pos.Offset {
					t.Fatalf("cut %d: segment is %d bytes after Open, want %d", cut, sz, last.pos.Offset)
				}
				again := appendT(t, w, []byte("after the cut"))
				if again[0].pos != last.pos {
					t.Fatalf("cut %d: next append at %+v, want %+v", cut, again[0].pos, last.pos)
				}
				closeT(t, w)
				w, got = openT(t, opts(dir), Position{})
				sameRecs(t, got, append(slices.Clone(recs[:len(recs)-1]), again...))
				closeT(t, w)
			}
		})
	}
}

// TestDamagedTail: a zeroed or garbage end of the last segment is a torn tail, not corruption.
func TestDamagedTail(t *testing.T) {
	tests := []struct {
		name string
		// damage returns the new segment bytes given the old and the last record's offset.
		damage   func(b []byte, lastOff int64) []byte
		keepLast bool // the last record survives
		cut      int  // bytes the truncation line reports; -1 to skip the check
	}{
		{"last record zeroed", func(b []byte, off int64) []byte {
			clear(b[off:])
			return b
		}, false, 136},
		{"4096 zero bytes appended", func(b []byte, _ int64) []byte {
			return append(b, make([]byte, 4096)...)
		}, true, 4096},
		{"last record's data zeroed", func(b []byte, off int64) []byte {
			clear(b[off+frameHeaderSize:])
			return b
		}, false, 136},
		{"garbage appended", func(b []byte, _ int64) []byte {
			return append(b, payload(99, 777)...)
		}, true, 777},
		{"last record's CRC flipped", func(b []byte, off int64) []byte {
			b[off+5] ^= 1
			return b
		}, false, 136},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, recs := buildLog(t, 0, 30, 40, 100)
			last := recs[len(recs)-1] // frame of 112 bytes, then its 24-byte commit
			seg := segPath(dir, 1)
			orig := int64(len(readFileT(t, seg)))
			writeFileT(t, seg, tt.damage(readFileT(t, seg), last.pos.Offset))
			logger, logs := newLogger()
			o := opts(dir)
			o.Logger = logger
			w, got := openT(t, o, Position{})
			want, size := recs, orig
			if !tt.keepLast {
				want, size = recs[:len(recs)-1], last.pos.Offset
			}
			sameRecs(t, got, want)
			if sz := fileSize(t, seg); sz != size {
				t.Fatalf("segment is %d bytes after Open, want %d", sz, size)
			}
			if !strings.Contains(logs.String(), fmt.Sprintf("bytes=%d", tt.cut)) {
				t.Fatalf("no truncation line with bytes=%d:\n%s", tt.cut, logs)
			}
			more := appendT(t, w, []byte("after"))
			closeT(t, w)
			w, got = openT(t, opts(dir), Position{})
			defer closeT(t, w)
			sameRecs(t, got, append(slices.Clone(want), more...))
		})
	}
}

// TestEmptyLastSegment: a last segment whose header never reached the disk whole (empty,
// zeroed, or a prefix of the header) holds no record; Open writes its header again.
func TestEmptyLastSegment(t *testing.T) {
	for _, content := range [][]byte{{}, make([]byte, 9), segmentHeader(3)[:11]} {
		dir, recs := buildLog(t, 4096, 3000, 3000) // records in segments 1 and 2
		writeFileT(t, segPath(dir, 3), content)
		w, got := openT(t, opts(dir), Position{})
		sameRecs(t, got, recs)
		if got := readFileT(t, segPath(dir, 3)); !bytes.Equal(got, segmentHeader(3)) {
			t.Fatalf("segment 3 holds %x, want a fresh header", got)
		}
		more := appendT(t, w, []byte("x"))
		if more[0].pos != (Position{3, segmentHeaderSize}) {
			t.Fatalf("append at %+v", more[0].pos)
		}
		closeT(t, w)
	}
}

// corruption is damage that Open must refuse, and Repair must cut at.
type corruption struct {
	name string
	seg  uint64 // segment damaged
	// damage changes the segment's bytes; recs are all records; it returns the index of the
	// first record lost (whose offset the error names).
	damage func(b []byte, recs []rec) int
}

func flipIn(k, at int) func([]byte, []rec) int {
	return func(b []byte, recs []rec) int {
		b[recs[k].pos.Offset+int64(at)] ^= 0x40
		return k
	}
}

// corruptions run on a log of 40 records of 200 bytes in 4096-byte segments, each record its
// own chunk (a 208-byte frame and a 24-byte commit): 17 per segment, so segment 1 holds
// records 0..16, 2 holds 17..33, 3 holds 34..39.
var corruptions = []corruption{
	{"data byte of the first record of the last segment", 3, flipIn(34, 100)},
	{"data byte mid segment 2", 2, flipIn(25, frameHeaderSize)},
	{"length bit mid segment 2", 2, flipIn(25, 0)},
	{"CRC byte of the first record", 1, flipIn(0, 6)},
	{"length off by one in record 30", 2, func(b []byte, recs []rec) int {
		b[recs[30].pos.Offset] = 199 // same frame size, but the CRC covers the length
		return 30
	}},
	{"non-zero padding in record 30", 2, func(b []byte, recs []rec) int {
		// Rewrite record 30 as a valid 199-byte frame, then dirty its one padding byte.
		off := recs[30].pos.Offset
		copy(b[off:], appendFrame(nil, recs[30].data[:199]))
		b[off+frameHeaderSize+199] = 0xaa
		return 30
	}},
	{"last record of a sealed segment", 1, flipIn(16, 150)},
	{"zeroed sector in segment 2", 2, func(b []byte, recs []rec) int {
		clear(b[1024 : 1024+512])
		for k, r := range recs {
			if r.pos.Segment == 2 && r.pos.Offset+int64(frameSize(200)+commitFrameSize) > 1024 {
				return k
			}
		}
		panic("no record at 1024")
	}},
	{"bad header of segment 2", 2, func(b []byte, recs []rec) int {
		b[8] ^= 1 // the sequence number
		return 17
	}},
}

func buildCorruptible(t *testing.T) (string, []rec) {
	t.Helper()
	sizes := make([]int, 40)
	for i := range sizes {
		sizes[i] = 200
	}
	dir, recs := buildLog(t, 4096, sizes...)
	if recs[16].pos.Segment != 1 || recs[17].pos.Segment != 2 || recs[34].pos.Segment != 3 {
		t.Fatalf("unexpected layout: %+v %+v %+v", recs[16].pos, recs[17].pos, recs[34].pos)
	}
	return dir, recs
}

func TestCorruptionRefused(t *testing.T) {
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			dir, recs := buildCorruptible(t)
			seg := segPath(dir, c.seg)
			b := readFileT(t, seg)
			k := c.damage(b, recs)
			writeFileT(t, seg, b)
			before := snapshotDir(t, dir)

			o := opts(dir)
			o.SegmentSize = 4096
			_, _, err := openCollect(o, Position{})
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open: %v, want a *CorruptError", err)
			}
			wantOff := recs[k].pos.Offset
			if c.name == "bad header of segment 2" {
				wantOff = 0
			}
			if ce.File != seg || ce.Offset != wantOff {
				t.Fatalf("CorruptError at %s:%d, want %s:%d (%v)", ce.File, ce.Offset, seg, wantOff, err)
			}
			if !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), fmt.Sprint(wantOff)) {
				t.Fatalf("error text does not name file and offset: %v", err)
			}
			if after := snapshotDir(t, dir); !mapsEqual(before, after) {
				t.Fatal("a refused Open changed the directory")
			}
		})
	}
}

func TestCorruptionRepaired(t *testing.T) {
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			dir, recs := buildCorruptible(t)
			seg := segPath(dir, c.seg)
			b := readFileT(t, seg)
			k := c.damage(b, recs)
			writeFileT(t, seg, b)
			before := snapshotDir(t, dir)

			logger, logs := newLogger()
			o := opts(dir)
			o.SegmentSize, o.Repair, o.Logger = 4096, true, logger
			w, got := openT(t, o, Position{})
			sameRecs(t, got, recs[:k])
			if !strings.Contains(logs.String(), "repaired corruption") {
				t.Fatalf("no repair line:\n%s", logs)
			}

			// A copy of the damaged segment with its bytes as found, the segment cut at the
			// first bad record, later segments moved aside with their bytes intact.
			copies := damagedCopies(t, dir)
			for s := c.seg; s <= 3; s++ {
				name := filepath.Base(segPath(dir, s))
				i := slices.IndexFunc(copies, func(c string) bool { return strings.HasPrefix(c, name+".damaged-") })
				if i < 0 {
					t.Fatalf("no .damaged- copy of %s among %v", name, copies)
				}
				if !bytes.Equal(readFileT(t, filepath.Join(dir, copies[i])), before[name]) {
					t.Fatalf("%s differs from %s before the repair", copies[i], name)
				}
				if s > c.seg {
					if _, err := os.Stat(segPath(dir, s)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("segment %d still in place: %v", s, err)
					}
				}
			}
			cut := recs[k].pos.Offset
			if sz := fileSize(t, seg); sz != cut {
				t.Fatalf("segment %d is %d bytes, want %d", c.seg, sz, cut)
			}
			if !slices.Equal(w.Segments(), segRange(1, c.seg)) {
				t.Fatalf("segments %v after repair, want 1..%d", w.Segments(), c.seg)
			}

			// Appends go on from the cut, across a rotation and a reopen without Repair.
			var more []rec
			for i := range 25 {
				more = append(more, appendT(t, w, payload(uint64(1000+i), 200))...)
			}
			if more[0].pos != (Position{c.seg, cut}) {
				t.Fatalf("first append after repair at %+v, want %d:%d", more[0].pos, c.seg, cut)
			}
			closeT(t, w)
			o.Repair = false
			w, got = openT(t, o, Position{})
			defer closeT(t, w)
			sameRecs(t, got, append(slices.Clone(recs[:k]), more...))
		})
	}
}

func segRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// snapshotDir maps each file name in dir to its content.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		m[e.Name()] = readFileT(t, filepath.Join(dir, e.Name()))
	}
	return m
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestRepairPositionPastEnd: a replay position past the end of its segment is refused even
// with Repair; "truncating" there would extend the file with zeros.
func TestRepairPositionPastEnd(t *testing.T) {
	dir, recs := buildLog(t, 0, 100, 100)
	size := fileSize(t, segPath(dir, 1))
	o := opts(dir)
	o.Repair = true
	_, _, err := openCollect(o, Position{1, size + 64})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open from past the end: %v, want ErrCorrupt", err)
	}
	if got := fileSize(t, segPath(dir, 1)); got != size {
		t.Fatalf("segment grew from %d to %d bytes", size, got)
	}
	w, got := openT(t, opts(dir), Position{})
	defer closeT(t, w)
	sameRecs(t, got, recs)
}
