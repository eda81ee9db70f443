// Package store owns the relay's state: endpoints and their secrets, accepted events, and
// deliveries with their attempts. It is a state machine fed by records: every change is first
// turned into a Record (all ids, times and decisions already fixed), handed to the Log, and then
// applied. Applying a record never reads the clock or a random source, so replaying the log
// rebuilds exactly the state that was acknowledged.
//
// The store never does network I/O and never decides retry timing; internal/delivery does that
// and reports outcomes back through Begin and Finish.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Sentinel errors; handlers map them to HTTP statuses.
var (
	ErrNotFound = errors.New("store: not found")
	// ErrInactive refuses a test ping to an endpoint that is disabled.
	ErrInactive = errors.New("store: endpoint is disabled")
	// ErrTooLarge is a change whose record would not fit in one WAL record.
	ErrTooLarge = errors.New("store: record too large")
	// ErrReadOnly refuses a change to a store opened with Options.ReadOnly.
	ErrReadOnly = errors.New("store: opened read-only")
)

// Options configures a Store.
type Options struct {
	// Dir holds the WAL ("wal/") and the snapshot. Empty means memory only: nothing survives
	// a restart (unit tests use this).
	Dir string
	// WAL configures the log under Dir (Dir and Logger are filled in).
	WAL wal.Options
	// DisableAfter consecutive failed deliveries disable an endpoint (0 = never).
	DisableAfter int
	// HistoryLimit is how many finished deliveries each endpoint keeps (pending ones are
	// always kept). 0 means 100.
	HistoryLimit int
	// PayloadCache is how many event bodies stay in memory (0 = 10,000); the rest are read
	// back from the WAL when an attempt needs them.
	PayloadCache int
	// IdempotencyCache is how many ingest idempotency keys are remembered (0 = 100,000).
	IdempotencyCache int
	// HistoryCache bounds finished deliveries kept across all endpoints (0 = 100,000); the
	// least recently finished or read are dropped first.
	HistoryCache int
	// HistoryPayloadBytes bounds the WAL segments kept only because deliveries in history
	// (which can be resent) refer to their events (0 = 256 MiB). Past it the oldest such
	// segments are compacted and their deliveries can no longer be resent. Negative keeps none.
	HistoryPayloadBytes int64
	// SnapshotBytes: a snapshot is taken after this many bytes of log (0 = 64 MiB).
	SnapshotBytes int64
	// SnapshotInterval: a snapshot is taken at least this often while anything changed
	// (0 = 5 minutes).
	SnapshotInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnReady is told about deliveries that became due for an attempt. It is called without
	// the store's lock held and must not block for long.
	OnReady func(Ready)
	// OnStop is told, once it is durable, that an endpoint was disabled or deleted, so that
	// whoever holds timers for its deliveries can drop them. Called without the lock held.
	OnStop func(endpointID string)
	// OnSnapshot, when set, is told how long each snapshot that succeeded took (the
	// metrics' snapshot histogram).
	OnSnapshot func(time.Duration)
	// SharedCounter (fleet mode): the endpoint's failure counter and auto-disable are decided
	// elsewhere, from OnOutcome; Finish records attempts and never changes the endpoint.
	SharedCounter bool
	// OnOutcome, when set, is told each non-test delivery that succeeded or failed for good
	// (its attempt record logged, not yet durable; a replay may tell it again: the key makes
	// that harmless). Called without the lock.
	OnOutcome func(OutcomeReport)
	// OnDelivery, when set, is told each delivery's state after it was created, attempted or
	// resent (see changes.go): the attempt's record logged, not yet durable, as OnOutcome; the
	// others durable. Called without the lock; it must not block.
	OnDelivery func(DeliveryState)
	// OnIngest, when set, is told the type of each event Ingest accepted, once it is durable;
	// a repeated idempotency key accepts nothing and is not told. Called without the lock.
	OnIngest func(eventType string)
	// ReadOnly opens Dir to read the state a stopped relay left (blametrail-relay store
	// import): every change is refused with ErrReadOnly, no snapshot is taken (neither in the
	// background nor at Close), nothing in Dir is removed or moved aside, and a Dir without a
	// WAL is an error, not a new empty state. The WAL's own recovery still runs as at any
	// start: a torn tail, which holds nothing acknowledged, is truncated.
	ReadOnly bool
	Logger   *slog.Logger
}

