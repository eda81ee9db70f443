package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// Fleet mode (--store DSN): PostgreSQL holds the endpoints, secrets and the failure counter;
// this relay keeps a copy in its own WAL (through store.SyncEndpoint), delivers the events it
// accepted with that copy, and reports how its deliveries ended so the fleet counts failures
// once. The admin API reads and writes PostgreSQL (fleet_admin.go).

// Errors of the fleet's PostgreSQL, as the handlers answer them.
var (
	// errStoreUnavailable: PostgreSQL did not get the request (or the relay never reached it):
	// nothing changed, the client may retry. 503.
	errStoreUnavailable = errors.New("relay: the fleet's PostgreSQL is unavailable")
	// errStoreUnknown: the request reached PostgreSQL but its answer did not come back: the
	// change may or may not have happened. 504.
	errStoreUnknown = errors.New("relay: unknown whether the fleet's PostgreSQL stored the change")
)

// fleetTimeout bounds one admin call or one outcome report to PostgreSQL.
const fleetTimeout = 10 * time.Second

// fleetLink is a relay's connection to the fleet.
type fleetLink struct {
	cfg    Config
	log    *slog.Logger
	st     *store.Store
	onDown func(reason string) // metrics: an endpoint the fleet disabled on this relay's report

	db     atomic.Pointer[fleet.DB] // nil until the first connection (and migration) succeeded
	outbox chan store.OutcomeReport
	wg     sync.WaitGroup

	mu        sync.Mutex
	stopAdopt context.CancelFunc // ends the adoption loop (handoff.go), set by start

	dropped    atomic.Int64 // outcomes the full queue refused
	droppedLog atomic.Int64 // unix ns of the last log of them

	// relayID names this relay's rows in the deliveries view (fleet_history.go) and its
	// commands (fleet_commands.go); history
	// writes them; lost says it dropped changes since the last full publish.
	relayID string
	history *fleet.DeliveryWriter[store.DeliveryState]
	lost    atomic.Bool
	// complete: a full publish finished (or a clean stop made it needless) and nothing was
	// dropped since; publishedTo is the database a clean stop left every delivery in (read at
	// start), identity the one this run writes to; quiet is set when the engine stopped with
	// no attempt in flight. A stop with all four writes the marker (fleet_history.go).
	complete    atomic.Bool
	publishedTo string
	identity    string
	quiet       bool
}

// outboxSize bounds the outcomes queued while PostgreSQL is unreachable. Past it the oldest
// reports wait in the channel and new ones are dropped, logged: the counter then undercounts,
// which delays an auto-disable, never causes a wrong one.
const outboxSize = 1 << 16

func newFleetLink(cfg Config, log *slog.Logger, relayID string) *fleetLink {
	f := &fleetLink{cfg: cfg, log: log, outbox: make(chan store.OutcomeReport, outboxSize), relayID: relayID}
	f.history = f.newHistoryWriter()
	return f
}

// report is the store's OnOutcome: it must not block.
func (f *fleetLink) report(r store.OutcomeReport) {
	select {
	case f.outbox <- r:
	default:
		// Logged at most once a minute, with the count: a long outage under load would
		// otherwise log once per delivery.
		n := f.dropped.Add(1)
		if last := f.droppedLog.Load(); time.Since(time.Unix(0, last)) > time.Minute &&
			f.droppedLog.CompareAndSwap(last, time.Now().UnixNano()) {
			f.log.Error("fleet: outcome queue full while PostgreSQL is unreachable; outcomes are not counted",
				"dropped_so_far", n, "endpoint_id", r.EndpointID)
		}
	}
}

