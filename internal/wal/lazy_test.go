package wal

import (
	"fmt"
	"testing"
	"time"
)

// lazyWAL opens a log on a counting FS with the given LazyDelay and policy.
func lazyWAL(t *testing.T, delay time.Duration, policy SyncPolicy) (*WAL, *faultFS, Options) {
	t.Helper()
	ffs := newFaultFS()
	o := opts(t.TempDir())
	o.FS, o.Sync, o.LazyDelay, o.SegmentSize = ffs, policy, delay, 4096
	w, _ := openT(t, o, Position{})
	t.Cleanup(func() { w.Close() })
	return w, ffs, o
}

// TestAppendLazyRidesWithTheNextAppend: lazy records are not written on their own while they
// may wait; the next record someone waits for takes them along in the same write and fsync,
// in the order they were appended.
func TestAppendLazyRidesWithTheNextAppend(t *testing.T) {
	w, ffs, o := lazyWAL(t, time.Hour, SyncBatch)
	writes, syncs := ffs.count(opWrite), ffs.segmentSyncs()
	var want []rec
	for i := range 3 {
		d := fmt.Appendf(nil, "lazy %d", i)
		pos, _ := w.AppendLazy(d)
		want = append(want, rec{pos, d})
	}
	time.Sleep(50 * time.Millisecond) // the flusher had time to write them, were it to
	if n := ffs.count(opWrite) - writes; n != 0 {
		t.Fatalf("%d writes for lazy records alone, want none before LazyDelay", n)
	}
	if n := ffs.segmentSyncs() - syncs; n != 0 {
		t.Fatalf("%d fsyncs for lazy records alone", n)
	}
	want = append(want, appendT(t, w, []byte("eager"))...)
	if n := ffs.count(opWrite) - writes; n != 1 {
		t.Errorf("%d writes for 3 lazy records and 1 eager one, want 1", n)
	}
	if n := ffs.segmentSyncs() - syncs; n != 1 {
		t.Errorf("%d fsyncs, want 1", n)
	}
	closeT(t, w)
	w2, got := openT(t, o, Position{})
	defer closeT(t, w2)
	sameRecs(t, got, want)
}

// TestAppendLazyGetsWritten: whatever else happens, a lazy record is made durable: after
// LazyDelay with nothing else appended, when its wait is called, at a Barrier, at Close, and
// at a Remove that needs the cut behind it.
func TestAppendLazyGetsWritten(t *testing.T) {
	t.Run("after LazyDelay", func(t *testing.T) {
		w, ffs, _ := lazyWAL(t, 20*time.Millisecond, SyncBatch)
		syncs := ffs.segmentSyncs()
		w.AppendLazy([]byte("alone"))
		deadline := time.Now().Add(10 * time.Second)
		for ffs.segmentSyncs() == syncs {
			if time.Now().After(deadline) {
				t.Fatal("a lazy record alone was never fsynced")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	urgeCases := map[string]func(t *testing.T, w *WAL, lazyWait func() error){
		"its wait":  func(t *testing.T, _ *WAL, wait func() error) { mustWait(t, wait) },
		"a Barrier": func(t *testing.T, w *WAL, _ func() error) { mustWait(t, w.Barrier()) },
		"Remove of the segment a lazy record sealed": func(t *testing.T, w *WAL, _ func() error) {
			first, _ := w.AppendLazy(make([]byte, 512))
			for p := first; p.Segment == first.Segment; {
				p, _ = w.AppendLazy(make([]byte, 512)) // past SegmentSize: a cut, lazy too
			}
			done := make(chan error, 1)
			go func() { done <- w.Remove(first.Segment) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Remove: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Remove waited for a cut behind lazy records")
			}
		},
	}
	for name, urge := range urgeCases {
		t.Run(name, func(t *testing.T) {
			w, ffs, _ := lazyWAL(t, time.Hour, SyncBatch)
			syncs := ffs.segmentSyncs()
			_, wait := w.AppendLazy([]byte("lazy"))
			urge(t, w, wait)
			if ffs.segmentSyncs() == syncs {
				t.Fatal("returned before the lazy record was fsynced")
			}
		})
	}
	t.Run("Close", func(t *testing.T) {
		w, _, o := lazyWAL(t, time.Hour, SyncBatch)
		pos, _ := w.AppendLazy([]byte("at close"))
		closeT(t, w)
		w2, got := openT(t, o, Position{})
		defer closeT(t, w2)
		sameRecs(t, got, []rec{{pos, []byte("at close")}})
	})
}

// TestAppendLazyUnderSyncAlways: "always" promises an fsync per record, lazy or not.
func TestAppendLazyUnderSyncAlways(t *testing.T) {
	w, ffs, _ := lazyWAL(t, time.Hour, SyncAlways)
	syncs := ffs.segmentSyncs()
	w.AppendLazy([]byte("lazy")) // its wait is not called: under "always" it must not need it
	deadline := time.Now().Add(10 * time.Second)
	for ffs.segmentSyncs() == syncs {
		if time.Now().After(deadline) {
			t.Fatal(`under "always" a lazy record waited`)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustWait(t *testing.T, wait func() error) {
	t.Helper()
	if err := waitT(t, wait); err != nil {
		t.Fatalf("wait: %v", err)
	}
}