// Ready says a delivery can be attempted at Due. It is small and allocation-free on purpose:
// the engine holds one per queued delivery.
//
// With Resume set it names no delivery: the endpoint was re-enabled and every delivery it held
// is due now. The engine pulls them with DueAfter a page at a time, so re-enabling an endpoint
// that holds a million deliveries neither builds a million-entry list nor queues one.
type Ready struct {
	Delivery   DeliveryID
	EndpointID string // shared with the endpoint, not a copy
	Due        time.Time
	Resume     bool
}

// Store is safe for concurrent use.
type Store struct {
	opts Options
	ids  idGen
	log  *slog.Logger

	wal      *wal.WAL // nil in memory mode
	durable  bool     // payloads live in the WAL (set before replay, when wal is still nil)
	payloads *lru.Cache[ID, []byte]
	persist  persister

	mu         sync.Mutex
	endpoints  map[string]*endpoint
	order      []string // endpoint ids, ascending = creation order
	deliveries map[ID]*delivery
	idem       *lru.Cache[string, idemEntry]
	history    *lru.Cache[ID, *delivery] // finished deliveries still shown; bounds their memory
	segRefs    map[uint64]int            // live events per WAL segment
	memBodies  map[ID][]byte             // event bodies, in a store without a log (nil otherwise)
	// histSegs counts finished deliveries in history per WAL segment holding their event:
	// compaction keeps those segments, within Options.HistoryPayloadBytes, for resends.
	histSegs map[uint64]int
	errs     map[string]*string
	synced   bool // fleet mode: the fleet's endpoints were seen (KindSynced)

	payloadErrors atomic.Int64
}

type endpoint struct {
	ID                  string   `json:"id"`
	URL                 string   `json:"url"`
	Name                string   `json:"name"`
	Description         string   `json:"description"`
	EventTypes          []string `json:"event_types"`
	Active              bool     `json:"active"`
	DisabledReason      string   `json:"disabled_reason,omitempty"`
	ConsecutiveFailures int      `json:"consecutive_failures"`
	Secret              string   `json:"secret"`
	// PrevSecret still signs, next to Secret, until PrevSecretExpires (fixed in the record
	// of the rotation, so a replay keeps the same overlap). After that it is ignored; the next
	// rotation overwrites it.
	PrevSecret        string    `json:"prev_secret,omitempty"`
	PrevSecretExpires time.Time `json:"prev_secret_expires,omitzero"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	// Version is the fleet's version of this state (fleet mode; 0 for a local endpoint).
	Version int64 `json:"version,omitempty"`

	// deliveries holds pending and retained finished deliveries, ascending by id (oldest
	// first). Removal only marks a delivery; the slice is compacted once half of it is marked,
	// so draining a large backlog costs amortised O(1) per delivery, not a memmove each.
	deliveries []*delivery
	removed    int
	// history holds finished deliveries in the order they finished; past HistoryLimit the
	// oldest is dropped. Entries the global history cache evicted stay here, marked removed,
	// until they reach the head; histLive counts the others.
	history  []*delivery
	histHead int
	histLive int
	// queued counts its open (pending or held) deliveries, for the queue-depth metric: kept
	// by apply (applyEvent, finish) and restore, so reading it never walks deliveries.
	queued int
}

// Delivery status, as stored; api.Status* are their names.
const (
	stPending uint8 = iota
	stHeld
	stSucceeded
	stFailed
)

var statusNames = [...]string{api.StatusPending, api.StatusHeld, api.StatusSucceeded, api.StatusFailed}

func statusOf(name string) (uint8, bool) {
	for i, n := range statusNames {
		if n == name {
			return uint8(i), true
		}
	}
	return 0, false
}

// delivery is kept small: a relay with a dead receiver holds a million of them.
type delivery struct {
	id       ID
	ev       *event
	ep       *endpoint
	next     int64 // unix ms of the next attempt, while pending
	attempts []attempt
	status   uint8
	test     bool
	inFlight bool // an attempt is under way; not logged, a restart forgets it
	removed  bool // dropped from history, waiting for its endpoint's list to be compacted
	// base is how many attempts came before the current retry series (a resend starts one).
	base uint8
}

func (d *delivery) open() bool { return d.status == stPending || d.status == stHeld }

type attempt struct {
	at       int64   // unix ms
	err      *string // interned: a dead endpoint fails a million times with one message
	duration uint32  // ms
	code     uint16
	n        uint8
}

// Attempt is one HTTP attempt as the engine reports it and the log records it.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// idemEntry is a remembered idempotency key: the first answer, and a fingerprint of the
// request (type and data) so that the key reused for another event is refused, not answered.
type idemEntry struct {
	res IngestResult
	sum uint64 // 0: unknown (a snapshot written before fingerprints): any body matches
}

// ErrIdempotencyKeyReused: an idempotency key came back with a different event.
var ErrIdempotencyKeyReused = errors.New("store: idempotency key reused with a different body")

// requestSum fingerprints an ingest request: its type and the raw bytes of its data.
func requestSum(typ string, data []byte) uint64 {
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write(data)
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0])) | 1 // never 0, which means unknown
}

// envelopeData returns the data an envelope (see envelope) wraps.
func envelopeData(body []byte) []byte {
	const marker = `","data":`
	i := bytes.Index(body, []byte(marker))
	if i < 0 || len(body) == 0 || body[len(body)-1] != '}' {
		return nil
	}
	return body[i+len(marker) : len(body)-1]
}

