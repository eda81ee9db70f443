package relay

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// The fleet's deliveries view (fleet mode): the store tells each change of a delivery
// (store.Options.OnDelivery) to a fleet.DeliveryWriter, which writes the newest state of each
// delivery to PostgreSQL in batches, off the delivery path; GET …/deliveries through any relay
// reads PostgreSQL, merged with this relay's own deliveries (fresher than their rows).
//
// Best effort, by design: the WAL stays the truth. A row lags its delivery by up to the
// writer's interval (200 ms); while PostgreSQL is unreachable the writer keeps the newest state
// of at most 50,000 deliveries and drops the oldest ones' beyond. The relay publishes every
// delivery it holds again at start, which repairs what a killed process lost, and once the
// writer has caught up after dropping changes. Rows are versioned, so none of this ever shows an older state
// in place of a newer one.

// relayIDFile holds the relay's id in its data dir: the deliveries it publishes carry it, so
// the id follows the WAL that holds them, not the host or pod.
const relayIDFile = "relay-id"

// loadRelayID returns the relay id kept in dataDir, generating it on first start.
func loadRelayID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, relayIDFile)
	id, _, err := readOrCreate(path, func() (string, error) {
		var raw [12]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", fmt.Errorf("generate a relay id: %w", err)
		}
		return "rly_" + hex.EncodeToString(raw[:]), nil
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("relay: relay id: %w", err)
	case !strings.HasPrefix(id, "rly_") || len(id) > 64:
		return "", fmt.Errorf("relay: %s holds no relay id: delete it to generate a new one", path)
	}
	return id, nil
}

// newHistoryWriter is the link's writer of the deliveries view.
func (f *fleetLink) newHistoryWriter() *fleet.DeliveryWriter[store.DeliveryState] {
	var lastLog time.Time // a failure is logged at most once a minute while it lasts
	return fleet.NewDeliveryWriter(fleet.WriterOptions[store.DeliveryState]{
		Key:     func(st store.DeliveryState) [16]byte { return st.ID },
		Version: func(st store.DeliveryState) int64 { return st.Version },
		Row:     rowOf,
		// Between trims an endpoint shows more than --history-limit finished deliveries: a
		// few seconds' worth. A trim costs one statement for the endpoints written since.
		TrimInterval: 2 * time.Second,
		Write: func(ctx context.Context, rows []fleet.DeliveryRow) error {
			db := f.db.Load()
			if db == nil {
				return errStoreUnavailable
			}
			// The rows' states were published before their records were durable (an attempt's
			// record rides with the next one someone waits for): the view must never show a
			// state a crash could take back, since a version it shows is never lowered.
			if err := f.st.Durable(); err != nil {
				return err
			}
			_, err := db.UpsertDeliveries(ctx, f.relayID, rows)
			return err
		},
		Trim: func(ctx context.Context, endpointIDs []string) error {
			db := f.db.Load()
			if db == nil {
				return errStoreUnavailable
			}
			_, err := db.TrimDeliveries(ctx, endpointIDs, f.cfg.HistoryLimit)
			return err
		},
		OnError: func(err error) { // from the writer's goroutine only
			if now := time.Now(); now.Sub(lastLog) >= time.Minute {
				lastLog = now
				f.log.Warn("fleet: write the deliveries view; retrying", "err", err)
			}
		},
		OnDrop: func(n int64) {
			f.lost.Store(true)
			f.complete.Store(false)
			f.log.Warn("fleet: deliveries view behind: changes dropped (the WAL keeps them; they are published again once the view catches up)",
				"dropped", n)
		},
	})
}

// rowOf is a delivery state as the fleet's view stores it.
func rowOf(st store.DeliveryState) fleet.DeliveryRow {
	r := fleet.DeliveryRow{ID: st.ID.String(), EndpointID: st.EndpointID, EventID: st.EventID.Format("evt_"),
		EventType: st.EventType, Status: st.Status, Version: st.Version}
	if st.Attempts() > 0 {
		var buf [256]byte
		r.Attempts = string(st.AppendAttemptsJSON(buf[:0]))
	}
	if st.Status == api.StatusPending {
		r.NextAttemptAt = time.UnixMilli(st.Next).UTC()
	}
	return r
}

// publish republishes every delivery at start, unless the last stop was clean and published
// them all to this database, and again whenever the writer has caught up after dropping changes.
func (f *fleetLink) publish(ctx context.Context, db *fleet.DB) {
	ictx, cancel := context.WithTimeout(ctx, fleetTimeout)
	id, err := db.Identity(ictx)
	cancel()
	switch {
	case err == nil && id == f.publishedTo:
		f.identity = id
		f.complete.Store(true)
		f.log.Info("fleet: deliveries view already complete (the last stop published every delivery)")
	default:
		f.identity = id // "" on error: no marker at stop
		if f.republish(ctx) {
			f.complete.Store(true)
		}
	}
	t := time.NewTicker(republishCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if f.lost.Load() && f.history.Held() == 0 {
				f.lost.Store(false)
				if f.republish(ctx) {
					f.complete.Store(true)
				}
			}
		}
	}
}

