package fleet

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLock is the pg_advisory_xact_lock key every relay takes to migrate: "blametra" in
// ASCII. Advisory locks are per database, so fleets on other databases do not wait on it.
const migrationLock int64 = 0x626c616d65747261

// NotifyChannel is the channel the endpoints trigger notifies, with an endpoint id as payload.
const NotifyChannel = "blametrail_endpoints"

// migration is one numbered schema change. Migrations are append-only: a released one is never
// edited, and none is idempotent on purpose (plain CREATE), so applying one twice fails loudly
// instead of passing unnoticed.
type migration struct {
	version int
	sql     string
}

// Versions need not be contiguous on a branch, but on main they are: migrate applies, in
// order, every version above the database's.
var migrations = []migration{{1, schemaV1}, {2, schemaV2}, {3, schemaV3}, {4, schemaV4}}

// SchemaVersion is the newest schema this package knows.
var SchemaVersion = migrations[len(migrations)-1].version

// schemaV1: endpoints, the version sequence and triggers, the failure set.
const schemaV1 = `
-- Every write to an endpoint takes a new value from this one sequence (see the BEFORE
-- trigger), so versions grow across the whole table and a relay can tell a stale read from a
-- newer one, whoever wrote the row.
CREATE SEQUENCE blametrail_endpoint_version AS bigint;

-- One row per endpoint: what internal/store keeps for one (see its type endpoint). ids sort
-- by bytes (COLLATE "C"), as the relay's ids do, whatever the database's collation.
CREATE TABLE blametrail_endpoints (
	id                   text COLLATE "C" PRIMARY KEY CHECK (id <> '' AND length(id) <= 200),
	url                  text NOT NULL,
	name                 text NOT NULL,
	description          text NOT NULL DEFAULT '',
	event_types          text[] NOT NULL DEFAULT '{}',
	active               boolean NOT NULL DEFAULT true,
	disabled_reason      text CHECK (disabled_reason IN ('manual', 'consecutive_failures', 'gone')),
	consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
	-- Secrets are "whsec_…" in plaintext or "enc1:<key id>:<base64>" (AES-256-GCM).
	secret               text NOT NULL CHECK (secret <> ''),
	prev_secret          text,
	prev_secret_expires  timestamptz,
	created_at           timestamptz NOT NULL DEFAULT now(),
	updated_at           timestamptz NOT NULL DEFAULT now(),
	version              bigint NOT NULL,
	CHECK (active = (disabled_reason IS NULL)),
	CHECK ((prev_secret IS NULL) = (prev_secret_expires IS NULL))
);

-- Keeps every row consistent whoever writes it, manual SQL included: a new version on every
-- write; an active endpoint has no disabled reason; one made inactive without a reason was
-- disabled by hand; re-enabling it starts its failure count afresh (as PATCH active:true does).
CREATE FUNCTION blametrail_endpoints_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.version := nextval('blametrail_endpoint_version');
	IF NEW.active THEN
		NEW.disabled_reason := NULL;
		IF TG_OP = 'UPDATE' AND NOT OLD.active THEN
			NEW.consecutive_failures := 0;
		END IF;
	ELSIF NEW.disabled_reason IS NULL THEN
		NEW.disabled_reason := 'manual';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER blametrail_endpoints_before BEFORE INSERT OR UPDATE ON blametrail_endpoints
	FOR EACH ROW EXECUTE FUNCTION blametrail_endpoints_before();

-- Tells every listening relay which endpoint changed, at commit (NOTIFY is transactional; a
-- rolled-back write notifies nothing). The payload is only the id: a relay reads the row,
-- which is never larger than NOTIFY allows and never stale. An id changed by hand notifies
-- both ids.
CREATE FUNCTION blametrail_endpoints_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		PERFORM pg_notify('blametrail_endpoints', OLD.id);
	END IF;
	IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
		PERFORM pg_notify('blametrail_endpoints', NEW.id);
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER blametrail_endpoints_notify AFTER INSERT OR UPDATE OR DELETE ON blametrail_endpoints
	FOR EACH ROW EXECUTE FUNCTION blametrail_endpoints_notify();

-- The failure set: one row per failed delivery already counted, so a replayed outcome (a
-- relay's WAL replay, a retried call whose result was lost) never counts twice. Rows go with
-- their endpoint, and after the retention by TrimFailures.
CREATE TABLE blametrail_failures (
	endpoint_id text COLLATE "C" NOT NULL
		REFERENCES blametrail_endpoints (id) ON DELETE CASCADE ON UPDATE CASCADE,
	delivery_id text COLLATE "C" NOT NULL,
	failed_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (endpoint_id, delivery_id)
);
CREATE INDEX blametrail_failures_failed_at ON blametrail_failures (failed_at);
`

// schemaV3: the fleet's view of deliveries (deliveries.go).
const schemaV3 = `
-- One row per delivery of any relay, as the relay that holds it last published it: a copy for
-- the admin API's lists, written in batches off the delivery path. The relay's WAL stays the
-- truth; a row may lag it, or miss a change dropped while PostgreSQL was unreachable, until
-- the relay publishes that delivery again. ids sort by creation time (ULID-like), and by bytes.
CREATE TABLE blametrail_deliveries (
	id              text COLLATE "C" PRIMARY KEY CHECK (id <> '' AND length(id) <= 200),
	endpoint_id     text COLLATE "C" NOT NULL
		REFERENCES blametrail_endpoints (id) ON DELETE CASCADE ON UPDATE CASCADE,
	relay_id        text NOT NULL, -- the relay whose WAL holds the delivery
	event_id        text NOT NULL,
	event_type      text NOT NULL,
	-- pending covers held: a delivery is held exactly while its endpoint is inactive.
	status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	attempts        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attempts) = 'array'),
	next_attempt_at timestamptz,
	-- Orders the states of one delivery (internal/store's DeliveryState.Version): a write
	-- never replaces a newer state with an older one, whatever order batches arrive in.
	version         bigint NOT NULL,
	updated_at      timestamptz NOT NULL DEFAULT now()
);
-- An endpoint's deliveries, newest first; and its finished ones, for the retention trim
-- (which must not walk a backlog of pending ones).
CREATE INDEX blametrail_deliveries_page ON blametrail_deliveries (endpoint_id, id DESC);
CREATE INDEX blametrail_deliveries_finished ON blametrail_deliveries (endpoint_id, id DESC)
	WHERE status <> 'pending';
`

// migrate brings the schema to SchemaVersion in one transaction that holds the migration lock:
// relays starting together wait for the first, then find nothing left to do. A schema newer
// than SchemaVersion is refused before anything is written.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("fleet: connect: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("fleet: migrate: take the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS blametrail_schema (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("fleet: migrate: schema version table: %w", err)
	}
	var cur int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM blametrail_schema").Scan(&cur); err != nil {
		return fmt.Errorf("fleet: migrate: read the schema version: %w", err)
	}
	if cur > SchemaVersion {
		return fmt.Errorf("%w: the database is at schema version %d, this relay knows versions up to %d: "+
			"run a relay at least as new as the one that migrated it", ErrSchemaTooNew, cur, SchemaVersion)
	}
	for _, m := range migrations {
		if m.version <= cur {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("fleet: migrate to schema version %d: %w", m.version, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO blametrail_schema (version) VALUES ($1)", m.version); err != nil {
			return fmt.Errorf("fleet: migrate to schema version %d: record it: %w", m.version, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("fleet: migrate: commit: %w", err)
	}
	return nil
}
