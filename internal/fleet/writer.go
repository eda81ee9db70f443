package fleet

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// DeliveryWriter publishes a relay's delivery changes to the fleet's view in batches, off the
// delivery path: Add queues a change without blocking; Run takes the queue every Interval (or
// once it holds BatchSize), keeps the newest state of each delivery, and writes them, one
// statement per BatchSize rows, so several changes of one delivery within an interval cost one
// row. A batch that fails is kept and written again, after a backoff, until PostgreSQL takes it.
//
// It is bounded: while PostgreSQL is unreachable it keeps the newest state of at most
// MaxPending deliveries and drops the oldest deliveries' beyond that (ids sort by creation
// time); Add drops a change when its queue is full (Run empties it at least every Interval,
// whether PostgreSQL answers or not). The view is best effort: the relay's WAL stays the truth,
// and a relay publishes every delivery it holds again (Put), at start and after drops, which
// repairs what was dropped, or lost with a process that was killed.
//
// V is the caller's change type (the relay's store.DeliveryState), turned into a DeliveryRow
// only when written. Add costs a copy of V appended under a mutex, and a wake-up of Run when
// the changes queued would complete a batch with the deliveries Run holds: once per BatchSize
// changes of new deliveries. (Changes that only update deliveries Run already holds can wake it
// once each while it holds BatchSize-1 of them, which lasts until the next Interval.)
type DeliveryWriter[V any] struct {
	opts    WriterOptions[V]
	mu      sync.Mutex
	queue   []V           // added since Run last took them; at most opts.Queue
	room    int           // queue length at which Add wakes Run (see arm); under mu
	kick    chan struct{} // the queue reached room
	held    atomic.Int64  // states Run holds, written or not
	dropped atomic.Int64  // by Add, reported by Run

	// Reused by one job after another (never two at once), so a write allocates per row only
	// the row's strings.
	keys     [][16]byte
	rows     []DeliveryRow
	finished map[string]struct{}
}

// WriterOptions configures a DeliveryWriter. Key, Version, Row and Write are required.
type WriterOptions[V any] struct {
	// Key is the delivery's id as 16 bytes whose order is creation order.
	Key func(V) [16]byte
	// Version orders the states of one delivery (see DeliveryRow.Version).
	Version func(V) int64
	// Row is the row a state is written as.
	Row func(V) DeliveryRow
	// Write writes one batch of rows of distinct deliveries (the relay's: UpsertDeliveries
	// with its relay id, or an error while it has no connection). It must not keep rows,
	// which the next batch reuses.
	Write func(ctx context.Context, rows []DeliveryRow) error
	// Trim, when set, is given every TrimInterval the endpoints whose finished deliveries were
	// written since its last call (the relay's: TrimDeliveries to its history limit).
	Trim func(ctx context.Context, endpointIDs []string) error
	// OnError is told each failed Write or Trim (it is retried), OnDrop how many changes were
	// dropped since it was last told. Both are called from Run's goroutine.
	OnError func(error)
	OnDrop  func(n int64)

	Interval     time.Duration // between writes; 0: 200ms
	TrimInterval time.Duration // 0: 10s
	BatchSize    int           // rows per statement; 0: 500
	MaxPending   int           // states kept while PostgreSQL is unreachable; 0: 50,000
	Queue        int           // changes Add queues for Run; 0: 65,536
	Timeout      time.Duration // one Write or Trim; 0: 10s
	// FinalTimeout bounds the last write, when Run's context ends; 0: 5s.
	FinalTimeout time.Duration
}

// NewDeliveryWriter returns a writer; nothing is written until Run.
func NewDeliveryWriter[V any](opts WriterOptions[V]) *DeliveryWriter[V] {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Interval, 200*time.Millisecond)
	def(&opts.TrimInterval, 10*time.Second)
	def(&opts.Timeout, 10*time.Second)
	def(&opts.FinalTimeout, 5*time.Second)
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 50_000
	}
	if opts.Queue <= 0 {
		opts.Queue = 1 << 16
	}
	if opts.OnError == nil {
		opts.OnError = func(error) {}
	}
	if opts.OnDrop == nil {
		opts.OnDrop = func(int64) {}
	}
	return &DeliveryWriter[V]{opts: opts, room: opts.BatchSize, kick: make(chan struct{}, 1)}
}

