package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// failing answers 500 to events whose data says "fail", 200 to the others.
func failing(w http.ResponseWriter, r *relaytest.Request) {
	if strings.Contains(string(r.Body), `"fail":true`) {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// fleetDeliveries follows the cursor through an endpoint's deliveries with pages of size n,
// and returns the error of a page that failed (PostgreSQL restarting) instead of failing.
func fleetDeliveries(t *testing.T, r *relaytest.Relay, id string, n int) ([]api.Delivery, error) {
	t.Helper()
	var out []api.Delivery
	cursor := ""
	for {
		page, err := r.Client.ListDeliveries(testCtx(t), id, cursor, n)
		if err != nil {
			return nil, err
		}
		if len(page.Data) > n {
			t.Fatalf("page of %d deliveries, limit %d", len(page.Data), n)
		}
		out = append(out, page.Data...)
		if page.NextCursor == nil {
			return out, nil
		}
		cursor = *page.NextCursor
	}
}

// postFanned posts an event until the relay fans it out to one endpoint (it has synced the
// endpoint from the fleet; until then it answers 503 not_synced, or fans out to none).
func postFanned(t *testing.T, r *relaytest.Relay, body string) api.IngestResult {
	t.Helper()
	var res api.IngestResult
	relaytest.Eventually(t, 10*time.Second, "the relay to fan out to the endpoint", func() bool {
		status, out, _ := r.Do("POST", "/api/events", "application/json", r.Token, []byte(body))
		return status == 202 && json.Unmarshal(out, &res) == nil && res.Deliveries == 1
	})
	return res
}

// expected is what the view must show of one event's delivery.
type expected struct {
	relay    string // the relay it was posted to
	fail     bool
	attempts int
}

// checkView asserts the view holds exactly the events of want, newest first, each finished
// as expected; it reports false (not failing) while some are missing or unfinished.
func checkView(t *testing.T, ds []api.Delivery, want map[string]expected) bool {
	t.Helper()
	if len(ds) != len(want) {
		return false
	}
	for i, d := range ds {
		w, ok := want[d.EventID]
		if !ok {
			t.Fatalf("delivery %s of an unknown event %s", d.ID, d.EventID)
		}
		if i > 0 && d.ID >= ds[i-1].ID {
			t.Fatalf("not newest first: %s after %s", d.ID, ds[i-1].ID)
		}
		status := api.StatusSucceeded
		if w.fail {
			status = api.StatusFailed
		}
		if d.Status != status || len(d.Attempts) != w.attempts {
			return false
		}
		for n, a := range d.Attempts {
			code := http.StatusOK
			if w.fail {
				code = http.StatusInternalServerError
			}
			if a.N != n+1 || a.StatusCode == nil || *a.StatusCode != code || a.At.IsZero() {
				t.Fatalf("delivery %s attempt %d: %+v", d.ID, n+1, a)
			}
		}
	}
	return true
}

// TestFleetDeliveriesView: events posted to relays A and B show, through C and through A, as
// one list of the endpoint's deliveries, newest first, with their final statuses and attempts,
// within a couple of seconds; pages of any size walk the same list. PostgreSQL stopped while
// more events are delivered, then started again: once it is back, every final state is there.
func TestFleetDeliveriesView(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t) // its own cluster: this test stops it
	dsn := pg.CreateDB(t, "history")
	rc := relaytest.NewReceiver(t, failing)
	args := []string{"--store", dsn, "--retry-schedule", "20ms,20ms"} // 3 attempts
	a := relaytest.Start(t, relaytest.Options{Args: args})
	b := relaytest.Start(t, relaytest.Options{Args: args})
	c := relaytest.Start(t, relaytest.Options{Args: args})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL, Name: "view"})

	want := map[string]expected{}
	post := func(r *relaytest.Relay, name string, n int) {
		t.Helper()
		fail := n%3 == 0
		body := fmt.Sprintf(`{"type":"incident.opened","data":{"n":%d,"fail":%v}}`, n, fail)
		res := postFanned(t, r, body)
		want[res.ID] = expected{relay: name, fail: fail, attempts: map[bool]int{true: 3, false: 1}[fail]}
	}
	for n := range 12 {
		if n%2 == 0 {
			post(a, "A", n)
		} else {
			post(b, "B", n)
		}
	}
	start := time.Now()
	var view []api.Delivery
	relaytest.Eventually(t, waitLong, "C to show every delivery finished", func() bool {
		ds, err := fleetDeliveries(t, c, ep.ID, api.MaxPageLimit)
		view = ds
		return err == nil && checkView(t, ds, want)
	})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the view took %s to show the final states, want a couple of seconds", d)
	}
	for _, tc := range []struct {
		r    *relaytest.Relay
		name string
		n    int
	}{{c, "C", 5}, {c, "C", 1}, {a, "A", 3}, {b, "B", 7}} {
		ds, err := fleetDeliveries(t, tc.r, ep.ID, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(ds, view, func(x, y api.Delivery) bool { return x.ID == y.ID && x.Status == y.Status }) {
			t.Fatalf("through %s in pages of %d: %d deliveries, differ from the view through C", tc.name, tc.n, len(ds))
		}
	}

	// PostgreSQL down: A and B still accept and deliver; the view catches up once it is back.
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := c.Do("GET", "/api/webhooks/endpoints/"+ep.ID+"/deliveries", "", c.Token, nil); status != http.StatusServiceUnavailable {
		t.Errorf("deliveries through C with PostgreSQL down: %d, want 503", status)
	}
	before := rc.Count()
	for n := 12; n < 18; n++ {
		if n%2 == 0 {
			post(a, "A", n)
		} else {
			post(b, "B", n)
		}
	}
	waitCount(t, rc, before+2*3+4)     // 2 failing events of 3 attempts, 4 succeeding
	time.Sleep(300 * time.Millisecond) // the writers try, and fail
	pg.Restart(t)
	relaytest.Eventually(t, waitLong, "C to show the deliveries made while PostgreSQL was down", func() bool {
		ds, err := fleetDeliveries(t, c, ep.ID, 4)
		return err == nil && checkView(t, ds, want)
	})
}

