package wal_test

// Power-loss tests live in package wal_test: crashfs implements wal.FS, so it imports wal.

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/crashfs"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

type record struct {
	pos  wal.Position
	data []byte
}

const snapshotPath = "/data/snapshot"

func comparePos(a, b wal.Position) int {
	return cmp.Or(cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Offset, b.Offset))
}

// powerLoss runs one crash: concurrent appenders (and, at times, Rotate and Remove of the
// segments before the rotation, as a snapshot would allow) on a crashfs, the power cut at a
// mutating file-system operation chosen by seed, then Open without Repair on the disk as found.
// Open must succeed, replay every acknowledged record after the last "snapshot" position in
// order, and replay nothing that was not appended at that position.
func powerLoss(t testing.TB, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	policy := []wal.SyncPolicy{wal.SyncBatch, wal.SyncAlways}[r.IntN(2)]
	o := wal.Options{
		Dir:         "/data/wal",
		FS:          crashfs.New(),
		Sync:        policy,
		SegmentSize: int64(256 + r.IntN(4096)),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		LazyDelay:   []time.Duration{time.Millisecond, time.Hour}[r.IntN(2)],
	}
	cfs := o.FS.(*crashfs.FS)
	w, err := wal.Open(o, wal.Position{}, func(wal.Position, []byte) error { return nil })
	if err != nil {
		t.Fatalf("seed %d: Open of an empty log: %v", seed, err)
	}
	writers, each, maxSize := 1+r.IntN(8), 5+r.IntN(40), []int{64, 300, 700}[r.IntN(3)]
	crashAt := cfs.Ops() + 1 + r.Int64N(int64(writers*each*2+10))
	lost := cfs.LoseAt(crashAt, rand.New(rand.NewPCG(seed, 2)))
	compact := r.IntN(3) == 0

	var mu sync.Mutex
	appended := map[wal.Position][]byte{}
	var acked []record
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			wr := rand.New(rand.NewPCG(seed, uint64(100+g)))
			for i := range each {
				data := fmt.Appendf(nil, "writer %d record %d ", g, i)
				data = append(data, bytes.Repeat([]byte{byte(g + 1)}, wr.IntN(maxSize))...)
				// Appenders serialise on mu, so a record's "snapshot" order is its append order.
				// A third of the records are lazy; half of those nobody waits for (they may be
				// lost, but must never come back wrong or out of order).
				kind := wr.IntN(6)
				add := w.Append
				if kind < 2 {
					add = w.AppendLazy
				}
				mu.Lock()
				pos, wait := add(data)
				if pos != (wal.Position{}) {
					appended[pos] = data
				}
				mu.Unlock()
				if kind == 0 {
					continue
				}
				if err := wait(); err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, record{pos, data})
				mu.Unlock()
				if compact && g == 0 && i%5 == 4 {
					// A "snapshot" at the rotation: durable before the segments go.
					mu.Lock()
					p := w.Rotate()
					mu.Unlock()
					snap := binary.LittleEndian.AppendUint64(nil, p.Segment)
					snap = binary.LittleEndian.AppendUint64(snap, uint64(p.Offset))
					if wal.WriteFileAtomic(cfs, snapshotPath, snap) != nil {
						return
					}
					for _, seq := range w.Segments() {
						if seq < p.Segment && w.Remove(seq) != nil {
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	var after *crashfs.FS
	select {
	case after = <-lost:
	default:
		after = cfs.PowerLoss(rand.New(rand.NewPCG(seed, 3)))
	}
	w.Close() // fails: the power is gone; it must not hang

	o.FS = after
	var from wal.Position // replay starts at the last durable snapshot
	if snap, err := wal.ReadFile(after, snapshotPath); err == nil {
		from = wal.Position{Segment: binary.LittleEndian.Uint64(snap), Offset: int64(binary.LittleEndian.Uint64(snap[8:]))}
	}
	var got []record
	collect := func(pos wal.Position, data []byte) error {
		got = append(got, record{pos, bytes.Clone(data)})
		return nil
	}
	w, err = wal.Open(o, from, collect)
	if err != nil {
		t.Fatalf("seed %d (%s, segment size %d, crash at op %d): Open after power loss: %v\n%s",
			seed, policyName(policy), o.SegmentSize, crashAt, err, after)
	}
	for i, g := range got {
		if i > 0 && comparePos(got[i-1].pos, g.pos) >= 0 {
			t.Fatalf("seed %d: replay out of order: %+v after %+v", seed, g.pos, got[i-1].pos)
		}
		if want, ok := appended[g.pos]; !ok || !bytes.Equal(want, g.data) {
			t.Fatalf("seed %d: replayed a record at %+v that was not appended there", seed, g.pos)
		}
	}
	replayed := make(map[wal.Position]bool, len(got))
	for _, g := range got {
		replayed[g.pos] = true
	}
	slices.SortFunc(acked, func(a, b record) int { return comparePos(a.pos, b.pos) })
	for _, a := range acked {
		if comparePos(a.pos, from) >= 0 && !replayed[a.pos] {
			t.Fatalf("seed %d (%s, segment size %d, crash at op %d): acknowledged record at %+v lost (replayed %d of %d acknowledged)\n%s",
				seed, policyName(policy), o.SegmentSize, crashAt, a.pos, len(got), len(acked), after)
		}
	}
	// The log goes on from there, and a clean reopen replays the same plus the new record.
	pos, wait := w.Append([]byte("after the reboot"))
	if err := wait(); err != nil {
		t.Fatalf("seed %d: append after recovery: %v", seed, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("seed %d: close after recovery: %v", seed, err)
	}
	want := append(got, record{pos, []byte("after the reboot")})
	got = nil
	w, err = wal.Open(o, from, collect)
	if err != nil {
		t.Fatalf("seed %d: second Open: %v", seed, err)
	}
	defer w.Close()
	if len(got) != len(want) {
		t.Fatalf("seed %d: second Open replayed %d records, want %d", seed, len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("seed %d: second Open: record %d at %+v, want %+v", seed, i, got[i].pos, want[i].pos)
		}
	}
}

func policyName(p wal.SyncPolicy) string {
	return map[wal.SyncPolicy]string{wal.SyncBatch: "batch", wal.SyncAlways: "always", wal.SyncNone: "none"}[p]
}

// TestPowerLoss runs powerLoss for many seeds in about two seconds (FuzzPowerLoss runs more).
func TestPowerLoss(t *testing.T) {
	deadline := time.Now().Add(2 * time.Second)
	n := uint64(0)
	for ; n < 2000 && (n < 50 || time.Now().Before(deadline)); n++ {
		powerLoss(t, n)
	}
	t.Logf("%d power losses", n)
}

// FuzzPowerLoss: make fuzz runs it with fuzzer-chosen seeds (each seed picks the policy,
// segment size, workload and crash point).
func FuzzPowerLoss(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { powerLoss(t, seed) })
}
