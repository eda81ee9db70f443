package store

import (
	"sync"
	"sync/atomic"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// event is an accepted event that some delivery still needs. It is 32 bytes on purpose: a relay
// with a dead receiver holds one per queued delivery, a million of them. Its body lives in the
// WAL at pos (and in the payload cache); a store without a log keeps bodies in Store.memBodies.
type event struct {
	id   ID
	pos  packedPos
	live int32 // deliveries not yet finished
	typ  typeCode
	// unreadable: reading the body back from the WAL failed once (logged once, not per attempt)
	unreadable bool
}

func (e *event) position() wal.Position { return e.pos.unpack() }
func (e *event) typeName() string       { return e.typ.name() }

// packedPos is a wal.Position in 8 bytes: 30 bits of segment number and 34 of offset. Segments
// hold at most 1 GiB (--wal-segment-size) plus one record, and a segment number of 2^30 would
// take a rotation a second for 34 years.
type packedPos uint64

const posOffsetBits = 34

func packPos(p wal.Position) packedPos {
	return packedPos(p.Segment<<posOffsetBits | uint64(p.Offset)&(1<<posOffsetBits-1))
}

func (p packedPos) unpack() wal.Position {
	return wal.Position{Segment: uint64(p) >> posOffsetBits, Offset: int64(uint64(p) & (1<<posOffsetBits - 1))}
}

func (p packedPos) segment() uint64 { return uint64(p) >> posOffsetBits }

// typeCode names an event type in one byte: an index into a process-wide table that starts with
// the catalogue. The API accepts only catalogue types, so the table grows only if a log holds
// another (written by some other version); past 255 of those they share the last code's name.
type typeCode uint8

var types struct {
	mu    sync.Mutex
	codes map[string]typeCode
	names atomic.Pointer[[]string] // read without the lock: replaced, never changed in place
}

func init() {
	names := append([]string(nil), api.EventTypes...)
	if !contains(names, api.TypeTestPing) {
		names = append(names, api.TypeTestPing)
	}
	types.codes = make(map[string]typeCode, len(names))
	for i, n := range names {
		types.codes[n] = typeCode(i)
	}
	types.names.Store(&names)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func codeOf(t string) typeCode {
	for i, n := range *types.names.Load() { // the catalogue comes first: no lock on the hot path
		if n == t {
			return typeCode(i)
		}
	}
	types.mu.Lock()
	defer types.mu.Unlock()
	if c, ok := types.codes[t]; ok {
		return c
	}
	names := *types.names.Load()
	if len(names) > 255 {
		return 255
	}
	grown := append(append([]string(nil), names...), t)
	c := typeCode(len(grown) - 1)
	types.codes[t] = c
	types.names.Store(&grown)
	return c
}

func (c typeCode) name() string { return (*types.names.Load())[c] }
