package store

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Resend errors; handlers map them to HTTP statuses.
var (
	// ErrDeliveryNotFound: no delivery with this id belongs to the endpoint (it never existed,
	// or it left the history).
	ErrDeliveryNotFound = errors.New("store: delivery not found")
	// ErrNotFinished: the delivery is still pending or held; it will be attempted anyway.
	ErrNotFinished = errors.New("store: delivery not finished")
	// ErrPayloadExpired: the event's body is no longer kept (its WAL segment was compacted past
	// Options.HistoryPayloadBytes, or the delivery predates payload retention), so there is
	// nothing to send again.
	ErrPayloadExpired = errors.New("store: event payload no longer kept")
)

// MaxRecover bounds how many deliveries one Recover resends, so one call is bounded work.
// An endpoint's history never holds more than its limit anyway; a caller with more to recover
// calls again (deliveries already pending are skipped).
const MaxRecover = 1000

// KindResend reopens a finished delivery with a fresh retry series. The record carries the
// event's body, so the reopened delivery never depends on the segment it came from (which
// compaction may remove once only history refers to it).
const KindResend = 5

// ResendRecord is a finished delivery sent again, with the body it will send.
type ResendRecord struct {
	DeliveryID string    `json:"dlv"`
	EventID    string    `json:"ev"`
	Type       string    `json:"type"`
	Body       []byte    `json:"body"`
	At         time.Time `json:"at"` // when it is due: the time of the request
}

// Resend attempts a finished delivery of an endpoint again, keeping its id and its attempts so
// far; its retry series starts over. It returns the delivery as it is now pending.
func (s *Store) Resend(endpointID, deliveryID string) (v api.Delivery, err error) {
	did, ok := parseID("dlv_", deliveryID)
	if !ok {
		if err := s.read(func() { _, ok = s.endpoints[endpointID] }); err != nil {
			return v, err
		}
		if !ok {
			return v, ErrNotFound
		}
		return v, ErrDeliveryNotFound
	}
	var (
		d    *delivery
		e    event
		ferr error
	)
	if err := s.read(func() { d, e, ferr = s.resendable(endpointID, did) }); err != nil {
		return v, err
	}
	if ferr != nil {
		return v, ferr
	}
	body, err := s.retained(&e)
	if err != nil {
		return v, err
	}
	s.mu.Lock()
	// Look again: it may have been deleted, disabled or resent while the body was read (a
	// delivery resent and finished again meanwhile is a new struct with the same event).
	if d, _, ferr = s.resendable(endpointID, did); ferr != nil {
		wait := s.barrier()
		s.mu.Unlock()
		if err := wait(); err != nil {
			return v, err
		}
		return v, ferr
	}
	ready, wait, err := s.resend(d, body)
	var state DeliveryState
	if err == nil {
		state = s.deliveries[did].state()
		v = state.View()
	}
	s.mu.Unlock()
	if err != nil {
		return api.Delivery{}, err
	}
	if err := wait(); err != nil {
		return api.Delivery{}, err
	}
	if s.opts.OnDelivery != nil {
		s.changed(state)
	}
	s.notify(ready)
	return v, nil
}

// resendable finds a delivery that can be resent, and a copy of its event for reading the body.
// Callers hold s.mu.
func (s *Store) resendable(endpointID string, did ID) (*delivery, event, error) {
	ep, ok := s.endpoints[endpointID]
	if !ok {
		return nil, event{}, ErrNotFound
	}
	d, ok := s.deliveries[did]
	switch {
	case !ok || d.ep != ep:
		return nil, event{}, ErrDeliveryNotFound
	case !ep.Active:
		return nil, event{}, ErrInactive
	case d.open():
		return nil, event{}, ErrNotFinished
	}
	return d, *d.ev, nil
}

// resend logs and applies the record that reopens d. Callers hold s.mu.
func (s *Store) resend(d *delivery, body []byte) ([]Ready, func() error, error) {
	return s.commit(&Record{Kind: KindResend, Resend: &ResendRecord{
		DeliveryID: d.id.String(), EventID: d.ev.id.format("evt_"), Type: d.ev.typeName(), Body: body, At: s.now(),
	}})
}

