package store

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// crockford is Crockford's base32 alphabet: no I, L, O, U, so ids survive being read aloud,
// and its order matches byte order, so ids sort by creation time.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// idGen makes ids like ULIDs: 48 bits of milliseconds, then 80 bits that start random and
// count up within a millisecond. Ids from one process are strictly increasing, which is what
// lets lists paginate with the last id as the cursor.
type idGen struct {
	mu     sync.Mutex
	lastMS uint64
	hi     uint16
	lo     uint64
}

func (g *idGen) next(prefix string, now time.Time) string {
	g.mu.Lock()
	ms := uint64(now.UnixMilli())
	if ms <= g.lastMS {
		// Same millisecond, or the clock went back: count up from the last id.
		g.lo++
		if g.lo == 0 {
			g.hi++
		}
		ms = g.lastMS
	} else {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("store: crypto/rand failed: " + err.Error()) // the OS is broken; nothing sane to do
		}
		g.hi = binary.BigEndian.Uint16(b[:2]) >> 1 // top bit clear leaves room to count up
		g.lo = binary.BigEndian.Uint64(b[2:])
		g.lastMS = ms
	}
	hi, lo := g.hi, g.lo
	g.mu.Unlock()

	var raw [16]byte
	binary.BigEndian.PutUint64(raw[0:8], ms<<16|uint64(hi))
	binary.BigEndian.PutUint64(raw[8:16], lo)
	return prefix + encode128(raw)
}

// seen raises the generator past an id read back from the log, so ids made after a restart
// still sort after the ones before it even if the clock stepped back.
func (g *idGen) seen(ms uint64) {
	g.mu.Lock()
	if ms > g.lastMS {
		g.lastMS = ms
	}
	g.mu.Unlock()
}

// seenID raises the generator to a whole id read back from the log or a snapshot. Knowing
// only its millisecond is not enough: with the clock at or behind it, next counts up within
// that millisecond, and must start above the ids already made in it, not at zero.
func (g *idGen) seenID(id string) {
	if len(id) < 26 {
		return
	}
	raw, ok := parseID(id[:len(id)-26], id)
	if !ok {
		return
	}
	top := binary.BigEndian.Uint64(raw[0:8])
	ms, hi, lo := top>>16, uint16(top), binary.BigEndian.Uint64(raw[8:16])
	g.mu.Lock()
	if ms > g.lastMS || ms == g.lastMS && (hi > g.hi || hi == g.hi && lo > g.lo) {
		g.lastMS, g.hi, g.lo = ms, hi, lo
	}
	g.mu.Unlock()
}

// encode128 writes 128 bits as 26 base32 digits (the first digit carries 3 bits).
func encode128(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// crockfordIndex maps a byte to its digit value, or -1; ids are parsed on every record.
var crockfordIndex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(crockford); i++ {
		t[crockford[i]] = int8(i)
	}
	return t
}()

func indexCrockford(c byte) int { return int(crockfordIndex[c]) }

// ValidID reports whether s looks like an id with the given prefix; handlers use it to turn
// garbage into a 404 before touching state.
func ValidID(prefix, s string) bool {
	if len(s) != len(prefix)+26 || s[:len(prefix)] != prefix {
		return false
	}
	for _, c := range []byte(s[len(prefix):]) {
		if indexCrockford(c) < 0 {
			return false
		}
	}
	return s[len(prefix)] <= '7' // 128 bits leave 3 in the first digit
}

// ID is an id's 128 bits without its prefix. The store keys deliveries by it: a fixed array
// costs no allocation and half the memory of the string, which matters with a million queued.
type ID [16]byte

// parseID decodes the 26 base32 digits after prefix; ok is false for anything ValidID rejects.
func parseID(prefix, s string) (ID, bool) {
	var id ID
	if !ValidID(prefix, s) {
		return id, false
	}
	var hi, lo uint64
	for _, c := range []byte(s[len(prefix):]) {
		d := uint64(indexCrockford(c))
		hi = hi<<5 | lo>>59
		lo = lo<<5 | d
	}
	binary.BigEndian.PutUint64(id[0:8], hi)
	binary.BigEndian.PutUint64(id[8:16], lo)
	return id, true
}

func (id ID) format(prefix string) string { return prefix + encode128(id) }

// Format writes the id with its prefix ("evt_" for an event's).
func (id ID) Format(prefix string) string { return id.format(prefix) }

// time is the millisecond an id was made in (its top 48 bits).
func (id ID) time() time.Time {
	return time.UnixMilli(int64(binary.BigEndian.Uint64(id[0:8]) >> 16))
}

// DeliveryID is a delivery's id as the engine carries it.
type DeliveryID = ID

// String formats a delivery id ("dlv_…").
func (id ID) String() string { return id.format("dlv_") }

// ParseDeliveryID parses "dlv_…".
func ParseDeliveryID(s string) (DeliveryID, bool) { return parseID("dlv_", s) }
