package fleet

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

var dlvSeq struct {
	sync.Mutex
	n int
}

// dlvID is a fresh delivery id; later ids sort after earlier ones, as the relays' do.
func dlvID() string {
	dlvSeq.Lock()
	defer dlvSeq.Unlock()
	dlvSeq.n++
	return fmt.Sprintf("dlv_%026d", dlvSeq.n)
}

// row is a delivery of ep in the given state: attempts attempts, the last one at a fixed time.
func row(ep, status string, attempts int, version int64) DeliveryRow {
	r := DeliveryRow{ID: dlvID(), EndpointID: ep, EventID: "evt_" + fmt.Sprint(version), EventType: api.TypeIncidentOpened,
		Status: status, Version: version}
	at := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	js := "["
	for i := range attempts {
		if i > 0 {
			js += ","
		}
		js += fmt.Sprintf(`{"n":%d,"at":%q,"status_code":500,"error":null,"duration_ms":7}`, i+1,
			at.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))
	}
	r.Attempts = js + "]"
	if status == api.StatusPending {
		r.NextAttemptAt = at.Add(time.Hour)
	}
	return r
}

func upsert(t *testing.T, db *DB, relay string, rows ...DeliveryRow) int64 {
	t.Helper()
	n, err := db.UpsertDeliveries(t.Context(), relay, rows)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// page lists every delivery of ep through pages of size n.
func page(t *testing.T, db *DB, ep string, n int) []api.Delivery {
	t.Helper()
	var out []api.Delivery
	cursor := ""
	for {
		ds, next, err := db.Deliveries(t.Context(), ep, cursor, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) > n || next != "" && len(ds) != n {
			t.Fatalf("page of %d with next %q, limit %d", len(ds), next, n)
		}
		out = append(out, ds...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

func ids(ds []api.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// TestDeliveriesPage: rows written by two relays read back newest first, through pages of any
// size, as the API shows deliveries (attempts, next attempt only while pending); held while the
// endpoint is inactive; an endpoint without deliveries has an empty list, an unknown one is
// ErrNotFound.
func TestDeliveriesPage(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	ep := create(t, db, sample()).ID
	var want []string // newest first
	for i := range 7 {
		status := []string{api.StatusPending, api.StatusSucceeded, api.StatusFailed, api.StatusHeld}[i%4]
		r := row(ep, status, i%3, int64(i))
		upsert(t, db, fmt.Sprintf("relay-%d", i%2), r)
		want = append([]string{r.ID}, want...)
	}
	for _, n := range []int{1, 2, 3, 7, 250} {
		if got := ids(page(t, db, ep, n)); !reflect.DeepEqual(got, want) {
			t.Fatalf("pages of %d: %v, want %v", n, got, want)
		}
	}
	all := page(t, db, ep, 250)
	for _, d := range all {
		if d.EndpointID != ep || d.EventType != api.TypeIncidentOpened || d.Attempts == nil {
			t.Errorf("%+v", d)
		}
		// A row written held has no next attempt: resuming is not published.
		if d.NextAttemptAt != nil && d.Status != api.StatusPending || d.NextAttemptAt == nil && d.Status == api.StatusPending && d.ID != all[3].ID {
			t.Errorf("%s %s: next attempt %v", d.ID, d.Status, d.NextAttemptAt)
		}
	}
	// The oldest: pending, no attempts. The second oldest: succeeded after one attempt.
	if d := all[6]; d.Status != api.StatusPending || len(d.Attempts) != 0 || !d.NextAttemptAt.Equal(time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("oldest: %+v", d)
	}
	if d := all[5]; d.Status != api.StatusSucceeded || len(d.Attempts) != 1 || d.Attempts[0].N != 1 ||
		*d.Attempts[0].StatusCode != 500 || d.Attempts[0].Error != nil || d.Attempts[0].DurationMS != 7 {
		t.Errorf("second oldest: %+v", d)
	}
	// Held (written as held, or pending) exactly while the endpoint is inactive.
	if d := all[3]; d.Status != api.StatusPending {
		t.Errorf("a held row of an active endpoint shows %s, want pending", d.Status)
	}
	if _, err := db.Update(t.Context(), ep, api.EndpointInput{Active: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	for _, d := range page(t, db, ep, 250) {
		if d.Status == api.StatusPending || d.Status == api.StatusHeld && d.NextAttemptAt != nil {
			t.Errorf("inactive endpoint: %s %s next %v", d.ID, d.Status, d.NextAttemptAt)
		}
	}

	empty := create(t, db, sample()).ID
	if ds, next, err := db.Deliveries(t.Context(), empty, "", 10); err != nil || len(ds) != 0 || ds == nil || next != "" {
		t.Errorf("endpoint without deliveries: %v, %q, %v", ds, next, err)
	}
	if _, _, err := db.Deliveries(t.Context(), "ep_missing", "", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown endpoint: %v", err)
	}
}

// TestDeliveriesNewestWins: a state replaces the stored one only when newer, so batches may
// arrive late or twice; an equal version moves the next attempt and the owner; a row of an
// unknown endpoint is skipped, not an error, and a deleted endpoint takes its rows along.
func TestDeliveriesNewestWins(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{})
	conn := raw(t, dsn)
	ep := create(t, db, sample()).ID
	v0 := row(ep, api.StatusPending, 0, 0)
	v3 := v0
	v3.Status, v3.Attempts, v3.Version = api.StatusPending, row(ep, "", 1, 0).Attempts, 3
	v4 := v3
	v4.Status, v4.NextAttemptAt, v4.Version = api.StatusFailed, time.Time{}, 4

	if n := upsert(t, db, "a", v3); n != 1 {
		t.Fatalf("insert: %d rows", n)
	}
	if n := upsert(t, db, "a", v0); n != 0 {
		t.Fatalf("an older state changed %d rows", n)
	}
	if n := upsert(t, db, "a", v3); n != 0 {
		t.Fatalf("the same state again changed %d rows", n)
	}
	moved := v3
	moved.NextAttemptAt = moved.NextAttemptAt.Add(time.Minute)
	if n := upsert(t, db, "a", moved); n != 1 {
		t.Fatalf("a resumed state (same version, new next attempt) changed %d rows", n)
	}
	if n := upsert(t, db, "b", moved); n != 1 {
		t.Fatalf("a handed-off state (same version, another relay) changed %d rows", n)
	}
	if n := upsert(t, db, "b", v0, v4, v3); n != 1 { // one delivery three times: the newest counts
		t.Fatalf("newest of three changed %d rows", n)
	}
	if got := page(t, db, ep, 10); len(got) != 1 || got[0].Status != api.StatusFailed || len(got[0].Attempts) != 1 ||
		got[0].NextAttemptAt != nil {
		t.Fatalf("after the final state: %+v", got)
	}
	if rel := sqlInt(t, conn, "SELECT count(*) FROM blametrail_deliveries WHERE relay_id = 'b'"); rel != 1 {
		t.Errorf("owner not moved to b")
	}

	ghost := row("ep_gone", api.StatusSucceeded, 1, 4)
	other := row(ep, api.StatusSucceeded, 1, 4)
	if n := upsert(t, db, "a", ghost, other); n != 1 {
		t.Fatalf("batch with an unknown endpoint wrote %d rows, want 1", n)
	}
	if err := db.Delete(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	if n := sqlInt(t, conn, "SELECT count(*) FROM blametrail_deliveries"); n != 0 {
		t.Errorf("%d rows left after their endpoint was deleted", n)
	}
}

// TestDeliveriesConcurrentDelete: batches written while their endpoint is deleted never fail:
// the foreign key race is retried, and the rows go with the endpoint.
func TestDeliveriesConcurrentDelete(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	for range 20 {
		keep, gone := create(t, db, sample()).ID, create(t, db, sample()).ID
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 4 {
			wg.Go(func() {
				for range 5 {
					if _, err := db.UpsertDeliveries(t.Context(), "r", []DeliveryRow{
						row(gone, api.StatusSucceeded, 1, 4), row(keep, api.StatusSucceeded, 1, 4)}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		if err := db.Delete(t.Context(), gone); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := len(page(t, db, keep, 250)); n != 20 {
			t.Fatalf("%d rows of the endpoint kept, want 20", n)
		}
	}
}

// TestTrimDeliveries: each named endpoint keeps its newest finished deliveries up to the
// limit, whichever relay wrote them, and every pending one; an endpoint not named is left alone.
func TestTrimDeliveries(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	a, b := create(t, db, sample()).ID, create(t, db, sample()).ID
	var pending, finished []string // oldest first
	for i := range 30 {
		st := api.StatusSucceeded
		if i%3 == 0 {
			st = api.StatusPending
		}
		r := row(a, st, 1, 4)
		upsert(t, db, fmt.Sprintf("relay-%d", i%3), r, row(b, api.StatusFailed, 1, 4))
		if st == api.StatusPending {
			pending = append(pending, r.ID)
		} else {
			finished = append(finished, r.ID)
		}
	}
	n, err := db.TrimDeliveries(t.Context(), []string{a, "ep_unknown"}, 5)
	if err != nil || n != int64(len(finished)-5) {
		t.Fatalf("trim: %d, %v; want %d deleted", n, err, len(finished)-5)
	}
	got := map[string]bool{}
	for _, d := range page(t, db, a, 250) {
		got[d.ID] = true
	}
	for _, id := range append(pending, finished[len(finished)-5:]...) {
		if !got[id] {
			t.Errorf("%s trimmed", id)
		}
	}
	if len(got) != len(pending)+5 {
		t.Errorf("%d left, want %d", len(got), len(pending)+5)
	}
	if n := len(page(t, db, b, 250)); n != 30 {
		t.Errorf("endpoint not named: %d left, want 30", n)
	}
	if n, err := db.TrimDeliveries(t.Context(), []string{a}, 5); n != 0 || err != nil {
		t.Errorf("second trim: %d, %v", n, err)
	}
	if n, err := db.TrimDeliveries(t.Context(), []string{a}, 0); n != 5 || err != nil {
		t.Errorf("trim to 0: %d, %v", n, err)
	}
}
