package main_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// TestFleetSmoke: two relays on one database: an endpoint created through A is read through B
// at once, an event posted to B is delivered, and a disable through B stops A's deliveries.
func TestFleetSmoke(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "smoke")
	rc := relaytest.NewReceiver(t, nil)
	args := []string{"--store", dsn, "--retry-schedule", "50ms"}
	a := relaytest.Start(t, relaytest.Options{Args: args})
	b := relaytest.Start(t, relaytest.Options{Args: args})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL, Name: "fleet"})
	if got := getEndpoint(t, b, ep.ID); got.Name != "fleet" {
		t.Fatalf("read through B: %+v", got)
	}
	relaytest.Eventually(t, 10*time.Second, "B to accept ingest (synced)", func() bool {
		status, _, _ := b.Do("POST", "/api/events", "application/json", b.Token, []byte(`{"type":"incident.opened","data":{}}`))
		return status == 202
	})
	waitCount(t, rc, 1)
	patchEndpoint(t, b, ep.ID, apiclient.EndpointPatch{Active: new(false)})
	time.Sleep(time.Second)
	res := ingest(t, a, api.TypeIncidentOpened, map[string]any{})
	if res.Deliveries != 0 {
		t.Fatalf("A fanned out to an endpoint disabled through B a second ago: %+v", res)
	}
}

// TestFleetSharedCounter: failed deliveries on two relays add up in PostgreSQL; exactly one
// relay disables the endpoint, and both stop fanning out to it.
func TestFleetSharedCounter(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "counter")
	rc := relaytest.NewReceiver(t, relaytest.Status(500))
	args := []string{"--store", dsn, "--retry-schedule", "10ms", "--disable-after", "3"}
	a := relaytest.Start(t, relaytest.Options{Args: args})
	b := relaytest.Start(t, relaytest.Options{Args: args})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL, Name: "failing"})
	// B's first event that fans out (it knows the endpoint) is the first failure; A applied
	// its own create at once.
	relaytest.Eventually(t, 10*time.Second, "B to fan out to the endpoint", func() bool {
		status, body, _ := b.Do("POST", "/api/events", "application/json", b.Token, []byte(`{"type":"incident.opened","data":{"n":2}}`))
		var res api.IngestResult
		return status == 202 && json.Unmarshal(body, &res) == nil && res.Deliveries == 1
	})
	ingest(t, a, api.TypeIncidentOpened, map[string]any{"n": 1})
	ingest(t, a, api.TypeIncidentOpened, map[string]any{"n": 3})
	got := waitEndpoint(t, b, ep.ID, "the endpoint disabled", func(e api.Endpoint) bool { return !e.Active })
	if got.DisabledReason == nil || *got.DisabledReason != api.DisabledConsecutiveFailures || got.ConsecutiveFailures != 3 {
		t.Fatalf("endpoint = %+v", got)
	}
	// The relay that disabled it logs so once PostgreSQL's answer is back, a moment after the
	// disable is visible.
	logged := func() int {
		return strings.Count(a.Logs(), `"msg":"endpoint disabled"`) + strings.Count(b.Logs(), `"msg":"endpoint disabled"`)
	}
	relaytest.Eventually(t, 5*time.Second, "a relay to log the disable", func() bool { return logged() > 0 })
	time.Sleep(500 * time.Millisecond)
	if n := logged(); n != 1 {
		t.Errorf("%d relays logged the disable, want exactly one", n)
	}
	relaytest.Eventually(t, 5*time.Second, "both relays to stop fanning out", func() bool {
		return ingest(t, a, api.TypeIncidentOpened, map[string]any{}).Deliveries == 0 &&
			ingest(t, b, api.TypeIncidentOpened, map[string]any{}).Deliveries == 0
	})
}

