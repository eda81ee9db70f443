package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

const (
	statusPending   = api.StatusPending
	statusSucceeded = api.StatusSucceeded
	statusFailed    = api.StatusFailed
	statusHeld      = api.StatusHeld
)

// Record kinds. Their values are on disk: never renumber.
const (
	KindEndpointPut    = 1 // create or update: the endpoint's whole new state
	KindEndpointDelete = 2
	KindEventAccepted  = 3 // an event and its whole fan-out, so a replay never fans out twice
	KindAttempt        = 4 // one attempt's outcome and the decisions that follow from it
)

// Record is one state change with every decision already made.
type Record struct {
	Kind int `json:"k"`

	Endpoint   *endpoint `json:"ep,omitempty"`
	EndpointID string    `json:"ep_id,omitempty"`

	Event *EventRecord `json:"ev,omitempty"`

	Attempt *AttemptRecord `json:"at,omitempty"`
}

// EventRecord is an accepted event and the deliveries it fanned out to.
type EventRecord struct {
	ID             string           `json:"id"`
	Type           string           `json:"type"`
	Body           []byte           `json:"body"`
	IdempotencyKey string           `json:"idem,omitempty"`
	Test           bool             `json:"test,omitempty"`
	At             time.Time        `json:"at"`
	Deliveries     []DeliveryRecord `json:"dlv"`
}

// DeliveryRecord names one delivery of an event.
type DeliveryRecord struct {
	ID         string `json:"id"`
	EndpointID string `json:"ep"`
}

// AttemptRecord is an attempt and what it decided.
type AttemptRecord struct {
	DeliveryID string    `json:"dlv"`
	Attempt    Attempt   `json:"a"`
	Status     string    `json:"s"`           // the delivery's status after the attempt
	RetryAt    time.Time `json:"r,omitzero"`  // next attempt, when Status is pending
	Failures   int       `json:"f"`           // the endpoint's consecutive failures after it
	Disable    string    `json:"d,omitempty"` // disabled reason when the attempt disabled it
}

// Marshal encodes a record for the log.
func (r *Record) Marshal() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("store: encode record kind %d: %w", r.Kind, err)
	}
	return b, nil
}

// UnmarshalRecord decodes a logged record.
func UnmarshalRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("store: decode record: %w", err)
	}
	switch {
	case r.Kind == KindEndpointPut && r.Endpoint != nil,
		r.Kind == KindEndpointDelete && r.EndpointID != "",
		r.Kind == KindEventAccepted && r.Event != nil,
		r.Kind == KindAttempt && r.Attempt != nil:
		return &r, nil
	}
	return nil, fmt.Errorf("store: decode record: kind %d without its payload", r.Kind)
}

// Replay applies a record read back from the log (no logging, no notifications).
func (s *Store) Replay(r *Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(r, wal.Position{})
}

// apply is the only code that changes state. It must stay deterministic: no clock, no
// randomness, no lookups outside the store. Callers hold s.mu.
func (s *Store) apply(r *Record, pos wal.Position) []Ready {
	switch r.Kind {
	case KindEndpointPut:
		return s.applyEndpointPut(r.Endpoint)
	case KindEndpointDelete:
		s.applyEndpointDelete(r.EndpointID)
	case KindEventAccepted:
		return s.applyEvent(r.Event, pos)
	case KindAttempt:
		s.applyAttempt(r.Attempt)
	}
	return nil
}

func (s *Store) applyEndpointPut(in *endpoint) []Ready {
	s.ids.seen(idMillis(in.ID))
	ep, ok := s.endpoints[in.ID]
	if !ok {
		ep = &endpoint{}
		s.endpoints[in.ID] = ep
		i, _ := slices.BinarySearch(s.order, in.ID)
		s.order = slices.Insert(s.order, i, in.ID)
	}
	wasActive := ok && ep.Active
	dl, fin := ep.deliveries, ep.finished
	*ep = *in
	ep.EventTypes = slices.Clone(in.EventTypes)
	ep.deliveries, ep.finished = dl, fin

	var ready []Ready
	switch {
	case wasActive && !ep.Active:
		for _, id := range ep.deliveries {
			if d := s.deliveries[id]; d.Status == statusPending {
				d.Status = statusHeld
			}
		}
	case ok && !wasActive && ep.Active:
		// Held deliveries resume now; the updated_at of the re-enable is "now" for a replay too.
		for _, id := range ep.deliveries {
			if d := s.deliveries[id]; d.Status == statusHeld {
				d.Status = statusPending
				d.NextAttemptAt = ep.UpdatedAt
				ready = append(ready, Ready{DeliveryID: d.ID, EndpointID: ep.ID, Due: d.NextAttemptAt})
			}
		}
	}
	return ready
}

