package store

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// Ingest accepts an event and fans it out to every active endpoint subscribed to its type.
// A repeated idempotency key returns the first result and creates nothing. It returns once
// the record is durable.
func (s *Store) Ingest(in api.IngestInput) (IngestResult, error) {
	s.mu.Lock()
	if in.IdempotencyKey != "" {
		if e, ok := s.idem.Get(in.IdempotencyKey); ok {
			// The first request's record may not be durable yet, or may have failed: answer
			// no sooner than it is, and never with a result a crash could take back.
			wait := s.barrier()
			s.mu.Unlock()
			if err := wait(); err != nil {
				return IngestResult{}, err
			}
			if e.sum != 0 && e.sum != requestSum(in.Type, in.Data) {
				return IngestResult{}, ErrIdempotencyKeyReused
			}
			return e.res, nil
		}
	}
	now := s.now()
	ev := &EventRecord{
		ID:             s.ids.next("evt_", now),
		Type:           in.Type,
		IdempotencyKey: in.IdempotencyKey,
		At:             now,
	}
	ev.Body = envelope(ev.ID, ev.Type, now, in.Data)
	for _, id := range s.order {
		if ep := s.endpoints[id]; ep.Active && ep.matches(in.Type) {
			ev.Deliveries = append(ev.Deliveries, DeliveryRecord{ID: s.ids.next("dlv_", now), EndpointID: id})
		}
	}
	ready, wait, err := s.commit(&Record{Kind: KindEventAccepted, Event: ev})
	var buf [4]DeliveryState // a small fan-out is told without allocating
	states := buf[:0]
	if err == nil && s.opts.OnDelivery != nil {
		states = s.eventStates(states, ev)
	}
	s.mu.Unlock()
	if err != nil {
		return IngestResult{}, err
	}
	if err := wait(); err != nil {
		return IngestResult{}, err
	}
	if s.opts.OnIngest != nil {
		s.opts.OnIngest(ev.Type)
	}
	s.changed(states...)
	s.notify(ready)
	return IngestResult{EventID: ev.ID, Deliveries: len(ev.Deliveries)}, nil
}

// SendTest queues a test.ping delivery to one endpoint, whatever its event filter.
func (s *Store) SendTest(endpointID string) (string, error) {
	s.mu.Lock()
	ep, ok := s.endpoints[endpointID]
	if !ok || !ep.Active {
		wait := s.barrier()
		s.mu.Unlock()
		if err := wait(); err != nil {
			return "", err
		}
		if !ok {
			return "", ErrNotFound
		}
		return "", ErrInactive
	}
	now := s.now()
	ev := &EventRecord{ID: s.ids.next("evt_", now), Type: api.TypeTestPing, Test: true, At: now}
	data := append(append([]byte(`{"endpoint_id":`), strconv.Quote(endpointID)...),
		`,"message":"This is a test event from BlameTrail."}`...)
	ev.Body = envelope(ev.ID, ev.Type, now, data)
	dlv := s.ids.next("dlv_", now)
	ev.Deliveries = []DeliveryRecord{{ID: dlv, EndpointID: endpointID}}
	ready, wait, err := s.commit(&Record{Kind: KindEventAccepted, Event: ev})
	var buf [4]DeliveryState // a small fan-out is told without allocating
	states := buf[:0]
	if err == nil && s.opts.OnDelivery != nil {
		states = s.eventStates(states, ev)
	}
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	if err := wait(); err != nil {
		return "", err
	}
	s.changed(states...)
	s.notify(ready)
	return dlv, nil
}