// IngestResult is what POST /api/events answers, and what a repeated idempotency key gets.
type IngestResult struct {
	EventID    string `json:"event_id"`
	Deliveries int    `json:"deliveries"`
}

// New returns an empty store that keeps everything in memory.
func New(opts Options) *Store {
	opts.Dir = ""
	s, _ := newStore(opts)
	return s
}

func newStore(opts Options) (*Store, error) {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 100
	}
	if opts.PayloadCache <= 0 {
		opts.PayloadCache = 10_000
	}
	if opts.IdempotencyCache <= 0 {
		opts.IdempotencyCache = 100_000
	}
	if opts.HistoryCache <= 0 {
		opts.HistoryCache = 100_000
	}
	if opts.HistoryPayloadBytes == 0 {
		opts.HistoryPayloadBytes = 256 << 20
	}
	if opts.SnapshotBytes <= 0 {
		opts.SnapshotBytes = 64 << 20
	}
	if opts.SnapshotInterval <= 0 {
		opts.SnapshotInterval = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	payloads, err := lru.New[ID, []byte](opts.PayloadCache)
	if err != nil {
		return nil, fmt.Errorf("store: payload cache: %w", err)
	}
	idem, err := lru.New[string, idemEntry](opts.IdempotencyCache)
	if err != nil {
		return nil, fmt.Errorf("store: idempotency cache: %w", err)
	}
	s := &Store{
		opts:       opts,
		log:        opts.Logger,
		payloads:   payloads,
		endpoints:  make(map[string]*endpoint),
		deliveries: make(map[ID]*delivery),
		idem:       idem,
		segRefs:    make(map[uint64]int),
		histSegs:   make(map[uint64]int),
		memBodies:  make(map[ID][]byte),
		errs:       make(map[string]*string),
	}
	// Eviction runs inside Add, under s.mu, from finish: it may change store state directly.
	s.history, err = lru.NewWithEvict(opts.HistoryCache, func(_ ID, d *delivery) { s.forget(d) })
	if err != nil {
		return nil, fmt.Errorf("store: history cache: %w", err)
	}
	return s, nil
}

func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// commit logs rec and applies it. It returns the deliveries the record made due and the
// wait for durability; callers hold s.mu, release it, then wait, and only then notify or
// acknowledge, so nothing is announced that a crash could take back.
//
// The record is applied before it is durable, so that the next record is decided on the state
// this one leaves; nothing reads that state without waiting first (see read), and a record
// that fails leaves the log failed for good, so no later record is decided on it either.
func (s *Store) commit(rec *Record) ([]Ready, func() error, error) {
	return s.commitRecord(rec, false)
}

// commitLazy is commit for a record that nobody waits for (see wal.AppendLazy): it goes to
// disk with the next record someone waits for, within the WAL's LazyDelay. Its wait still
// works, and makes the record urgent.
func (s *Store) commitLazy(rec *Record) ([]Ready, func() error, error) {
	return s.commitRecord(rec, true)
}

