package main_test

import (
	"strings"
	"syscall"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// TestSnapshotOnSIGUSR1: SIGUSR1 makes the relay write a snapshot now (for a backup, or to
// measure one) and it keeps serving; what the snapshot holds comes back after a SIGKILL.
func TestSnapshotOnSIGUSR1(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, nil)
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, Name: "signal"})
	ingest(t, r, api.TypeIncidentOpened, map[string]any{"n": 1})
	written := func() int { return strings.Count(r.Logs(), `"msg":"snapshot written"`) }
	before := written()
	if err := syscall.Kill(r.PID(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, waitLong, "a snapshot after SIGUSR1", func() bool { return written() > before })
	if !strings.Contains(r.Logs(), "snapshot requested (SIGUSR1)") {
		t.Errorf("the requested snapshot was not logged as such:\n%s", r.Logs())
	}
	checkAlive(t, r)
	r.Kill()
	r.Restart()
	if got := getEndpoint(t, r, ep.ID); got.Name != "signal" {
		t.Errorf("after SIGKILL the endpoint is %+v", got)
	}
}
