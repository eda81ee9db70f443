package main_test

// End to end on the real binary: resending a finished delivery, recovering an endpoint's failed
// deliveries, their refusals, a resend that survives SIGKILL, and a payload past the window.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

func resendPath(ep, dlv string) string {
	return "/api/webhooks/endpoints/" + ep + "/deliveries/" + dlv + "/resend"
}

func recoverPath(ep string) string { return "/api/webhooks/endpoints/" + ep + "/recover" }

// resend POSTs a resend and returns the delivery it answers (202 expected).
func resend(t *testing.T, r *relaytest.Relay, ep, dlv string) api.Delivery {
	t.Helper()
	status, body, _ := r.Do("POST", resendPath(ep, dlv), "", r.Token, nil)
	if status != http.StatusAccepted {
		t.Fatalf("resend %s: %d %s", dlv, status, body)
	}
	var d api.Delivery
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func recoverSince(t *testing.T, r *relaytest.Relay, ep string, since time.Time) api.RecoverResult {
	t.Helper()
	status, body, _ := r.Do("POST", recoverPath(ep), "application/json", r.Token,
		[]byte(`{"since":"`+since.UTC().Format(time.RFC3339Nano)+`"}`))
	if status != http.StatusAccepted {
		t.Fatalf("recover: %d %s", status, body)
	}
	var res api.RecoverResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// requestsFor returns what the receiver got for one delivery id.
func requestsFor(rc *relaytest.Receiver, dlv string) []relaytest.Request {
	var out []relaytest.Request
	for _, q := range rc.Requests() {
		if q.Header.Get(signature.HeaderBlameTrailDelivery) == dlv {
			out = append(out, q)
		}
	}
	return out
}

// TestE2EResendAndRecover: a failed delivery resent after the receiver recovered arrives again
// with the same delivery id, the same body and a valid signature, and its attempts go on from
// where they were; recover resends the other failed ones and, called again, nothing.
func TestE2EResendAndRecover(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, relaytest.Status(500))
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "50ms,50ms"}})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, Name: "resend"})
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		ingest(t, r, api.TypeIncidentOpened, map[string]any{"n": i})
	}
	ds := waitFinished(t, r, ep.ID, 3)
	for _, d := range ds {
		if d.Status != api.StatusFailed || len(d.Attempts) != 3 {
			t.Fatalf("before resend: %s with %d attempts, want failed after 3", d.Status, len(d.Attempts))
		}
	}
	first := ds[2] // oldest
	orig := requestsFor(rc, first.ID)[0].Body

	// Resent while the receiver still fails: a whole new retry series (3 attempts) follows.
	got := resend(t, r, ep.ID, first.ID)
	if got.ID != first.ID || got.Status != api.StatusPending || len(got.Attempts) != 3 || got.NextAttemptAt == nil {
		t.Fatalf("resend answered %+v, want the same delivery, pending, 3 attempts kept", got)
	}
	waitDeliveries(t, r, ep.ID, "the resent delivery to fail again", func(ds []api.Delivery) bool {
		return ds[2].Status == api.StatusFailed && len(ds[2].Attempts) > 3
	})
	if n := len(allDeliveries(t, r, ep.ID)[2].Attempts); n != 6 {
		t.Fatalf("the resend failed after %d attempts in all, want 3 + a fresh series of 3", n)
	}

	rc.SetHandler(nil) // the receiver is fixed: 200
	resend(t, r, ep.ID, first.ID)
	waitDeliveries(t, r, ep.ID, "the resent delivery to succeed", func(ds []api.Delivery) bool {
		return ds[2].Status == api.StatusSucceeded
	})
	reqs := requestsFor(rc, first.ID)
	if len(reqs) != 7 {
		t.Fatalf("the receiver got delivery %s %d times, want 3 failures, 3 failed resends and 1 success", first.ID, len(reqs))
	}
	last := reqs[6]
	if !bytes.Equal(last.Body, orig) {
		t.Errorf("the resend sent another body:\n%s\nwant\n%s", last.Body, orig)
	}
	secret, err := r.Client.Secret(testCtx(t), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.VerifyHeaders(secret, last.Header, last.Body); err != nil {
		t.Errorf("the resent delivery does not verify: %v", err)
	}
	if d := allDeliveries(t, r, ep.ID)[2]; len(d.Attempts) != 7 || d.Attempts[6].N != 7 {
		t.Errorf("after the resends: %+v, want a 7th attempt numbered 7", d.Attempts)
	}

	res := recoverSince(t, r, ep.ID, before)
	if res.Resent != 2 || res.Expired != 0 || res.More {
		t.Fatalf("recover = %+v, want the 2 still failed", res)
	}
	waitFinished(t, r, ep.ID, 3)
	for _, d := range allDeliveries(t, r, ep.ID) {
		if d.Status != api.StatusSucceeded {
			t.Errorf("after recover %s is %s", d.ID, d.Status)
		}
	}
	if res := recoverSince(t, r, ep.ID, before); res.Resent != 0 {
		t.Errorf("a second recover resent %d, want 0 (nothing failed since)", res.Resent)
	}
	checkAlive(t, r)
}