// connect opens the fleet's database, applying migrations. A schema newer than this relay is
// fatal; an unreachable database is not (the relay serves from its copy meanwhile) and is
// retried in the background until ctx ends.
func (f *fleetLink) connect(ctx context.Context) error {
	db, err := f.open(ctx)
	if errors.Is(err, fleet.ErrSchemaTooNew) {
		return err
	}
	// The view's writer holds changes from the start, and writes them once connected.
	f.wg.Go(func() { f.history.Run(ctx) })
	if err == nil {
		f.start(ctx, db)
		return nil
	}
	f.log.Warn("fleet: PostgreSQL unreachable at start; serving from the local copy and retrying", "err", err)
	f.wg.Go(func() {
		for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			db, err := f.open(ctx)
			switch {
			case err == nil:
				f.start(ctx, db)
				return
			case errors.Is(err, fleet.ErrSchemaTooNew):
				f.log.Error("fleet: the database's schema is newer than this relay: upgrade the relay", "err", err)
			default:
				f.log.Warn("fleet: PostgreSQL still unreachable", "err", err)
			}
		}
	})
	return nil
}

func (f *fleetLink) open(ctx context.Context) (*fleet.DB, error) {
	octx, cancel := context.WithTimeout(ctx, fleetTimeout)
	defer cancel()
	return fleet.Open(octx, f.cfg.Store, fleet.Options{SecretKey: f.cfg.StoreSecretKey})
}

// start runs the watch (PostgreSQL → local copy), the outcome sender, the failure-set trim and
// the full publish of the deliveries view.
func (f *fleetLink) start(ctx context.Context, db *fleet.DB) {
	f.db.Store(db)
	f.log.Info("fleet: connected to PostgreSQL", "schema_version", fleet.SchemaVersion)
	f.wg.Go(func() {
		err := db.Watch(ctx, fleet.WatchOptions{
			OnResync: func(all []fleet.Endpoint) { f.resync(ctx, db, all) },
			OnChange: f.change,
			OnError: func(err error) {
				if ctx.Err() == nil {
					f.log.Warn("fleet: watch connection lost; reconnecting", "err", err)
				}
			},
			ResyncInterval: time.Minute,
		})
		if err != nil && ctx.Err() == nil {
			f.log.Error("fleet: watch stopped", "err", err)
		}
	})
	f.wg.Go(func() { f.send(ctx, db) })
	actx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	f.stopAdopt = cancel
	f.mu.Unlock()
	f.wg.Go(func() { f.adoptLoop(actx, db) })
	f.wg.Go(func() { f.listenCommands(ctx, db) })
	f.wg.Go(func() { f.publish(ctx, db) })
	f.wg.Go(func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				tctx, cancel := context.WithTimeout(ctx, time.Minute)
				if _, err := db.TrimFailures(tctx); err != nil && ctx.Err() == nil {
					f.log.Warn("fleet: trim counted failures", "err", err)
				}
				cancel()
			}
		}
	})
}

// stop waits for the link's goroutines (their ctx is done) and closes the pool.
func (f *fleetLink) stop() {
	f.wg.Wait()
	if db := f.db.Load(); db != nil {
		db.Close()
	}
	f.markPublished()
}

// resync makes the local copy equal to the fleet's list; an endpoint the list lacks is deleted
// only once PostgreSQL confirms it is gone (the list may predate this relay's own create).
func (f *fleetLink) resync(ctx context.Context, db *fleet.DB, all []fleet.Endpoint) {
	seen := make(map[string]bool, len(all))
	for _, e := range all {
		seen[e.ID] = true
		f.apply(e)
	}
	for _, id := range f.st.EndpointIDs() {
		if seen[id] {
			continue
		}
		gctx, cancel := context.WithTimeout(ctx, fleetTimeout)
		e, err := db.Get(gctx, id)
		cancel()
		switch {
		case errors.Is(err, fleet.ErrNotFound):
			if err := f.st.SyncDelete(id); err != nil {
				f.log.Error("fleet: apply a deletion", "endpoint_id", id, "err", err)
			}
		case err == nil:
			f.apply(e)
		default:
			f.log.Warn("fleet: confirm a deletion", "endpoint_id", id, "err", err)
			return // not synced: the next resync tries again
		}
	}
	if err := f.st.MarkSynced(); err != nil {
		f.log.Error("fleet: record the first sync", "err", err)
	}
}

func (f *fleetLink) change(c fleet.Change) {
	if c.Deleted {
		if err := f.st.SyncDelete(c.ID); err != nil {
			f.log.Error("fleet: apply a deletion", "endpoint_id", c.ID, "err", err)
		}
		return
	}
	f.apply(c.Endpoint)
}

