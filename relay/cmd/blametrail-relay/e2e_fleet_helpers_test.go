package main_test

// Fleet mode (--store with a PostgreSQL DSN): three relay processes on one database, each with
// its own data directory, as the sidecars of three pods of one Deployment. The contract they
// are held to (issue 13, slice 1; docs/guides/fleet.md):
//
//   - the admin routes for endpoints and secrets read and write PostgreSQL, so a write through
//     one relay is read through any other at once, never a 404;
//   - a relay applies its own writes to its local copy of the endpoints at once, and learns of
//     every other change (through another relay, or manual SQL) by LISTEN/NOTIFY within
//     fleetPropagation; ingest fans out from that copy;
//   - the consecutive-failure counter is shared and exact: one count per failed delivery,
//     exactly one relay disables the endpoint at --disable-after, a success resets it;
//   - deliveries lists stay per relay in slice 1 (each relay shows the deliveries of the events
//     it accepted), so no test here reads another relay's deliveries.
//
// The PostgreSQL failure modes (down, restarted, never reached, newer schema) are in
// e2e_fleet_outage_test.go. Tests that stop their cluster start their own (pgtest.Start); the
// others take a fresh database on the package's shared cluster.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

const (
	// fleetPropagation is the contract's bound on how long a change takes to reach every
	// relay's copy. Tests wait exactly this long after a write was acknowledged, then expect
	// the change in effect: it is the promise under test, not a failure deadline.
	fleetPropagation = time.Second
	// fleetSchedule is the fleet relays' retry schedule unless a test sets its own.
	fleetSchedule = "50ms,50ms"
	// Error codes of fleet mode.
	codeNotSynced        = "not_synced"        // ingest on a relay that never synced: 503
	codeStoreUnavailable = "store_unavailable" // an admin write while PostgreSQL is down: 503
)

// fleetNames name the relays of a fleet in messages, in the order startFleet returns them.
var fleetNames = []string{"A", "B", "C"}

// fleetOpts is a fleet member on dsn: --store, the fleet's shared API token (one Service in
// front of the relays means one token for all), the fleet schedule, then args.
func fleetOpts(dsn, token string, args ...string) relaytest.Options {
	return relaytest.Options{Token: token,
		Args: append([]string{"--store", dsn, "--retry-schedule", fleetSchedule}, args...)}
}

func fleetToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "fleet_" + hex.EncodeToString(b[:])
}

// startFleet starts three relays on dsn (each with args and its own data directory) and waits
// until each has synced with PostgreSQL.
func startFleet(t *testing.T, dsn string, args ...string) []*relaytest.Relay {
	t.Helper()
	tok := fleetToken()
	return startMembers(t, fleetOpts(dsn, tok, args...), fleetOpts(dsn, tok, args...), fleetOpts(dsn, tok, args...))
}

// startMembers starts one relay per opts and waits until each has synced.
func startMembers(t *testing.T, opts ...relaytest.Options) []*relaytest.Relay {
	t.Helper()
	var rs []*relaytest.Relay
	for _, o := range opts {
		rs = append(rs, relaytest.Start(t, o))
	}
	for i, r := range rs {
		waitSynced(t, r, fleetNames[i])
	}
	return rs
}

// postProbe posts a deploy.ingested event to r's ingest listener. Fleet tests subscribe their
// endpoints to incident.opened only, so a probe is never delivered anywhere.
func postProbe(t *testing.T, r *relaytest.Relay) (int, []byte, http.Header) {
	t.Helper()
	tok := r.IngestToken
	if tok == "" {
		tok = r.Token
	}
	return doAt(t, r.URL, "POST", "/api/events", tok, []byte(`{"type":"deploy.ingested","data":{"probe":true}}`))
}

// errorCode is the code of a relay error body, "" when body is not one.
func errorCode(body []byte) string {
	var eb api.ErrorBody
	_ = json.Unmarshal(body, &eb)
	return eb.Error.Code
}

// waitSynced waits until r accepts ingest: its WAL is replayed and it has synced with
// PostgreSQL at least once. Any answer but 202 and 503 fails the test.
func waitSynced(t *testing.T, r *relaytest.Relay, name string) {
	t.Helper()
	relaytest.Eventually(t, waitLong, "relay "+name+" to sync with PostgreSQL (ingest 202)", func() bool {
		status, body, _ := postProbe(t, r)
		switch status {
		case http.StatusAccepted:
			return true
		case http.StatusServiceUnavailable:
			return false
		}
		t.Fatalf("relay %s: ingest = %d %s while waiting for it to sync", name, status, body)
		return false
	})
}

