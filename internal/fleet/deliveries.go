package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// The fleet's view of deliveries (blametrail_deliveries, schema version 3).
//
// Each relay delivers the events it accepted and keeps them in its WAL, which stays the truth.
// So that the admin API through any relay lists an endpoint's deliveries from the whole fleet,
// each relay publishes the state of its deliveries here, in batches (DeliveryWriter), and any
// relay reads them back (Deliveries). Every row carries the version of the state it holds, and
// a write never replaces a newer state with an older one, so batches may arrive late, twice or
// out of order. A delivery is held exactly while its endpoint is inactive: rows say pending, and
// Deliveries answers held from the endpoint's flag. Retention (TrimDeliveries) keeps each
// endpoint's newest finished deliveries up to a limit, and every pending one.

// DeliveryRow is one delivery as a relay publishes it.
type DeliveryRow struct {
	ID         string // "dlv_…"
	EndpointID string
	EventID    string
	EventType  string
	// Status is api.StatusPending, StatusHeld (stored as pending), StatusSucceeded or
	// StatusFailed.
	Status string
	// Attempts is a JSON array of the API's attempts (api.Attempt); "" means none.
	Attempts string
	// NextAttemptAt is when a pending delivery is next attempted; zero otherwise.
	NextAttemptAt time.Time
	// Version orders the states of one delivery; see the package's delivery section.
	Version int64
}

// upsertDeliveries writes a batch: rows of an endpoint that no longer exists are skipped, and a
// row replaces the stored one only when its version is newer (or equal, to move the next attempt
// or the owning relay, which resuming and a handoff change without a new version).
const upsertDeliveries = `
INSERT INTO blametrail_deliveries AS d
	(id, endpoint_id, relay_id, event_id, event_type, status, attempts, next_attempt_at, version)
SELECT u.id, u.endpoint_id, $1, u.event_id, u.event_type, u.status, u.attempts::jsonb, u.next_attempt_at, u.version
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::bigint[])
	AS u (id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, version)
WHERE EXISTS (SELECT 1 FROM blametrail_endpoints e WHERE e.id = u.endpoint_id)
ON CONFLICT (id) DO UPDATE SET
	relay_id = EXCLUDED.relay_id, status = EXCLUDED.status, attempts = EXCLUDED.attempts,
	next_attempt_at = EXCLUDED.next_attempt_at, version = EXCLUDED.version, updated_at = now()
WHERE d.version < EXCLUDED.version
	OR d.version = EXCLUDED.version AND (d.next_attempt_at IS DISTINCT FROM EXCLUDED.next_attempt_at
		OR d.relay_id <> EXCLUDED.relay_id)`

// UpsertDeliveries writes the states of a relay's deliveries in one statement and reports how
// many rows it inserted or changed. Of a delivery given twice, the greater version counts (the
// first given, of equal ones). A row of an endpoint that was deleted is dropped; one older than
// the stored state changes nothing.
func (db *DB) UpsertDeliveries(ctx context.Context, relayID string, rows []DeliveryRow) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	// In id order: concurrent writers lock shared rows (a handed-off delivery) in one order.
	// Of one delivery twice, the newest: ON CONFLICT cannot touch a row twice in a statement.
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b DeliveryRow) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return -cmp.Compare(a.Version, b.Version)
	})
	rows = slices.CompactFunc(rows, func(a, b DeliveryRow) bool { return a.ID == b.ID })
	n := len(rows)
	ids, eps, evs, types, sts, atts := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	nexts, vers := make([]*time.Time, n), make([]int64, n)
	for i := range rows {
		r := &rows[i]
		ids[i], eps[i], evs[i], types[i], vers[i] = r.ID, r.EndpointID, r.EventID, r.EventType, r.Version
		sts[i] = r.Status
		if sts[i] == api.StatusHeld {
			sts[i] = api.StatusPending
		}
		atts[i] = cmp.Or(r.Attempts, "[]")
		if !r.NextAttemptAt.IsZero() {
			nexts[i] = &r.NextAttemptAt
		}
	}
	var tag pgconn.CommandTag
	var err error
	// An endpoint deleted between the statement's check and its insert fails the foreign key;
	// once more, and the check leaves its rows out.
	for try := 0; try < 2; try++ {
		tag, err = db.pool.Exec(ctx, upsertDeliveries, relayID, ids, eps, evs, types, sts, atts, nexts, vers)
		if pgCode(err) != codeForeignKeyViolation {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("fleet: write %d deliveries: %w", n, err)
	}
	return tag.RowsAffected(), nil
}

