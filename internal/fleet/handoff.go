package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Handoff: a relay shutting down gracefully moves its pending deliveries, bodies included, into
// blametrail_handoff; any relay adopts them (FOR UPDATE SKIP LOCKED, so two relays never take
// the same rows) into its own WAL and delivers them. A relay killed without a shutdown hands
// nothing off: its deliveries wait in its WAL for it to come back.

// schemaV2: the handoff table. A row goes with its endpoint.
const schemaV2 = `
CREATE TABLE blametrail_handoff (
	delivery_id text COLLATE "C" PRIMARY KEY,
	endpoint_id text COLLATE "C" NOT NULL REFERENCES blametrail_endpoints (id) ON DELETE CASCADE ON UPDATE CASCADE,
	event_id    text NOT NULL,
	event_type  text NOT NULL,
	body        bytea NOT NULL,
	test        boolean NOT NULL DEFAULT false,
	from_relay  text NOT NULL DEFAULT '',
	handed_at   timestamptz NOT NULL DEFAULT now()
);
`

// Handoff is one pending delivery moving between relays.
type Handoff struct {
	DeliveryID, EndpointID, EventID, EventType string
	Body                                       []byte // the envelope receivers are sent, as signed
	Test                                       bool
	FromRelay                                  string
}

// HandOff stores deliveries for another relay to adopt, all or none. One whose endpoint was
// deleted meanwhile is left out (it would never be delivered); one already handed off is kept
// as it was.
func (db *DB) HandOff(ctx context.Context, items []Handoff) error {
	if len(items) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, h := range items {
		b.Queue(`INSERT INTO blametrail_handoff (delivery_id, endpoint_id, event_id, event_type, body, test, from_relay)
			SELECT $1, id, $3, $4, $5, $6, $7 FROM blametrail_endpoints WHERE id = $2
			ON CONFLICT (delivery_id) DO NOTHING`,
			h.DeliveryID, h.EndpointID, h.EventID, h.EventType, h.Body, h.Test, h.FromRelay)
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return fmt.Errorf("fleet: hand off %d deliveries: %w", len(items), err)
	}
	return nil
}

// ErrAdoptAborted wraps the error of an adopt callback: nothing was taken.
var ErrAdoptAborted = errors.New("fleet: adoption aborted")

// Adopt takes up to limit handed-off deliveries no other relay is taking, gives them to keep
// (which must make them durable in this relay before it returns nil), and only then deletes
// them. A relay that dies between the two delivers them and leaves the rows, so another relay
// delivers them again: at least once, never lost. It returns how many were adopted.
func (db *DB) Adopt(ctx context.Context, limit int, keep func([]Handoff) error) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT delivery_id, endpoint_id, event_id, event_type, body, test, from_relay
			FROM blametrail_handoff ORDER BY delivery_id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Handoff, error) {
			var h Handoff
			err := r.Scan(&h.DeliveryID, &h.EndpointID, &h.EventID, &h.EventType, &h.Body, &h.Test, &h.FromRelay)
			return h, err
		})
		if err != nil || len(items) == 0 {
			return err
		}
		if err := keep(items); err != nil {
			return fmt.Errorf("%w: %w", ErrAdoptAborted, err)
		}
		ids := make([]string, len(items))
		for i, h := range items {
			ids[i] = h.DeliveryID
		}
		if _, err := tx.Exec(ctx, `DELETE FROM blametrail_handoff WHERE delivery_id = ANY($1)`, ids); err != nil {
			return err
		}
		n = len(items)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("fleet: adopt handed-off deliveries: %w", err)
	}
	return n, nil
}