// Recover resends every failed delivery of an endpoint whose last attempt was at or after
// since, oldest first, at most MaxRecover. Deliveries already pending are not touched, so a
// second call resends only what failed since the first.
func (s *Store) Recover(endpointID string, since time.Time) (api.RecoverResult, error) {
	var (
		out   api.RecoverResult
		cands []*delivery
		evs   []event
		ferr  error
	)
	err := s.read(func() {
		ep, ok := s.endpoints[endpointID]
		switch {
		case !ok:
			ferr = ErrNotFound
			return
		case !ep.Active:
			ferr = ErrInactive
			return
		}
		from := since.UnixMilli()
		for _, d := range ep.history[ep.histHead:] {
			if d == nil || d.removed || d.status != stFailed || lastAttempt(d) < from {
				continue
			}
			if len(cands) == MaxRecover {
				out.More = true
				break
			}
			cands = append(cands, d)
			evs = append(evs, *d.ev)
		}
	})
	if err != nil {
		return out, err
	}
	if ferr != nil {
		return out, ferr
	}
	// Bodies are read without the lock, a batch at a time, so a large recovery neither holds
	// the lock over disk reads nor more than a few megabytes of bodies in memory.
	const batchBytes = 8 << 20
	var (
		batch  []*delivery
		bodies [][]byte
		size   int
	)
	for i, d := range cands {
		b, err := s.retained(&evs[i])
		if err != nil {
			if !errors.Is(err, ErrPayloadExpired) {
				s.log.Error("recover: event payload unreadable", "event_id", evs[i].id.format("evt_"),
					"delivery_id", d.id.String(), "err", err)
			}
			out.Expired++
		} else {
			batch, bodies, size = append(batch, d), append(bodies, b), size+len(b)
		}
		if size >= batchBytes || i == len(cands)-1 {
			n, err := s.resendBatch(endpointID, batch, bodies)
			out.Resent += n
			if err != nil {
				return out, err
			}
			batch, bodies, size = batch[:0], bodies[:0], 0
		}
	}
	return out, nil
}

// resendBatch reopens the deliveries that are still as Recover found them, and returns once
// that is durable.
func (s *Store) resendBatch(endpointID string, batch []*delivery, bodies [][]byte) (int, error) {
	var (
		ready  []Ready
		states []DeliveryState
	)
	wait, n := noWait, 0
	s.mu.Lock()
	for k, d := range batch {
		if s.deliveries[d.id] != d || d.open() || !d.ep.Active || s.endpoints[endpointID] != d.ep {
			continue // gone, resent or disabled meanwhile
		}
		r, w, err := s.resend(d, bodies[k])
		if err != nil {
			s.mu.Unlock()
			return n, err
		}
		ready, wait = append(ready, r...), w // the log is ordered: the last wait covers all
		n++
		if s.opts.OnDelivery != nil {
			states = append(states, s.deliveries[d.id].state())
		}
	}
	s.mu.Unlock()
	if err := wait(); err != nil {
		return n, err
	}
	s.changed(states...)
	s.notify(ready)
	return n, nil
}

// retained reads the body of a finished delivery's event: from the cache, the store itself (no
// log), or the WAL while its segment is kept.
func (s *Store) retained(e *event) ([]byte, error) {
	if !s.durable {
		s.mu.Lock()
		b, ok := s.memBodies[e.id]
		s.mu.Unlock()
		if !ok {
			return nil, ErrPayloadExpired
		}
		return b, nil
	}
	if e.pos == 0 {
		return nil, ErrPayloadExpired
	}
	b, err := s.payload(e)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Compaction may have closed the segment under this read; a second read then finds it
		// gone (or reads it, when the failure was something else that passed).
		b, err = s.payload(e)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: event %s (segment %d was compacted)", ErrPayloadExpired, e.id.format("evt_"), e.pos.segment())
	}
	return b, err
}

// applyResend replaces a finished delivery with a pending one of the same id. The old struct is
// left as it was (marked removed), because a snapshot being written may still read it
// without the lock; the new one shares its attempts, which are only ever appended to.
func (s *Store) applyResend(r *ResendRecord, pos wal.Position) []Ready {
	did, ok1 := parseID("dlv_", r.DeliveryID)
	eid, ok2 := parseID("evt_", r.EventID)
	if !ok1 || !ok2 {
		return nil
	}
	old, ok := s.deliveries[did]
	if !ok || old.open() || old.removed {
		return nil
	}
	ep := old.ep
	s.leaveHistory(old)
	e := &event{id: eid, typ: codeOf(r.Type), pos: packPos(pos), live: 1}
	if !s.durable {
		s.memBodies[eid] = r.Body
	}
	n := len(old.attempts)
	d := &delivery{id: did, ev: e, ep: ep, status: stPending, test: old.test, next: r.At.UnixMilli(),
		attempts: old.attempts[:n:n], base: uint8(min(n, 255))}
	if !ep.Active {
		d.status = stHeld
	}
	s.deliveries[did] = d
	if i, found := slices.BinarySearchFunc(ep.deliveries, did, cmpDelivery); found {
		ep.deliveries[i] = d
	} else {
		ep.deliveries = slices.Insert(ep.deliveries, i, d)
	}
	ep.queued++
	if s.durable {
		s.segRefs[pos.Segment]++
		s.payloads.Add(eid, r.Body)
	}
	if d.status != stPending {
		return nil
	}
	return []Ready{d.ready()}
}

// leaveHistory takes a finished delivery out of its endpoint's history without deleting it from
// the index (its replacement takes its place there). Callers hold s.mu.
func (s *Store) leaveHistory(d *delivery) {
	d.removed = true // forget and the history's head leave it alone from now on
	s.history.Remove(d.id)
	d.ep.histLive--
	s.unpinHistory(d)
}
