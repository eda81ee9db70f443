// Package delivery owns getting deliveries to receivers: the per-endpoint queues, the retry
// timers, the outbound HTTP client, signing each attempt, and judging each response.
//
// State lives in internal/store; the engine only holds which deliveries are due and how many
// attempts each endpoint has in flight. Every endpoint has its own queue and its own bound on
// attempts in flight, so a slow or dead endpoint never delays a healthy one: there is no
// shared worker pool for it to fill.
package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// Config configures an Engine.
type Config struct {
	Store *store.Store
	// Schedule is the delay before each retry; len(Schedule) retries follow the first attempt.
	Schedule []time.Duration
	// Timeout bounds one attempt: connect, send, and the whole response.
	Timeout time.Duration
	// MaxInFlight bounds attempts in flight per endpoint (default 16).
	MaxInFlight int
	Policy      netpolicy.Policy
	UserAgent   string
	Logger      *slog.Logger
	// Observer, when set, is told of every attempt, finished delivery and auto-disable.
	Observer Observer
}

// Engine schedules and performs attempts. Create it with New, feed it with Ready, Start it,
// and Stop it once.
type Engine struct {
	cfg    Config
	sender *sender
	log    *slog.Logger

	mu       sync.Mutex
	queues   map[string]*queue // by endpoint id; dropped when empty and idle
	timers   timerHeap
	stopping bool
	wake     chan struct{}
	stop     chan struct{}
	loopDone chan struct{}
	inFlight sync.WaitGroup
}

type queue struct {
	endpointID string
	ready      []store.DeliveryID // FIFO
	head       int
	workers    int // goroutines attempting this endpoint's deliveries, at most MaxInFlight
	// resume: a re-enable made deliveries due that are still only in the store; workers pull
	// them with Store.DueAfter from cursor, a page at a time, when ready runs out. gen tells a
	// pull that finished after a newer resume (or a Drop) to leave the cursor alone.
	resume  bool
	pulling bool
	cursor  store.DeliveryID
	gen     uint64
}

// pullPage is how many deliveries a worker pulls at once after a re-enable: enough to keep
// MaxInFlight workers busy, small enough to cost the store's lock microseconds.
const pullPage = 256

// New returns an engine that is not yet running.
func New(cfg Config) *Engine {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Engine{
		cfg:      cfg,
		sender:   newSender(cfg),
		log:      cfg.Logger,
		queues:   make(map[string]*queue),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
}

// Ready takes a delivery that is due at r.Due. It is the store's OnReady hook. A delivery
// may arrive more than once; the store's Begin turns the extra copies away.
func (e *Engine) Ready(r store.Ready) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return
	}
	if r.Resume {
		q := e.queue(r.EndpointID)
		q.resume, q.cursor = true, store.DeliveryID{}
		q.gen++
		e.dispatch(q)
		return
	}
	if !r.Due.After(time.Now()) {
		e.enqueue(r.EndpointID, r.Delivery)
		return
	}
	e.timers.push(timer{due: r.Due.UnixNano(), id: r.Delivery, ep: r.EndpointID})
	if e.timers[0].id == r.Delivery {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// Drop forgets the timers and queued deliveries of an endpoint that was disabled or deleted
// (the store's OnStop hook), instead of keeping them until they fall due, up to a day later.
// Re-enabling the endpoint hands its held deliveries back through Ready.
func (e *Engine) Drop(endpointID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timers.dropEndpoint(endpointID)
	if q, ok := e.queues[endpointID]; ok {
		// Workers already running finish the attempt they began; the rest of the queue goes.
		clear(q.ready)
		q.ready, q.head = q.ready[:0], 0
		q.resume = false
		q.gen++
	}
}

// Scheduled is how many deliveries wait in timers or queues.
func (e *Engine) Scheduled() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.timers)
	for _, q := range e.queues {
		n += len(q.ready) - q.head
	}
	return n
}

// SetStore attaches the store when it is built after the engine (the store needs the
// engine's Ready hook). Call it before Start.
func (e *Engine) SetStore(s *store.Store) { e.cfg.Store = s }

// Start loads what the store has pending and starts the timer loop.
func (e *Engine) Start() {
	for _, r := range e.cfg.Store.Pending() {
		e.Ready(r)
	}
	go e.timerLoop()
}

// Stop stops starting attempts and waits, until ctx ends, for those in flight. What it does
// not wait for stays pending in the store and is attempted again after a restart.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return nil
	}
	e.stopping = true
	e.mu.Unlock()
	close(e.stop)
	<-e.loopDone
	done := make(chan struct{})
	go func() { e.inFlight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) timerLoop() {
	defer close(e.loopDone)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		e.mu.Lock()
		now := time.Now()
		for len(e.timers) > 0 && e.timers[0].due <= now.UnixNano() {
			t := e.timers.pop()
			e.enqueue(t.ep, t.id)
		}
		next := time.Hour
		if len(e.timers) > 0 {
			next = time.Duration(e.timers[0].due - now.UnixNano())
		}
		e.mu.Unlock()
		t.Reset(next)
		select {
		case <-t.C:
		case <-e.wake:
		case <-e.stop:
			return
		}
	}
}

// enqueue adds a due delivery to its endpoint's queue and starts attempts up to the bound.
// Callers hold e.mu.
func (e *Engine) enqueue(endpointID string, id store.DeliveryID) {
	q := e.queue(endpointID)
	q.ready = append(q.ready, id)
	e.dispatch(q)
}

