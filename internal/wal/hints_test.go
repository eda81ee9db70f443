package wal

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRepairHints: every error that tells the operator to start with --wal-repair is one that
// Open with Repair then fixes. Each case makes the damage, checks the hint, reopens with Repair
// and checks what was kept, then reopens without Repair.
func TestRepairHints(t *testing.T) {
	tests := []struct {
		name string
		// damage breaks the log of buildCorruptible (segments 1..3) and returns the replay
		// position, the records Repair keeps and the segments left.
		damage   func(t *testing.T, dir string, recs []rec) (from Position, kept []rec, segs []uint64)
		hint     string
		damaged  int // files named ".damaged-…" after the repair
		wantLogs string
	}{
		{"bad frame in a sealed segment", func(t *testing.T, dir string, recs []rec) (Position, []rec, []uint64) {
			b := readFileT(t, segPath(dir, 2))
			b[recs[20].pos.Offset+30] ^= 1
			writeFileT(t, segPath(dir, 2), b)
			return Position{}, recs[:20], []uint64{1, 2}
		}, repairTruncate, 2, "repaired corruption"},
		{"bad header of a sealed segment", func(t *testing.T, dir string, recs []rec) (Position, []rec, []uint64) {
			b := readFileT(t, segPath(dir, 1))
			b[3] = 'X'
			writeFileT(t, segPath(dir, 1), b)
			return Position{}, nil, []uint64{1}
		}, repairTruncate, 3, "repaired corruption"},
		{"segment missing from the sequence", func(t *testing.T, dir string, recs []rec) (Position, []rec, []uint64) {
			if err := os.Remove(segPath(dir, 2)); err != nil {
				t.Fatal(err)
			}
			return Position{}, recs[:17], []uint64{1}
		}, repairGap, 1, "bytes_moved=1408"},
		{"segment named by the replay position missing", func(t *testing.T, dir string, recs []rec) (Position, []rec, []uint64) {
			if err := os.Remove(segPath(dir, 2)); err != nil {
				t.Fatal(err)
			}
			return Position{2, segmentHeaderSize}, nil, []uint64{1, 2}
		}, repairFrom, 1, "segments_moved=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, recs := buildCorruptible(t)
			from, kept, segs := tt.damage(t, dir, recs)
			o := opts(dir)
			o.SegmentSize = 4096
			_, _, err := openCollect(o, from)
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Repair != tt.hint || !strings.Contains(err.Error(), "start with --wal-repair to "+tt.hint) {
				t.Fatalf("Open: %v, want the hint %q", err, tt.hint)
			}
			logger, logs := newLogger()
			o.Repair, o.Logger = true, logger
			w, got := openT(t, o, from)
			sameRecs(t, got, kept)
			if !slices.Equal(w.Segments(), segs) {
				t.Fatalf("segments %v after repair, want %v", w.Segments(), segs)
			}
			if n := len(damagedCopies(t, dir)); n != tt.damaged {
				t.Fatalf("%d .damaged- files, want %d: %v", n, tt.damaged, damagedCopies(t, dir))
			}
			if !strings.Contains(logs.String(), tt.wantLogs) {
				t.Fatalf("no %q in the log:\n%s", tt.wantLogs, logs)
			}
			more := appendT(t, w, []byte("after repair"))
			closeT(t, w)
			o.Repair = false
			w, got = openT(t, o, from)
			defer closeT(t, w)
			sameRecs(t, got, append(slices.Clone(kept), more...))
		})
	}
}

