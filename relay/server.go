package relay

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/delivery"
	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Server is a running relay.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  *store.Store
	engine *delivery.Engine
	policy netpolicy.Policy
	tokens tokens
	// listeners are --listen's and, when set, --admin-listen's (listeners.go).
	listeners []*listener
	ready     atomic.Bool
	// metrics are the Prometheus series (metrics.go).
	metrics *relayMetrics
	// healthLogged is set once a health probe has logged the storage failure.
	healthLogged atomic.Bool
	// admin is the endpoint administration: the store, or the fleet (fleet_admin.go).
	admin endpointAdmin
	// fleet is the link to the fleet's PostgreSQL; nil on a single relay.
	fleet *fleetLink
}

// Run starts the relay on lns and serves until ctx ends (the caller holds the data dir's
// lock, see internal/dirlock), then shuts down gracefully: it stops
// accepting on every listener, lets requests finish, and waits for in-flight attempts, all
// within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg Config, lns Listeners, log *slog.Logger) error {
	token, err := loadToken(cfg, log)
	if err != nil {
		return err
	}
	if cfg.IngestToken == token {
		// LoadConfig refuses an ingest token equal to --api-token; this is the generated one.
		return fmt.Errorf("relay: --ingest-token equals the API token in %s: give the application a token of its own",
			filepath.Join(cfg.DataDir, "api-token"))
	}
	s := &Server{
		cfg:    cfg,
		log:    log,
		policy: netpolicy.Policy{AllowHTTP: cfg.AllowHTTP, AllowPrivate: cfg.AllowPrivateNetworks},
		tokens: newTokens(token, cfg.IngestToken),
	}
	s.metrics = newRelayMetrics()
	s.engine = delivery.New(delivery.Config{
		Schedule:    cfg.RetrySchedule,
		Timeout:     cfg.DeliveryTimeout,
		MaxInFlight: cfg.MaxInFlight,
		Policy:      s.policy,
		UserAgent:   "BlameTrail-Webhooks/" + cfg.Version,
		Logger:      log,
		Observer:    s.metrics.m,
	})
	sync, err := wal.ParseSyncPolicy(cfg.Fsync)
	if err != nil {
		return err
	}
	if sync == wal.SyncNone {
		log.Warn("--fsync=none: events are acknowledged before they are on disk; a power loss can lose them (use for benchmarks only)")
	}
	storeOpts := store.Options{
		Dir:              cfg.DataDir,
		WAL:              wal.Options{Sync: sync, SegmentSize: cfg.WALSegmentSize, Repair: cfg.WALRepair},
		DisableAfter:     cfg.DisableAfter,
		HistoryLimit:     cfg.HistoryLimit,
		PayloadCache:     cfg.PayloadCache,
		IdempotencyCache: cfg.IdempotencyCache,
		HistoryCache:     cfg.HistoryCache,
		// The store's 0 is its default; the flag's 0 is none.
		HistoryPayloadBytes: cmp.Or(cfg.HistoryPayloadBytes, -1),
		SnapshotBytes:       cfg.SnapshotBytes,
		SnapshotInterval:    cfg.SnapshotInterval,
		OnReady:             s.engine.Ready,
		OnStop:              s.engine.Drop,
		Logger:              log,
	}
	s.metrics.instrument(&storeOpts)
	if cfg.FleetMode() {
		relayID, err := loadRelayID(cfg.DataDir)
		if err != nil {
			return err
		}
		s.fleet = newFleetLink(cfg, log, relayID)
		if s.fleet.publishedTo, err = takePublished(cfg.DataDir); err != nil {
			return err
		}
		s.fleet.onDown = s.metrics.m.Disabled
		storeOpts.SharedCounter, storeOpts.OnOutcome = true, s.fleet.report
		storeOpts.OnDelivery = s.fleet.history.Add
	}

	s.listeners = s.newListeners(lns)
	if cfg.PprofListen != "" {
		servePprof(cfg.PprofListen, log)
	}
	if cfg.MetricsListen != "" {
		stopMetrics, err := listenMetrics(cfg.MetricsListen, s.metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics(context.Background())
	}
	// Serve first, so /healthz answers and /readyz says 503 while the WAL replays.
	serveErr := serve(s.listeners)
	st, err := store.Open(storeOpts)
	if err != nil {
		_ = shutdown(context.Background(), s.listeners)
		return fmt.Errorf("relay: recover state from %s: %w", cfg.DataDir, err)
	}
	s.store = st
	s.admin = localAdmin{st}
	// stopLink stops the fleet link's goroutines; it runs before the store closes under them.
	stopLink := func() {}
	if s.fleet != nil {
		fleetCtx, cancel := context.WithCancel(context.Background())
		stopped := false
		stopLink = func() { // called from this goroutine only
			if !stopped {
				stopped = true
				cancel()
				s.fleet.stop()
			}
		}
		defer stopLink()
		s.fleet.st = st
		s.admin = fleetAdmin{s.fleet}
		if err := s.fleet.connect(fleetCtx); err != nil {
			stopLink()
			_ = shutdown(context.Background(), s.listeners)
			_ = st.Close()
			return fmt.Errorf("relay: fleet store: %w", err)
		}
	}
	s.metrics.m.SetState(st)
	s.engine.SetStore(st)
	s.engine.Start()
	stopSnapshots := snapshotOnSignal(st, log)
	defer stopSnapshots()
	s.ready.Store(true)
	// One line says the relay is ready and what each listener serves; it never holds a token,
	// only whether an ingest token is set.
	storeMode, fleetAttrs := "local", []any(nil)
	if cfg.FleetMode() {
		storeMode = "fleet (PostgreSQL)" // never the DSN: it may hold a password
		fleetAttrs = []any{"relay_id", s.fleet.relayID}
	}
	log.Info("relay listening", append(append(listenAttrs(s.listeners), fleetAttrs...), "ingest_token_set", cfg.IngestToken != "", "store", storeMode,
		"version", cfg.Version, "allow_http", cfg.AllowHTTP, "allow_private_networks", cfg.AllowPrivateNetworks,
		"retry_schedule", fmt.Sprint(cfg.RetrySchedule), "delivery_timeout", cfg.DeliveryTimeout.String())...)

	select {
	case err := <-serveErr:
		// One listener failed: stop the others too rather than serve half the relay.
		s.ready.Store(false)
		_ = shutdown(context.Background(), s.listeners)
		_ = s.engine.Stop(context.Background())
		stopSnapshots()
		stopLink()
		_ = st.Close()
		return fmt.Errorf("relay: serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	s.ready.Store(false)
	if err := shutdown(sctx, s.listeners); err != nil {
		log.Warn("http shutdown incomplete", "err", err)
	}
	if err := s.engine.Stop(sctx); err != nil {
		log.Warn("attempts still in flight at shutdown; they stay pending", "err", err)
	} else if s.fleet != nil {
		s.fleet.quiet = true // no attempt can change a delivery after the view's last write
	}
	if s.fleet != nil {
		s.fleet.handOff(sctx)
	}
	stopSnapshots()
	stopLink()
	if err := st.Close(); err != nil {
		log.Error("close state", "err", err)
	}
	log.Info("stopped")
	return nil
}

// readBufferSize bounds a request's header block; a larger one is answered 431.
const readBufferSize = 8 << 10

// Bounds on one request's transfer, see transferTimeout.
const (
	transferBase = 10 * time.Second
	slowRate     = 64 << 10 // bytes per second
)

// transferTimeout is the relay's ReadTimeout and WriteTimeout: how long a client has to send
// one whole request (headers and body) and to take the response. transferBase covers the
// headers, round trips and a slow fsync; on top comes the largest allowed body at slowRate,
// 64 KiB/s (512 kbit/s, a poor mobile or congested link that is still legitimate): 14 s for
// the default 256 KiB, about 4 minutes for the largest --max-body-size. fasthttp starts the
// deadline when the connection is accepted (on a kept-alive one, at the request's first byte)
// and does not extend it as bytes arrive, so a client that trickles its headers or body
// (slowloris) loses its connection within this bound, and --max-connections caps how many
// such connections can be held at once.
func transferTimeout(maxBody int) time.Duration {
	return transferBase + time.Duration(maxBody)*time.Second/slowRate
}

// loadToken returns the configured token, or the one stored in the data dir, generating it
// on first start. The token itself is never logged.
func loadToken(cfg Config, log *slog.Logger) (string, error) {
	if cfg.APIToken != "" {
		return cfg.APIToken, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("relay: create data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "api-token")
	tok, created, err := readOrCreate(path, func() (string, error) {
		var raw [24]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", fmt.Errorf("generate api token: %w", err)
		}
		return "btk_" + hex.EncodeToString(raw[:]), nil
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("relay: api token: %w", err)
	case created:
		log.Info("api token generated", "path", path)
	case tok == "":
		return "", fmt.Errorf("relay: %s is empty: delete it to generate a new token", path)
	case utf8.RuneCountInString(tok) < MinTokenLength:
		return "", fmt.Errorf("relay: the token in %s is shorter than %d characters: replace it, or delete the file to generate a new token", path, MinTokenLength)
	default:
		log.Info("api token loaded", "path", path)
	}
	return tok, nil
}

// snapshotOnSignal takes a snapshot whenever the process gets SIGUSR1: an operator about to
// copy the data dir (a backup) gets a short log to go with it, and the benchmark harness
// measures ingest during a snapshot of a known state. The returned stop waits for a snapshot
// under way, so the store is never closed under it; calling it twice is fine.
func snapshotOnSignal(st *store.Store, log *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-sigs:
				log.Info("snapshot requested (SIGUSR1)")
				if err := st.Snapshot(); err != nil {
					log.Error("requested snapshot failed", "err", err)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(quit)
			<-done
		})
	}
}
