package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Commands let any relay act on deliveries another relay holds (they live in that relay's WAL):
// a resend or a recover asked of relay B is written here and announced on CommandChannel; every
// relay runs it against its own deliveries and writes its result; B collects the results for a
// moment and answers. A relay that is down (or reconnecting) misses the command: commands are
// a convenience on top of per-relay state, not a queue, and the caller's answer says how many
// relays took part.

// CommandChannel is the channel a new command is announced on, with its id as payload.
const CommandChannel = "blametrail_commands"

// schemaV4: commands and their per-relay results, kept a few minutes (TrimCommands).
const schemaV4 = `
CREATE TABLE blametrail_commands (
	id          bigserial PRIMARY KEY,
	kind        text NOT NULL CHECK (kind IN ('resend', 'recover')),
	endpoint_id text NOT NULL,
	delivery_id text NOT NULL DEFAULT '',
	since       timestamptz,
	from_relay  text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE blametrail_command_results (
	command_id bigint NOT NULL REFERENCES blametrail_commands (id) ON DELETE CASCADE,
	relay      text NOT NULL,
	result     jsonb NOT NULL,
	PRIMARY KEY (command_id, relay)
);
`

// Command is a resend (EndpointID, DeliveryID) or a recover (EndpointID, Since).
type Command struct {
	ID         int64
	Kind       string // "resend" or "recover"
	EndpointID string
	DeliveryID string
	Since      time.Time
	FromRelay  string
}

// Result is one relay's answer to a command, in the relay's own terms (JSON).
type Result struct {
	Relay  string
	Result json.RawMessage
}

// SendCommand stores a command and announces it, in one transaction.
func (db *DB) SendCommand(ctx context.Context, c Command) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var since *time.Time
		if !c.Since.IsZero() {
			since = &c.Since
		}
		if err := tx.QueryRow(ctx, `INSERT INTO blametrail_commands (kind, endpoint_id, delivery_id, since, from_relay)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, c.Kind, c.EndpointID, c.DeliveryID, since, c.FromRelay).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", CommandChannel, strconv.FormatInt(id, 10))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("fleet: send %s command: %w", c.Kind, err)
	}
	return id, nil
}

// PutResult stores a relay's result of a command (once per relay).
func (db *DB) PutResult(ctx context.Context, id int64, relay string, result any) error {
	b, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("fleet: encode result of command %d: %w", id, err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO blametrail_command_results (command_id, relay, result) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, id, relay, b); err != nil {
		return fmt.Errorf("fleet: store result of command %d: %w", id, err)
	}
	return nil
}

// Results returns the results of a command so far.
func (db *DB) Results(ctx context.Context, id int64) ([]Result, error) {
	rows, err := db.pool.Query(ctx, `SELECT relay, result FROM blametrail_command_results WHERE command_id = $1 ORDER BY relay`, id)
	if err != nil {
		return nil, fmt.Errorf("fleet: read results of command %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Result, error) {
		var res Result
		var b []byte
		err := r.Scan(&res.Relay, &b)
		res.Result = b
		return res, err
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: read results of command %d: %w", id, err)
	}
	return out, nil
}

// TrimCommands deletes commands (and their results) older than age.
func (db *DB) TrimCommands(ctx context.Context, age time.Duration) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM blametrail_commands WHERE created_at < now() - $1::interval`,
		strconv.FormatInt(age.Milliseconds(), 10)+" milliseconds")
	if err != nil {
		return fmt.Errorf("fleet: trim commands: %w", err)
	}
	return nil
}

// ListenCommands calls run for each command announced, from one goroutine, until ctx ends. It
// holds its own connection and reconnects (with backoff) when it drops; commands announced
// meanwhile are missed (their senders answer without this relay). It skips commands from
// relay itself.
func (db *DB) ListenCommands(ctx context.Context, relay string, run func(Command)) error {
	wait := DefaultMinBackoff
	for ctx.Err() == nil {
		err := db.listenCommands(ctx, relay, run)
		if ctx.Err() != nil {
			return nil
		}
		_ = err // the caller learns of connection trouble from Watch, on the same server
		select {
		case <-ctx.Done():
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, DefaultMaxBackoff)
	}
	return nil
}

func (db *DB) listenCommands(ctx context.Context, relay string, run func(Command)) error {
	conn, err := pgx.ConnectConfig(ctx, db.watchConf.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+CommandChannel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			continue
		}
		var c Command
		var since *time.Time
		err = conn.QueryRow(ctx, `SELECT id, kind, endpoint_id, delivery_id, since, from_relay FROM blametrail_commands WHERE id = $1`, id).
			Scan(&c.ID, &c.Kind, &c.EndpointID, &c.DeliveryID, &since, &c.FromRelay)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // trimmed already
		}
		if err != nil {
			return err
		}
		if since != nil {
			c.Since = *since
		}
		if c.FromRelay != relay {
			run(c)
		}
	}
}