// TestNoRepairHint: errors that Repair cannot fix do not suggest it.
func TestNoRepairHint(t *testing.T) {
	t.Run("replay position past the end", func(t *testing.T) {
		dir, _ := buildLog(t, 0, 100)
		_, _, err := openCollect(opts(dir), Position{1, fileSize(t, segPath(dir, 1)) + 64})
		checkNoHint(t, err, ErrCorrupt)
	})
	t.Run("replay position inside a frame", func(t *testing.T) {
		dir, recs := buildLog(t, 0, 100, 100)
		_, _, err := openCollect(opts(dir), Position{1, recs[1].pos.Offset + 8})
		checkNoHint(t, err, ErrCorrupt)
	})
	t.Run("replay position inside a missing segment", func(t *testing.T) {
		dir, _ := buildLog(t, 4096, 3000, 3000, 3000)
		if err := os.Remove(segPath(dir, 3)); err != nil {
			t.Fatal(err)
		}
		o := opts(dir)
		o.Repair = true
		_, _, err := openCollect(o, Position{3, 64})
		checkNoHint(t, err, ErrCorrupt)
	})
	t.Run("history missing", func(t *testing.T) {
		dir, _ := buildLog(t, 4096, 3000, 3000, 3000)
		if err := os.Remove(segPath(dir, 1)); err != nil {
			t.Fatal(err)
		}
		o := opts(dir)
		o.Repair = true // does not help either
		_, _, err := openCollect(o, Position{})
		checkNoHint(t, err, ErrHistoryMissing)
		if !strings.Contains(err.Error(), "snapshot") {
			t.Fatalf("error does not say a snapshot is needed: %v", err)
		}
		w, got := openT(t, opts(dir), Position{2, segmentHeaderSize})
		defer closeT(t, w)
		if len(got) != 2 {
			t.Fatalf("replay from segment 2: %d records", len(got))
		}
	})
	t.Run("ReadAt of a damaged record", func(t *testing.T) {
		dir := t.TempDir()
		w, _ := openT(t, opts(dir), Position{})
		defer closeT(t, w)
		recs := appendT(t, w, payload(1, 100))
		b := readFileT(t, segPath(dir, 1))
		b[recs[0].pos.Offset+20] ^= 1
		writeFileT(t, segPath(dir, 1), b)
		_, err := w.ReadAt(recs[0].pos)
		checkNoHint(t, err, ErrCorrupt)
	})
	t.Run("empty dir creates segment 1", func(t *testing.T) {
		w, got := openT(t, opts(t.TempDir()), Position{})
		defer closeT(t, w)
		if len(got) != 0 || !slices.Equal(w.Segments(), []uint64{1}) {
			t.Fatalf("new log: %d records, segments %v", len(got), w.Segments())
		}
	})
}

func checkNoHint(t *testing.T, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err %v, want %v", err, sentinel)
	}
	if strings.Contains(err.Error(), "--wal-repair to") {
		t.Fatalf("error suggests --wal-repair, which cannot fix it: %v", err)
	}
	var ce *CorruptError
	if errors.As(err, &ce) && ce.Repair != "" {
		t.Fatalf("CorruptError.Repair = %q", ce.Repair)
	}
}

// TestDamagedNamesUnique: two repairs in the same instant keep both copies.
func TestDamagedNamesUnique(t *testing.T) {
	defer func(f func() time.Time) { now = f }(now)
	fixed := time.Unix(1700000000, 0)
	now = func() time.Time { return fixed }
	dir, recs := buildCorruptible(t)
	o := opts(dir)
	o.SegmentSize, o.Repair = 4096, true
	for _, k := range []int{30, 20} { // segment 2 twice: the second repair's copy has the same name base
		b := readFileT(t, segPath(dir, 2))
		b[recs[k].pos.Offset+30] ^= 1
		writeFileT(t, segPath(dir, 2), b)
		w, got := openT(t, o, Position{})
		sameRecs(t, got, recs[:k])
		closeT(t, w)
	}
	copies := damagedCopies(t, dir)
	var seg2 []string
	for _, c := range copies {
		if strings.HasPrefix(c, "0000000000000002.wal.damaged-") {
			seg2 = append(seg2, c)
		}
	}
	if len(seg2) != 2 || seg2[0] == seg2[1] {
		t.Fatalf("copies of segment 2: %v, want two distinct (all: %v)", seg2, copies)
	}
}
