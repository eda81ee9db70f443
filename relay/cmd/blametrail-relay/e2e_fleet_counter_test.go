package main_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// TestFleetSharedFailureCounter: with --disable-after 10 on every relay, 10 failed deliveries
// spread over the three relays (4 on A, 3 on B, 3 on C; each delivery two failed attempts, the
// schedule's one retry included) disable the endpoint for the whole fleet, exactly once:
//
//   - after 9 the endpoint is still active with consecutive_failures 9 (a delivery counts once,
//     not once per attempt, and every relay's count lands in the one shared counter);
//   - the 10th disables it: every relay reads active false, disabled_reason
//     consecutive_failures, consecutive_failures 10; the relays' logs together hold exactly one
//     "endpoint disabled" line, and their blametrail_endpoints_auto_disabled_total counters sum
//     to 1 (only the relay whose write disabled it says so);
//   - within fleetPropagation, an 11th event on any relay makes no delivery to it;
//   - re-enabled through C, the count starts afresh at 0, failures count again, and one success
//     (on another relay) resets it to 0.
func TestFleetSharedFailureCounter(t *testing.T) {
	t.Parallel()
	const threshold = 10
	rs := startFleet(t, pgtest.Shared(t).CreateDB(t, "fleet_counter"),
		"--disable-after", "10", "--retry-schedule", "10ms")
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, rs[0], fleetEndpoint(rc.URL))
	time.Sleep(fleetPropagation)

	// One success per relay: each knows the endpoint (and a success on a zero count is a no-op).
	perRelay := make([]int, len(rs))
	var ok []string
	for i, r := range rs {
		ok = append(ok, ingestExpect(t, r, 1, fleetNames[i]+", a delivery that succeeds"))
		perRelay[i]++
	}
	waitReceived(t, rc, ok...)
	for _, r := range rs {
		waitFinished(t, r, ep.ID, sum(perRelay))
	}

	rc.SetHandler(relaytest.Status(http.StatusInternalServerError))
	for n := range threshold - 1 {
		i := n % len(rs)
		ingestExpect(t, rs[i], 1, fleetNames[i]+", a delivery that fails")
		perRelay[i]++
	}
	for _, r := range rs {
		waitFinished(t, r, ep.ID, sum(perRelay))
	}
	got := waitEndpoint(t, rs[1], ep.ID, "the shared counter to reach 9", func(e api.Endpoint) bool {
		return e.ConsecutiveFailures >= threshold-1 || !e.Active
	})
	if !got.Active || got.ConsecutiveFailures != threshold-1 {
		t.Fatalf("after %d failed deliveries (%d attempts) over three relays: active %v, consecutive_failures %d; want active, %d",
			threshold-1, 2*(threshold-1), got.Active, got.ConsecutiveFailures, threshold-1)
	}

	last := (threshold - 1) % len(rs)
	ingestExpect(t, rs[last], 1, fleetNames[last]+", the 10th failed delivery")
	perRelay[last]++
	waitFinished(t, rs[last], ep.ID, sum(perRelay))
	waitEndpoint(t, rs[2], ep.ID, "the endpoint to be disabled", func(e api.Endpoint) bool { return !e.Active })
	for i, r := range rs {
		got := getEndpoint(t, r, ep.ID)
		if got.Active || got.DisabledReason == nil || *got.DisabledReason != api.DisabledConsecutiveFailures ||
			got.ConsecutiveFailures != threshold {
			t.Errorf("GET through %s after the 10th failure: active %v, reason %v, consecutive_failures %d; want inactive, %s, %d",
				fleetNames[i], got.Active, reasonOf(got), got.ConsecutiveFailures, api.DisabledConsecutiveFailures, threshold)
		}
	}

	time.Sleep(fleetPropagation)
	var none []string
	for i, r := range rs {
		none = append(none, ingestExpect(t, r, 0, fleetNames[i]+", an 11th event, 1 s after the disable"))
	}
	checkNotReceived(t, rc, none...)
	disables, counted := 0, 0.0
	for i, r := range rs {
		for _, l := range jsonLogs(r.Logs()) {
			if l.Msg == "endpoint disabled" {
				disables++
				t.Logf("relay %s: %s", fleetNames[i], l.Raw)
			}
		}
		counted += max(0, scrapeMetrics(t, r.AdminURL+"/metrics", r.Token).get(
			"blametrail_endpoints_auto_disabled_total", "reason", api.DisabledConsecutiveFailures))
	}
	if disables != 1 {
		t.Errorf("the three relays logged %d \"endpoint disabled\" lines, want exactly 1", disables)
	}
	if counted != 1 {
		t.Errorf("blametrail_endpoints_auto_disabled_total{reason=consecutive_failures} sums to %v over the fleet, want 1", counted)
	}

	// Re-enabled, the count starts afresh; failures count again; a success resets it.
	on := true
	if got := patchEndpoint(t, rs[2], ep.ID, apiclient.EndpointPatch{Active: &on}); !got.Active || got.ConsecutiveFailures != 0 {
		t.Errorf("re-enabled through C: active %v, consecutive_failures %d; want active, 0", got.Active, got.ConsecutiveFailures)
	}
	time.Sleep(fleetPropagation)
	for _, i := range []int{0, 2} {
		ingestExpect(t, rs[i], 1, fleetNames[i]+", a failure after the re-enable")
		perRelay[i]++
		waitFinished(t, rs[i], ep.ID, sum(perRelay))
	}
	if got := waitEndpoint(t, rs[0], ep.ID, "two failures counted after the re-enable", func(e api.Endpoint) bool {
		return e.ConsecutiveFailures >= 2
	}); got.ConsecutiveFailures != 2 || !got.Active {
		t.Errorf("after two failed deliveries (on A and C) since the re-enable: active %v, consecutive_failures %d; want active, 2",
			got.Active, got.ConsecutiveFailures)
	}
	rc.SetHandler(nil)
	waitReceived(t, rc, ingestExpect(t, rs[1], 1, "B, a success"))
	got = waitEndpoint(t, rs[2], ep.ID, "B's success to reset the shared counter", func(e api.Endpoint) bool {
		return e.ConsecutiveFailures == 0
	})
	if !got.Active {
		t.Errorf("after the success: %+v, want active", got)
	}
	for _, r := range rs {
		checkAlive(t, r)
	}
}

func reasonOf(e api.Endpoint) string {
	if e.DisabledReason == nil {
		return "<null>"
	}
	return *e.DisabledReason
}

// sum is the fleet's total of per-relay counts: the deliveries list through any relay shows
// every relay's deliveries.
func sum(ns []int) int {
	t := 0
	for _, n := range ns {
		t += n
	}
	return t
}
