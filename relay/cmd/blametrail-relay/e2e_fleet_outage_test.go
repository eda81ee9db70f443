package main_test

// Fleet mode when PostgreSQL is not there: down for a while, never reached yet, or migrated by
// a newer relay. The first two stop their own cluster (pgtest.Start), never the shared one.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/blametrail/terraform-provider-blametrail/internal/relayproc"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// fleetReconnect bounds how long a relay takes to reconnect to a PostgreSQL that is back and
// resync: "a few seconds" (fleet.Watch backs off up to 5 s between attempts while it is down).
const fleetReconnect = 15 * time.Second

// checkStoreDown asserts how an admin write is refused while PostgreSQL cannot be reached: 503
// store_unavailable with a Retry-After, or 504 when the relay cannot tell whether the write
// happened.
func checkStoreDown(t *testing.T, what string, status int, body []byte, h http.Header) {
	t.Helper()
	switch status {
	case http.StatusServiceUnavailable:
		checkErrorBody(t, status, body, status, codeStoreUnavailable)
		checkRetryAfter(t, what, h)
	case http.StatusGatewayTimeout:
		checkErrorBody(t, status, body, status, "")
	default:
		t.Errorf("%s while PostgreSQL is down = %d %s, want 503 %s or 504", what, status, body, codeStoreUnavailable)
	}
}

// adminWritesRefused tries every admin write on endpoint id through r while PostgreSQL is down
// and asserts each is refused as checkStoreDown says.
func adminWritesRefused(t *testing.T, r *relaytest.Relay, name, id string) {
	t.Helper()
	ep := "/api/webhooks/endpoints/" + id
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/webhooks/endpoints", `{"url":"http://127.0.0.1:1/new","name":"made while down","event_types":["incident.opened"]}`},
		{"PATCH", ep, `{"name":"renamed while down"}`},
		{"PATCH", ep, `{"active":false}`},
		{"POST", ep + "/secret/rotate", `{}`},
		{"DELETE", ep, ""},
	} {
		var body []byte
		if w.body != "" {
			body = []byte(w.body)
		}
		status, got, h := doAt(t, r.AdminURL, w.method, w.path, r.Token, body)
		checkStoreDown(t, fmt.Sprintf("%s %s through %s", w.method, w.path, name), status, got, h)
	}
}

// checkReady asserts /readyz answers 200 on both of r's listeners.
func checkReady(t *testing.T, r *relaytest.Relay, what string) {
	t.Helper()
	for _, base := range []string{r.URL, r.AdminURL} {
		if status, body, _ := doAt(t, base, "GET", "/readyz", "", nil); status != http.StatusOK {
			t.Errorf("%s: GET %s/readyz = %d %s, want 200 (readiness does not depend on PostgreSQL)", what, base, status, body)
		}
	}
}

// TestFleetPostgresRestart: PostgreSQL stopped under a synced fleet, then started again.
//
// While it is down every relay stays ready, answers ingest 202 and fans out from its copy of
// the endpoints, and goes on delivering with the copied URL and secret; every admin write is
// refused (503 store_unavailable with Retry-After, or 504) and none of them happens.
//
// Once it is back: a change made by manual SQL at once, before the relays' listeners are back
// (so no notification reaches them), reaches every relay by the resync of its reconnection; a
// change through A then reaches B and C; and every event any relay acknowledged, before,
// during or after the outage, is delivered.
func TestFleetPostgresRestart(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t) // its own cluster: this test stops it
	dsn := pg.CreateDB(t, "fleet_restart")
	rs := startFleet(t, dsn)
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, rs[0], fleetEndpoint(rc.URL))
	time.Sleep(fleetPropagation)
	var acked []string
	for i, r := range rs {
		acked = append(acked, ingestExpect(t, r, 1, fleetNames[i]+", before the outage"))
	}
	waitReceived(t, rc, acked...)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	var down []string
	slowest := time.Duration(0)
	for round := range 5 {
		for i, r := range rs {
			start := time.Now()
			down = append(down, ingestExpect(t, r, 1, fmt.Sprintf("%s, PostgreSQL down, #%d", fleetNames[i], round)))
			slowest = max(slowest, time.Since(start))
		}
	}
	t.Logf("slowest ingest while PostgreSQL was down: %s", slowest)
	for i, r := range rs {
		checkReady(t, r, fleetNames[i]+", PostgreSQL down")
		adminWritesRefused(t, r, fleetNames[i], ep.ID)
	}
	for _, req := range waitReceived(t, rc, down...) {
		if err := signature.VerifyHeaders(ep.Secret, req.Header, req.Body); err != nil {
			t.Errorf("a delivery made while PostgreSQL was down: %v", err)
		}
	}
	acked = append(acked, down...)

	pg.Restart(t)
	// At once, before the relays' watchers reconnect: only a resync can bring this change.
	if _, err := pgConn(t, dsn).Exec(testCtx(t), "UPDATE blametrail_endpoints SET active = false WHERE id = $1", ep.ID); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		relaytest.Eventually(t, fleetReconnect, fleetNames[i]+" to resync the manual disable made as PostgreSQL came back", func() bool {
			res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"what": "waiting for the resync"})
			if res.Deliveries > 0 {
				acked = append(acked, res.ID)
			}
			return res.Deliveries == 0
		})
	}

	// A change through A once it is back: its first writes may still be refused while its pool
	// reconnects, never wrongly.
	relaytest.Eventually(t, fleetReconnect, "a PATCH through A to succeed after the restart", func() bool {
		status, body, h := doAt(t, rs[0].AdminURL, "PATCH", "/api/webhooks/endpoints/"+ep.ID, rs[0].Token, []byte(`{"active":true}`))
		if status == http.StatusOK {
			return true
		}
		checkStoreDown(t, "PATCH through A as PostgreSQL comes back", status, body, h)
		return false
	})
	acked = append(acked, ingestExpect(t, rs[0], 1, "A, at once after its re-enable"))
	for i, r := range rs[1:] {
		relaytest.Eventually(t, fleetPropagation+time.Second, fleetNames[i+1]+" to learn of A's re-enable", func() bool {
			res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"what": "after A's re-enable"})
			if res.Deliveries > 0 {
				acked = append(acked, res.ID)
			}
			return res.Deliveries == 1
		})
	}

	waitReceived(t, rc, acked...)
	// None of the writes refused while PostgreSQL was down happened.
	list, err := rs[1].Client.AllEndpoints(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != ep.ID || list[0].Name != ep.Name {
		t.Errorf("endpoints after the outage: %+v, want only %s, named %q", list, ep.ID, ep.Name)
	}
	if got := secretInfo(t, rs[2], ep.ID); got.Secret != ep.Secret {
		t.Errorf("the secret changed: a rotation refused while PostgreSQL was down happened")
	}
	for _, r := range rs {
		checkAlive(t, r)
	}
}

