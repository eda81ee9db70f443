package fleet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
)

// change is a test's delivery state: its key is n, its row r.
type change struct {
	n uint64
	r DeliveryRow
}

func changeOf(n uint64, ep, status string, version int64) change {
	return change{n, DeliveryRow{ID: fmt.Sprintf("dlv_%026d", n), EndpointID: ep, EventID: "evt_1",
		EventType: api.TypeIncidentOpened, Status: status, Version: version}}
}

// batchLog is a Write that keeps every batch, failing while fail is set.
type batchLog struct {
	mu      sync.Mutex
	batches [][]DeliveryRow
	fail    atomic.Bool
	calls   atomic.Int64
}

func (r *batchLog) write(_ context.Context, rows []DeliveryRow) error {
	r.calls.Add(1)
	if r.fail.Load() {
		return errors.New("down")
	}
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(rows))
	r.mu.Unlock()
	return nil
}

// latest is the last version written of each delivery.
func (r *batchLog) latest() map[string]DeliveryRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]DeliveryRow{}
	for _, b := range r.batches {
		for _, row := range b {
			out[row.ID] = row
		}
	}
	return out
}

func testWriter(opts WriterOptions[change]) *DeliveryWriter[change] {
	opts.Key = func(c change) (k [16]byte) { binary.BigEndian.PutUint64(k[8:], c.n); return k }
	opts.Version = func(c change) int64 { return c.r.Version }
	opts.Row = func(c change) DeliveryRow { return c.r }
	return NewDeliveryWriter(opts)
}

