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
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Sentinel errors; handlers map them to HTTP statuses.
var (
	ErrNotFound = errors.New("store: not found")
	// ErrInactive refuses a test ping to an endpoint that is disabled.
	ErrInactive = errors.New("store: endpoint is disabled")
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
	Logger  *slog.Logger
}

// Ready says a delivery can be attempted at Due.
type Ready struct {
	DeliveryID string
	EndpointID string
	Due        time.Time
}

// Store is safe for concurrent use.
type Store struct {
	opts Options
	ids  idGen
	log  *slog.Logger

	wal      *wal.WAL // nil in memory mode
	durable  bool     // payloads live in the WAL (set before replay, when wal is still nil)
	payloads *lru.Cache[string, []byte]
	persist  persister

	mu         sync.Mutex
	endpoints  map[string]*endpoint
	order      []string // endpoint ids, ascending = creation order
	deliveries map[string]*delivery
	events     map[string]*event
	idem       *lru.Cache[string, IngestResult]
	segRefs    map[uint64]int // live events per WAL segment
}

type endpoint struct {
	ID                  string    `json:"id"`
	URL                 string    `json:"url"`
	Name                string    `json:"name"`
	Description         string    `json:"description"`
	EventTypes          []string  `json:"event_types"`
	Active              bool      `json:"active"`
	DisabledReason      string    `json:"disabled_reason,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Secret              string    `json:"secret"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`

	deliveries []string // ids ascending (oldest first); pending and retained finished ones
	finished   int      // how many of deliveries are finished
}

type delivery struct {
	ID            string
	EventID       string
	EventType     string
	EndpointID    string
	Status        string
	Test          bool
	Attempts      []Attempt
	NextAttemptAt time.Time

	inFlight bool // an attempt is under way; not logged, a restart forgets it
}

// Attempt is one HTTP attempt as the store keeps it.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// event is an accepted event that some delivery still needs. Its body lives in the WAL at
// Pos (and in the payload cache); only a store without a log keeps Body here.
type event struct {
	Type string
	Pos  wal.Position
	Body []byte
	live int // deliveries not yet finished
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
	payloads, err := lru.New[string, []byte](opts.PayloadCache)
	if err != nil {
		return nil, fmt.Errorf("store: payload cache: %w", err)
	}
	idem, err := lru.New[string, IngestResult](opts.IdempotencyCache)
	if err != nil {
		return nil, fmt.Errorf("store: idempotency cache: %w", err)
	}
	return &Store{
		opts:       opts,
		log:        opts.Logger,
		payloads:   payloads,
		endpoints:  make(map[string]*endpoint),
		deliveries: make(map[string]*delivery),
		events:     make(map[string]*event),
		idem:       idem,
		segRefs:    make(map[uint64]int),
	}, nil
}

func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// commit logs rec and applies it. It returns the deliveries the record made due and the
// wait for durability; callers hold s.mu, release it, then wait, and only then notify or
// acknowledge, so nothing is announced that a crash could take back.
func (s *Store) commit(rec *Record) ([]Ready, func() error, error) {
	if !s.durable {
		return s.apply(rec, wal.Position{}), noWait, nil
	}
	b, err := rec.Marshal()
	if err != nil {
		return nil, nil, err
	}
	pos, wait := s.wal.Append(b)
	if err := s.wal.Err(); err != nil {
		// Refuse before changing memory: what is not durable must not be acted on.
		return nil, nil, err
	}
	return s.apply(rec, pos), wait, nil
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

// Pending lists every delivery waiting for an attempt; the engine loads it at start.
func (s *Store) Pending() []Ready {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ready
	for _, d := range s.deliveries {
		if d.Status == statusPending {
			out = append(out, Ready{DeliveryID: d.ID, EndpointID: d.EndpointID, Due: d.NextAttemptAt})
		}
	}
	slices.SortFunc(out, func(a, b Ready) int { return a.Due.Compare(b.Due) })
	return out
}

func (ep *endpoint) matches(eventType string) bool {
	if len(ep.EventTypes) == 0 {
		return true
	}
	return slices.Contains(ep.EventTypes, eventType)
}

func (ep *endpoint) removeDelivery(id string) {
	if i, ok := slices.BinarySearch(ep.deliveries, id); ok {
		ep.deliveries = slices.Delete(ep.deliveries, i, i+1)
	}
}
