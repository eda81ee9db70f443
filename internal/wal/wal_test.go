package wal

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncBatch, SyncAlways, SyncNone} {
		t.Run(policyName(policy), func(t *testing.T) {
			dir := t.TempDir()
			o := opts(dir)
			o.Sync = policy
			w, got := openT(t, o, Position{})
			if len(got) != 0 || w.Written() != 0 {
				t.Fatalf("new log: %d records, Written %d", len(got), w.Written())
			}
			if segs := w.Segments(); !slices.Equal(segs, []uint64{1}) {
				t.Fatalf("new log segments %v, want [1]", segs)
			}
			var want []rec
			for i := range 60 {
				n := 1 + (i*397)%3000
				before := w.Written()
				want = append(want, appendT(t, w, payload(uint64(i), n))...)
				// Each waited-for record is a chunk of its own: its frame and a commit frame.
				if d := w.Written() - before; d != int64(frameSize(n)+commitFrameSize) {
					t.Fatalf("Written grew by %d for a %d-byte record, want %d", d, n, frameSize(n)+commitFrameSize)
				}
			}
			for i, r := range want {
				if i > 0 && r.pos.Offset != want[i-1].pos.Offset+int64(frameSize(len(want[i-1].data))+commitFrameSize) {
					t.Fatalf("record %d at %+v does not follow record %d", i, r.pos, i-1)
				}
			}
			checkReadAt(t, w, want)
			closeT(t, w)

			w, got = openT(t, o, Position{})
			sameRecs(t, got, want)
			checkReadAt(t, w, want)
			if w.Written() != 0 {
				t.Fatalf("Written after reopen %d, want 0", w.Written())
			}
			// Appends continue where the replay ended.
			more := appendT(t, w, []byte("after reopen"))
			last := want[len(want)-1]
			if more[0].pos.Offset != last.pos.Offset+int64(frameSize(len(last.data))+commitFrameSize) {
				t.Fatalf("first append after reopen at %+v", more[0].pos)
			}
			closeT(t, w)
			w, got = openT(t, o, Position{})
			defer closeT(t, w)
			sameRecs(t, got, append(want, more...))
		})
	}
}

func checkReadAt(t *testing.T, w *WAL, want []rec) {
	t.Helper()
	for i, r := range want {
		b, err := w.ReadAt(r.pos)
		if err != nil || !bytes.Equal(b, r.data) {
			t.Fatalf("ReadAt record %d at %+v: %d bytes, %v", i, r.pos, len(b), err)
		}
	}
}

// TestConcurrentAppends: positions handed to concurrent appenders are distinct, each holds its
// appender's bytes, and replay yields them in position order, which is the order of the calls.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	o := opts(dir)
	o.SegmentSize = 64 << 10 // rotate a few times under concurrency
	w, _ := openT(t, o, Position{})
	const writers, each = 16, 50
	var mu sync.Mutex
	var all []rec
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				d := payload(uint64(g*1000+i), 1+(g*31+i*17)%2000)
				pos, wait := w.Append(d)
				if err := wait(); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				all = append(all, rec{pos, d})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b rec) int { return comparePos(a.pos, b.pos) })
	for i := 1; i < len(all); i++ {
		if all[i].pos == all[i-1].pos {
			t.Fatalf("two records at %+v", all[i].pos)
		}
	}
	checkReadAt(t, w, all)
	closeT(t, w)
	w, got := openT(t, o, Position{})
	defer closeT(t, w)
	sameRecs(t, got, all)
	if len(w.Segments()) < 2 {
		t.Fatalf("expected rotation, segments %v", w.Segments())
	}
}

func comparePos(a, b Position) int {
	return cmp.Or(cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Offset, b.Offset))
}

