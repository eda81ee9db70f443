package wal

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOnFsyncAndSlowFsync: every fsync of a segment is reported to OnFsync, and one slower than
// SlowFsync is logged as a warning with its duration.
func TestOnFsyncAndSlowFsync(t *testing.T) {
	for _, tc := range []struct {
		name string
		slow time.Duration
		warn bool
	}{
		{"fast", time.Hour, false},
		{"slow", time.Nanosecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, lb := newLogger()
			var n atomic.Int64
			o := opts(t.TempDir())
			o.Logger, o.SlowFsync = log, tc.slow
			o.OnFsync = func(d time.Duration) {
				if d < 0 {
					t.Errorf("OnFsync(%s)", d)
				}
				n.Add(1)
			}
			w, _ := openT(t, o, Position{})
			before := n.Load() // creating the first segment fsyncs its header
			appendT(t, w, []byte("one"), []byte("two"))
			if got := n.Load() - before; got != 2 {
				t.Errorf("OnFsync called %d times for 2 appends waited for one by one, want 2", got)
			}
			closeT(t, w)
			warned := strings.Contains(lb.String(), "wal: slow fsync")
			if warned != tc.warn {
				t.Errorf("slow fsync warning logged = %v, want %v; log:\n%s", warned, tc.warn, lb.String())
			}
			if tc.warn && !strings.Contains(lb.String(), "took=") {
				t.Errorf("the warning does not say how long the fsync took:\n%s", lb.String())
			}
		})
	}
}

// TestDiskBytes is the size of the segment files, across a rotation and a removal.
func TestDiskBytes(t *testing.T) {
	dir := t.TempDir()
	w, _ := openT(t, opts(dir), Position{})
	defer closeT(t, w)
	sum := func() int64 {
		var n int64
		for _, seq := range w.Segments() {
			n += fileSize(t, segPath(dir, seq))
		}
		return n
	}
	appendT(t, w, payload(1, 1000), payload(2, 1000))
	if got, want := w.DiskBytes(), sum(); got != want || got < 2000 {
		t.Fatalf("DiskBytes = %d, want %d (the segment files' sizes)", got, want)
	}
	w.Rotate()
	appendT(t, w, payload(3, 500))
	if got, want := w.DiskBytes(), sum(); got != want {
		t.Fatalf("after rotation: DiskBytes = %d, want %d", got, want)
	}
	first := w.Segments()[0]
	if err := w.Remove(first); err != nil {
		t.Fatal(err)
	}
	if got, want := w.DiskBytes(), sum(); got != want || got >= 2000 {
		t.Fatalf("after removing segment %d: DiskBytes = %d, want %d", first, got, want)
	}
}