// TestE2EResendRefusals: each refusal has its status and code, and changes nothing.
func TestE2EResendRefusals(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := relaytest.NewReceiver(t, nil)
	slow := relaytest.NewReceiver(t, blockUntil(release, waitLong, 200))
	t.Cleanup(func() { close(release) })
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, Name: "done", EventTypes: []string{api.TypeIncidentOpened}})
	busy := createEndpoint(t, r, apiclient.EndpointCreate{URL: slow.URL, Name: "busy", EventTypes: []string{api.TypeDeployIngested}})
	ingest(t, r, api.TypeIncidentOpened, map[string]any{})
	ingest(t, r, api.TypeDeployIngested, map[string]any{})
	done := waitFinished(t, r, ep.ID, 1)[0]
	waitCount(t, slow, 1)
	pending := allDeliveries(t, r, busy.ID)[0]
	unknownEP := "ep_00000000000000000000000000"

	for _, tt := range []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"pending delivery", "POST", resendPath(busy.ID, pending.ID), "", "", 409, api.CodeDeliveryNotFinished},
		{"unknown delivery", "POST", resendPath(ep.ID, "dlv_00000000000000000000000000"), "", "", 404, api.CodeDeliveryNotFound},
		{"malformed delivery id", "POST", resendPath(ep.ID, "nope"), "", "", 404, api.CodeDeliveryNotFound},
		{"another endpoint's delivery", "POST", resendPath(busy.ID, done.ID), "", "", 404, api.CodeDeliveryNotFound},
		{"unknown endpoint", "POST", resendPath(unknownEP, done.ID), "", "", 404, api.CodeEndpointNotFound},
		{"GET resend", "GET", resendPath(ep.ID, done.ID), "", "", 405, "method_not_allowed"},
		{"resend without an id", "POST", "/api/webhooks/endpoints/" + ep.ID + "/deliveries//resend", "", "", 404, api.CodeRouteNotFound},
		{"resend, extra segment", "POST", resendPath(ep.ID, done.ID) + "/x", "", "", 404, api.CodeRouteNotFound},
		{"recover without since", "POST", recoverPath(ep.ID), "application/json", `{}`, 422, api.CodeInvalidSince},
		{"recover without a body", "POST", recoverPath(ep.ID), "", "", 422, api.CodeInvalidSince},
		{"recover, bad since", "POST", recoverPath(ep.ID), "application/json", `{"since":"yesterday"}`, 422, api.CodeInvalidSince},
		{"recover, since a number", "POST", recoverPath(ep.ID), "application/json", `{"since":1}`, 422, api.CodeInvalidSince},
		{"recover, unknown field", "POST", recoverPath(ep.ID), "application/json", `{"since":"2026-01-01T00:00:00Z","x":1}`, 422, "unknown_field"},
		{"recover, malformed", "POST", recoverPath(ep.ID), "application/json", `{"since":`, 400, "malformed_json"},
		{"recover, not JSON", "POST", recoverPath(ep.ID), "text/plain", `since=now`, 415, "unsupported_media_type"},
		{"recover, unknown endpoint", "POST", recoverPath(unknownEP), "application/json", `{"since":"2026-01-01T00:00:00Z"}`, 404, api.CodeEndpointNotFound},
		{"GET recover", "GET", recoverPath(ep.ID), "", "", 405, "method_not_allowed"},
	} {
		status, body, _ := rawDo(t, r, tt.method, tt.path, tt.ctype, r.Token, []byte(tt.body))
		t.Run(tt.name, func(t *testing.T) { checkErrorBody(t, status, body, tt.status, tt.code) })
	}
	if status, _, _ := rawDo(t, r, "POST", resendPath(ep.ID, done.ID), "", "", nil); status != http.StatusUnauthorized {
		t.Errorf("resend without the token: %d, want 401", status)
	}

	patchEndpoint(t, r, ep.ID, apiclient.EndpointPatch{Active: new(false)})
	status, body, _ := rawDo(t, r, "POST", resendPath(ep.ID, done.ID), "", r.Token, nil)
	checkErrorBody(t, status, body, 409, api.CodeEndpointInactive)
	status, body, _ = rawDo(t, r, "POST", recoverPath(ep.ID), "application/json", r.Token, []byte(`{"since":"2026-01-01T00:00:00Z"}`))
	checkErrorBody(t, status, body, 409, api.CodeEndpointInactive)
	if d := allDeliveries(t, r, ep.ID)[0]; d.Status != api.StatusSucceeded || len(d.Attempts) != 1 || rc.Count() != 1 {
		t.Errorf("refused resends changed the delivery: %+v (receiver got %d)", d, rc.Count())
	}
	checkAlive(t, r)
}

