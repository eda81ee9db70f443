// Package fleet owns the state that the relays of a fleet share through PostgreSQL: the
// endpoints (URL, name, description, event types, active flag and disabled reason), their
// signing secrets (current and previous, optionally encrypted at rest), the consecutive-failure
// counter with the set of failed deliveries already counted, and the schema that holds them.
//
// It gives the admin API its reads and writes (Create, Get, List, Update, Delete, RotateSecret,
// SecretInfo), the delivery path its exact shared counter (RecordFailure, RecordGone,
// RecordSuccess, DisableGone: each one SQL statement, so concurrent relays can neither double
// count nor both disable), and each relay a pushed copy of every endpoint (Watch: LISTEN/NOTIFY
// from a trigger that sees every writer, including manual SQL, with a full resync on every
// (re)connect and periodically). It also holds the fleet's view of deliveries (deliveries.go):
// each relay publishes the state of its own deliveries, in batches off the delivery path
// (DeliveryWriter), so that any relay lists an endpoint's deliveries from the whole fleet.
//
// It never holds a cache a write could forget to clear (reads go to PostgreSQL; copies are the
// caller's, kept current by Watch), never decides an id, a secret or a threshold (callers do,
// as internal/store's callers do), never logs (errors carry the context), never returns a
// secret it could not decrypt, and never touches events or the WAL: those stay in each relay's
// internal/store, whose deliveries it only mirrors (the WAL is their truth, the view a copy).
package fleet

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors callers branch on (errors.Is); every error wraps one of them or says what
// failed with its cause.
var (
	// ErrNotFound: no endpoint has this id.
	ErrNotFound = errors.New("fleet: endpoint not found")
	// ErrExists: Create with an id that is taken.
	ErrExists = errors.New("fleet: endpoint id already exists")
	// ErrSecretInUse refuses a rotation to a secret that already signs for the endpoint (as
	// internal/store.ErrSecretInUse).
	ErrSecretInUse = errors.New("fleet: secret already in use by this endpoint")
	// ErrSecretKey: a stored secret cannot be read with this relay's key (encrypted with
	// another key, encrypted and this relay has none, or moved from another row).
	ErrSecretKey = errors.New("fleet: stored secret unreadable with this key")
	// ErrSchemaTooNew: the database was migrated by a newer relay; this one must not run on it.
	ErrSchemaTooNew = errors.New("fleet: database schema newer than this relay")
)

const (
	// DefaultConnectTimeout bounds each connection attempt when the DSN has no connect_timeout,
	// so an unreachable server is an error, not a hang.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultFailureRetention is how long a counted failure stays in the failure set (see
	// TrimFailures).
	DefaultFailureRetention = 7 * 24 * time.Hour
	// SecretKeySize is the length of Options.SecretKey: an AES-256 key.
	SecretKeySize = 32

	// appName names the relays' sessions in pg_stat_activity when the DSN does not.
	appName = "blametrail-relay"
)

// Options tunes Open. The zero value is valid.
type Options struct {
	// SecretKey, when set (SecretKeySize bytes), encrypts signing secrets at rest with
	// AES-256-GCM. Secrets stored in plaintext stay readable (see the secrets section of the
	// package documentation in secrets.go).
	SecretKey []byte
	// ConnectTimeout bounds each connection attempt when the DSN has no connect_timeout;
	// 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxConns caps the pool; 0 keeps pgxpool's default (4, or the number of CPUs if more).
	MaxConns int32
	// FailureRetention is how long TrimFailures keeps a counted failure; 0 means
	// DefaultFailureRetention.
	FailureRetention time.Duration
}

// DB is the fleet's shared state. Its methods are safe for concurrent use.
type DB struct {
	pool      *pgxpool.Pool
	watchConf *pgx.ConnConfig // Watch's dedicated connection: not from the pool
	aead      cipher.AEAD     // nil: secrets are written in plaintext
	keyID     string
	retention time.Duration
}

// Open connects to the database dsn names (a postgres:// URL or keyword/value string), applies
// the migrations it lacks under an advisory lock, and returns the shared state. A database
// migrated by a newer relay is refused with ErrSchemaTooNew.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	db := &DB{retention: opts.FailureRetention}
	if db.retention <= 0 {
		db.retention = DefaultFailureRetention
	}
	if opts.SecretKey != nil {
		var err error
		if db.aead, db.keyID, err = newAEAD(opts.SecretKey); err != nil {
			return nil, err
		}
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("fleet: parse the store DSN: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
		if cfg.ConnConfig.ConnectTimeout <= 0 {
			cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
		}
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	db.watchConf = cfg.ConnConfig.Copy()
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
		db.watchConf.RuntimeParams["application_name"] = appName + " watch"
	}
	db.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: connection pool: %w", err)
	}
	if err := migrate(ctx, db.pool); err != nil {
		db.pool.Close()
		return nil, err
	}
	return db, nil
}

// Ping checks that PostgreSQL answers, for health reports.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("fleet: ping: %w", err)
	}
	return nil
}

// Identity names the database the fleet's state lives in: when its schema was first migrated,
// which a new or re-created database does not share. A relay keeps it to know whether what it
// published went to this database.
func (db *DB) Identity(ctx context.Context) (string, error) {
	var t time.Time
	if err := db.pool.QueryRow(ctx, "SELECT min(applied_at) FROM blametrail_schema").Scan(&t); err != nil {
		return "", fmt.Errorf("fleet: identity: %w", err)
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

// Close closes the pool, waiting for the queries in progress. Watch ends with its context,
// not with Close.
func (db *DB) Close() { db.pool.Close() }

// pgCode is the SQLSTATE of a PostgreSQL error, "" for any other error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// SQLSTATEs this package tells apart.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)
