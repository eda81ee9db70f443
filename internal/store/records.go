package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Record kinds. Their values are on disk: never renumber.
const (
	KindEndpointPut    = 1 // create or update: the endpoint's whole new state
	KindEndpointDelete = 2
	KindEventAccepted  = 3 // an event and its whole fan-out, so a replay never fans out twice
	KindAttempt        = 4 // one attempt's outcome and the decisions that follow from it
	// KindResend = 5 is in resend.go.
)

// Record is one state change with every decision already made.
type Record struct {
	Kind int `json:"k"`

	Endpoint   *endpoint `json:"ep,omitempty"`
	EndpointID string    `json:"ep_id,omitempty"`

	Event *EventRecord `json:"ev,omitempty"`

	Attempt *AttemptRecord `json:"at,omitempty"`

	Resend *ResendRecord `json:"rs,omitempty"`

	HandedOff []string `json:"ho,omitempty"` // delivery ids (KindHandedOff)
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
	switch {
	case r.Kind == KindEventAccepted && r.Event != nil:
		if b, ok := marshalEvent(r.Event); ok {
			return b, nil
		}
	case r.Kind == KindAttempt && r.Attempt != nil:
		if b, ok := marshalAttempt(r.Attempt); ok {
			return b, nil
		}
	case r.Kind == KindResend && r.Resend != nil:
		if b, ok := marshalResend(r.Resend); ok {
			return b, nil
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("store: encode record kind %d: %w", r.Kind, err)
	}
	return b, nil
}

// UnmarshalRecord decodes a logged record. Byte slices in the result (an event's Body) alias b.
func UnmarshalRecord(b []byte) (*Record, error) {
	if len(b) > 0 {
		switch b[0] {
		case tagEvent:
			return unmarshalEvent(b)
		case tagAttempt:
			return unmarshalAttempt(b)
		case tagResend:
			return unmarshalResend(b)
		}
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("store: decode record: %w", err)
	}
	switch {
	case r.Kind == KindEndpointPut && r.Endpoint != nil,
		r.Kind == KindEndpointDelete && r.EndpointID != "",
		r.Kind == KindEventAccepted && r.Event != nil,
		r.Kind == KindAttempt && r.Attempt != nil,
		r.Kind == KindResend && r.Resend != nil,
		r.Kind == KindSynced,
		r.Kind == KindHandedOff && len(r.HandedOff) > 0:
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
	case KindResend:
		return s.applyResend(r.Resend, pos)
	case KindSynced:
		s.synced = true
	case KindHandedOff:
		s.applyHandedOff(r.HandedOff)
	}
	return nil
}

func (s *Store) applyEndpointPut(in *endpoint) []Ready {
	s.ids.seenID(in.ID)
	ep, ok := s.endpoints[in.ID]
	if !ok {
		ep = &endpoint{}
		s.endpoints[in.ID] = ep
		i, _ := slices.BinarySearch(s.order, in.ID)
		s.order = slices.Insert(s.order, i, in.ID)
	}
	wasActive := ok && ep.Active
	dl, rm, hist, head, live := ep.deliveries, ep.removed, ep.history, ep.histHead, ep.histLive
	queued := ep.queued
	*ep = *in
	ep.EventTypes = slices.Clone(in.EventTypes)
	ep.deliveries, ep.removed, ep.history, ep.histHead, ep.histLive = dl, rm, hist, head, live
	ep.queued = queued

	switch {
	case wasActive && !ep.Active:
		ep.hold()
	case ok && !wasActive && ep.Active:
		// Held deliveries resume now; the updated_at of the re-enable is "now" for a replay too.
		held := false
		for _, d := range ep.deliveries {
			if d.status == stHeld {
				d.status = stPending
				d.next = ep.UpdatedAt.UnixMilli()
				held = true
			}
		}
		if held {
			return []Ready{{EndpointID: ep.ID, Due: ep.UpdatedAt, Resume: true}}
		}
	}
	return nil
}

func (ep *endpoint) hold() {
	for _, d := range ep.deliveries {
		if d.status == stPending && !d.removed {
			d.status = stHeld
		}
	}
}

func (s *Store) applyEndpointDelete(id string) {
	ep, ok := s.endpoints[id]
	if !ok {
		return
	}
	for _, d := range ep.deliveries {
		if d.removed {
			continue
		}
		if d.open() {
			s.release(d.ev)
		} else {
			d.removed = true // so the cache's eviction callback leaves it alone
			s.history.Remove(d.id)
			s.unpinHistory(d)
		}
		delete(s.deliveries, d.id)
	}
	delete(s.endpoints, id)
	if i, ok := slices.BinarySearch(s.order, id); ok {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

func (s *Store) applyEvent(ev *EventRecord, pos wal.Position) []Ready {
	s.ids.seenID(ev.ID)
	if n := len(ev.Deliveries); n > 0 {
		s.ids.seenID(ev.Deliveries[n-1].ID) // made after the event's id, in order
	}
	if ev.IdempotencyKey != "" {
		s.idem.Add(ev.IdempotencyKey, idemEntry{
			res: IngestResult{EventID: ev.ID, Deliveries: len(ev.Deliveries)},
			sum: requestSum(ev.Type, envelopeData(ev.Body)),
		})
	}
	eid, ok := parseID("evt_", ev.ID)
	if !ok || len(ev.Deliveries) == 0 {
		return nil
	}
	e := &event{id: eid, typ: codeOf(ev.Type), pos: packPos(pos)}
	if !s.durable {
		s.memBodies[eid] = ev.Body // no log to read it back from
	}
	next := ev.At.UnixMilli()
	ready := make([]Ready, 0, len(ev.Deliveries))
	for _, dr := range ev.Deliveries {
		ep, ok := s.endpoints[dr.EndpointID]
		did, valid := parseID("dlv_", dr.ID)
		if !ok || !valid {
			continue // deleted since: a replay of a log that was compacted around it
		}
		if _, dup := s.deliveries[did]; dup {
			continue // adopted twice (see Adopt): the first copy stands
		}
		d := &delivery{id: did, ev: e, ep: ep, status: stPending, test: ev.Test, next: next}
		if !ep.Active {
			d.status = stHeld
		}
		s.deliveries[did] = d
		if n := len(ep.deliveries); n == 0 || cmpDelivery(ep.deliveries[n-1], did) < 0 {
			ep.deliveries = append(ep.deliveries, d) // ids made here only grow
		} else {
			// Adopted from another relay (handoff): an older id goes in its place.
			i, _ := slices.BinarySearchFunc(ep.deliveries, did, cmpDelivery)
			ep.deliveries = slices.Insert(ep.deliveries, i, d)
		}
		ep.queued++
		e.live++
		if d.status == stPending {
			ready = append(ready, d.ready())
		}
	}
	if e.live > 0 && s.durable {
		s.segRefs[pos.Segment]++
		s.payloads.Add(eid, ev.Body)
	}
	return ready
}

func (s *Store) applyAttempt(a *AttemptRecord) {
	did, ok := parseID("dlv_", a.DeliveryID)
	if !ok {
		return
	}
	d, ok := s.deliveries[did]
	if !ok {
		return // the endpoint was deleted while the attempt was in flight
	}
	st, ok := statusOf(a.Status)
	if !ok {
		return
	}
	ep := d.ep
	d.inFlight = false
	d.attempts = append(d.attempts, attempt{
		at: a.Attempt.At.UnixMilli(), err: s.intern(a.Attempt.Error),
		duration: uint32(min(max(a.Attempt.DurationMS, 0), 1<<32-1)),
		code:     uint16(min(max(a.Attempt.StatusCode, 0), 999)), n: uint8(min(a.Attempt.N, 255)),
	})
	d.status = st
	d.next = 0
	if st == stPending {
		d.next = a.RetryAt.UnixMilli()
	}
	ep.ConsecutiveFailures = a.Failures
	if a.Disable != "" && ep.Active {
		ep.Active = false
		ep.DisabledReason = a.Disable
		ep.UpdatedAt = a.Attempt.At
		ep.hold()
	}
	if d.status == stPending && !ep.Active {
		d.status = stHeld
	}
	if !d.open() {
		s.finish(ep, d)
	}
}

// finish releases a finished delivery's payload and trims the endpoint's history.
func (s *Store) finish(ep *endpoint, d *delivery) {
	ep.queued--
	s.release(d.ev)
	s.remember(ep, d)
}

// remember adds a finished delivery to its endpoint's history and the global history cache,
// and drops the endpoint's oldest past HistoryLimit.
func (s *Store) remember(ep *endpoint, d *delivery) {
	ep.history = append(ep.history, d)
	ep.histLive++
	s.pinHistory(d)
	s.history.Add(d.id, d)
	for ep.histLive > s.opts.HistoryLimit {
		old := ep.history[ep.histHead]
		ep.history[ep.histHead] = nil
		ep.histHead++
		if !old.removed {
			s.history.Remove(old.id) // calls forget
		}
	}
	if ep.histHead > 256 && ep.histHead*2 > len(ep.history) {
		ep.history = append([]*delivery(nil), ep.history[ep.histHead:]...)
		ep.histHead = 0
	}
}

// release drops one live reference to an event; the last one frees its payload and lets the
// WAL segment holding it be deleted once a snapshot covers it.
func (s *Store) release(e *event) {
	if e.live--; e.live > 0 {
		return
	}
	// A store without a log keeps every body (memBodies) for resends: it serves tests only.
	if s.durable {
		s.payloads.Remove(e.id)
		seg := e.pos.segment()
		if s.segRefs[seg]--; s.segRefs[seg] <= 0 {
			delete(s.segRefs, seg)
		}
	}
}

// internType shares the catalogue's string for known types instead of keeping a copy per event.
func internType(t string) string {
	for _, k := range api.EventTypes {
		if k == t {
			return k
		}
	}
	return t
}
