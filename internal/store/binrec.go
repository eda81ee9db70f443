package store

import (
	"encoding/binary"
	"errors"
	"time"
)

// The two records written per event and per attempt are encoded by hand: JSON spent most of
// the ingest path re-validating and compacting bodies that were already valid JSON. Other
// records stay JSON. The first byte tells them apart ('{' can never be a tag).
const (
	tagEvent   = 0xB1
	tagAttempt = 0xB2
	// tagResend carries a body too: in JSON its base64 would grow a 15 MiB body past what one
	// WAL record holds.
	tagResend = 0xB3
)

var errBinRecord = errors.New("store: malformed binary record")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// marshalEvent encodes an event record, or reports false when its ids are not ours (then the
// JSON form is used).
func marshalEvent(ev *EventRecord) ([]byte, bool) {
	eid, ok := parseID("evt_", ev.ID)
	if !ok {
		return nil, false
	}
	b := make([]byte, 0, 64+len(ev.Body)+len(ev.Deliveries)*48)
	b = append(b, tagEvent)
	b = append(b, eid[:]...)
	b = appendString(b, ev.Type)
	b = binary.AppendVarint(b, ev.At.UnixMilli())
	b = appendString(b, ev.IdempotencyKey)
	var flags byte
	if ev.Test {
		flags |= 1
	}
	b = append(b, flags)
	b = appendBytes(b, ev.Body)
	b = appendUvarint(b, uint64(len(ev.Deliveries)))
	for _, d := range ev.Deliveries {
		did, ok := parseID("dlv_", d.ID)
		if !ok {
			return nil, false
		}
		b = append(b, did[:]...)
		b = appendString(b, d.EndpointID)
	}
	return b, true
}

func marshalAttempt(a *AttemptRecord) ([]byte, bool) {
	did, ok := parseID("dlv_", a.DeliveryID)
	if !ok {
		return nil, false
	}
	b := make([]byte, 0, 64+len(a.Attempt.Error))
	b = append(b, tagAttempt)
	b = append(b, did[:]...)
	b = appendUvarint(b, uint64(max(a.Attempt.N, 0)))
	b = binary.AppendVarint(b, a.Attempt.At.UnixMilli())
	b = appendUvarint(b, uint64(max(a.Attempt.StatusCode, 0)))
	b = appendString(b, a.Attempt.Error)
	b = appendUvarint(b, uint64(max(a.Attempt.DurationMS, 0)))
	b = appendString(b, a.Status)
	var retry int64
	if !a.RetryAt.IsZero() {
		retry = a.RetryAt.UnixMilli()
	}
	b = binary.AppendVarint(b, retry)
	b = appendUvarint(b, uint64(max(a.Failures, 0)))
	b = appendString(b, a.Disable)
	return b, true
}

func marshalResend(rs *ResendRecord) ([]byte, bool) {
	did, ok1 := parseID("dlv_", rs.DeliveryID)
	eid, ok2 := parseID("evt_", rs.EventID)
	if !ok1 || !ok2 {
		return nil, false
	}
	b := make([]byte, 0, 64+len(rs.Type)+len(rs.Body))
	b = append(b, tagResend)
	b = append(b, did[:]...)
	b = append(b, eid[:]...)
	b = appendString(b, rs.Type)
	b = binary.AppendVarint(b, rs.At.UnixMilli())
	b = appendBytes(b, rs.Body)
	return b, true
}

func unmarshalResend(b []byte) (*Record, error) {
	r := &reader{b: b[1:]}
	rs := &ResendRecord{}
	rs.DeliveryID = r.id().String()
	rs.EventID = r.id().format("evt_")
	rs.Type = internType(string(r.bytes()))
	rs.At = time.UnixMilli(r.varint()).UTC()
	rs.Body = r.bytes()
	if r.err != nil || len(r.b) != 0 {
		return nil, errBinRecord
	}
	return &Record{Kind: KindResend, Resend: rs}, nil
}

// reader decodes the binary forms; the first error sticks and every later read returns zero.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBinRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBinRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errBinRecord
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) id() ID {
	var id ID
	if r.err != nil || len(r.b) < 16 {
		r.err = errBinRecord
		return id
	}
	copy(id[:], r.b)
	r.b = r.b[16:]
	return id
}

func (r *reader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errBinRecord
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func unmarshalEvent(b []byte) (*Record, error) {
	r := &reader{b: b[1:]}
	ev := &EventRecord{}
	ev.ID = r.id().format("evt_")
	ev.Type = internType(string(r.bytes()))
	ev.At = time.UnixMilli(r.varint()).UTC()
	ev.IdempotencyKey = string(r.bytes())
	ev.Test = r.byte1()&1 != 0
	ev.Body = r.bytes()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/17) {
		r.err = errBinRecord // each delivery takes at least 17 bytes: refuse absurd counts
	}
	if r.err == nil {
		ev.Deliveries = make([]DeliveryRecord, 0, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		did := r.id()
		ev.Deliveries = append(ev.Deliveries, DeliveryRecord{ID: did.String(), EndpointID: string(r.bytes())})
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errBinRecord
	}
	return &Record{Kind: KindEventAccepted, Event: ev}, nil
}

func unmarshalAttempt(b []byte) (*Record, error) {
	r := &reader{b: b[1:]}
	a := &AttemptRecord{}
	a.DeliveryID = r.id().String()
	a.Attempt.N = int(min(r.uvarint(), 1<<16))
	a.Attempt.At = time.UnixMilli(r.varint()).UTC()
	a.Attempt.StatusCode = int(min(r.uvarint(), 1<<16))
	a.Attempt.Error = string(r.bytes())
	a.Attempt.DurationMS = int64(min(r.uvarint(), 1<<40))
	a.Status = string(r.bytes())
	if retry := r.varint(); retry != 0 {
		a.RetryAt = time.UnixMilli(retry).UTC()
	}
	a.Failures = int(min(r.uvarint(), 1<<30))
	a.Disable = string(r.bytes())
	if r.err != nil || len(r.b) != 0 {
		return nil, errBinRecord
	}
	return &Record{Kind: KindAttempt, Attempt: a}, nil
}