// TestE2EResendSurvivesKill: a resend acknowledged with 202 is in the log: a relay killed right
// after it delivers the delivery when it comes back.
func TestE2EResendSurvivesKill(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, relaytest.Status(500))
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "50ms"}})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, Name: "kill"})
	ingest(t, r, api.TypeIncidentOpened, map[string]any{})
	d := waitFinished(t, r, ep.ID, 1)[0]
	// Hold every attempt until the relay is gone, so the resend is still pending at the kill.
	release := releaseAtCleanup(t)
	rc.SetHandler(blockUntil(release, waitLong, 500))
	resend(t, r, ep.ID, d.ID)
	relaytest.Eventually(t, waitLong, "the resend's attempt to start", func() bool { return len(requestsFor(rc, d.ID)) == 3 })
	r.Kill()
	rc.SetHandler(nil)
	r.Restart()
	waitDeliveries(t, r, ep.ID, "the resent delivery to succeed after the restart", func(ds []api.Delivery) bool {
		return ds[0].Status == api.StatusSucceeded
	})
	if n := len(requestsFor(rc, d.ID)); n != 4 {
		t.Errorf("receiver got the delivery %d times, want 2 failures, the interrupted resend, and its redelivery", n)
	}
}

// TestE2EResendPayloadExpired: with no resend window, once snapshots compacted the segment
// holding an event, its delivery answers 409 payload_expired and recover counts it as expired.
func TestE2EResendPayloadExpired(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, relaytest.Status(500))
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "50ms",
		"--history-payload-bytes", "0", "--wal-segment-size", "65536"}})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, Name: "expired"})
	pad := strings.Repeat("x", 20_000)
	for i := range 8 { // 160 KB of events: the first segments hold only them
		ingest(t, r, api.TypeIncidentOpened, map[string]any{"n": i, "pad": pad})
	}
	ds := waitFinished(t, r, ep.ID, 8)
	written := func() int { return strings.Count(r.Logs(), `"msg":"snapshot written"`) }
	for i := range 2 { // the second snapshot compacts what the first one covers
		n := written()
		if err := syscall.Kill(r.PID(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		relaytest.Eventually(t, waitLong, fmt.Sprintf("snapshot %d", i+1), func() bool { return written() > n })
	}
	oldest := ds[len(ds)-1]
	status, body, _ := r.Do("POST", resendPath(ep.ID, oldest.ID), "", r.Token, nil)
	checkErrorBody(t, status, body, 409, api.CodePayloadExpired)
	res := recoverSince(t, r, ep.ID, time.Time{})
	if res.Expired == 0 || res.Resent+res.Expired != 8 {
		t.Errorf("recover = %+v, want the compacted ones counted as expired", res)
	}
	checkAlive(t, r)
}
