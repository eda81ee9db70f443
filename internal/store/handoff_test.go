package store_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// TestHandoffMovesOpenDeliveries: what relay A hands off it forgets for good (a restart
// included); relay B adopts it with the same ids and bodies, in id order among its own, once
// however often it is adopted.
func TestHandoffMovesOpenDeliveries(t *testing.T) {
	const id = "ep_01m8c5xqc02hd66h7026x3c9s3"
	optsA := store.Options{Dir: t.TempDir(), WAL: wal.Options{Sync: wal.SyncNone}, PayloadCache: 1}
	a := newCoreFixture(t, optsA)
	b := newCoreFixture(t, store.Options{Dir: t.TempDir(), WAL: wal.Options{Sync: wal.SyncNone}})
	for _, f := range []*coreFixture{a, b} {
		if err := f.s.SyncEndpoint(fleetState(id, 1, true)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		a.ingest(api.TypeIncidentOpened, "")
	}
	done := a.deliveriesOf(id)[2].ID
	a.attempt(done, 200, 0) // finished: not handed off
	b.clock.Add(time.Hour)
	b.ingest(api.TypeDeployIngested, "") // B's own, newer than A's
	items, skipped := a.s.HandoffItems(a.s.OpenDeliveryIDs())
	if len(items) != 2 || skipped != 0 {
		t.Fatalf("handoff items: %d (skipped %d), want the 2 open ones", len(items), skipped)
	}
	bodies := map[string][]byte{}
	var ids []string
	for _, it := range items {
		if it.EndpointID != id || len(it.Body) == 0 || it.EventType != api.TypeIncidentOpened {
			t.Fatalf("item %+v", it)
		}
		bodies[it.DeliveryID] = it.Body
		ids = append(ids, it.DeliveryID)
	}
	if err := a.s.HandedOff(ids); err != nil {
		t.Fatal(err)
	}
	if n := len(a.s.OpenDeliveryIDs()); n != 0 {
		t.Fatalf("A still holds %d open deliveries", n)
	}
	checkStats(t, a.s)
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	a2 := newCoreFixture(t, optsA)
	if n := len(a2.s.OpenDeliveryIDs()); n != 0 || len(a2.deliveriesOf(id)) != 1 {
		t.Fatalf("after a restart A holds %d open deliveries, %d in all", n, len(a2.deliveriesOf(id)))
	}

	// A relay whose copy lacks the endpoint takes nothing (the rows stay for later).
	c := newCoreFixture(t, store.Options{Dir: t.TempDir(), WAL: wal.Options{Sync: wal.SyncNone}})
	if err := c.s.Adopt(items); !errors.Is(err, store.ErrUnknownEndpoint) {
		t.Fatalf("adopt without the endpoint: %v, want ErrUnknownEndpoint", err)
	}
	if n := len(c.s.OpenDeliveryIDs()); n != 0 {
		t.Fatalf("a refused adoption left %d deliveries", n)
	}

	for range 2 { // a second adoption of the same rows changes nothing
		if err := b.s.Adopt(items); err != nil {
			t.Fatal(err)
		}
	}
	ds := b.deliveriesOf(id)
	if len(ds) != 3 {
		t.Fatalf("B lists %d deliveries, want its own and the 2 adopted", len(ds))
	}
	for i := 1; i < len(ds); i++ {
		if ds[i-1].ID <= ds[i].ID {
			t.Fatalf("B's list is not newest first: %v then %v", ds[i-1].ID, ds[i].ID)
		}
	}
	for _, did := range ids {
		job, ok := b.begin(did)
		if !ok || !bytes.Equal(job.Body, bodies[did]) {
			t.Fatalf("adopted %s: claimable %v, body %q", did, ok, job.Body)
		}
	}
	checkStats(t, b.s)
}