// waitPastStarting waits until r has replayed its WAL (ingest no longer answers 503 starting)
// and returns its ingest answer then.
func waitPastStarting(t *testing.T, r *relaytest.Relay) (int, []byte, http.Header) {
	t.Helper()
	var status int
	var body []byte
	var h http.Header
	relaytest.Eventually(t, waitLong, "ingest to answer anything but 503 starting (the relay to replay its WAL)", func() bool {
		status, body, h = postProbe(t, r)
		return status != http.StatusServiceUnavailable || errorCode(body) != "starting"
	})
	return status, body, h
}

// fleetEndpoint is an endpoint for url that only incident.opened reaches (see postProbe).
func fleetEndpoint(url string) apiclient.EndpointCreate {
	return apiclient.EndpointCreate{URL: url, EventTypes: []string{api.TypeIncidentOpened}}
}

// ingestExpect ingests an incident.opened on r, asserts it fanned out to want deliveries, and
// returns the event id.
func ingestExpect(t *testing.T, r *relaytest.Relay, want int, what string) string {
	t.Helper()
	res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"what": what})
	if res.Deliveries != want {
		t.Errorf("%s: event %s fanned out to %d deliveries, want %d", what, res.ID, res.Deliveries, want)
	}
	return res.ID
}

// ingestNotDelivered ingests an incident.opened on r and asserts that it makes no delivery to
// the endpoint id that will be attempted: none at all, or one held (the endpoint is inactive
// in r's copy). It returns the event id, for checkNotReceived.
func ingestNotDelivered(t *testing.T, r *relaytest.Relay, id, what string) string {
	t.Helper()
	res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"what": what})
	if res.Deliveries == 0 {
		return res.ID
	}
	for _, d := range allDeliveries(t, r, id) {
		if d.EventID == res.ID && d.Status != api.StatusHeld {
			t.Errorf("%s: event %s has delivery %s to %s with status %s, want none or held", what, res.ID, d.ID, id, d.Status)
		}
	}
	return res.ID
}

// checkNotReceived gives the relays time to deliver (a delivery to a receiver on 127.0.0.1
// takes milliseconds), then asserts rc got none of the events ids.
func checkNotReceived(t *testing.T, rc *relaytest.Receiver, ids ...string) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	got := receivedIDs(rc)
	for _, id := range ids {
		if got[id] > 0 {
			t.Errorf("event %s was delivered to %s, want not", id, rc.URL)
		}
	}
}

// waitReceived waits until rc has received every event of ids and returns one request for
// each, in the order of ids.
func waitReceived(t *testing.T, rc *relaytest.Receiver, ids ...string) []relaytest.Request {
	t.Helper()
	var missing []string
	deadline := time.Now().Add(waitLong)
	for {
		byID := map[string]relaytest.Request{}
		for _, req := range rc.Requests() {
			var env struct{ ID string }
			if json.Unmarshal(req.Body, &env) == nil {
				byID[env.ID] = req
			}
		}
		missing = missing[:0]
		var out []relaytest.Request
		for _, id := range ids {
			req, ok := byID[id]
			if !ok {
				missing = append(missing, id)
			}
			out = append(out, req)
		}
		if len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d acknowledged events never reached %s: %v", waitLong, len(missing), len(ids), rc.URL, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pgConn is a plain connection to dsn, for what an operator's manual SQL would do.
func pgConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(relaytest.Context(t, 30*time.Second), dsn)
	if err != nil {
		t.Fatalf("connect to the fleet's database: %v", err)
	}
	t.Cleanup(func() { conn.Close(relaytest.Context(t, 5*time.Second)) })
	return conn
}

// storeSecretKey is a value for --store-secret-key: 32 random bytes in standard base64.
func storeSecretKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// checkRetryAfter asserts a Retry-After header a client can use: delta-seconds above 0, or an
// HTTP date.
func checkRetryAfter(t *testing.T, what string, h http.Header) {
	t.Helper()
	v := h.Get("Retry-After")
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return
	}
	if _, err := http.ParseTime(v); err == nil {
		return
	}
	t.Errorf("%s: Retry-After %q, want seconds or an HTTP date", what, v)
}
