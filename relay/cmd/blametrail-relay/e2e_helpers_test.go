package main_test

// Helpers shared by the end-to-end tests. Every test here starts the real relay binary
// (internal/relaytest builds it once per test process, with -race when the tests have it, and
// internal/relayproc runs it) and talks to it only over 127.0.0.1, as users and receivers do.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relayproc"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// waitLong bounds every wait for something the relay does on its own. It is a failure
// deadline, never a latency expectation.
const waitLong = 30 * time.Second

// fastSchedule is five quick retries: a persistent failure is over in about 1.6 s.
const fastSchedule = "50ms,100ms,200ms,400ms,800ms"

func testCtx(t *testing.T) context.Context { return relaytest.Context(t, 2*time.Minute) }

func createEndpoint(t *testing.T, r *relaytest.Relay, in apiclient.EndpointCreate) api.Endpoint {
	t.Helper()
	if in.Name == "" {
		in.Name = t.Name()
	}
	ep, err := r.Client.CreateEndpoint(testCtx(t), in)
	if err != nil {
		t.Fatalf("create endpoint %+v: %v", in, err)
	}
	return ep
}

func getEndpoint(t *testing.T, r *relaytest.Relay, id string) api.Endpoint {
	t.Helper()
	ep, err := r.Client.Endpoint(testCtx(t), id)
	if err != nil {
		t.Fatalf("get endpoint %s: %v", id, err)
	}
	return ep
}

func patchEndpoint(t *testing.T, r *relaytest.Relay, id string, p apiclient.EndpointPatch) api.Endpoint {
	t.Helper()
	ep, err := r.Client.UpdateEndpoint(testCtx(t), id, p)
	if err != nil {
		t.Fatalf("patch endpoint %s: %v", id, err)
	}
	return ep
}

func ingest(t *testing.T, r *relaytest.Relay, typ string, data any) api.IngestResult {
	t.Helper()
	res, err := r.IngestClient.Ingest(testCtx(t), apiclient.Event{Type: typ, Data: data})
	if err != nil {
		t.Fatalf("ingest %s: %v", typ, err)
	}
	return res
}

// allDeliveries follows the cursor through an endpoint's deliveries (newest first).
func allDeliveries(t *testing.T, r *relaytest.Relay, id string) []api.Delivery {
	t.Helper()
	var out []api.Delivery
	cursor := ""
	for {
		page, err := r.Client.ListDeliveries(testCtx(t), id, cursor, api.MaxPageLimit)
		if err != nil {
			t.Fatalf("list deliveries of %s: %v", id, err)
		}
		out = append(out, page.Data...)
		if page.NextCursor == nil {
			return out
		}
		cursor = *page.NextCursor
	}
}

// waitDeliveries polls an endpoint's deliveries until cond holds and returns them.
func waitDeliveries(t *testing.T, r *relaytest.Relay, id, what string, cond func([]api.Delivery) bool) []api.Delivery {
	t.Helper()
	var ds []api.Delivery
	relaytest.Eventually(t, waitLong, what, func() bool {
		ds = allDeliveries(t, r, id)
		return cond(ds)
	})
	return ds
}

// waitFinished waits until the endpoint has n deliveries and none is pending or held.
func waitFinished(t *testing.T, r *relaytest.Relay, id string, n int) []api.Delivery {
	t.Helper()
	return waitDeliveries(t, r, id, "deliveries to finish", func(ds []api.Delivery) bool {
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.Status != api.StatusSucceeded && d.Status != api.StatusFailed {
				return false
			}
		}
		return true
	})
}

func waitEndpoint(t *testing.T, r *relaytest.Relay, id, what string, cond func(api.Endpoint) bool) api.Endpoint {
	t.Helper()
	var ep api.Endpoint
	relaytest.Eventually(t, waitLong, what, func() bool {
		ep = getEndpoint(t, r, id)
		return cond(ep)
	})
	return ep
}

func waitCount(t *testing.T, rc *relaytest.Receiver, n int) []relaytest.Request {
	t.Helper()
	relaytest.Eventually(t, waitLong, "receiver to get requests", func() bool { return rc.Count() >= n })
	return rc.Requests()
}