// apply copies one endpoint's state into the local store (a newer version only).
func (f *fleetLink) apply(e fleet.Endpoint) {
	if err := f.st.SyncEndpoint(stateOf(e)); err != nil {
		f.log.Error("fleet: apply an endpoint change", "endpoint_id", e.ID, "err", err)
	}
}

func stateOf(e fleet.Endpoint) store.EndpointState {
	return store.EndpointState{ID: e.ID, URL: e.URL, Name: e.Name, Description: e.Description,
		EventTypes: e.EventTypes, Active: e.Active, DisabledReason: e.DisabledReason,
		ConsecutiveFailures: e.ConsecutiveFailures, Secret: e.Secret, PrevSecret: e.PrevSecret,
		PrevSecretExpires: e.PrevSecretExpires, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Version: e.Version}
}

// send reports outcomes to the shared counter, in order per endpoint, retrying each until
// PostgreSQL takes it: a failure keyed by delivery counts once however often it is sent. The
// successes of an endpoint that follow one another are sent as one (a reset is a reset), so a
// busy healthy endpoint costs PostgreSQL a statement per batch, not per delivery.
func (f *fleetLink) send(ctx context.Context, db *fleet.DB) {
	batch := make([]store.OutcomeReport, 0, 1024)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-f.outbox:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case r := <-f.outbox:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		reset := map[string]bool{} // endpoints with a success not yet sent
		var order []string
		for _, r := range batch {
			switch {
			case r.Success && !reset[r.EndpointID]:
				reset[r.EndpointID] = true
				order = append(order, r.EndpointID)
			case r.Success:
			default:
				if reset[r.EndpointID] {
					reset[r.EndpointID] = false
					f.deliver(ctx, db, store.OutcomeReport{EndpointID: r.EndpointID, Success: true})
				}
				f.deliver(ctx, db, r)
			}
		}
		for _, id := range order {
			if reset[id] {
				f.deliver(ctx, db, store.OutcomeReport{EndpointID: id, Success: true})
			}
		}
	}
}

// deliver sends one report until PostgreSQL takes it, the endpoint is gone, or ctx ends.
func (f *fleetLink) deliver(ctx context.Context, db *fleet.DB, r store.OutcomeReport) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := f.record(ctx, db, r)
		if err == nil || errors.Is(err, fleet.ErrNotFound) || ctx.Err() != nil {
			return
		}
		f.log.Warn("fleet: report a delivery outcome; retrying", "endpoint_id", r.EndpointID, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (f *fleetLink) record(ctx context.Context, db *fleet.DB, r store.OutcomeReport) error {
	rctx, cancel := context.WithTimeout(ctx, fleetTimeout)
	defer cancel()
	var disabled bool
	var err error
	reason := "consecutive_failures"
	switch {
	case r.Success:
		return db.RecordSuccess(rctx, r.EndpointID)
	case r.Gone:
		reason = "gone"
		disabled, err = db.RecordGone(rctx, r.EndpointID, r.Key)
	default:
		disabled, err = db.RecordFailure(rctx, r.EndpointID, r.Key, f.cfg.DisableAfter)
	}
	if disabled {
		// Exactly one relay of the fleet reads disabled=true for a given disable.
		f.log.Warn("endpoint disabled", "endpoint_id", r.EndpointID, "reason", reason)
		if f.onDown != nil {
			f.onDown(reason)
		}
	}
	return err
}

// pgError turns an error of the fleet's PostgreSQL into what the admin API answers: a
// request that never reached the server is unavailable (503, retry); a write whose answer was
// lost is unknown (504, read back before retrying); a read that failed is unavailable.
func pgError(err error, write bool) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil, errors.Is(err, fleet.ErrNotFound), errors.Is(err, fleet.ErrSecretInUse), errors.As(err, &pgErr):
		return err
	case !write || pgconn.SafeToRetry(err):
		return fmt.Errorf("%w: %v", errStoreUnavailable, err)
	}
	return fmt.Errorf("%w: %v", errStoreUnknown, err)
}