// TestClose: Close writes what is queued; afterwards appends fail with ErrClosed.
func TestClose(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncBatch, SyncAlways, SyncNone} {
		t.Run(policyName(policy), func(t *testing.T) {
			dir := t.TempDir()
			o := opts(dir)
			o.Sync, o.SegmentSize = policy, 8192
			w, _ := openT(t, o, Position{})
			var want []rec
			var waits []func() error
			for i := range 200 {
				d := payload(uint64(i), 1+i*7)
				pos, wait := w.Append(d) // nobody waits before Close
				want, waits = append(want, rec{pos, d}), append(waits, wait)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			for i, wait := range waits {
				if err := waitT(t, wait); err != nil {
					t.Fatalf("record %d queued before Close: %v", i, err)
				}
			}
			pos, wait := w.Append([]byte("late"))
			if err := waitT(t, wait); !errors.Is(err, ErrClosed) || pos != (Position{}) {
				t.Fatalf("Append after Close: %+v, %v; want ErrClosed", pos, err)
			}
			if _, err := w.ReadAt(want[0].pos); err == nil {
				t.Fatal("ReadAt after Close succeeded")
			}
			if err := w.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := w.Err(); err != nil {
				t.Fatalf("Err after Close: %v", err)
			}
			w, got := openT(t, o, Position{})
			defer closeT(t, w)
			sameRecs(t, got, want)
		})
	}
}

func TestParseSyncPolicy(t *testing.T) {
	tests := []struct {
		in   string
		want SyncPolicy
		ok   bool
	}{
		{"batch", SyncBatch, true},
		{"always", SyncAlways, true},
		{"none", SyncNone, true},
		{"", 0, false},
		{"Batch", 0, false},
		{"fsync", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSyncPolicy(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseSyncPolicy(%q) = %v, %v", tt.in, got, err)
		}
	}
	if SyncPolicy(0) != SyncBatch {
		t.Error("the zero SyncPolicy is not SyncBatch")
	}
}

func policyName(p SyncPolicy) string {
	return map[SyncPolicy]string{SyncBatch: "batch", SyncAlways: "always", SyncNone: "none"}[p]
}

// TestGroupCommit: appends that queue while an fsync is under way share the next one. The
// first fsync is held until all 50 appenders have queued, so the count is exact: one fsync
// for the first record and one for the other 50.
func TestGroupCommit(t *testing.T) {
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
	ffs.beforeSync = func(string) {
		once.Do(func() { close(entered); <-release })
	}
	ffs.mu.Unlock()
	base := ffs.segmentSyncs()

	_, first := w.Append([]byte("first"))
	<-entered // the flusher is inside fsync
	const n = 50
	var queued, done sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		queued.Add(1)
		done.Go(func() {
			_, wait := w.Append(payload(uint64(i), 100))
			queued.Done()
			errs <- wait()
		})
	}
	queued.Wait()
	unblock()
	if err := waitT(t, first); err != nil {
		t.Fatal(err)
	}
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if syncs := ffs.segmentSyncs() - base; syncs >= n || syncs != 2 {
		t.Fatalf("%d fsyncs for %d appends, want 2 (one per batch)", syncs, n+1)
	}
}

// TestSyncCounts checks each policy's fsyncs structurally, with free-running appenders.
func TestSyncCounts(t *testing.T) {
	tests := []struct {
		policy SyncPolicy
		check  func(syncs, records int) bool
		want   string
	}{
		{SyncBatch, func(s, r int) bool { return s >= 1 && s < r }, "at least 1 and fewer than records"},
		{SyncAlways, func(s, r int) bool { return s >= r }, "at least one per record"},
		{SyncNone, func(s, r int) bool { return s == 0 }, "none"},
	}
	for _, tt := range tests {
		t.Run(policyName(tt.policy), func(t *testing.T) {
			ffs := newFaultFS()
			o := opts(t.TempDir())
			o.FS, o.Sync, o.SegmentSize = ffs, tt.policy, 32<<10
			w, _ := openT(t, o, Position{})
			const writers, each = 50, 10
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range each {
						if _, wait := w.Append(payload(uint64(g), 100+i)); wait() != nil {
							t.Error("append failed")
						}
					}
				})
			}
			wg.Wait()
			w.Rotate()
			appendT(t, w, []byte("in the next segment"))
			closeT(t, w)
			records := writers*each + 1
			syncs := ffs.segmentSyncs()
			t.Logf("%s: %d segment fsyncs, %d dir fsyncs for %d records in %d segments",
				policyName(tt.policy), syncs, ffs.count(opSyncDir), records, len(w.Segments()))
			if !tt.check(syncs, records) {
				t.Fatalf("%d segment fsyncs for %d records, want %s", syncs, records, tt.want)
			}
		})
	}
}