func (s *Store) commitRecord(rec *Record, lazy bool) ([]Ready, func() error, error) {
	if s.opts.ReadOnly {
		return nil, nil, ErrReadOnly
	}
	if !s.durable {
		return s.apply(rec, wal.Position{}), noWait, nil
	}
	b, err := rec.Marshal()
	if err != nil {
		return nil, nil, err
	}
	if len(b) > wal.MaxRecordSize {
		// Checked here, before Append and apply: a record the log refuses must change nothing.
		return nil, nil, fmt.Errorf("%w: %d bytes, the WAL holds at most %d", ErrTooLarge, len(b), wal.MaxRecordSize)
	}
	add := s.wal.Append
	if lazy {
		add = s.wal.AppendLazy
	}
	pos, wait := add(b)
	if err := s.wal.Err(); err != nil {
		// Refuse before changing memory: what is not durable must not be acted on.
		return nil, nil, err
	}
	return s.apply(rec, pos), wait, nil
}

// read runs f under the lock and returns once every record f could have seen is durable, or
// the error that stopped the log: the API never shows (and an idempotent repeat is never
// answered with) state that a crash or a failed write could take back.
func (s *Store) read(f func()) error {
	s.mu.Lock()
	f()
	wait := s.barrier()
	s.mu.Unlock()
	return wait()
}

// barrier returns a wait for everything applied so far. Callers hold s.mu.
func (s *Store) barrier() func() error {
	if s.wal == nil {
		return noWait
	}
	return s.wal.Barrier()
}

// stopped tells OnStop that an endpoint's deliveries will not be attempted (disabled or
// deleted); callers have waited for its record.
func (s *Store) stopped(endpointID string) {
	if s.opts.OnStop != nil {
		s.opts.OnStop(endpointID)
	}
}

func noWait() error { return nil }

func (s *Store) notify(ready []Ready) {
	if s.opts.OnReady == nil {
		return
	}
	for _, r := range ready {
		s.opts.OnReady(r)
	}
}

// Pending lists every delivery waiting for an attempt; the engine loads it at start, after
// replay, when everything in memory is durable.
func (s *Store) Pending() []Ready {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ready
	for _, d := range s.deliveries {
		if d.status == stPending {
			out = append(out, d.ready())
		}
	}
	// Oldest first among equals, so a restart resumes in creation order.
	slices.SortFunc(out, func(a, b Ready) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return bytes.Compare(a.Delivery[:], b.Delivery[:])
	})
	return out
}

func (d *delivery) ready() Ready {
	return Ready{Delivery: d.id, EndpointID: d.ep.ID, Due: time.UnixMilli(d.next)}
}

func (ep *endpoint) matches(eventType string) bool {
	if len(ep.EventTypes) == 0 {
		return true
	}
	return slices.Contains(ep.EventTypes, eventType)
}

func (ep *endpoint) drop(d *delivery) {
	d.removed = true
	ep.removed++
	if ep.removed > 64 && ep.removed*2 > len(ep.deliveries) {
		live := ep.deliveries[:0]
		for _, o := range ep.deliveries {
			if !o.removed {
				live = append(live, o)
			}
		}
		clear(ep.deliveries[len(live):])
		ep.deliveries, ep.removed = live, 0
	}
}

// forget drops a finished delivery from its endpoint's history and from the index.
func (s *Store) forget(d *delivery) {
	if d.removed {
		return
	}
	d.ep.drop(d)
	d.ep.histLive--
	s.unpinHistory(d)
	delete(s.deliveries, d.id)
}

// pinHistory counts a finished delivery's payload segment, so that compaction keeps it (within
// Options.HistoryPayloadBytes) while the delivery can be resent. Callers hold s.mu.
func (s *Store) pinHistory(d *delivery) {
	if s.durable && d.ev.pos != 0 {
		s.histSegs[d.ev.pos.segment()]++
	}
}

// unpinHistory undoes pinHistory when a delivery leaves the history. Callers hold s.mu.
func (s *Store) unpinHistory(d *delivery) {
	seg := d.ev.pos.segment()
	if !s.durable || seg == 0 {
		return
	}
	if s.histSegs[seg]--; s.histSegs[seg] <= 0 {
		delete(s.histSegs, seg)
	}
}

func cmpDelivery(d *delivery, id ID) int { return bytes.Compare(d.id[:], id[:]) }

// intern returns a shared copy of an attempt's error message, so a dead endpoint's million
// identical failures cost one string. The table is bounded; past it messages are not shared.
func (s *Store) intern(msg string) *string {
	if msg == "" {
		return nil
	}
	if p, ok := s.errs[msg]; ok {
		return p
	}
	p := &msg
	if len(s.errs) < 4096 {
		s.errs[msg] = p
	}
	return p
}
