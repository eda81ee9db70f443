package store

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// Delivery changes (Options.OnDelivery): a relay of a fleet publishes the state of each of its
// deliveries, so that any relay can list an endpoint's deliveries from the whole fleet. The
// store tells each change once it is applied, without its lock: a delivery created (by Ingest,
// SendTest), each attempt recorded (Finish), and a resend (Resend, Recover). Holding and
// resuming (the endpoint disabled, re-enabled) are not told: they follow from the endpoint's
// state, which a reader knows. DeliveryStates lists every delivery the store holds, for a
// relay to publish them all again (at start, when changes may have been lost with the process).
//
// Telling is free when OnDelivery is nil; when set, it costs a DeliveryState copied by value
// per change (and a slice per event fanned out to more than 4 endpoints), never a copy of
// the attempts.

// DeliveryState is one delivery as it stands after a change. It has a fixed size and shares the
// delivery's attempts, which are only ever appended to, so the part it sees never changes.
type DeliveryState struct {
	ID         DeliveryID
	EventID    ID
	EndpointID string // shared with the endpoint, not a copy
	EventType  string
	// Status is api.StatusPending, StatusHeld, StatusSucceeded or StatusFailed.
	Status string
	// Next is the next attempt's time in unix ms while pending, else 0.
	Next int64
	// Version orders the states of one delivery: a later state has a greater Version, or an
	// equal one when only holding or resuming came between. It is derived from what the WAL
	// keeps (the attempts and the retry series), so it also orders the states told before a
	// restart and after it: a consumer keeps the newest whatever order they reach it in.
	Version  int64
	attempts []attempt
}

// state is d as it stands. Callers hold s.mu.
func (d *delivery) state() DeliveryState {
	st := DeliveryState{ID: d.id, EventID: d.ev.id, EndpointID: d.ep.ID, EventType: d.ev.typeName(),
		Status: statusNames[d.status], Version: d.version(), attempts: d.attempts[:len(d.attempts):len(d.attempts)]}
	if d.status == stPending {
		st.Next = d.next
	}
	return st
}

// version is 3 per attempt, plus 1 once finished, or 2 while a resend (which adds no attempt)
// reopened it: pending after n attempts < finished after n < resent after n < pending after n+1.
func (d *delivery) version() int64 {
	n := int64(len(d.attempts))
	switch {
	case !d.open():
		return 3*n + 1
	case n > 0 && int64(d.base) == n:
		return 3*n + 2
	}
	return 3 * n
}

// Attempts is how many attempts the delivery has had.
func (st DeliveryState) Attempts() int { return len(st.attempts) }

// View is the admin API's form of the delivery.
func (st DeliveryState) View() api.Delivery {
	v := api.Delivery{
		ID: st.ID.String(), EventID: st.EventID.format("evt_"), EventType: st.EventType, EndpointID: st.EndpointID,
		Status: st.Status, Attempts: make([]api.Attempt, len(st.attempts)),
	}
	for i, a := range st.attempts {
		va := api.Attempt{N: int(a.n), At: time.UnixMilli(a.at).UTC(), DurationMS: int64(a.duration)}
		if a.code != 0 {
			code := int(a.code)
			va.StatusCode = &code
		}
		if a.err != nil {
			msg := *a.err
			va.Error = &msg
		}
		v.Attempts[i] = va
	}
	if st.Status == api.StatusPending {
		next := time.UnixMilli(st.Next).UTC()
		v.NextAttemptAt = &next
	}
	return v
}

// AppendAttemptsJSON appends the attempts as the JSON array the admin API shows (View's
// Attempts), without reflection. A NUL in an error message is written as U+FFFD and invalid
// UTF-8 as U+FFFD, so that PostgreSQL's jsonb, which refuses \u0000, takes every array.
func (st DeliveryState) AppendAttemptsJSON(b []byte) []byte {
	b = append(b, '[')
	for i, a := range st.attempts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"n":`...)
		b = strconv.AppendInt(b, int64(a.n), 10)
		b = append(b, `,"at":"`...)
		b = time.UnixMilli(a.at).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","status_code":`...)
		if a.code != 0 {
			b = strconv.AppendInt(b, int64(a.code), 10)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"error":`...)
		if a.err != nil {
			b = appendJSONString(b, *a.err)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendInt(b, int64(a.duration), 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string (see AppendAttemptsJSON for NUL and bad UTF-8).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == 0:
			b = append(b, "\ufffd"...)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

// changed tells OnDelivery the states of changes made under the lock; callers have released it.
func (s *Store) changed(states ...DeliveryState) {
	for _, st := range states {
		s.opts.OnDelivery(st)
	}
}

// eventStates appends the state of each delivery an event record created. Callers hold s.mu
// and have checked that OnDelivery is set.
func (s *Store) eventStates(out []DeliveryState, ev *EventRecord) []DeliveryState {
	for _, dr := range ev.Deliveries {
		did, ok := parseID("dlv_", dr.ID)
		if !ok {
			continue
		}
		if d, ok := s.deliveries[did]; ok {
			out = append(out, d.state())
		}
	}
	return out
}

// DeliveryStates lists up to n deliveries of an endpoint that the store holds (pending, held,
// and finished ones still in its history) with ids after `after` (the zero id: from the first),
// in id order, and whether more follow. It holds the lock for one page, so a relay can publish
// a million deliveries without stopping the others for long.
func (s *Store) DeliveryStates(endpointID string, after DeliveryID, n int) (states []DeliveryState, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.endpoints[endpointID]
	if !ok || n <= 0 {
		return nil, false
	}
	i := 0
	if after != (DeliveryID{}) {
		var found bool
		if i, found = slices.BinarySearchFunc(ep.deliveries, after, cmpDelivery); found {
			i++
		}
	}
	for ; i < len(ep.deliveries) && len(states) < n; i++ {
		if d := ep.deliveries[i]; !d.removed {
			states = append(states, d.state())
		}
	}
	return states, i < len(ep.deliveries)
}

// Durable returns once every record applied so far is durable, or the error that stopped the
// log. A hook told of a state before its record is durable (OnDelivery, OnOutcome) calls it
// before it shows that state to anyone: until then a crash can take the state back.
func (s *Store) Durable() error {
	s.mu.Lock()
	wait := s.barrier()
	s.mu.Unlock()
	return wait()
}
