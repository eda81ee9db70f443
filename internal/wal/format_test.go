package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// chunkBytes appends one chunk, its records and the commit frame that closes it, to seg (a
// whole segment so far) and returns the records' positions.
func chunkBytes(seg []byte, seq uint64, datas ...[]byte) ([]byte, []rec) {
	start := len(seg)
	var recs []rec
	for _, d := range datas {
		recs = append(recs, rec{Position{seq, int64(len(seg))}, d})
		seg = appendFrame(seg, d)
	}
	p := len(seg)
	seg = appendCommitSlot(seg)
	fillCommit(seg[p:], int64(start), seg[start:p])
	return seg, recs
}

func TestCommitFrame(t *testing.T) {
	chunk := appendFrame(appendFrame(nil, []byte("one")), []byte("two"))
	c := appendCommitSlot(nil)
	if len(c) != commitFrameSize || commitFrameSize%8 != 0 {
		t.Fatalf("commit frame of %d bytes", len(c))
	}
	fillCommit(c, 4096, chunk)
	start, crc, err := decodeCommit(c)
	if err != nil || start != 4096 || crc != chunkChecksum(chunk) {
		t.Fatalf("decodeCommit = %d, %#x, %v", start, crc, err)
	}
	if n := binary.LittleEndian.Uint32(c); !isCommit(n) || n&^commitFlag != commitPayloadSize {
		t.Fatalf("length word %#x", n)
	}
	// A commit frame is never a data frame, and every bit flip is caught.
	if _, _, err := decodeFrame(c); err == nil {
		t.Fatal("decodeFrame accepted a commit frame")
	}
	for i := range commitFrameSize * 8 {
		b := bytes.Clone(c)
		b[i/8] ^= 1 << (i % 8)
		if _, _, err := decodeCommit(b); err == nil {
			t.Fatalf("bit %d flipped: commit still decodes", i)
		}
	}
}

