package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// The snapshot is streamed, one JSON object per line, so neither writing nor reading it ever
// holds the whole state twice in memory:
//
//	BTSNAP 1
//	{"k":"meta",...}  {"k":"ep",...}  {"k":"ev",...}  {"k":"dl",...}  {"k":"id",...}
//	END <crc32c of every byte before this line, 8 hex digits> <number of object lines>
const snapshotMagic = "BTSNAP 1\n"

// ErrBadSnapshot is a snapshot file that does not decode; the relay refuses to start on it.
var ErrBadSnapshot = errors.New("store: bad snapshot")

type snapLine struct {
	K string `json:"k"`

	// meta
	From   *wal.Position `json:"from,omitempty"`
	LastMS uint64        `json:"last_ms,omitempty"`
	Synced bool          `json:"synced,omitempty"` // fleet mode: see KindSynced

	Endpoint *endpoint `json:"ep,omitempty"`

	// event (ev) and delivery (dl) and idempotency key (id)
	ID         string        `json:"id,omitempty"`
	Type       string        `json:"type,omitempty"`
	Pos        *wal.Position `json:"pos,omitempty"`
	Live       int           `json:"live,omitempty"`
	EventID    string        `json:"ev,omitempty"`
	EndpointID string        `json:"ep_id,omitempty"`
	Status     string        `json:"s,omitempty"`
	Test       bool          `json:"test,omitempty"`
	Attempts   []Attempt     `json:"a,omitempty"`
	Next       time.Time     `json:"next,omitzero"`
	Key        string        `json:"key,omitempty"`
	Sum        uint64        `json:"sum,omitempty"` // the request's fingerprint, see idemEntry
	Deliveries int           `json:"n,omitempty"`
	Base       int           `json:"base,omitempty"` // attempts before the retry series (a resend)
}

// capture is a consistent copy of the state at one log position, small enough to take under
// the store's lock in milliseconds even with a million deliveries queued: for each delivery only
// what can change after the capture is copied (status, next attempt, how many attempts); the
// rest (ids, type, WAL position) is never written after the delivery is created, and attempts
// are append-only (the elements below the captured count are never rewritten, an append that
// grows the slice copies them), so the writer reads those through pointers without the lock.
// The endpoint is not read through the delivery (an update rewrites the endpoint struct):
// deliveries are captured endpoint by endpoint, perEP[i] slots of them for eps[i], where a
// slot with a nil delivery is one the endpoint's list had already dropped.
type capture struct {
	from    wal.Position
	written int64
	lastMS  uint64
	eps     []endpoint
	perEP   []int
	dls     []capDelivery
	idem    []snapLine
	refs    map[uint64]int
	hist    map[uint64]int // history deliveries per segment of their event (see Store.histSegs)
	synced  bool
	durable func() error // returns once every record the capture reflects is durable
}

// capDelivery is 24 bytes: a million queued deliveries cost 24 MB while a snapshot is written.
type capDelivery struct {
	d   *delivery
	att *attempt // first of the delivery's attempts, nil when it has none
	// next<<16 | attempts<<8 | status: the next attempt in unix ms fits 48 bits until the
	// year 10889, attempts and status fit a byte each.
	packed uint64
}

func (cd *capDelivery) status() uint8 { return uint8(cd.packed) }
func (cd *capDelivery) next() int64   { return int64(cd.packed >> 16) }
func (cd *capDelivery) attempts() []attempt {
	if cd.att == nil {
		return nil
	}
	return unsafe.Slice(cd.att, uint8(cd.packed>>8))
}

// captureDelivery fills a slot. Callers hold s.mu.
func captureDelivery(dst *capDelivery, d *delivery) {
	if d.removed {
		return
	}
	dst.d = d
	if n := len(d.attempts); n > 0 {
		dst.att = &d.attempts[0]
		dst.packed = uint64(min(n, 255)) << 8
	}
	dst.packed |= uint64(d.next)<<16 | uint64(d.status)
}

// capture copies the state at a fresh WAL segment, into buf when it has room (its slots
// must be zero). Callers hold s.mu.
func (s *Store) capture(buf []capDelivery) *capture {
	c := s.captureAt(s.wal.Rotate(), buf)
	c.written, c.durable = s.wal.Written(), s.wal.Barrier()
	return c
}