// runWriter runs w until the returned stop, which waits for Run to return.
func runWriter(t *testing.T, w *DeliveryWriter[change]) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWriterCoalesces: the changes of one delivery within an interval are written as one row,
// its newest state, whatever order they came in; what is held when Run ends is written then.
func TestWriterCoalesces(t *testing.T) {
	t.Parallel()
	rec := &batchLog{}
	w := testWriter(WriterOptions[change]{Write: rec.write, Interval: time.Hour})
	stop := runWriter(t, w)
	for n := range uint64(10) {
		for _, v := range []int64{0, 3, 6, 4, 1, 7, 2} {
			st := api.StatusPending
			if v == 7 {
				st = api.StatusSucceeded
			}
			w.Add(changeOf(n, "ep_a", st, v))
		}
	}
	if h := w.Held(); h != 70 {
		t.Fatalf("holds %d changes, want the 70 queued", h)
	}
	time.Sleep(20 * time.Millisecond)
	if rec.calls.Load() != 0 {
		t.Fatalf("written before the interval")
	}
	stop()
	if len(rec.batches) != 1 || len(rec.batches[0]) != 10 {
		t.Fatalf("batches %v, want one of 10 rows", rec.batches)
	}
	for _, r := range rec.batches[0] {
		if r.Version != 7 || r.Status != api.StatusSucceeded {
			t.Errorf("%s written at version %d (%s), want 7", r.ID, r.Version, r.Status)
		}
	}
	if !slices.IsSortedFunc(rec.batches[0], func(a, b DeliveryRow) int { return compareString(a.ID, b.ID) }) {
		t.Errorf("batch not in id order")
	}
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestWriterBatches: a full batch is written at once, without waiting for the interval, in
// statements of at most BatchSize rows.
func TestWriterBatches(t *testing.T) {
	t.Parallel()
	rec := &batchLog{}
	w := testWriter(WriterOptions[change]{Write: rec.write, Interval: time.Hour, BatchSize: 10})
	runWriter(t, w)
	for n := range uint64(95) {
		w.Add(changeOf(n, "ep_a", api.StatusPending, 0))
	}
	waitFor(t, "90 rows written", func() bool { return len(rec.latest()) >= 90 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, b := range rec.batches {
		if len(b) > 10 {
			t.Errorf("a statement of %d rows", len(b))
		}
	}
}

// TestWriterRetriesAndBounds: while writes fail, the writer keeps the newest states of at most
// MaxPending deliveries, dropping the oldest deliveries' and saying how many; once writes work
// again, what it kept is written, newest state each.
func TestWriterRetriesAndBounds(t *testing.T) {
	t.Parallel()
	rec := &batchLog{}
	rec.fail.Store(true)
	var dropped, errs atomic.Int64
	w := testWriter(WriterOptions[change]{Write: rec.write, Interval: 5 * time.Millisecond, MaxPending: 40,
		OnDrop: func(n int64) { dropped.Add(n) }, OnError: func(error) { errs.Add(1) }})
	runWriter(t, w)
	for n := range uint64(100) {
		w.Add(changeOf(n, "ep_a", api.StatusPending, 0))
		w.Add(changeOf(n, "ep_a", api.StatusFailed, 1))
	}
	waitFor(t, "failed writes", func() bool { return errs.Load() >= 2 })
	waitFor(t, "the drops", func() bool { return int(dropped.Load())+w.Held() == 100 })
	rec.fail.Store(false)
	waitFor(t, "the write", func() bool { return w.Held() == 0 && len(rec.latest()) > 0 })
	got := rec.latest()
	if len(got) < 35 || len(got) > 40 || int64(len(got))+dropped.Load() != 100 {
		t.Fatalf("%d written, %d dropped, of 100 (MaxPending 40)", len(got), dropped.Load())
	}
	for n := uint64(100 - len(got)); n < 100; n++ {
		if r, ok := got[changeOf(n, "", "", 0).r.ID]; !ok || r.Version != 1 {
			t.Errorf("delivery %d: %+v, %v; want its final state (the newest deliveries are kept)", n, r, ok)
		}
	}
}

// TestWriterTrims: the endpoints of finished deliveries written are trimmed, each once per
// TrimInterval; those with only pending deliveries are not.
func TestWriterTrims(t *testing.T) {
	t.Parallel()
	rec := &batchLog{}
	var mu sync.Mutex
	var trimmed [][]string
	w := testWriter(WriterOptions[change]{Write: rec.write, Interval: 5 * time.Millisecond, TrimInterval: 20 * time.Millisecond,
		Trim: func(_ context.Context, eps []string) error {
			mu.Lock()
			trimmed = append(trimmed, slices.Sorted(slices.Values(eps)))
			mu.Unlock()
			return nil
		}})
	runWriter(t, w)
	w.Add(changeOf(1, "ep_a", api.StatusSucceeded, 1))
	w.Add(changeOf(2, "ep_b", api.StatusFailed, 1))
	w.Add(changeOf(3, "ep_c", api.StatusPending, 0))
	waitFor(t, "a trim", func() bool { mu.Lock(); defer mu.Unlock(); return len(trimmed) > 0 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(trimmed) != 1 || !slices.Equal(trimmed[0], []string{"ep_a", "ep_b"}) {
		t.Fatalf("trimmed %v, want [[ep_a ep_b]]", trimmed)
	}
}

// TestWriterPutWaits: Put holds a caller back while the writer holds more than half its bound,
// instead of letting it drop states, and gives up when its context ends.
func TestWriterPutWaits(t *testing.T) {
	t.Parallel()
	rec := &batchLog{}
	rec.fail.Store(true)
	var dropped atomic.Int64
	w := testWriter(WriterOptions[change]{Write: rec.write, Interval: 5 * time.Millisecond, MaxPending: 20,
		OnDrop: func(n int64) { dropped.Add(n) }})
	runWriter(t, w)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var n uint64
	var err error
	for ; err == nil; n++ {
		err = w.Put(ctx, changeOf(n, "ep_a", api.StatusSucceeded, 1))
	}
	if !errors.Is(err, context.DeadlineExceeded) || n > 15 || dropped.Load() != 0 {
		t.Fatalf("Put %d states before %v, %d dropped; want it to wait at 10 and drop none", n, err, dropped.Load())
	}
	rec.fail.Store(false)
	if err := w.Put(t.Context(), changeOf(n, "ep_a", api.StatusSucceeded, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestWriterPostgresRestart: states written to a real PostgreSQL that restarts in the middle
// all arrive once it is back: the final state of every delivery, none lost.
func TestWriterPostgresRestart(t *testing.T) {
	t.Parallel()
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "")
	db := open(t, dsn, Options{ConnectTimeout: time.Second})
	ep := create(t, db, sample()).ID
	var errs atomic.Int64
	w := testWriter(WriterOptions[change]{Interval: 20 * time.Millisecond, Timeout: 2 * time.Second,
		Write: func(ctx context.Context, rows []DeliveryRow) error {
			_, err := db.UpsertDeliveries(ctx, "relay-a", rows)
			return err
		}, OnError: func(error) { errs.Add(1) }})
	runWriter(t, w)
	const n = 300
	for i := range uint64(n) {
		w.Add(changeOf(i, ep, api.StatusPending, 0))
		if i == n/3 {
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		}
		if i == 2*n/3 {
			time.Sleep(100 * time.Millisecond)
			c.Restart(t)
		}
	}
	for i := range uint64(n) {
		w.Add(changeOf(i, ep, api.StatusSucceeded, 4))
	}
	waitFor(t, "every final state in PostgreSQL", func() bool {
		ds, _, err := db.Deliveries(t.Context(), ep, "", 250)
		if err != nil || len(ds) < 250 {
			return false
		}
		all := page(t, db, ep, 250)
		for _, d := range all {
			if d.Status != api.StatusSucceeded {
				return false
			}
		}
		return len(all) == n
	})
	if errs.Load() == 0 {
		t.Errorf("no write failed: PostgreSQL was not down while writing")
	}
}