// republishCheck is how often the relay looks whether the view has caught up after a drop.
const republishCheck = 10 * time.Second

// republish hands the writer every delivery the store holds, a page at a time and as fast as
// the writer takes them: the rows of a relay that was killed, or that dropped changes while
// PostgreSQL was unreachable, are right again once it is done.
func (f *fleetLink) republish(ctx context.Context) (done bool) {
	start, n := time.Now(), 0
	for _, ep := range f.st.EndpointIDs() {
		var after store.DeliveryID
		for more := true; more; {
			var states []store.DeliveryState
			states, more = f.st.DeliveryStates(ep, after, 500)
			for _, st := range states {
				if err := f.history.Put(ctx, st); err != nil {
					return false // stopping
				}
				after = st.ID
				n++
			}
		}
	}
	f.log.Info("fleet: deliveries published to the fleet's view", "deliveries", n, "duration", time.Since(start).String())
	return true
}

// publishedFile marks a data dir whose deliveries are all in the fleet's view: a clean stop
// writes it, with the database's identity; a start takes it away before anything changes, so a
// relay that is killed never finds one, and publishes everything again at its next start.
const publishedFile = "view-published"

// takePublished reads and removes the marker, durably, and returns the identity of the
// database it names ("" when there is none).
func takePublished(dataDir string) (string, error) {
	path := filepath.Join(dataDir, publishedFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("relay: read %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return "", fmt.Errorf("relay: remove %s: %w", path, err)
	}
	if err := syncDir(dataDir); err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// markPublished writes the marker at a stop that left every delivery in the view: a full
// publish done and nothing dropped since, the writer's last batch written, and no attempt
// still in flight. Without it the next start publishes everything again, which is only slower.
func (f *fleetLink) markPublished() {
	if !f.quiet || !f.complete.Load() || f.lost.Load() || !f.history.Flushed() || f.identity == "" {
		return
	}
	path := filepath.Join(f.cfg.DataDir, publishedFile)
	if err := os.WriteFile(path, []byte(f.identity+"\n"), 0o600); err != nil {
		f.log.Warn("fleet: mark the deliveries view complete; the next start publishes every delivery again", "err", err)
		return
	}
	if err := syncDir(f.cfg.DataDir); err != nil {
		f.log.Warn("fleet: mark the deliveries view complete", "err", err)
	}
}

// syncDir makes a file's creation or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("relay: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("relay: sync %s: %w", dir, err)
	}
	return nil
}

// Deliveries lists an endpoint's deliveries from the whole fleet: the view in PostgreSQL,
// merged with this relay's own, which are fresher than their rows. PostgreSQL decides whether
// the endpoint exists; when it is unreachable the answer is 503, as for every admin read.
func (a fleetAdmin) Deliveries(id, cursor string, limit int) ([]api.Delivery, string, error) {
	if cursor != "" && !store.ValidID("dlv_", cursor) {
		return nil, "", store.ErrBadCursor
	}
	db, ctx, cancel, err := a.db()
	if err != nil {
		return nil, "", err
	}
	defer cancel()
	shared, next, err := db.Deliveries(ctx, id, cursor, limit)
	if err != nil {
		return nil, "", adminError(err, false)
	}
	local, lnext, err := a.f.st.Deliveries(id, cursor, limit)
	if errors.Is(err, store.ErrNotFound) {
		local, lnext, err = nil, "", nil // this relay's copy has not seen the endpoint yet
	}
	if err != nil {
		return nil, "", err
	}
	out, next := mergeDeliveries(local, shared, limit, next != "" || lnext != "")
	return out, next, nil
}

// mergeDeliveries is the first limit deliveries of two pages (same cursor, newest first), the
// first page's copy of a delivery in both, and the cursor of the next page: there is one when
// either page had more, or the two hold more than limit together.
func mergeDeliveries(mine, theirs []api.Delivery, limit int, more bool) ([]api.Delivery, string) {
	seen := make(map[string]bool, len(mine))
	out := make([]api.Delivery, 0, len(mine)+len(theirs))
	for _, d := range mine {
		seen[d.ID] = true
		out = append(out, d)
	}
	for _, d := range theirs {
		if !seen[d.ID] {
			out = append(out, d)
		}
	}
	// Ids sort by creation time; the newest first.
	slices.SortFunc(out, func(a, b api.Delivery) int { return cmp.Compare(b.ID, a.ID) })
	if len(out) > limit {
		out, more = out[:limit], true
	}
	if !more || len(out) == 0 {
		return out, ""
	}
	return out, out[len(out)-1].ID
}
