package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Handoff (fleet mode): on a graceful shutdown a relay moves its open deliveries to the fleet,
// and another relay adopts them. These methods are the store's half: export, forget what was
// handed off, and take in what was adopted.

// KindHandedOff removes open deliveries another relay now owns.
const KindHandedOff = 7

// HandoffItem is one open delivery with what another relay needs to deliver it.
type HandoffItem struct {
	DeliveryID, EndpointID, EventID, EventType string
	Body                                       []byte
	Test                                       bool
}

// OpenDeliveryIDs lists every pending or held delivery, oldest first within each endpoint.
func (s *Store) OpenDeliveryIDs() []DeliveryID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DeliveryID
	for _, id := range s.order {
		for _, d := range s.endpoints[id].deliveries {
			if !d.removed && d.open() {
				out = append(out, d.id)
			}
		}
	}
	return out
}

// HandoffItems describes the named deliveries still open, bodies read back from the WAL. One
// whose body cannot be read is left out and reported in skipped: it stays here.
func (s *Store) HandoffItems(ids []DeliveryID) (items []HandoffItem, skipped int) {
	type open struct {
		d  *delivery
		ev event
		ep string
	}
	s.mu.Lock()
	found := make([]open, 0, len(ids))
	for _, id := range ids {
		if d, ok := s.deliveries[id]; ok && d.open() && !d.removed {
			found = append(found, open{d, *d.ev, d.ep.ID})
		}
	}
	s.mu.Unlock()
	items = make([]HandoffItem, 0, len(found))
	for _, o := range found {
		body, err := s.retained(&o.ev)
		if err != nil {
			s.log.Error("handoff: event payload unreadable; the delivery stays on this relay", "delivery_id", o.d.id.String(), "err", err)
			skipped++
			continue
		}
		items = append(items, HandoffItem{DeliveryID: o.d.id.String(), EndpointID: o.ep, EventID: o.ev.id.format("evt_"),
			EventType: o.ev.typeName(), Body: body, Test: o.d.test})
	}
	return items, skipped
}

// HandedOff forgets open deliveries the fleet now holds for another relay, so this relay never
// attempts them again (after a restart included). It returns once that is durable.
func (s *Store) HandedOff(ids []string) error {
	s.mu.Lock()
	_, wait, err := s.commit(&Record{Kind: KindHandedOff, HandedOff: ids})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return wait()
}

func (s *Store) applyHandedOff(ids []string) {
	for _, raw := range ids {
		id, ok := parseID("dlv_", raw)
		d, found := s.deliveries[id]
		if !ok || !found || !d.open() {
			continue
		}
		d.ep.queued--
		s.release(d.ev)
		d.ep.drop(d)
		delete(s.deliveries, id)
	}
}

// ErrUnknownEndpoint refuses an adoption naming an endpoint this store does not know yet (its
// copy of the fleet lags): taking the delivery in would drop it, so none is taken and the
// handed-off rows stay for a later try or another relay.
var ErrUnknownEndpoint = errors.New("store: handed-off delivery of an endpoint not known here yet")

// Adopt takes in deliveries another relay handed off, as events accepted here with their ids
// and bodies, due now. Deliveries already here are skipped (an adoption repeated after a crash)
// and malformed ones are ignored; one whose endpoint is not known here refuses the whole
// adoption (ErrUnknownEndpoint). It returns once they are durable.
func (s *Store) Adopt(items []HandoffItem) error {
	byEvent := map[string]*EventRecord{}
	var order []*EventRecord
	s.mu.Lock()
	for _, it := range items {
		did, ok := parseID("dlv_", it.DeliveryID)
		if _, dup := s.deliveries[did]; !ok || dup || !ValidID("evt_", it.EventID) {
			continue
		}
		if s.endpoints[it.EndpointID] == nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s (delivery %s)", ErrUnknownEndpoint, it.EndpointID, it.DeliveryID)
		}
		ev := byEvent[it.EventID]
		if ev == nil {
			eid, _ := parseID("evt_", it.EventID)
			ev = &EventRecord{ID: it.EventID, Type: it.EventType, Body: it.Body, Test: it.Test, At: eid.time()}
			byEvent[it.EventID] = ev
			order = append(order, ev)
		}
		ev.Deliveries = append(ev.Deliveries, DeliveryRecord{ID: it.DeliveryID, EndpointID: it.EndpointID})
	}
	var ready []Ready
	wait := noWait
	for _, ev := range order {
		// Delivery ids only grow within an endpoint's list: keep each event's in order.
		slices.SortFunc(ev.Deliveries, func(a, b DeliveryRecord) int { return strings.Compare(a.ID, b.ID) })
		r, w, err := s.commit(&Record{Kind: KindEventAccepted, Event: ev})
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("store: adopt event %s: %w", ev.ID, err)
		}
		ready, wait = append(ready, r...), w
	}
	s.mu.Unlock()
	if err := wait(); err != nil {
		return err
	}
	s.notify(ready)
	return nil
}