// deliverySlots is how many slots a capture takes now. Callers hold s.mu.
func (s *Store) deliverySlots() int {
	n := 0
	for _, ep := range s.endpoints {
		n += len(ep.deliveries)
	}
	return n
}

// captureAt copies the state, which replay from `from` continues, into buf when it has room.
// Callers hold s.mu.
func (s *Store) captureAt(from wal.Position, buf []capDelivery) *capture {
	c := &capture{from: from, durable: noWait, synced: s.synced}
	s.ids.mu.Lock()
	c.lastMS = s.ids.lastMS
	s.ids.mu.Unlock()
	c.refs = make(map[uint64]int, len(s.segRefs))
	for k, v := range s.segRefs {
		c.refs[k] = v
	}
	c.hist = make(map[uint64]int, len(s.histSegs))
	for k, v := range s.histSegs {
		c.hist[k] = v
	}
	c.eps = make([]endpoint, 0, len(s.order))
	for _, id := range s.order {
		ep := s.endpoints[id]
		c.eps = append(c.eps, endpoint{ID: ep.ID, URL: ep.URL, Name: ep.Name, Description: ep.Description,
			EventTypes: ep.EventTypes, Active: ep.Active, DisabledReason: ep.DisabledReason,
			ConsecutiveFailures: ep.ConsecutiveFailures, Secret: ep.Secret, CreatedAt: ep.CreatedAt, UpdatedAt: ep.UpdatedAt,
			PrevSecret: ep.PrevSecret, PrevSecretExpires: ep.PrevSecretExpires, Version: ep.Version})
	}
	n := 0
	c.perEP = make([]int, 0, len(s.order))
	var lists [][]*delivery
	for _, id := range s.order {
		dl := s.endpoints[id].deliveries
		lists = append(lists, dl)
		c.perEP = append(c.perEP, len(dl))
		n += len(dl)
	}
	if cap(buf) >= n {
		c.dls = buf[:n]
	} else {
		c.dls = make([]capDelivery, n)
	}
	captureParallel(c.dls, lists)
	keys := s.idem.Keys() // oldest first, so a restore keeps the LRU order
	c.idem = make([]snapLine, 0, len(keys))
	for _, key := range keys {
		if e, ok := s.idem.Peek(key); ok {
			c.idem = append(c.idem, snapLine{K: "id", Key: key, EventID: e.res.EventID, Deliveries: e.res.Deliveries, Sum: e.sum})
		}
	}
	return c
}

// write streams the captured state in the snapshot format. It runs without the store's lock.
func (c *capture) write(w io.Writer) error {
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	mw := io.MultiWriter(w, crc)
	enc := json.NewEncoder(mw)
	if _, err := io.WriteString(mw, snapshotMagic); err != nil {
		return err
	}
	n := 0
	put := func(l *snapLine) error { n++; return enc.Encode(l) }
	from := c.from
	if err := put(&snapLine{K: "meta", From: &from, LastMS: c.lastMS, Synced: c.synced}); err != nil {
		return err
	}
	for i := range c.eps {
		if err := put(&snapLine{K: "ep", Endpoint: &c.eps[i]}); err != nil {
			return err
		}
	}
	i := 0
	for e, count := range c.perEP {
		for k := range c.dls[i : i+count] {
			cd := &c.dls[i+k]
			d := cd.d
			if d == nil {
				continue
			}
			st := cd.status()
			l := &snapLine{K: "dl", ID: d.id.String(), EventID: d.ev.id.format("evt_"), Type: d.ev.typeName(),
				EndpointID: c.eps[e].ID, Status: statusNames[st], Test: d.test, Attempts: exportAttempts(cd.attempts())}
			if pos := d.ev.position(); pos.Segment != 0 {
				// Finished ones too: their payload may still be kept for a resend.
				l.Pos = &pos
			}
			if st == stPending || st == stHeld {
				l.Next = time.UnixMilli(cd.next()).UTC()
				l.Base = int(d.base)
			}
			if err := put(l); err != nil {
				return err
			}
		}
		i += count
	}
	for i := range c.idem {
		if err := put(&c.idem[i]); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "END %08x %d\n", crc.Sum32(), n)
	return err
}