// Add queues a change without blocking: when the queue is full the change is dropped (and
// counted). Safe for concurrent use.
func (w *DeliveryWriter[V]) Add(v V) {
	w.mu.Lock()
	n := len(w.queue)
	if n < w.opts.Queue {
		w.queue = append(w.queue, v)
	}
	room := w.room
	w.mu.Unlock()
	switch {
	case n >= w.opts.Queue:
		w.dropped.Add(1)
	case n+1 == room:
		w.wake()
	}
}

func (w *DeliveryWriter[V]) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// arm sets the queue length at which Add wakes Run: what completes a batch with the states Run
// holds, or a whole batch while Run cannot write anyway (a job under way, a backoff), when it
// looks again on its own. Comparing the queue alone with BatchSize would leave a batch split
// between queue and pending waiting for the interval. Changes added before the new room was
// set are caught here.
func (w *DeliveryWriter[V]) arm(canWrite bool, pending int) {
	room := w.opts.BatchSize
	if canWrite {
		room = max(1, room-pending)
	}
	w.mu.Lock()
	w.room = room
	n := len(w.queue)
	w.mu.Unlock()
	if n >= room {
		w.wake()
	}
}

// Put queues a change, waiting while the writer holds more than half of MaxPending (so that
// publishing every delivery never makes it drop any), or until ctx ends.
func (w *DeliveryWriter[V]) Put(ctx context.Context, v V) error {
	for {
		w.mu.Lock()
		// Under the lock take swaps the queue with: a change is counted in the queue or in
		// held, never in neither.
		if n := len(w.queue); n+int(w.held.Load()) < w.opts.MaxPending/2 && n < w.opts.Queue {
			w.queue = append(w.queue, v)
			room := w.room
			w.mu.Unlock()
			if n+1 >= room {
				w.wake()
			}
			return nil
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.opts.Interval / 4):
		}
	}
}

// Flushed reports, once Run has returned, whether it wrote every change it was given: none
// held, none dropped since OnDrop was last told.
func (w *DeliveryWriter[V]) Flushed() bool { return w.Held() == 0 && w.dropped.Load() == 0 }

// Held is how many delivery states the writer holds (queued, or kept to write).
func (w *DeliveryWriter[V]) Held() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) + int(w.held.Load())
}

// take merges the queue into pending and sets held: spare becomes the next queue, and take
// returns the old one, emptied, as the next spare. The swap counts the changes it takes in
// held under the queue's lock (so Put never counts a change nowhere); the merge, which may
// sort to drop, runs without it, so Add never waits for more than the swap.
func (w *DeliveryWriter[V]) take(pending map[[16]byte]V, spare []V, inJob int) []V {
	w.mu.Lock()
	q := w.queue
	w.queue = spare[:0]
	w.held.Add(int64(len(q)))
	w.mu.Unlock()
	for _, v := range q {
		w.merge(pending, v)
	}
	w.held.Store(int64(len(pending) + inJob))
	clear(q) // no attempts kept alive by a stale copy
	return q[:0]
}

// job is one Write or Trim run by Run's worker; its result comes back on done.
type job[V any] struct {
	batch    map[[16]byte]V // write: the states; on failure, those not written
	trim     []string       // trim: the endpoints
	finished []string       // write: endpoints of the finished deliveries written
	err      error
}

// Run writes until ctx ends, then writes what it still holds within FinalTimeout and returns.
// Call it once.
func (w *DeliveryWriter[V]) Run(ctx context.Context) {
	var (
		pending = make(map[[16]byte]V)
		toTrim  = make(map[string]struct{})
		busy    *job[V] // the job under way
		done    = make(chan *job[V], 1)
		retryAt time.Time
		backoff time.Duration
		trimAt  = time.Now().Add(w.opts.TrimInterval)
		inJob   int // states of the job under way
		spare   []V
		spareM  map[[16]byte]V // a written batch's map, emptied, for the next
	)
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	count := func() { spare = w.take(pending, spare, inJob) }
	start := func(j *job[V]) {
		busy = j
		go func() {
			w.run(ctx, j)
			done <- j
		}()
	}
	write := func() {
		j := &job[V]{batch: pending}
		pending, spareM, inJob = spareM, nil, len(j.batch)
		if pending == nil {
			pending = make(map[[16]byte]V, len(j.batch))
		}
		start(j)
	}
	// next starts, unless a job is under way or a backoff holds them back: a write when the
	// batch is full; a trim when one is due; a write when the interval passed (tick).
	next := func(tick bool) {
		now := time.Now()
		switch {
		case busy != nil || now.Before(retryAt):
		case len(pending) >= w.opts.BatchSize:
			write()
		case w.opts.Trim != nil && len(toTrim) > 0 && !now.Before(trimAt):
			j := &job[V]{trim: make([]string, 0, len(toTrim))}
			for ep := range toTrim {
				j.trim = append(j.trim, ep)
			}
			clear(toTrim)
			trimAt = now.Add(w.opts.TrimInterval)
			start(j)
		case tick && len(pending) > 0:
			write()
		}
		w.arm(busy == nil && !now.Before(retryAt), len(pending))
	}
	for {
		select {
		case <-w.kick:
			count()
			next(false)
		case <-tick.C:
			if n := w.dropped.Swap(0); n > 0 {
				w.opts.OnDrop(n)
			}
			count()
			next(true)
		case j := <-done:
			busy, inJob = nil, 0
			w.settle(j, pending, toTrim)
			if j.batch != nil {
				clear(j.batch)
				spareM = j.batch
			}
			if j.err != nil {
				backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
				retryAt = time.Now().Add(backoff)
				if ctx.Err() == nil {
					w.opts.OnError(j.err)
				}
			} else if j.batch != nil {
				backoff, retryAt = 0, time.Time{}
			}
			count()
			next(false)
		case <-ctx.Done():
			if busy != nil {
				j := <-done // its context ended too: what it did not write comes back
				w.settle(j, pending, toTrim)
			}
			w.take(pending, nil, 0)
			w.final(pending)
			return
		}
	}
}

