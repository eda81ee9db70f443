package fleet

import (
	"context"
	"fmt"
)

// The shared consecutive-failure counter.
//
// Each outcome is decided in one SQL statement, whose row lock on the endpoint serializes
// concurrent relays: the increment happens only if the failure's key entered the failure set
// (so a replayed outcome never counts twice), and the disable only in the statement that
// finds the endpoint still active when it reaches the threshold (so exactly one relay is told
// it disabled it). As in internal/store, failures keep counting while an endpoint is inactive
// (only the disable is skipped), a success resets the count, and re-enabling starts it afresh.
//
// The failure set is trimmed by age, not on success: a row stays FailureRetention (7 days by
// default) after it was counted, so an outcome replayed after a later success (a relay that
// sends its queued outcomes when PostgreSQL comes back) is still recognised. Rows go at once
// with their endpoint. TrimFailures deletes the old ones; a relay calls it now and then (any
// relay: concurrent calls are harmless).

// recordFailure is RecordFailure's and RecordGone's one statement. $1 endpoint, $2 failure key,
// $3 threshold (0: never by count), $4 gone. Its row: whether the endpoint exists, whether this
// statement counted the failure, whether it disabled the endpoint.
const recordFailure = `
WITH ep AS (
	SELECT id FROM blametrail_endpoints WHERE id = $1
), ins AS (
	INSERT INTO blametrail_failures (endpoint_id, delivery_id)
	SELECT id, $2 FROM ep
	ON CONFLICT DO NOTHING
	RETURNING endpoint_id
), old AS (
	-- Locks the row and reads it as the increment will see it: as left by the last relay
	-- that held the lock, not as this statement's snapshot had it.
	SELECT e.id, e.active FROM blametrail_endpoints e JOIN ins ON ins.endpoint_id = e.id
	FOR UPDATE OF e
), upd AS (
	UPDATE blametrail_endpoints e SET
		consecutive_failures = e.consecutive_failures + 1,
		active = e.active AND NOT ($4 OR $3 > 0 AND e.consecutive_failures + 1 >= $3),
		disabled_reason = CASE
			WHEN NOT e.active THEN e.disabled_reason
			WHEN $4 THEN 'gone'
			WHEN $3 > 0 AND e.consecutive_failures + 1 >= $3 THEN 'consecutive_failures'
		END,
		updated_at = CASE WHEN e.active AND ($4 OR $3 > 0 AND e.consecutive_failures + 1 >= $3)
			THEN now() ELSE e.updated_at END
	FROM old WHERE e.id = old.id
	RETURNING old.active AND NOT e.active AS disabled
)
SELECT EXISTS (SELECT 1 FROM ep), EXISTS (SELECT 1 FROM upd), coalesce((SELECT disabled FROM upd), false)`

// RecordFailure counts a failed delivery against its endpoint, once per key: deliveryID
// identifies the failed outcome (the delivery id; a delivery that can fail again after a resend
// needs a key per retry series, such as the id and the series number). When the count reaches
// threshold (> 0; 0 never disables) while the endpoint is active, this call disables it
// ("consecutive_failures") and reports disabled: of all relays counting at once, exactly one
// does. ErrNotFound when the endpoint is gone.
func (db *DB) RecordFailure(ctx context.Context, endpointID, deliveryID string, threshold int) (disabled bool, err error) {
	return db.recordFailure(ctx, endpointID, deliveryID, max(threshold, 0), false)
}

// RecordGone counts a failed delivery that ended in 410 Gone (as RecordFailure, deduplicated
// by the same key) and disables its endpoint "gone" if active, reporting whether this call did.
// A replayed key changes nothing: the outcome was applied already.
func (db *DB) RecordGone(ctx context.Context, endpointID, deliveryID string) (disabled bool, err error) {
	return db.recordFailure(ctx, endpointID, deliveryID, 0, true)
}

func (db *DB) recordFailure(ctx context.Context, endpointID, deliveryID string, threshold int, gone bool) (bool, error) {
	var found, counted, disabled bool
	err := db.pool.QueryRow(ctx, recordFailure, endpointID, deliveryID, threshold, gone).Scan(&found, &counted, &disabled)
	if pgCode(err) == codeForeignKeyViolation {
		err = ErrNotFound // deleted between the statement's snapshot and its insert
	}
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("fleet: record failure %s of endpoint %s: %w", deliveryID, endpointID, err)
	}
	return disabled, nil
}

// RecordSuccess resets the endpoint's failure count after a successful delivery. When it is
// already 0, nothing is written (no new version, no notification): the common case costs one
// index lookup. An unknown endpoint is not an error (it may have been deleted meanwhile).
func (db *DB) RecordSuccess(ctx context.Context, endpointID string) error {
	_, err := db.pool.Exec(ctx, `UPDATE blametrail_endpoints SET consecutive_failures = 0
		WHERE id = $1 AND consecutive_failures <> 0`, endpointID)
	if err != nil {
		return fmt.Errorf("fleet: record success of endpoint %s: %w", endpointID, err)
	}
	return nil
}

// DisableGone disables an active endpoint with reason "gone" without counting a failure (a
// test delivery answered 410), and reports whether this call disabled it. ErrNotFound when
// there is no such endpoint.
func (db *DB) DisableGone(ctx context.Context, endpointID string) (disabled bool, err error) {
	var found bool
	err = db.pool.QueryRow(ctx, `
		WITH ep AS (SELECT id FROM blametrail_endpoints WHERE id = $1),
		upd AS (
			UPDATE blametrail_endpoints SET active = false, disabled_reason = 'gone', updated_at = now()
			WHERE id = $1 AND active
			RETURNING id
		)
		SELECT EXISTS (SELECT 1 FROM ep), EXISTS (SELECT 1 FROM upd)`, endpointID).Scan(&found, &disabled)
	if err == nil && !found && !disabled {
		err = ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("fleet: disable endpoint %s (gone): %w", endpointID, err)
	}
	return disabled, nil
}

// TrimFailures deletes the failure-set rows older than the retention (Options.FailureRetention)
// and returns how many it deleted. It deletes in batches so that no statement holds many locks
// for long.
func (db *DB) TrimFailures(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := db.pool.Exec(ctx, `DELETE FROM blametrail_failures WHERE ctid IN (
			SELECT ctid FROM blametrail_failures WHERE failed_at < now() - $1 * interval '1 microsecond' LIMIT 10000)`,
			db.retention.Microseconds())
		if err != nil {
			return total, fmt.Errorf("fleet: trim the failure set: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}