// TestFleetNotSyncedRefusesIngest: a relay that has never synced with PostgreSQL (unreachable
// since before its first start) is ready (/readyz does not depend on PostgreSQL) but answers
// ingest 503 not_synced with Retry-After rather than accept events it would fan out to
// nothing, and refuses admin writes. Once PostgreSQL is up it syncs by itself and accepts
// ingest. Synced once, it keeps its copy of the endpoints in its WAL: killed, and started
// again while PostgreSQL is down, it accepts ingest and delivers with the copied URL and
// secret.
func TestFleetNotSyncedRefusesIngest(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t) // its own cluster: this test stops it
	dsn := pg.CreateDB(t, "fleet_not_synced")
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, fleetOpts(dsn, fleetToken()))
	status, body, h := waitPastStarting(t, r)
	checkErrorBody(t, status, body, http.StatusServiceUnavailable, codeNotSynced)
	checkRetryAfter(t, "ingest before the first sync", h)
	checkReady(t, r, "never synced")
	status, body, h = doAt(t, r.AdminURL, "POST", "/api/webhooks/endpoints", r.Token,
		[]byte(`{"url":"http://127.0.0.1:1/x","name":"x","event_types":["incident.opened"]}`))
	checkStoreDown(t, "create before the first sync", status, body, h)

	pg.Restart(t)
	waitSynced(t, r, "A")
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, r, fleetEndpoint(rc.URL))
	waitReceived(t, rc, ingestExpect(t, r, 1, "synced, PostgreSQL up"))

	r.Kill()
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	status, body, _ = waitPastStarting(t, r)
	if status != http.StatusAccepted {
		t.Fatalf("ingest on the relay restarted while PostgreSQL is down = %d %s, want 202 (it synced before)", status, body)
	}
	checkReady(t, r, "restarted while PostgreSQL is down")
	req := waitReceived(t, rc, ingestExpect(t, r, 1, "restarted while PostgreSQL is down"))[0]
	if err := signature.VerifyHeaders(ep.Secret, req.Header, req.Body); err != nil {
		t.Errorf("delivery by the relay restarted while PostgreSQL is down: %v", err)
	}
	adminWritesRefused(t, r, "A", ep.ID)
	checkAlive(t, r)
}

// TestFleetSchemaNewerThanRelay: on a database whose schema a newer relay migrated, the relay
// refuses to start: it exits non-zero with a message about the schema, and writes nothing.
func TestFleetSchemaNewerThanRelay(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "fleet_schema")
	db, err := fleet.Open(testCtx(t), dsn, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	conn := pgConn(t, dsn)
	newer := fleet.SchemaVersion + 1
	var before int
	if err := conn.QueryRow(testCtx(t), "SELECT count(*) FROM blametrail_schema").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(testCtx(t), "INSERT INTO blametrail_schema (version) VALUES ($1)", newer); err != nil {
		t.Fatal(err)
	}

	log := relayproc.NewLog(0)
	p, err := relayproc.Launch(relayproc.Options{Bin: relaytest.Binary(t), Log: log, Args: []string{
		"--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir", t.TempDir(),
		"--api-token", fleetToken(), "--store", dsn}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	select {
	case <-p.Done():
	case <-time.After(waitLong):
		t.Fatalf("the relay still runs %s after its start on a schema newer than it knows:\n%s", waitLong, log)
	}
	if code := p.ExitCode(); code == 0 {
		t.Errorf("exit code 0 on a newer schema, want non-zero\n%s", log)
	}
	if !strings.Contains(strings.ToLower(log.String()), "schema") {
		t.Errorf("the relay's output does not mention the schema:\n%s", log)
	}
	if strings.Contains(log.String(), "WARNING: DATA RACE") {
		t.Errorf("the relay reported a data race:\n%s", log)
	}
	var rows, top int
	if err := conn.QueryRow(testCtx(t), "SELECT count(*), max(version) FROM blametrail_schema").Scan(&rows, &top); err != nil {
		t.Fatal(err)
	}
	if rows != before+1 || top != newer {
		t.Errorf("blametrail_schema after the refused start: %d rows, version %d; want %d rows, %d", rows, top, before+1, newer)
	}
}