// readSnapshot restores a streamed snapshot into an empty store and returns where the log
// replay starts. Any damage is ErrBadSnapshot: a snapshot is written atomically, so a bad one
// is not a torn write to tolerate but a fault to stop on.
func (s *Store) readSnapshot(r io.Reader) (wal.Position, error) {
	var from wal.Position
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	br := bufio.NewReaderSize(r, 256<<10)
	line, err := readLine(br, crc)
	if err != nil || string(line) != snapshotMagic {
		return from, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	rs := &restoring{events: map[eventKey]*event{}}
	n := 0
	for {
		line, err := readLine(br, nil)
		if err != nil {
			return from, fmt.Errorf("%w: truncated after %d lines", ErrBadSnapshot, n)
		}
		if bytes.HasPrefix(line, []byte("END ")) {
			if err := checkTrailer(line, crc, n, rs.sawMeta); err != nil {
				return from, err
			}
			s.finishRestore()
			return rs.from, nil
		}
		crc.Write(line)
		n++
		var l snapLine
		if err := json.Unmarshal(line, &l); err != nil {
			return from, fmt.Errorf("%w: line %d: %v", ErrBadSnapshot, n+1, err)
		}
		if err := s.restoreLine(&l, rs); err != nil {
			return from, fmt.Errorf("%w: line %d: %v", ErrBadSnapshot, n+1, err)
		}
	}
}

type restoring struct {
	from    wal.Position
	sawMeta bool
	events  map[eventKey]*event
}

// eventKey tells apart the event structs of one event: a resent delivery has its own, at the
// position of the record that reopened it.
type eventKey struct {
	id  ID
	pos wal.Position
}

func (s *Store) restoreLine(l *snapLine, rs *restoring) error {
	switch l.K {
	case "meta":
		if l.From == nil {
			return errors.New("meta without position")
		}
		rs.from, rs.sawMeta = *l.From, true
		s.ids.seen(l.LastMS)
		s.synced = l.Synced
	case "ep":
		ep := l.Endpoint
		if ep == nil || !ValidID("ep_", ep.ID) || s.endpoints[ep.ID] != nil {
			return errors.New("bad endpoint")
		}
		ep.deliveries, ep.removed, ep.history, ep.histHead, ep.histLive = nil, 0, nil, 0, 0
		if ep.EventTypes == nil {
			ep.EventTypes = []string{}
		}
		s.endpoints[ep.ID] = ep
		s.order = append(s.order, ep.ID)
		s.ids.seenID(ep.ID)
		slices.Sort(s.order)
	case "dl":
		return s.restoreDelivery(l, rs)
	case "id":
		if l.Key == "" {
			return errors.New("bad idempotency key")
		}
		s.idem.Add(l.Key, idemEntry{res: IngestResult{EventID: l.EventID, Deliveries: l.Deliveries}, sum: l.Sum})
	default:
		return fmt.Errorf("unknown line kind %q", l.K)
	}
	return nil
}

func (s *Store) restoreDelivery(l *snapLine, rs *restoring) error {
	ep := s.endpoints[l.EndpointID]
	did, ok1 := parseID("dlv_", l.ID)
	eid, ok2 := parseID("evt_", l.EventID)
	st, ok3 := statusOf(l.Status)
	if ep == nil || !ok1 || !ok2 || !ok3 || s.deliveries[did] != nil {
		return errors.New("bad delivery")
	}
	key := eventKey{id: eid}
	if l.Pos != nil {
		key.pos = *l.Pos
	}
	e := rs.events[key]
	if e == nil {
		e = &event{id: eid, typ: codeOf(l.Type), pos: packPos(key.pos)}
		rs.events[key] = e
	}
	d := &delivery{id: did, ev: e, ep: ep, status: st, test: l.Test, attempts: s.importAttempts(l.Attempts)}
	if d.open() {
		if l.Pos == nil {
			return errors.New("open delivery without its event's position")
		}
		// An event lives while it has open deliveries: count them (snapshots before this
		// count carried it as "live"; counting gives the same number).
		if e.live == 0 {
			s.segRefs[e.pos.segment()]++
		}
		e.live++
		ep.queued++
		d.next = l.Next.UnixMilli()
		d.base = uint8(min(max(l.Base, 0), len(d.attempts), 255))
	}
	s.deliveries[did] = d
	ep.deliveries = append(ep.deliveries, d)
	s.ids.seenID(l.ID)
	return nil
}

// finishRestore orders what the snapshot listed: deliveries by id, history by finish time.
func (s *Store) finishRestore() {
	for _, ep := range s.endpoints {
		slices.SortFunc(ep.deliveries, func(a, b *delivery) int { return bytes.Compare(a.id[:], b.id[:]) })
		var done []*delivery
		for _, d := range ep.deliveries {
			if !d.open() {
				done = append(done, d)
			}
		}
		slices.SortStableFunc(done, func(a, b *delivery) int { return cmpInt(lastAttempt(a), lastAttempt(b)) })
		for _, d := range done {
			s.remember(ep, d)
		}
	}
}

func lastAttempt(d *delivery) int64 {
	if len(d.attempts) == 0 {
		return 0
	}
	return d.attempts[len(d.attempts)-1].at
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func exportAttempts(as []attempt) []Attempt {
	if len(as) == 0 {
		return nil
	}
	out := make([]Attempt, len(as))
	for i, a := range as {
		out[i] = Attempt{N: int(a.n), At: time.UnixMilli(a.at).UTC(), StatusCode: int(a.code), DurationMS: int64(a.duration)}
		if a.err != nil {
			out[i].Error = *a.err
		}
	}
	return out
}

func (s *Store) importAttempts(as []Attempt) []attempt {
	if len(as) == 0 {
		return nil
	}
	out := make([]attempt, len(as))
	for i, a := range as {
		out[i] = attempt{at: a.At.UnixMilli(), err: s.intern(a.Error), duration: uint32(min(max(a.DurationMS, 0), 1<<32-1)),
			code: uint16(min(max(a.StatusCode, 0), 999)), n: uint8(min(max(a.N, 0), 255))}
	}
	return out
}

func checkTrailer(line []byte, crc hash.Hash32, n int, sawMeta bool) error {
	var sum uint32
	var count int
	f := bytes.Fields(line)
	if len(f) != 3 {
		return fmt.Errorf("%w: bad trailer", ErrBadSnapshot)
	}
	v, err1 := strconv.ParseUint(string(f[1]), 16, 32)
	c, err2 := strconv.Atoi(string(f[2]))
	sum, count = uint32(v), c
	switch {
	case err1 != nil || err2 != nil:
		return fmt.Errorf("%w: bad trailer", ErrBadSnapshot)
	case sum != crc.Sum32():
		return fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	case count != n:
		return fmt.Errorf("%w: %d lines, trailer says %d", ErrBadSnapshot, n, count)
	case !sawMeta:
		return fmt.Errorf("%w: no meta line", ErrBadSnapshot)
	}
	return nil
}

// readLine reads one line including its newline; lines are bounded so a damaged file cannot
// make the reader allocate without limit.
func readLine(br *bufio.Reader, crc hash.Hash32) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > 64<<20 {
			return nil, errors.New("line too long")
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
	if crc != nil {
		crc.Write(out)
	}
	return out, nil
}

// captureParallel fills dst, slot for slot, from the endpoints' delivery lists laid end to
// end, on up to GOMAXPROCS goroutines: the lock is held throughout, and a million deliveries
// are a million cache misses, so the cores the waiting requests cannot use shorten the stall.
func captureParallel(dst []capDelivery, lists [][]*delivery) {
	workers := min(runtime.GOMAXPROCS(0), 8, 1+len(dst)/50_000)
	if workers <= 1 {
		i := 0
		for _, dl := range lists {
			for _, d := range dl {
				captureDelivery(&dst[i], d)
				i++
			}
		}
		return
	}
	per := (len(dst) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(dst))
		wg.Go(func() {
			i := 0 // index in dst of the first slot of the current list
			for _, dl := range lists {
				if i >= hi {
					return
				}
				from, to := max(lo-i, 0), min(hi-i, len(dl))
				for k := from; k < to; k++ {
					captureDelivery(&dst[i+k], dl[k])
				}
				i += len(dl)
			}
		})
	}
	wg.Wait()
}