// TestFleetHandoff: a relay stopped gracefully hands its pending deliveries to the fleet; another
// relay adopts and delivers them, with their delivery ids; the stopped relay, restarted, does not
// deliver them again.
func TestFleetHandoff(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "handoff")
	rc := relaytest.NewReceiver(t, relaytest.Status(500))
	args := []string{"--store", dsn, "--retry-schedule", "1h"}
	a := relaytest.Start(t, relaytest.Options{Args: args})
	b := relaytest.Start(t, relaytest.Options{Args: args})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL, Name: "handoff"})
	var ids []string
	for i := range 5 {
		ingest(t, a, api.TypeIncidentOpened, map[string]any{"n": i})
	}
	waitCount(t, rc, 5) // first attempts failed; the retries are an hour away
	for _, d := range allDeliveries(t, a, ep.ID) {
		ids = append(ids, d.ID)
	}
	rc.SetHandler(nil)
	a.Stop()
	if !strings.Contains(a.Logs(), `"handed_off":5`) {
		t.Fatalf("A did not hand off its 5 pending deliveries:\n%s", a.Logs())
	}
	relaytest.Eventually(t, 15*time.Second, "B to deliver what A handed off", func() bool { return rc.Count() >= 10 })
	got := map[string]int{}
	for _, r := range rc.Requests()[5:] {
		got[r.Header.Get("X-BlameTrail-Delivery")]++
	}
	// B logs the adoption once PostgreSQL committed it, which can be after the deliveries.
	relaytest.Eventually(t, 5*time.Second, "B to log the adoption", func() bool {
		return strings.Contains(b.Logs(), "adopted deliveries another relay handed off")
	})
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("delivery %s reached the receiver %d times after the handoff, want once", id, got[id])
		}
	}
	a.Restart()
	time.Sleep(2 * time.Second)
	if n := rc.Count(); n != 10 {
		t.Errorf("after A restarted the receiver got %d requests, want 10: A delivered what it handed off", n)
	}
}

// TestFleetResendRecoverThroughAnyRelay: a delivery that failed on relay A is resent through
// relay B; a recover through B resends the failed deliveries of both relays.
func TestFleetResendRecoverThroughAnyRelay(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "commands")
	rc := relaytest.NewReceiver(t, nil)
	args := []string{"--store", dsn, "--retry-schedule", "10ms"}
	a := relaytest.Start(t, relaytest.Options{Args: args})
	b := relaytest.Start(t, relaytest.Options{Args: args})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL, Name: "commands"})
	waitKnown(t, b, ep.ID)
	waitCount(t, rc, 1) // the ping succeeded: nothing for recover
	rc.SetHandler(relaytest.Status(500))
	before := time.Now().Add(-time.Second)
	evA := ingest(t, a, api.TypeIncidentOpened, map[string]any{"on": "a"})
	ingest(t, b, api.TypeIncidentOpened, map[string]any{"on": "b"})
	var onA api.Delivery
	for _, d := range waitFinished(t, a, ep.ID, 3) { // the fleet's: the ping, A's and B's
		if d.EventID == evA.ID {
			onA = d
		}
	}
	rc.SetHandler(nil)

	got := resend(t, b, ep.ID, onA.ID) // B does not hold it: A does
	if got.ID != onA.ID || got.Status != api.StatusPending {
		t.Fatalf("resend through B answered %+v", got)
	}
	relaytest.Eventually(t, 10*time.Second, "A to deliver the resend", func() bool { return len(requestsFor(rc, onA.ID)) == 3 })
	status, body, _ := b.Do("POST", resendPath(ep.ID, "dlv_00000000000000000000000000"), "", b.Token, nil)
	checkErrorBody(t, status, body, 404, api.CodeDeliveryNotFound)

	rc.SetHandler(relaytest.Status(500))
	evA2 := ingest(t, a, api.TypeIncidentOpened, map[string]any{"on": "a", "n": 2})
	relaytest.Eventually(t, 10*time.Second, "the second event on A to fail", func() bool {
		for _, d := range allDeliveries(t, a, ep.ID) {
			if d.EventID == evA2.ID {
				return d.Status == api.StatusFailed
			}
		}
		return false
	})
	rc.SetHandler(nil)
	res := recoverSince(t, b, ep.ID, before)
	if res.Resent != 2 || res.Relays != 2 {
		t.Fatalf("recover through B = %+v, want B's failed delivery and A's, from 2 relays", res)
	}
}

// waitKnown waits until relay r's own copy holds endpoint id: a test ping, which only the
// relay's copy decides, is accepted (the receiver gets it: tests answer it 2xx first).
func waitKnown(t *testing.T, r *relaytest.Relay, id string) {
	t.Helper()
	relaytest.Eventually(t, 10*time.Second, "the relay to know the endpoint", func() bool {
		status, _, _ := r.Do("POST", "/api/webhooks/endpoints/"+id+"/test", "", r.Token, nil)
		return status == 202
	})
}