func (s *Store) applyEndpointDelete(id string) {
	ep, ok := s.endpoints[id]
	if !ok {
		return
	}
	for _, did := range ep.deliveries {
		s.dropDelivery(s.deliveries[did])
	}
	delete(s.endpoints, id)
	if i, ok := slices.BinarySearch(s.order, id); ok {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

func (s *Store) applyEvent(ev *EventRecord, pos wal.Position) []Ready {
	s.ids.seen(idMillis(ev.ID))
	if ev.IdempotencyKey != "" {
		s.idem.Add(ev.IdempotencyKey, IngestResult{EventID: ev.ID, Deliveries: len(ev.Deliveries)})
	}
	if len(ev.Deliveries) == 0 {
		return nil
	}
	e := &event{Type: ev.Type, Pos: pos}
	if !s.durable {
		e.Body = ev.Body // no log to read it back from
	} else {
		s.payloads.Add(ev.ID, ev.Body)
	}
	s.events[ev.ID] = e
	ready := make([]Ready, 0, len(ev.Deliveries))
	for _, dr := range ev.Deliveries {
		ep, ok := s.endpoints[dr.EndpointID]
		if !ok {
			continue // deleted since; a replay of a log that was compacted around it
		}
		d := &delivery{
			ID: dr.ID, EventID: ev.ID, EventType: ev.Type, EndpointID: dr.EndpointID,
			Status: statusPending, Test: ev.Test, NextAttemptAt: ev.At,
		}
		if !ep.Active {
			d.Status = statusHeld
		}
		s.deliveries[d.ID] = d
		ep.deliveries = append(ep.deliveries, d.ID) // delivery ids only grow
		e.live++
		if d.Status == statusPending {
			ready = append(ready, Ready{DeliveryID: d.ID, EndpointID: d.EndpointID, Due: d.NextAttemptAt})
		}
	}
	if e.live == 0 {
		delete(s.events, ev.ID)
	} else if s.durable {
		s.segRefs[pos.Segment]++
	}
	return ready
}

func (s *Store) applyAttempt(a *AttemptRecord) {
	d, ok := s.deliveries[a.DeliveryID]
	if !ok {
		return // the endpoint was deleted while the attempt was in flight
	}
	ep := s.endpoints[d.EndpointID]
	d.inFlight = false
	d.Attempts = append(d.Attempts, a.Attempt)
	d.Status = a.Status
	d.NextAttemptAt = a.RetryAt
	ep.ConsecutiveFailures = a.Failures
	if a.Disable != "" && ep.Active {
		ep.Active = false
		ep.DisabledReason = a.Disable
		ep.UpdatedAt = a.Attempt.At
		for _, id := range ep.deliveries {
			if o := s.deliveries[id]; o.Status == statusPending {
				o.Status = statusHeld
			}
		}
	}
	if d.Status == statusPending && !ep.Active {
		d.Status = statusHeld
	}
	if d.Status == statusSucceeded || d.Status == statusFailed {
		s.finish(ep, d)
	}
}

// finish releases a finished delivery's payload and trims the endpoint's history.
func (s *Store) finish(ep *endpoint, d *delivery) {
	s.release(d.EventID)
	ep.finished++
	for ep.finished > s.opts.HistoryLimit {
		for _, id := range ep.deliveries {
			if o := s.deliveries[id]; o.Status == statusSucceeded || o.Status == statusFailed {
				ep.removeDelivery(id)
				delete(s.deliveries, id)
				ep.finished--
				break
			}
		}
	}
}

// dropDelivery forgets a delivery of an endpoint that is being deleted.
func (s *Store) dropDelivery(d *delivery) {
	if d.Status == statusPending || d.Status == statusHeld {
		s.release(d.EventID)
	}
	delete(s.deliveries, d.ID)
}

// release drops one live reference to an event; the last one frees its payload and lets the
// WAL segment holding it be deleted once a snapshot covers it.
func (s *Store) release(eventID string) {
	e, ok := s.events[eventID]
	if !ok {
		return
	}
	e.live--
	if e.live > 0 {
		return
	}
	delete(s.events, eventID)
	if s.durable {
		s.payloads.Remove(eventID)
		if s.segRefs[e.Pos.Segment]--; s.segRefs[e.Pos.Segment] <= 0 {
			delete(s.segRefs, e.Pos.Segment)
		}
	}
}