// final writes everything held, within FinalTimeout.
func (w *DeliveryWriter[V]) final(pending map[[16]byte]V) {
	if len(pending) == 0 {
		w.held.Store(0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.FinalTimeout)
	defer cancel()
	j := &job[V]{batch: pending}
	w.run(ctx, j)
	if j.err != nil {
		w.opts.OnError(j.err)
	}
	w.held.Store(int64(len(j.batch)))
}

// run does a job: a write in statements of BatchSize rows (on failure, j.batch keeps what was
// not written), or a trim.
func (w *DeliveryWriter[V]) run(ctx context.Context, j *job[V]) {
	if j.trim != nil {
		tctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		defer cancel()
		j.err = w.opts.Trim(tctx, j.trim)
		return
	}
	keys := w.keys[:0]
	for k := range j.batch {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	w.keys = keys
	if w.finished == nil {
		w.finished = make(map[string]struct{})
	}
	finished, rows := w.finished, w.rows
	defer func() {
		clear(finished)
		clear(rows[:cap(rows)]) // no strings kept alive
		w.rows = rows[:0]
	}()
	for len(keys) > 0 {
		n := min(len(keys), w.opts.BatchSize)
		rows = rows[:0]
		for _, k := range keys[:n] {
			rows = append(rows, w.opts.Row(j.batch[k]))
		}
		wctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		err := w.opts.Write(wctx, rows)
		cancel()
		if err != nil {
			j.err = err
			break
		}
		for i, k := range keys[:n] {
			delete(j.batch, k)
			if rows[i].Status == api.StatusSucceeded || rows[i].Status == api.StatusFailed {
				finished[rows[i].EndpointID] = struct{}{}
			}
		}
		keys = keys[n:]
	}
	for ep := range finished {
		j.finished = append(j.finished, ep)
	}
}

// settle takes a job's result back: states a write did not write return to pending unless a
// newer one came meanwhile; the endpoints of finished deliveries written, or of a trim that
// failed, are to be trimmed.
func (w *DeliveryWriter[V]) settle(j *job[V], pending map[[16]byte]V, toTrim map[string]struct{}) {
	for _, v := range j.batch {
		w.merge(pending, v)
	}
	for _, ep := range j.finished {
		toTrim[ep] = struct{}{}
	}
	if j.err != nil {
		for _, ep := range j.trim {
			toTrim[ep] = struct{}{}
		}
	}
}

// merge keeps v unless pending holds a newer state of its delivery, then drops the oldest
// deliveries' states past MaxPending (down to 7/8 of it, so that the sort is rare).
func (w *DeliveryWriter[V]) merge(pending map[[16]byte]V, v V) {
	k := w.opts.Key(v)
	if old, ok := pending[k]; ok && w.opts.Version(old) > w.opts.Version(v) {
		return
	}
	pending[k] = v
	if len(pending) <= w.opts.MaxPending {
		return
	}
	keys := make([][16]byte, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	drop := len(keys) - w.opts.MaxPending*7/8
	for _, k := range keys[:drop] {
		delete(pending, k)
	}
	w.opts.OnDrop(int64(drop))
}
