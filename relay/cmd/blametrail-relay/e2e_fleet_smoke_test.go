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
	n := strings.Count(a.Logs(), `"msg":"endpoint disabled"`) + strings.Count(b.Logs(), `"msg":"endpoint disabled"`)
	if n != 1 {
		t.Errorf("%d relays logged the disable, want exactly one", n)
	}
	relaytest.Eventually(t, 5*time.Second, "both relays to stop fanning out", func() bool {
		return ingest(t, a, api.TypeIncidentOpened, map[string]any{}).Deliveries == 0 &&
			ingest(t, b, api.TypeIncidentOpened, map[string]any{}).Deliveries == 0
	})
}