// queue returns an endpoint's queue, made on first use. Callers hold e.mu.
func (e *Engine) queue(endpointID string) *queue {
	q, ok := e.queues[endpointID]
	if !ok {
		q = &queue{endpointID: endpointID}
		e.queues[endpointID] = q
	}
	return q
}

// dispatch starts workers for q up to its bound. Callers hold e.mu. Workers live as long as
// their queue has work, so a busy endpoint reuses up to MaxInFlight goroutines (and their grown
// stacks) instead of starting one per attempt.
func (e *Engine) dispatch(q *queue) {
	n := len(q.ready) - q.head
	if n == 0 && q.resume && !q.pulling {
		n = 1 // a worker to pull the next page
	}
	for ; n > 0 && !e.stopping && q.workers < e.cfg.MaxInFlight; n-- {
		q.workers++
		e.inFlight.Add(1)
		go e.work(q)
	}
}

// work attempts q's due deliveries one after another until the queue is empty.
func (e *Engine) work(q *queue) {
	defer e.inFlight.Done()
	e.mu.Lock()
	for !e.stopping {
		if q.head == len(q.ready) {
			if !q.resume || q.pulling {
				break // a worker pulling dispatches more when its page arrives
			}
			e.pull(q)
			continue
		}
		id := q.ready[q.head]
		q.head++
		q.compact()
		e.mu.Unlock()
		if job, ok := e.cfg.Store.Begin(id, time.Now()); ok {
			e.attempt(job)
		}
		e.mu.Lock()
	}
	q.workers--
	if q.workers == 0 && q.head == len(q.ready) && !q.resume {
		delete(e.queues, q.endpointID)
	}
	e.mu.Unlock()
}

// pull fetches the next page of deliveries a re-enable made due. Callers hold e.mu; it is
// released while the store is asked.
func (e *Engine) pull(q *queue) {
	q.pulling = true
	gen, cursor := q.gen, q.cursor
	e.mu.Unlock()
	ids, next, more := e.cfg.Store.DueAfter(q.endpointID, cursor, pullPage, time.Now())
	e.mu.Lock()
	q.pulling = false
	if q.gen != gen {
		return // dropped, or resumed again from the start, meanwhile
	}
	q.cursor, q.resume = next, more
	q.ready = append(q.ready, ids...)
	e.dispatch(q)
}

// compact reclaims the consumed front of the queue.
func (q *queue) compact() {
	if q.head == len(q.ready) {
		q.ready, q.head = q.ready[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.ready) {
		q.ready = append(q.ready[:0], q.ready[q.head:]...)
		q.head = 0
	}
}

// attempt performs one attempt and records it.
func (e *Engine) attempt(job store.Job) {
	var res result
	if job.PayloadErr != nil {
		// Nothing to send: the attempt fails here and follows the schedule like any failure, so
		// a body lost to disk damage ends as a failed delivery instead of a retry every second.
		res.attempt = store.Attempt{N: job.N, At: time.Now().UTC().Truncate(time.Millisecond),
			Error: truncateError("payload unreadable: " + job.PayloadErr.Error())}
		res.class = ResultLocal
	} else {
		res = e.sender.send(job)
	}
	out := store.Outcome{Delivery: job.Delivery, Attempt: res.attempt, Success: res.success, Gone: res.gone,
		Local: job.PayloadErr != nil}
	if !res.success && !res.gone && !job.Test {
		if d, ok := retryDelay(e.cfg.Schedule, job.Series, res.retryAfter); ok {
			out.RetryAt = res.attempt.At.Add(time.Duration(res.attempt.DurationMS)*time.Millisecond + d)
		}
	}
	disabled, err := e.cfg.Store.Finish(out)
	if err != nil {
		// The outcome is not durable; the delivery stays pending and a restart retries it.
		e.log.Error("record attempt", "delivery_id", job.Delivery.String(), "endpoint_id", job.EndpointID, "err", err)
		return
	}
	if o := e.cfg.Observer; o != nil {
		e.observe(o, job, res, out, disabled)
	}
	attrs := []any{"delivery_id", job.Delivery.String(), "endpoint_id", job.EndpointID, "event_type", job.EventType,
		"attempt", job.N, "status_code", res.attempt.StatusCode, "duration_ms", res.attempt.DurationMS}
	if res.attempt.Error != "" {
		attrs = append(attrs, "error", res.attempt.Error)
	}
	switch {
	case res.success:
		e.log.Debug("delivery succeeded", attrs...)
	case !out.RetryAt.IsZero():
		e.log.Debug("attempt failed, retry scheduled", append(attrs, "retry_at", out.RetryAt)...)
	default:
		e.log.Warn("delivery failed", attrs...)
	}
	if disabled != "" {
		e.log.Warn("endpoint disabled", "endpoint_id", job.EndpointID, "reason", disabled)
	}
}

// observe tells o about an attempt whose outcome is recorded.
func (e *Engine) observe(o Observer, job store.Job, res result, out store.Outcome, disabled string) {
	o.Attempt(res.class, res.took)
	switch {
	case res.success:
		latency := time.Duration(-1) // a resent delivery's: not the relay's latency
		if !job.Accepted.IsZero() {
			latency = time.Since(job.Accepted)
		}
		o.Finished(true, latency)
	case out.RetryAt.IsZero():
		o.Finished(false, 0)
	}
	if disabled != "" {
		o.Disabled(disabled)
	}
}