// Deliveries returns up to limit deliveries of an endpoint from every relay, older than the one
// named by cursor ("" = from the newest), newest first, as the admin API shows them, and the
// cursor of the next page ("" at the end). ErrNotFound when there is no such endpoint.
func (db *DB) Deliveries(ctx context.Context, endpointID, cursor string, limit int) ([]api.Delivery, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("fleet: list deliveries: limit %d, want at least 1", limit)
	}
	// One statement: the endpoint's flag (and whether it exists) with the page, so a page of
	// an endpoint deleted meanwhile is never shown. One more than asked tells whether a next
	// page exists. Two texts, so each gets the plan of an index range scan.
	after := "true"
	args := []any{endpointID, limit + 1}
	if cursor != "" {
		after = "x.id < $3"
		args = append(args, cursor)
	}
	rows, err := db.pool.Query(ctx, `SELECT e.active, d.id, d.event_id, d.event_type, d.status, d.attempts, d.next_attempt_at
		FROM blametrail_endpoints e
		LEFT JOIN LATERAL (
			SELECT x.* FROM blametrail_deliveries x
			WHERE x.endpoint_id = e.id AND `+after+`
			ORDER BY x.id DESC LIMIT $2
		) d ON true
		WHERE e.id = $1`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("fleet: list deliveries of %s: %w", endpointID, err)
	}
	out, found, err := scanDeliveries(rows, endpointID)
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("fleet: list deliveries of %s: %w", endpointID, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

func scanDeliveries(rows pgx.Rows, endpointID string) (out []api.Delivery, found bool, err error) {
	defer rows.Close()
	out = []api.Delivery{}
	for rows.Next() {
		found = true
		var (
			active                   bool
			id, evID, evType, status *string
			attempts                 []byte
			next                     *time.Time
		)
		if err := rows.Scan(&active, &id, &evID, &evType, &status, &attempts, &next); err != nil {
			return nil, false, err
		}
		if id == nil {
			continue // the endpoint, without deliveries
		}
		d := api.Delivery{ID: *id, EventID: *evID, EventType: *evType, EndpointID: endpointID, Status: *status,
			Attempts: []api.Attempt{}}
		if err := json.Unmarshal(attempts, &d.Attempts); err != nil {
			return nil, false, fmt.Errorf("delivery %s: attempts: %w", d.ID, err)
		}
		switch {
		case d.Status != api.StatusPending:
		case !active:
			d.Status = api.StatusHeld // held while the endpoint is inactive: no next attempt
		case next != nil:
			t := next.UTC()
			d.NextAttemptAt = &t
		}
		out = append(out, d)
	}
	return out, found, rows.Err()
}

// TrimDeliveries keeps, of each of the given endpoints, the keep newest finished deliveries
// (and every pending one), deletes the older finished ones, and returns how many it deleted.
// Its cost follows the endpoints named, not the table: a relay names those it published
// finished deliveries of since it last trimmed.
func (db *DB) TrimDeliveries(ctx context.Context, endpointIDs []string, keep int) (int64, error) {
	if len(endpointIDs) == 0 {
		return 0, nil
	}
	if keep < 0 {
		return 0, errors.New("fleet: trim deliveries: negative keep")
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM blametrail_deliveries d
		USING (
			SELECT e.id AS endpoint_id, b.id AS bound
			FROM unnest($1::text[]) AS e (id)
			CROSS JOIN LATERAL (
				SELECT x.id FROM blametrail_deliveries x
				WHERE x.endpoint_id = e.id AND x.status <> 'pending'
				ORDER BY x.id DESC OFFSET $2 LIMIT 1
			) b
		) t
		WHERE d.endpoint_id = t.endpoint_id AND d.status <> 'pending' AND d.id <= t.bound`, endpointIDs, keep)
	if err != nil {
		return 0, fmt.Errorf("fleet: trim the deliveries of %d endpoints: %w", len(endpointIDs), err)
	}
	return tag.RowsAffected(), nil
}