// TestFleetDeliveriesViewRepublish: a relay killed while PostgreSQL was down loses the view's
// changes it held, not its deliveries: started again once PostgreSQL is back, it publishes
// every delivery it holds, and the view shows them.
func TestFleetDeliveriesViewRepublish(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	dsn := pg.CreateDB(t, "republish")
	rc := relaytest.NewReceiver(t, nil)
	args := []string{"--store", dsn}
	a := relaytest.Start(t, relaytest.Options{Args: args})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL, Name: "republish"})
	postFanned(t, a, `{"type":"incident.opened","data":{"n":1}}`)
	relaytest.Eventually(t, waitLong, "the first delivery in the view", func() bool {
		ds, err := fleetDeliveries(t, a, ep.ID, 10)
		return err == nil && len(ds) == 1 && ds[0].Status == api.StatusSucceeded
	})
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	second := ingest(t, a, api.TypeIncidentOpened, map[string]any{"n": 2})
	waitCount(t, rc, 2)
	a.Kill()
	pg.Restart(t)
	a.Restart()
	// Read PostgreSQL itself: the relay's own list merges the deliveries it holds.
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	relaytest.Eventually(t, waitLong, "the view to show the delivery made before the kill", func() bool {
		var status string
		var attempts int
		err := conn.QueryRow(testCtx(t), `SELECT status, jsonb_array_length(attempts) FROM blametrail_deliveries
			WHERE event_id = $1`, second.ID).Scan(&status, &attempts)
		return err == nil && status == api.StatusSucceeded && attempts == 1
	})
	if n := strings.Count(a.Logs(), `"msg":"fleet: deliveries published to the fleet's view"`); n != 2 {
		t.Errorf("published at %d starts, want both", n)
	}

	// A clean stop leaves a marker; the next start publishes nothing again, and takes it away.
	relayID, err := os.ReadFile(filepath.Join(a.DataDir, "relay-id"))
	if err != nil {
		t.Fatal(err)
	}
	a.Stop()
	if _, err := os.Stat(filepath.Join(a.DataDir, "view-published")); err != nil {
		t.Fatalf("no marker after a clean stop: %v", err)
	}
	a.Restart()
	relaytest.Eventually(t, waitLong, "the start to find the view complete", func() bool {
		return strings.Contains(a.Logs(), "deliveries view already complete")
	})
	if n := strings.Count(a.Logs(), `"msg":"fleet: deliveries published to the fleet's view"`); n != 2 {
		t.Errorf("published at %d starts, want 2: not after the clean stop", n)
	}
	if _, err := os.Stat(filepath.Join(a.DataDir, "view-published")); !os.IsNotExist(err) {
		t.Errorf("the marker outlived the start: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(a.DataDir, "relay-id")); string(again) != string(relayID) {
		t.Errorf("relay id changed across restarts: %q, then %q", relayID, again)
	}
}

// TestFleetDeliveriesViewRetention: the view keeps, per endpoint, the --history-limit newest
// finished deliveries of the whole fleet, and every pending one.
func TestFleetDeliveriesViewRetention(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "retention")
	rc := relaytest.NewReceiver(t, nil)
	args := []string{"--store", dsn, "--history-limit", "3"}
	a := relaytest.Start(t, relaytest.Options{Args: args})
	c := relaytest.Start(t, relaytest.Options{Args: args})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL, Name: "retention"})
	var newest []string
	for n := range 8 {
		res := postFanned(t, a, fmt.Sprintf(`{"type":"incident.opened","data":{"n":%d}}`, n))
		newest = append([]string{res.ID}, newest...)
	}
	relaytest.Eventually(t, waitLong, "the view to keep the 3 newest", func() bool {
		ds, err := fleetDeliveries(t, c, ep.ID, 10)
		if err != nil || len(ds) != 3 {
			return false
		}
		for i, d := range ds {
			if d.EventID != newest[i] || d.Status != api.StatusSucceeded {
				return false
			}
		}
		return true
	})
}
