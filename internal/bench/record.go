package bench

import (
	"sync"
	"sync/atomic"
)

// Events are numbered 0, 1, 2, … by the load generator (the "seq" inside their data), and
// everything the harness remembers about them lives in tables indexed by that number: one
// for acknowledgements, one per receiver for what arrived. Tables are split into chunks
// allocated on first use, and have a fixed capacity (MaxEvents), so memory is bounded and
// tracks what was actually sent.

const (
	chunkBits = 14
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// fnv64 is FNV-1a over b: delivery and event ids are remembered as 64-bit hashes, which is
// plenty to tell two ids apart in a run of a few million.
func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	if h == 0 {
		h = 1 // 0 means "none"
	}
	return h
}

// ackTable records, per seq, the hash of the event id the relay answered with (0: the
// event was not acknowledged).
type ackTable struct {
	chunks []atomic.Pointer[[chunkSize]atomic.Uint64]
}

func newAckTable(capacity int64) *ackTable {
	return &ackTable{chunks: make([]atomic.Pointer[[chunkSize]atomic.Uint64], (capacity+chunkSize-1)/chunkSize)}
}

func (t *ackTable) cap() int64 { return int64(len(t.chunks)) * chunkSize }

func (t *ackTable) set(seq int64, h uint64) {
	c := t.chunks[seq>>chunkBits].Load()
	if c == nil {
		c = new([chunkSize]atomic.Uint64)
		if !t.chunks[seq>>chunkBits].CompareAndSwap(nil, c) {
			c = t.chunks[seq>>chunkBits].Load()
		}
	}
	c[seq&chunkMask].Store(h)
}

func (t *ackTable) get(seq int64) uint64 {
	if seq < 0 || seq >= t.cap() {
		return 0
	}
	c := t.chunks[seq>>chunkBits].Load()
	if c == nil {
		return 0
	}
	return c[seq&chunkMask].Load()
}

// arrival is what one receiver saw of one event.
type arrival struct {
	delivery uint64 // hash of the first delivery id seen
	event    uint64 // hash of the event id in the body (0 when the body has none)
	sent     int64  // send time from the body, unix ns
	okAt     int64  // first arrival answered 2xx, unix ns (0: none yet)
	arrivals uint32 // requests that carried this event
	oks      uint32 // of which answered 2xx
}

type arrivalChunk struct {
	mu sync.Mutex
	a  [chunkSize]arrival
}

// arrivalTable is one receiver's record of what arrived.
type arrivalTable struct {
	chunks []atomic.Pointer[arrivalChunk]
}

func newArrivalTable(capacity int64) *arrivalTable {
	return &arrivalTable{chunks: make([]atomic.Pointer[arrivalChunk], (capacity+chunkSize-1)/chunkSize)}
}

func (t *arrivalTable) cap() int64 { return int64(len(t.chunks)) * chunkSize }

func (t *arrivalTable) chunk(seq int64, create bool) *arrivalChunk {
	p := &t.chunks[seq>>chunkBits]
	c := p.Load()
	if c == nil && create {
		c = new(arrivalChunk)
		if !p.CompareAndSwap(nil, c) {
			c = p.Load()
		}
	}
	return c
}

// note is the verdict of recording one arrival.
type note struct {
	first          bool // first 2xx for this event at this receiver
	afterOK        bool // it had already been answered 2xx: an at-least-once redelivery
	afterFail      bool // an earlier arrival was answered with a failure: an expected retry
	otherDelivery  bool // a different delivery id than before for the same event: a bug
	otherEvent     bool // a different event id than before for the same seq: a bug
	latencyNS      int64
	sentNS         int64
	okAtNS         int64
	previousOKs    uint32
	previousArrive uint32
}

// record notes one arrival of seq, answered ok or not, at time now.
func (t *arrivalTable) record(seq int64, delivery, event uint64, sent, now int64, ok bool) note {
	c := t.chunk(seq, true)
	c.mu.Lock()
	a := &c.a[seq&chunkMask]
	var n note
	n.previousArrive, n.previousOKs = a.arrivals, a.oks
	if a.arrivals == 0 {
		a.delivery, a.event, a.sent = delivery, event, sent
	} else {
		n.otherDelivery = delivery != 0 && a.delivery != 0 && delivery != a.delivery
		n.otherEvent = event != 0 && a.event != 0 && event != a.event
		n.afterOK = a.oks > 0
		n.afterFail = a.oks == 0
	}
	a.arrivals++
	if ok {
		if a.oks == 0 {
			a.okAt = now
			n.first = true
			n.latencyNS = now - a.sent
		}
		a.oks++
	}
	n.sentNS, n.okAtNS = a.sent, a.okAt
	c.mu.Unlock()
	return n
}

// get returns a copy of what arrived for seq.
func (t *arrivalTable) get(seq int64) arrival {
	if seq < 0 || seq >= t.cap() {
		return arrival{}
	}
	c := t.chunk(seq, false)
	if c == nil {
		return arrival{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.a[seq&chunkMask]
}
