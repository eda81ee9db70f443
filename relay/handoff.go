package relay

import (
	"context"
	"os"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// Handoff (fleet mode). A relay shutting down gracefully hands its open deliveries, with their
// bodies, to PostgreSQL, and every relay adopts handed-off deliveries into its own WAL and
// delivers them. Scaling down therefore loses nothing. A relay killed without a shutdown (or
// one that cannot reach PostgreSQL, or runs out of shutdown time) keeps what it did not hand
// off in its WAL, and delivers it when it comes back.

// handoffBatch is how many deliveries move in one transaction.
const handoffBatch = 500

// adoptInterval is how often a relay looks for handed-off deliveries.
const adoptInterval = time.Second

func (f *fleetLink) adoptLoop(ctx context.Context, db *fleet.DB) {
	t := time.NewTicker(adoptInterval)
	defer t.Stop()
	for {
		// A relay that has not read the fleet's endpoints yet would refuse every row anyway.
		for ctx.Err() == nil && f.st.Synced() {
			actx, cancel := context.WithTimeout(ctx, fleetTimeout)
			n, err := db.Adopt(actx, handoffBatch, func(hs []fleet.Handoff) error {
				items := make([]store.HandoffItem, len(hs))
				for i, h := range hs {
					items[i] = store.HandoffItem{DeliveryID: h.DeliveryID, EndpointID: h.EndpointID, EventID: h.EventID,
						EventType: h.EventType, Body: h.Body, Test: h.Test}
				}
				return f.st.Adopt(items)
			})
			cancel()
			if err != nil && ctx.Err() == nil {
				f.log.Warn("fleet: adopt handed-off deliveries", "err", err)
			}
			if n > 0 {
				f.log.Info("fleet: adopted deliveries another relay handed off", "deliveries", n)
			}
			if err != nil || n < handoffBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// handOff moves this relay's open deliveries to PostgreSQL until ctx ends. The engine is
// stopped (nothing is attempted meanwhile) and adoption is stopped first, so this relay does
// not take back what it hands off.
func (f *fleetLink) handOff(ctx context.Context) {
	f.mu.Lock()
	if f.stopAdopt != nil {
		f.stopAdopt()
	}
	f.mu.Unlock()
	ids := f.st.OpenDeliveryIDs()
	if len(ids) == 0 {
		return
	}
	db := f.db.Load()
	if db == nil {
		f.log.Warn("fleet: PostgreSQL unreachable; open deliveries stay in this relay's WAL", "deliveries", len(ids))
		return
	}
	host, _ := os.Hostname()
	moved, kept := 0, 0
	for start := 0; start < len(ids) && ctx.Err() == nil; start += handoffBatch {
		items, skipped := f.st.HandoffItems(ids[start:min(start+handoffBatch, len(ids))])
		kept += skipped
		hs := make([]fleet.Handoff, len(items))
		done := make([]string, len(items))
		for i, it := range items {
			hs[i] = fleet.Handoff{DeliveryID: it.DeliveryID, EndpointID: it.EndpointID, EventID: it.EventID,
				EventType: it.EventType, Body: it.Body, Test: it.Test, FromRelay: host}
			done[i] = it.DeliveryID
		}
		if err := db.HandOff(ctx, hs); err != nil {
			f.log.Warn("fleet: hand off deliveries", "err", err)
			break
		}
		// PostgreSQL holds them now; a crash before this record only means they are delivered
		// twice (here after a restart, and by the adopter): at least once, never lost.
		if err := f.st.HandedOff(done); err != nil {
			f.log.Error("fleet: record the handoff", "err", err)
			break
		}
		moved += len(items)
	}
	kept = len(ids) - moved
	f.log.Info("fleet: handed off open deliveries to the fleet", "handed_off", moved, "kept_in_wal", kept)
}
