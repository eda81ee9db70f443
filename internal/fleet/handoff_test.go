package fleet

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestHandoffAdoptedOnce: handed-off deliveries are adopted exactly once by concurrent
// adopters; an adopter whose keep fails takes nothing; rows of a deleted endpoint go with it.
func TestHandoffAdoptedOnce(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{})
	ep := create(t, db, sample())
	other := sample()
	other.ID = "ep_other"
	create(t, db, other)
	var items []Handoff
	for i := range 300 {
		items = append(items, Handoff{DeliveryID: fmt.Sprintf("dlv_%04d", i), EndpointID: ep.ID, EventID: fmt.Sprintf("evt_%04d", i),
			EventType: "incident.opened", Body: []byte(`{"n":` + fmt.Sprint(i) + `}`), FromRelay: "a"})
	}
	items = append(items, Handoff{DeliveryID: "dlv_gone", EndpointID: "ep_missing", EventID: "evt_x", EventType: "x", Body: []byte("{}")})
	if err := db.HandOff(t.Context(), items); err != nil {
		t.Fatal(err)
	}
	if err := db.HandOff(t.Context(), items[:10]); err != nil { // again: kept as it was
		t.Fatal(err)
	}
	if _, err := db.Adopt(t.Context(), 50, func([]Handoff) error { return errors.New("disk full") }); !errors.Is(err, ErrAdoptAborted) {
		t.Fatalf("a failing keep: %v", err)
	}
	conn := raw(t, dsn)
	if n := sqlInt(t, conn, "SELECT count(*) FROM blametrail_handoff"); n != 300 {
		t.Fatalf("%d rows handed off, want 300 (the unknown endpoint's left out, an aborted adoption takes none)", n)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 3 {
		pool := open(t, dsn, Options{})
		wg.Go(func() {
			for {
				n, err := pool.Adopt(t.Context(), 40, func(hs []Handoff) error {
					mu.Lock()
					defer mu.Unlock()
					for _, h := range hs {
						seen[h.DeliveryID]++
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 300 {
		t.Fatalf("adopted %d distinct deliveries, want 300", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s adopted %d times", id, n)
		}
	}
	if err := db.HandOff(t.Context(), items[:5]); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	if n := sqlInt(t, conn, "SELECT count(*) FROM blametrail_handoff"); n != 0 {
		t.Fatalf("%d handed-off rows outlived their endpoint", n)
	}
}
