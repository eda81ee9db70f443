package store

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Ingest accepts an event and fans it out to every active endpoint subscribed to its type.
// A repeated idempotency key returns the first result and creates nothing. It returns once
// the record is durable.
func (s *Store) Ingest(in api.IngestInput) (IngestResult, error) {
	s.mu.Lock()
	if in.IdempotencyKey != "" {
		if r, ok := s.idem.Get(in.IdempotencyKey); ok {
			s.mu.Unlock()
			return r, nil
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
	s.mu.Unlock()
	if err != nil {
		return IngestResult{}, err
	}
	if err := wait(); err != nil {
		return IngestResult{}, err
	}
	s.notify(ready)
	return IngestResult{EventID: ev.ID, Deliveries: len(ev.Deliveries)}, nil
}

// SendTest queues a test.ping delivery to one endpoint, whatever its event filter.
func (s *Store) SendTest(endpointID string) (string, error) {
	s.mu.Lock()
	ep, ok := s.endpoints[endpointID]
	if !ok {
		s.mu.Unlock()
		return "", ErrNotFound
	}
	if !ep.Active {
		s.mu.Unlock()
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
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	if err := wait(); err != nil {
		return "", err
	}
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
	DeliveryID string
	EndpointID string
	EventType  string
	URL        string
	Secret     string
	Body       []byte // shared, read-only
	N          int    // the number this attempt will have
	Test       bool
}

// Begin claims a due delivery for an attempt. It reports false when the delivery is gone,
// finished, held, already in flight, or not yet due — the engine then just drops its entry.
// A payload that fell out of the cache is read back from the WAL, outside the lock.
func (s *Store) Begin(deliveryID string, now time.Time) (Job, bool) {
	s.mu.Lock()
	d, ok := s.deliveries[deliveryID]
	if !ok || d.Status != statusPending || d.inFlight || now.Before(d.NextAttemptAt) {
		s.mu.Unlock()
		return Job{}, false
	}
	ep := s.endpoints[d.EndpointID]
	e, ok := s.events[d.EventID]
	if !ok || !ep.Active {
		s.mu.Unlock()
		return Job{}, false
	}
	d.inFlight = true
	job := Job{
		DeliveryID: d.ID, EndpointID: d.EndpointID, EventType: d.EventType,
		URL: ep.URL, Secret: ep.Secret, Body: e.Body, N: len(d.Attempts) + 1, Test: d.Test,
	}
	pos := e.Pos
	s.mu.Unlock()
	if job.Body != nil {
		return job, true
	}
	body, err := s.payload(d.EventID, pos)
	if err != nil {
		s.log.Error("read event payload back from the WAL", "event_id", d.EventID, "delivery_id", d.ID, "err", err)
		s.mu.Lock()
		d.inFlight = false
		s.mu.Unlock()
		return Job{}, false
	}
	job.Body = body
	return job, true
}

// payload returns an event's body from the cache or, on a miss, from its WAL record.
func (s *Store) payload(eventID string, pos wal.Position) ([]byte, error) {
	if b, ok := s.payloads.Get(eventID); ok {
		return b, nil
	}
	raw, err := s.wal.ReadAt(pos)
	if err != nil {
		return nil, err
	}
	rec, err := UnmarshalRecord(raw)
	if err != nil {
		return nil, err
	}
	if rec.Event == nil || rec.Event.ID != eventID {
		return nil, fmt.Errorf("store: WAL record at %d/%d is not event %s", pos.Segment, pos.Offset, eventID)
	}
	s.payloads.Add(eventID, rec.Event.Body)
	return rec.Event.Body, nil
}

// Outcome is an attempt's result as the engine judged it.
type Outcome struct {
	DeliveryID string
	Attempt    Attempt
	Success    bool
	Gone       bool      // 410: disable the endpoint now
	RetryAt    time.Time // zero: no attempts left
}

// Finish records an attempt begun with Begin and decides what follows: the delivery's status,
// the endpoint's failure counter, and whether the endpoint is disabled. It returns the
// disabled reason when this attempt disabled the endpoint.
func (s *Store) Finish(o Outcome) (disabled string, err error) {
	s.mu.Lock()
	d, ok := s.deliveries[o.DeliveryID]
	if !ok {
		s.mu.Unlock()
		return "", nil // deleted with its endpoint while the attempt ran
	}
	ep := s.endpoints[d.EndpointID]
	a := &AttemptRecord{DeliveryID: d.ID, Attempt: o.Attempt, Failures: ep.ConsecutiveFailures}
	switch {
	case o.Success:
		a.Status = statusSucceeded
		if !d.Test {
			a.Failures = 0
		}
	case o.Gone:
		a.Status = statusFailed
		a.Disable = api.DisabledGone
	case !o.RetryAt.IsZero():
		a.Status = statusPending
		a.RetryAt = o.RetryAt.UTC()
	default:
		a.Status = statusFailed
	}
	if a.Status == statusFailed && !d.Test {
		a.Failures++
		if a.Disable == "" && s.opts.DisableAfter > 0 && a.Failures >= s.opts.DisableAfter {
			a.Disable = api.DisabledConsecutiveFailures
		}
	}
	if !ep.Active {
		a.Disable = ""
	}
	var wait func() error
	_, wait, err = s.commit(&Record{Kind: KindAttempt, Attempt: a})
	if err != nil {
		d.inFlight = false
	}
	status := d.Status
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	if err := wait(); err != nil {
		return "", err
	}
	if status == statusPending {
		s.notify([]Ready{{DeliveryID: d.ID, EndpointID: d.EndpointID, Due: a.RetryAt}})
	}
	return a.Disable, nil
}

// Deliveries returns up to limit deliveries of an endpoint older than the one named by cursor
// ("" = from the newest), newest first, and the next cursor ("" at the end).
func (s *Store) Deliveries(endpointID, cursor string, limit int) ([]api.Delivery, string, error) {
	if cursor != "" && !ValidID("dlv_", cursor) {
		return nil, "", ErrBadCursor
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.endpoints[endpointID]
	if !ok {
		return nil, "", ErrNotFound
	}
	end := len(ep.deliveries)
	if cursor != "" {
		end, _ = slices.BinarySearch(ep.deliveries, cursor)
	}
	out := make([]api.Delivery, 0, min(limit, end))
	for i := end - 1; i >= 0; i-- {
		if len(out) == limit {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, s.deliveries[ep.deliveries[i]].view())
	}
	return out, "", nil
}

// Delivery returns one delivery.
func (s *Store) Delivery(id string) (api.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[id]
	if !ok {
		return api.Delivery{}, ErrNotFound
	}
	return d.view(), nil
}

func (d *delivery) view() api.Delivery {
	v := api.Delivery{
		ID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID,
		Status: d.Status, Attempts: make([]api.Attempt, len(d.Attempts)),
	}
	for i, a := range d.Attempts {
		va := api.Attempt{N: a.N, At: a.At, DurationMS: a.DurationMS}
		if a.StatusCode != 0 {
			code := a.StatusCode
			va.StatusCode = &code
		}
		if a.Error != "" {
			msg := a.Error
			va.Error = &msg
		}
		v.Attempts[i] = va
	}
	if d.Status == statusPending {
		next := d.NextAttemptAt
		v.NextAttemptAt = &next
	}
	return v
}