// TestPowerLossTornChunk: damage that power loss leaves in the one chunk not yet fsynced, the
// last, is a torn tail whatever its shape, including a zeroed first sector with the later
// frames intact (which version 1 took for mid-log corruption); the same damage with an intact
// chunk after it is corruption.
func TestPowerLossTornChunk(t *testing.T) {
	big := func(i int) []byte { return payload(uint64(i), 300) }
	build := func() ([]byte, []rec, []rec) {
		seg, acked := chunkBytes(segmentHeader(1), 1, big(0), big(1))
		seg, lost := chunkBytes(seg, 1, big(2), big(3), big(4), big(5), big(6)) // ~1.6 KiB
		return seg, acked, lost
	}
	_, acked, lost := build()
	tornAt := lost[0].pos.Offset
	sectorEnd := (tornAt/512 + 1) * 512
	tests := []struct {
		name    string
		damage  func(seg []byte) []byte
		corrupt bool
	}{
		{"first sector zeroed, later frames intact", func(seg []byte) []byte {
			clear(seg[tornAt:sectorEnd])
			return seg
		}, false},
		{"first sector torn", func(seg []byte) []byte {
			clear(seg[tornAt+100 : sectorEnd])
			return seg
		}, false},
		{"middle sector zeroed, commit intact", func(seg []byte) []byte {
			clear(seg[sectorEnd : sectorEnd+512])
			return seg
		}, false},
		{"commit lost", func(seg []byte) []byte { return seg[:len(seg)-commitFrameSize] }, false},
		{"commit zeroed", func(seg []byte) []byte {
			clear(seg[len(seg)-commitFrameSize:])
			return seg
		}, false},
		{"commit torn", func(seg []byte) []byte { return seg[:len(seg)-5] }, false},
		{"chunk CRC wrong", func(seg []byte) []byte {
			seg[len(seg)-8] ^= 1 // the CRC field; the commit's own CRC then fails too
			return seg
		}, false},
		{"size past the commit, zeros", func(seg []byte) []byte {
			clear(seg[tornAt:])
			return append(seg, make([]byte, 512)...)
		}, false},
		{"first sector zeroed, then an intact chunk", func(seg []byte) []byte {
			clear(seg[tornAt:sectorEnd])
			seg, _ = chunkBytes(seg, 1, []byte("later"))
			return seg
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seg, _, _ := build()
			dir := t.TempDir()
			writeFileT(t, segPath(dir, 1), tt.damage(seg))
			logger, logs := newLogger()
			o := opts(dir)
			o.Logger = logger
			w, got, err := openCollect(o, Position{})
			if tt.corrupt {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Offset != tornAt {
					t.Fatalf("Open: %v, want a *CorruptError at %d", err, tornAt)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			sameRecs(t, got, acked)
			if !strings.Contains(logs.String(), "truncating torn tail") || fileSize(t, segPath(dir, 1)) != tornAt {
				t.Fatalf("segment is %d bytes, want %d, with a truncation line:\n%s", fileSize(t, segPath(dir, 1)), tornAt, logs)
			}
			more := appendT(t, w, []byte("after"))
			if more[0].pos != lost[0].pos {
				t.Fatalf("append after the cut at %+v, want %+v", more[0].pos, lost[0].pos)
			}
			closeT(t, w)
			w, got = openT(t, opts(dir), Position{})
			defer closeT(t, w)
			sameRecs(t, got, append(slices.Clone(acked), more...))
		})
	}
}

// TestCommitChecks: records reach the callback only under a commit that checks out, and a
// replay position must be a record (or chunk) boundary.
func TestCommitChecks(t *testing.T) {
	seg, first := chunkBytes(segmentHeader(1), 1, []byte("a"), []byte("b"))
	seg, second := chunkBytes(seg, 1, []byte("c"))
	all := append(slices.Clone(first), second...)
	t.Run("commit start wrong in a sealed segment", func(t *testing.T) {
		dir := t.TempDir()
		b := bytes.Clone(seg)
		c := b[len(b)-commitFrameSize:]
		fillCommit(c, second[0].pos.Offset-8, b[second[0].pos.Offset-8:len(b)-commitFrameSize])
		writeFileT(t, segPath(dir, 1), b)
		writeFileT(t, segPath(dir, 2), segmentHeader(2))
		_, _, err := openCollect(opts(dir), Position{})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != second[0].pos.Offset || !strings.Contains(ce.Reason, "commit") {
			t.Fatalf("Open: %v", err)
		}
	})
	for i, from := range []Position{{1, segmentHeaderSize}, first[1].pos, second[0].pos, {1, int64(len(seg))}} {
		t.Run(fmt.Sprintf("from %d", from.Offset), func(t *testing.T) {
			dir := t.TempDir()
			writeFileT(t, segPath(dir, 1), seg)
			w, got := openT(t, opts(dir), from)
			defer closeT(t, w)
			want := all[min(i, len(all)):]
			sameRecs(t, got, want)
		})
	}
	for _, off := range []int64{first[0].pos.Offset + 8, second[0].pos.Offset - commitFrameSize, int64(len(seg)) + 8} {
		dir := t.TempDir()
		writeFileT(t, segPath(dir, 1), seg)
		if _, _, err := openCollect(opts(dir), Position{1, off}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open from offset %d, inside a frame: %v", off, err)
		}
	}
}

// TestVersion1Segments: a log written in format 1 (no commit frames) still opens under its
// own rules, torn tail included, and appends go to a new version 2 segment.
func TestVersion1Segments(t *testing.T) {
	dir := t.TempDir()
	seg1 := segmentHeaderVersion(1, segmentVersion1)
	var want []rec
	for i := range 5 {
		want = append(want, rec{Position{1, int64(len(seg1))}, payload(uint64(i), 50+i)})
		seg1 = appendFrame(seg1, want[i].data)
	}
	seg2 := segmentHeaderVersion(2, segmentVersion1)
	want = append(want, rec{Position{2, segmentHeaderSize}, []byte("in segment 2")})
	seg2 = appendFrame(seg2, []byte("in segment 2"))
	size2 := len(seg2)
	seg2 = append(seg2, appendFrame(nil, payload(9, 100))[:40]...) // torn tail
	writeFileT(t, segPath(dir, 1), seg1)
	writeFileT(t, segPath(dir, 2), seg2)

	w, got := openT(t, opts(dir), Position{})
	sameRecs(t, got, want)
	if fileSize(t, segPath(dir, 2)) != int64(size2) {
		t.Fatal("the torn tail of the version 1 segment was not cut")
	}
	more := appendT(t, w, []byte("new"))
	if more[0].pos != (Position{3, segmentHeaderSize}) {
		t.Fatalf("append after a version 1 tail at %+v, want the start of segment 3", more[0].pos)
	}
	checkReadAt(t, w, want)
	closeT(t, w)
	if h := readFileT(t, segPath(dir, 3))[:segmentHeaderSize]; !bytes.Equal(h, segmentHeader(3)) || h[7] != 2 {
		t.Fatalf("segment 3 header %x", h)
	}
	w, got = openT(t, opts(dir), Position{})
	defer closeT(t, w)
	sameRecs(t, got, append(want, more...))
}