// checkErrorBody asserts status and the {"error":{"code","message"}} shape.
func checkErrorBody(t *testing.T, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status = %d, want %d; body %s", status, wantStatus, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Errorf("error body is not a JSON object: %v: %q", err, body)
		return
	}
	if len(raw) != 1 || raw["error"] == nil {
		t.Errorf("error body has keys other than \"error\": %s", body)
	}
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Errorf("error body: %v: %s", err, body)
		return
	}
	if eb.Error.Code == "" || eb.Error.Message == "" {
		t.Errorf("error body lacks code or message: %s", body)
	}
	if wantCode != "" && eb.Error.Code != wantCode {
		t.Errorf("error code = %q, want %q; body %s", eb.Error.Code, wantCode, body)
	}
}

// checkAlive asserts the relay still answers and never logged a panic.
func checkAlive(t *testing.T, r *relaytest.Relay) {
	t.Helper()
	status, body, _ := r.Do("GET", "/healthz", "", "", nil)
	if status != http.StatusOK {
		t.Errorf("healthz after the test = %d %s", status, body)
	}
	if logs := r.Logs(); strings.Contains(strings.ToLower(logs), "panic") {
		t.Errorf("relay logged a panic:\n%s", logs)
	}
}

// hijackClose is a receiver handler that drops the connection without answering.
func hijackClose(w http.ResponseWriter, _ *relaytest.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("response writer cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

// blockUntil returns a handler that waits for release (or max) and then answers code.
// The test closes release at cleanup so no handler outlives it.
func blockUntil(release <-chan struct{}, max time.Duration, code int) func(http.ResponseWriter, *relaytest.Request) {
	return func(w http.ResponseWriter, _ *relaytest.Request) {
		select {
		case <-release:
		case <-time.After(max):
		}
		w.WriteHeader(code)
	}
}

// releaseAtCleanup returns a channel closed at cleanup. Register it after the receivers
// whose handlers wait on it: cleanups run last-in first-out, so it is closed before the
// receivers wait for their handlers.
func releaseAtCleanup(t *testing.T) chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(ch) }) })
	return ch
}

// rawRelay is a relay process started directly from the binary (through relayproc, as
// relaytest does), for what relaytest does not expose: its exit status, a start without
// --api-token.
type rawRelay struct {
	URL  string
	logs *relayproc.Log
	proc *relayproc.Process
}

// startRaw runs the binary with args (plus --listen 127.0.0.1:0 --log-format json) and waits
// for its "relay listening" line. It is killed at cleanup if still running.
func startRaw(t *testing.T, args ...string) *rawRelay {
	t.Helper()
	return startRawEnv(t, nil, args...)
}

// startRawEnv is startRaw with env added to the process's environment.
func startRawEnv(t *testing.T, env []string, args ...string) *rawRelay {
	t.Helper()
	args = append([]string{"--listen", "127.0.0.1:0", "--log-format", "json"}, args...)
	p, err := relayproc.Start(context.Background(), relayproc.Options{Bin: relaytest.Binary(t), Args: args, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return &rawRelay{URL: p.URL(), logs: p.Log(), proc: p}
}

// terminate sends SIGTERM and returns the exit code and how long the exit took.
func (rr *rawRelay) terminate(t *testing.T, limit time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := rr.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if err := rr.proc.Wait(limit); errors.Is(err, relayproc.ErrStillRunning) {
		t.Fatalf("relay still running %s after SIGTERM\n%s", limit, rr.logs)
	}
	return rr.proc.ExitCode(), time.Since(start) // -1 if a signal ended it
}

// rawDo sends one request over its own TCP connection and reads the answer while the body
// is still being written. A server that answers early (413) and closes may reset the
// connection under a client that is still writing; reading concurrently gets the answer
// that arrived before the reset. Unlike relaytest.Relay.Do it is safe in subtests.
func rawDo(t *testing.T, r *relaytest.Relay, method, path, contentType, token string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", r.Addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial relay: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitLong))
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", method, path, r.Addr, len(body))
	if contentType != "" {
		fmt.Fprintf(&head, "Content-Type: %s\r\n", contentType)
	}
	if token != "" {
		fmt.Fprintf(&head, "Authorization: Bearer %s\r\n", token)
	}
	head.WriteString("\r\n")
	go func() {
		// Write errors are expected when the relay refuses the body early.
		if _, err := conn.Write([]byte(head.String())); err == nil {
			_, _ = conn.Write(body)
		}
	}()
	req, _ := http.NewRequest(method, path, nil)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: read response: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}