// envelope is the body every receiver gets. It is built once per event, so every endpoint and
// every retry signs the same bytes.
func envelope(id, typ string, at time.Time, data []byte) []byte {
	b := make([]byte, 0, len(data)+96)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","timestamp":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// Job is what the engine needs for one attempt, copied out so no lock is held over I/O.
type Job struct {
	Delivery   DeliveryID
	EndpointID string
	EventType  string
	URL        string
	Secret     string
	// PrevSecret signs too while the attempt starts before PrevExpires (a rotation's overlap).
	PrevSecret  string
	PrevExpires time.Time
	Body        []byte // shared, read-only
	N           int    // the number this attempt will have
	// Series is its number within the current retry series: N, unless a resend started a new
	// series. The retry schedule is followed by Series.
	Series int
	Test   bool
	// Accepted is when the event was accepted (the millisecond its id carries, which is its
	// envelope timestamp unless the clock stepped back), for the delivery-latency metric. Zero
	// for a resent delivery, whose latency says nothing about the relay.
	Accepted time.Time
	// PayloadErr: the body could not be read back from the WAL. The attempt is not sent; it
	// fails with this error and follows the retry schedule like any other failure.
	PayloadErr error
}

// Begin claims a due delivery for an attempt. It reports false when the delivery is gone,
// finished, held, already in flight, or not yet due — the engine then just drops its entry.
// A payload that fell out of the cache is read back from the WAL, outside the lock.
func (s *Store) Begin(id DeliveryID, now time.Time) (Job, bool) {
	s.mu.Lock()
	d, ok := s.deliveries[id]
	if !ok || d.status != stPending || d.inFlight || now.UnixMilli() < d.next || !d.ep.Active {
		s.mu.Unlock()
		return Job{}, false
	}
	d.inFlight = true
	job := Job{
		Delivery: d.id, EndpointID: d.ep.ID, EventType: d.ev.typeName(),
		URL: d.ep.URL, Secret: d.ep.Secret, N: len(d.attempts) + 1, Test: d.test,
		Series: len(d.attempts) - int(d.base) + 1,
	}
	if d.base == 0 {
		job.Accepted = d.ev.id.time()
	}
	if !s.durable {
		job.Body = s.memBodies[d.ev.id] // a store without a log keeps bodies here
	}
	if d.ep.PrevSecret != "" && now.Before(d.ep.PrevSecretExpires) {
		job.PrevSecret, job.PrevExpires = d.ep.PrevSecret, d.ep.PrevSecretExpires
	}
	e := *d.ev
	s.mu.Unlock()
	if job.Body != nil {
		return job, true
	}
	body, err := s.payload(&e)
	if err != nil {
		s.payloadErrors.Add(1)
		s.mu.Lock()
		first := !d.ev.unreadable
		d.ev.unreadable = true
		s.mu.Unlock()
		if first {
			s.log.Error("event payload cannot be read back from the WAL: its deliveries fail after their retry schedule",
				"event_id", e.id.format("evt_"), "delivery_id", id.String(), "endpoint_id", job.EndpointID, "err", err)
		}
		job.PayloadErr = err
		return job, true
	}
	job.Body = body
	return job, true
}

// PayloadReadErrors counts attempts whose event body could not be read back from the WAL.
func (s *Store) PayloadReadErrors() int64 { return s.payloadErrors.Load() }

// payload returns an event's body from the cache or, on a miss, from its WAL record.
func (s *Store) payload(e *event) ([]byte, error) {
	if b, ok := s.payloads.Get(e.id); ok {
		return b, nil
	}
	raw, err := s.wal.ReadAt(e.position())
	if err != nil {
		return nil, err
	}
	rec, err := UnmarshalRecord(raw)
	if err != nil {
		return nil, err
	}
	var body []byte
	switch id := e.id.format("evt_"); {
	case rec.Event != nil && rec.Event.ID == id:
		body = rec.Event.Body
	case rec.Resend != nil && rec.Resend.EventID == id:
		body = rec.Resend.Body // a resent delivery's event lives in the record that reopened it
	default:
		p := e.position()
		return nil, fmt.Errorf("store: WAL record at %d/%d is not event %s", p.Segment, p.Offset, id)
	}
	s.payloads.Add(e.id, body)
	return body, nil
}

// Outcome is an attempt's result as the engine judged it.
type Outcome struct {
	Delivery DeliveryID
	Attempt  Attempt
	Success  bool
	Gone     bool      // 410: disable the endpoint now
	RetryAt  time.Time // zero: no attempts left
	// Local: the attempt failed on the relay's side (its payload could not be read), so it
	// says nothing about the receiver and does not count toward disabling the endpoint.
	Local bool
}

// Finish records an attempt begun with Begin and decides what follows: the delivery's status,
// the endpoint's failure counter, and whether the endpoint is disabled. It returns the
// disabled reason when this attempt disabled the endpoint, and then only once that is durable.
func (s *Store) Finish(o Outcome) (disabled string, err error) {
	s.mu.Lock()
	d, ok := s.deliveries[o.Delivery]
	if !ok {
		s.mu.Unlock()
		return "", nil // deleted with its endpoint while the attempt ran
	}
	ep := d.ep
	a := &AttemptRecord{DeliveryID: d.id.String(), Attempt: o.Attempt, Failures: ep.ConsecutiveFailures}
	switch {
	case o.Success:
		a.Status = api.StatusSucceeded
		if !d.test {
			a.Failures = 0
		}
	case o.Gone:
		a.Status = api.StatusFailed
		a.Disable = api.DisabledGone
	case !o.RetryAt.IsZero():
		a.Status = api.StatusPending
		a.RetryAt = o.RetryAt.UTC()
	default:
		a.Status = api.StatusFailed
	}
	if a.Status == api.StatusFailed && !d.test && !o.Local {
		a.Failures++
		if a.Disable == "" && s.opts.DisableAfter > 0 && a.Failures >= s.opts.DisableAfter {
			a.Disable = api.DisabledConsecutiveFailures
		}
	}
	if !ep.Active || s.opts.SharedCounter {
		a.Disable = ""
	}
	if s.opts.SharedCounter {
		a.Failures = ep.ConsecutiveFailures // the fleet's count, as last synced
	}
	// The attempt's record is not waited for: the attempt already happened whether or not its
	// record survives a crash (at worst a replay repeats it, which at-least-once allows), and
	// the retry it schedules lies at least one schedule step ahead of the group commit that
	// makes the record durable. Waiting would cap an endpoint at MaxInFlight attempts per fsync.
	// Nor does it need an fsync of its own: it rides with the next record someone waits for
	// (an ingest, usually), which at low rates halves the fsyncs per event.
	// An endpoint state change is the exception: it is waited for before anyone hears of it.
	commit := s.commitLazy
	if a.Disable != "" {
		commit = s.commit
	}
	_, wait, err := commit(&Record{Kind: KindAttempt, Attempt: a})
	if err != nil {
		d.inFlight = false
	}
	var next []Ready
	if err == nil && d.status == stPending {
		next = []Ready{d.ready()}
	}
	var state DeliveryState
	tell := err == nil && s.opts.OnDelivery != nil
	if tell {
		state = d.state()
	}
	var report *OutcomeReport
	if err == nil && s.opts.OnOutcome != nil && !d.test && !o.Local && a.Status != api.StatusPending {
		report = &OutcomeReport{EndpointID: ep.ID, Key: d.id.String(), Success: o.Success, Gone: o.Gone}
		if d.base > 0 {
			report.Key += "#" + strconv.Itoa(int(d.base))
		}
	}
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	if report != nil {
		s.opts.OnOutcome(*report)
	}
	if tell {
		s.opts.OnDelivery(state)
	}
	if a.Disable != "" {
		if err := wait(); err != nil {
			return "", err
		}
		s.stopped(ep.ID)
	}
	s.notify(next)
	return a.Disable, nil
}

// OutcomeReport is a delivery that ended (succeeded, or failed for good) as a fleet's shared
// failure counter needs it.
type OutcomeReport struct {
	EndpointID string
	// Key names the delivery's retry series: the delivery id, and "#<attempts before it>" for
	// a series a resend started, so a resend that fails again counts again, a replay does not.
	Key     string
	Success bool
	Gone    bool // the receiver answered 410: disable the endpoint now
}

// Deliveries returns up to limit deliveries of an endpoint older than the one named by cursor
// ("" = from the newest), newest first, and the next cursor ("" at the end).
func (s *Store) Deliveries(endpointID, cursor string, limit int) (out []api.Delivery, next string, err error) {
	var cur ID
	if cursor != "" {
		var ok bool
		if cur, ok = parseID("dlv_", cursor); !ok {
			return nil, "", ErrBadCursor
		}
	}
	err = ErrNotFound
	if rerr := s.read(func() {
		if ep, ok := s.endpoints[endpointID]; ok {
			out, next, err = ep.deliveryPage(cursor != "", cur, limit), "", nil
			if len(out) > limit {
				out, next = out[:limit], out[limit-1].ID
			}
		}
	}); rerr != nil {
		return nil, "", rerr
	}
	return out, next, err
}

// deliveryPage lists up to limit+1 deliveries older than cur (all when !after), newest first;
// the extra one tells the caller there is a next page. Callers hold s.mu.
func (ep *endpoint) deliveryPage(after bool, cur ID, limit int) []api.Delivery {
	end := len(ep.deliveries)
	if after {
		end, _ = slices.BinarySearchFunc(ep.deliveries, cur, cmpDelivery)
	}
	out := make([]api.Delivery, 0, min(limit+1, end))
	for i := end - 1; i >= 0 && len(out) <= limit; i-- {
		if d := ep.deliveries[i]; !d.removed {
			out = append(out, d.view())
		}
	}
	return out
}

// Delivery returns one delivery.
func (s *Store) Delivery(id string) (v api.Delivery, err error) {
	did, ok := parseID("dlv_", id)
	if !ok {
		return api.Delivery{}, ErrNotFound
	}
	err = ErrNotFound
	if rerr := s.read(func() {
		if d, ok := s.deliveries[did]; ok {
			v, err = d.view(), nil
		}
	}); rerr != nil {
		return api.Delivery{}, rerr
	}
	return v, err
}

func (d *delivery) view() api.Delivery { return d.state().View() }

// DueAfter lists up to n pending deliveries of an endpoint that are due at now and not in
// flight, with ids after `after` (the zero id: from the first), in id order. It looks at no more
// than 16·n entries per call, so the lock is held briefly however many deliveries the endpoint
// keeps; next is where the following call goes on, and more is false once the endpoint's list
// has been read to its end. The engine uses it to pull the deliveries a re-enable made due.
func (s *Store) DueAfter(endpointID string, after DeliveryID, n int, now time.Time) (ids []DeliveryID, next DeliveryID, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.endpoints[endpointID]
	if !ok || !ep.Active || n <= 0 {
		return nil, after, false
	}
	i := 0
	if after != (DeliveryID{}) {
		var found bool
		i, found = slices.BinarySearchFunc(ep.deliveries, after, cmpDelivery)
		if found {
			i++
		}
	}
	ms := now.UnixMilli()
	for budget := 16 * n; i < len(ep.deliveries) && budget > 0 && len(ids) < n; i, budget = i+1, budget-1 {
		d := ep.deliveries[i]
		next = d.id
		if !d.removed && d.status == stPending && !d.inFlight && d.next <= ms {
			ids = append(ids, d.id)
		}
	}
	if next == (DeliveryID{}) {
		next = after
	}
	return ids, next, i < len(ep.deliveries)
}
