package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/jackc/pgx/v5"
)

// Endpoint is one endpoint's whole shared state, secrets included (decrypted).
type Endpoint struct {
	ID          string
	URL         string
	Name        string
	Description string
	EventTypes  []string // never nil; empty means every type but test.ping
	Active      bool
	// DisabledReason is "" while Active, else api.DisabledManual, DisabledConsecutiveFailures
	// or DisabledGone.
	DisabledReason      string
	ConsecutiveFailures int
	Secret              string
	// PrevSecret still signs next to Secret until PrevSecretExpires; "" and zero when there
	// is none. Past the expiry it is ignored (the next rotation overwrites it).
	PrevSecret        string
	PrevSecretExpires time.Time
	CreatedAt         time.Time // UTC, microseconds
	UpdatedAt         time.Time
	// Version grows with every write to any endpoint (one sequence for the table): of two
	// copies of one endpoint, the one with the greater Version is the newer. Create ignores it.
	Version int64
}

// View is the admin API's form of the endpoint (no secret).
func (e Endpoint) View() api.Endpoint {
	v := api.Endpoint{
		ID: e.ID, URL: e.URL, Name: e.Name, Description: e.Description,
		EventTypes: slices.Clone(e.EventTypes), Active: e.Active,
		ConsecutiveFailures: e.ConsecutiveFailures, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if e.DisabledReason != "" {
		r := e.DisabledReason
		v.DisabledReason = &r
	}
	return v
}

// SecretInfo is the endpoint's signing secret and, while the previous one still signs at now,
// when it stops (as internal/store reports it).
func (e Endpoint) SecretInfo(now time.Time) api.SecretInfo {
	info := api.SecretInfo{Secret: e.Secret}
	if e.PrevSecret != "" && now.Before(e.PrevSecretExpires) {
		t := e.PrevSecretExpires
		info.PreviousSecretExpiresAt = &t
	}
	return info
}

// columns is every column of blametrail_endpoints, in scanEndpoint's order.
const columns = `id, url, name, description, event_types, active, disabled_reason, consecutive_failures,
	secret, prev_secret, prev_secret_expires, created_at, updated_at, version`

// scanEndpoint reads one row of columns and decrypts its secrets.
func (db *DB) scanEndpoint(row pgx.Row) (Endpoint, error) {
	var e Endpoint
	var reason, prev *string
	var prevExp *time.Time
	err := row.Scan(&e.ID, &e.URL, &e.Name, &e.Description, &e.EventTypes, &e.Active, &reason,
		&e.ConsecutiveFailures, &e.Secret, &prev, &prevExp, &e.CreatedAt, &e.UpdatedAt, &e.Version)
	if err != nil {
		return Endpoint{}, err
	}
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	if reason != nil {
		e.DisabledReason = *reason
	}
	if prev != nil {
		e.PrevSecret = *prev
	}
	if prevExp != nil {
		e.PrevSecretExpires = prevExp.UTC()
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	if e.Secret, err = db.openSecret(e.ID, colSecret, e.Secret); err != nil {
		return Endpoint{}, err
	}
	if e.PrevSecret, err = db.openSecret(e.ID, colPrevSecret, e.PrevSecret); err != nil {
		return Endpoint{}, err
	}
	return e, nil
}

// Create inserts an endpoint with the state the caller decided: id, secret and the rest, as
// given (the relay generates "ep_…" ids and "whsec_…" secrets). A zero CreatedAt or UpdatedAt
// means the database's now(); an inactive endpoint with no DisabledReason is disabled
// "manual". It returns the stored endpoint, or ErrExists.
func (db *DB) Create(ctx context.Context, ep Endpoint) (Endpoint, error) {
	if ep.ID == "" || ep.Secret == "" {
		return Endpoint{}, fmt.Errorf("fleet: create endpoint: id and secret are required")
	}
	if ep.EventTypes == nil {
		ep.EventTypes = []string{} // pgx writes a nil slice as NULL
	}
	secret, err := db.sealSecret(ep.ID, colSecret, ep.Secret)
	if err != nil {
		return Endpoint{}, err
	}
	var prev *string
	var prevExp *time.Time
	if ep.PrevSecret != "" {
		p, err := db.sealSecret(ep.ID, colPrevSecret, ep.PrevSecret)
		if err != nil {
			return Endpoint{}, err
		}
		prev, prevExp = &p, &ep.PrevSecretExpires
	}
	row := db.pool.QueryRow(ctx, `INSERT INTO blametrail_endpoints (id, url, name, description, event_types,
			active, disabled_reason, consecutive_failures, secret, prev_secret, prev_secret_expires, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9, $10, $11,
			coalesce($12, now()), coalesce($13, $12, now()))
		RETURNING `+columns,
		ep.ID, ep.URL, ep.Name, ep.Description, ep.EventTypes, ep.Active, ep.DisabledReason,
		ep.ConsecutiveFailures, secret, prev, prevExp, nullTime(ep.CreatedAt), nullTime(ep.UpdatedAt))
	out, err := db.scanEndpoint(row)
	if pgCode(err) == codeUniqueViolation {
		err = ErrExists
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("fleet: create endpoint %s: %w", ep.ID, err)
	}
	return out, nil
}

// nullTime is nil for the zero time, so SQL can default it.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Get returns one endpoint, or ErrNotFound.
func (db *DB) Get(ctx context.Context, id string) (Endpoint, error) {
	e, err := db.scanEndpoint(db.pool.QueryRow(ctx, `SELECT `+columns+` FROM blametrail_endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("fleet: get endpoint %s: %w", id, err)
	}
	return e, nil
}

// List returns up to limit endpoints with ids after cursor ("" = from the first), in id order,
// and the cursor of the next page: the last id returned, or "" when no endpoint follows.
func (db *DB) List(ctx context.Context, cursor string, limit int) ([]Endpoint, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("fleet: list endpoints: limit %d, want at least 1", limit)
	}
	// One more than asked tells whether a next page exists.
	rows, err := db.pool.Query(ctx, `SELECT `+columns+` FROM blametrail_endpoints
		WHERE id > $1 ORDER BY id LIMIT $2`, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("fleet: list endpoints after %q: %w", cursor, err)
	}
	out, err := db.collect(rows)
	if err != nil {
		return nil, "", fmt.Errorf("fleet: list endpoints after %q: %w", cursor, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// collect reads every row of a query of columns.
func (db *DB) collect(rows pgx.Rows) ([]Endpoint, error) {
	defer rows.Close()
	out := []Endpoint{}
	for rows.Next() {
		e, err := db.scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Update applies the fields present in in, as PATCH does, and returns the endpoint: setting
// Active to true clears the disabled reason and the failure counter; setting it to false
// disables an active endpoint "manual" and leaves an inactive one its reason. in.Secret must be
// nil (RotateSecret changes secrets). ErrNotFound when there is no such endpoint.
func (db *DB) Update(ctx context.Context, id string, in api.EndpointInput) (Endpoint, error) {
	if in.Secret != nil {
		return Endpoint{}, fmt.Errorf("fleet: update endpoint %s: a secret changes only by rotation", id)
	}
	// One statement: the new state is computed from the row as it is when locked, so a
	// concurrent auto-disable is never overwritten with a stale active flag.
	row := db.pool.QueryRow(ctx, `UPDATE blametrail_endpoints SET
			url = coalesce($2, url),
			name = coalesce($3, name),
			description = coalesce($4, description),
			event_types = coalesce($5::text[], event_types),
			active = coalesce($6::boolean, active),
			disabled_reason = CASE WHEN $6::boolean THEN NULL
				WHEN NOT $6::boolean AND active THEN 'manual' ELSE disabled_reason END,
			consecutive_failures = CASE WHEN $6::boolean THEN 0 ELSE consecutive_failures END,
			updated_at = now()
		WHERE id = $1
		RETURNING `+columns, id, in.URL, in.Name, in.Description, in.EventTypes, in.Active)
	e, err := db.scanEndpoint(row)
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("fleet: update endpoint %s: %w", id, err)
	}
	return e, nil
}

// Delete removes an endpoint and its failure set, or returns ErrNotFound.
func (db *DB) Delete(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM blametrail_endpoints WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("fleet: delete endpoint %s: %w", id, err)
	}
	return nil
}
