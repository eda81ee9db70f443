package main_test

// Hostile input at the protocol level: requests fasthttp cannot parse, tokens that are too
// short or carry a newline, health probes of a relay whose storage failed. Every test sends
// its input to the real binary over 127.0.0.1.

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// rawExchange writes req as is on a new connection and reads one response. The whole request
// is written before reading; the relay may close early, so write errors are ignored.
func rawExchange(t *testing.T, addr, req string) (int, []byte, http.Header) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial relay: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitLong))
	go func() { _, _ = conn.Write([]byte(req)) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, []byte(b.String()), resp.Header
}

// TestMalformedRequestsDoNotLogToken: fasthttp's parse errors quote the raw request headers.
// A request with a valid token and one malformed header line must get a clean 4xx, and the
// token must appear nowhere in the relay's log, at any level.
func TestMalformedRequestsDoNotLogToken(t *testing.T) {
	t.Parallel()
	token := "tok_" + strings.Repeat("s3cr3tv4lu3", 4)
	r := relaytest.Start(t, relaytest.Options{Token: token, Args: []string{"--log-level", "debug"}})
	auth := "Authorization: Bearer " + token + "\r\n"
	get := "GET /api/webhooks/endpoints HTTP/1.1\r\nHost: relay\r\n"
	tests := []struct {
		name string
		req  string
		code string // the error code, or "" for any 4xx with a JSON error body
	}{
		{"control byte in a header", get + auth + "X-Note: a\x01b\r\n\r\n", ""},
		{"control byte in the token", get + "Authorization: Bearer " + token[:20] + "\x01" + token[20:] + "\r\n\r\n", ""},
		{"duplicate content-length", "POST /api/events HTTP/1.1\r\nHost: relay\r\n" + auth +
			"Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", ""},
		{"line without a colon", get + auth + "this line has no colon\r\n\r\n", ""},
		{"headers over the limit", get + auth + "X-Pad: " + strings.Repeat("p", 16<<10) + "\r\n\r\n", ""},
		{"unsupported transfer-encoding", "POST /api/events HTTP/1.1\r\nHost: relay\r\n" + auth +
			"Transfer-Encoding: gzip, chunked\r\n\r\n", ""},
		{"bad method after token", "G\x01T /api/webhooks/endpoints HTTP/1.1\r\nHost: relay\r\n" + auth + "\r\n", ""},
	}
	for _, tt := range tests {
		status, body, _ := rawExchange(t, r.Addr, tt.req)
		if status < 400 || status > 499 {
			t.Errorf("%s: status %d, want 4xx; body %s", tt.name, status, body)
			continue
		}
		checkErrorBody(t, status, body, status, tt.code)
		if strings.Contains(string(body), token[:16]) {
			t.Errorf("%s: the response quotes the token: %s", tt.name, body)
		}
	}
	checkAlive(t, r)
	r.Stop() // every connection's error is logged before the process exits
	logs := r.Logs()
	for _, part := range []string{token, token[:20], token[20:]} {
		if strings.Contains(logs, part) {
			t.Errorf("the relay logged the api token (%q):\n%s", part, logs)
			break
		}
	}
}

// TestAPITokenRules: a token under 16 characters, from flag, environment or file, stops the
// relay with exit code 2 and a message that names where it came from but not the token; a
// token with surrounding whitespace and a trailing newline (a Kubernetes secret made with
// --from-file) is trimmed, from the environment as from the file.
func TestAPITokenRules(t *testing.T) {
	t.Parallel()
	bin := relaytest.Binary(t)
	short := "fifteen-chars-x" // 15
	tests := []struct {
		name string
		args []string
		env  []string
		file string // written to <data-dir>/api-token first
		want string
		code int
	}{
		{"short flag", []string{"--api-token", short}, nil, "", "--api-token", 2},
		{"short env", nil, []string{"BLAMETRAIL_API_TOKEN=" + short}, "", "BLAMETRAIL_API_TOKEN", 2},
		{"short after trimming", nil, []string{"BLAMETRAIL_API_TOKEN=  " + short + "\n"}, "", "BLAMETRAIL_API_TOKEN", 2},
		{"blank env", nil, []string{"BLAMETRAIL_API_TOKEN= \n"}, "", "BLAMETRAIL_API_TOKEN", 2},
		{"short file", nil, nil, short + "\n", "api-token", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, "api-token"), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.CommandContext(relaytest.Context(t, 15*time.Second), bin,
				append([]string{"--listen", "127.0.0.1:0", "--data-dir", dir}, tt.args...)...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.code {
				t.Fatalf("exit: %v, want code %d\n%s", err, tt.code, out)
			}
			if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "16") {
				t.Errorf("output does not name %q and the 16-character minimum:\n%s", tt.want, out)
			}
			if strings.Contains(string(out), short) {
				t.Errorf("output prints the token:\n%s", out)
			}
		})
	}

	token := "tok_" + strings.Repeat("k8s", 8)
	rr := startRawEnv(t, []string{"BLAMETRAIL_API_TOKEN= " + token + "\n"},
		append([]string{"--data-dir", t.TempDir()}, permissive...)...)
	c, err := apiclient.New(rr.URL, token, apiclient.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllEndpoints(testCtx(t)); err != nil {
		t.Errorf("the trimmed token from the environment does not work: %v", err)
	}
	if code, _ := rr.terminate(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if strings.Contains(rr.logs.String(), token) {
		t.Errorf("the relay logged the token:\n%s", rr.logs)
	}
}

// TestHealthHidesStorageError: once the WAL has failed, /healthz and /readyz (which need no
// token) answer 503 with a generic reason; the error, with its paths, goes to the log only.
func TestHealthHidesStorageError(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--wal-segment-size", "65536"}})
	// The open segment lives on unlinked; the next one cannot be created.
	if err := os.RemoveAll(filepath.Join(r.DataDir, "wal")); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"incident.opened","data":{"x":"` + strings.Repeat("a", 100<<10) + `"}}`)
	failed := false
	for range 10 {
		if status, _, _ := r.Do("POST", "/api/events", "application/json", r.Token, body); status >= 500 {
			failed = true
			break
		}
	}
	if !failed {
		t.Fatal("ingest never failed after the WAL directory was removed")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		status, resp, _ := r.Do("GET", path, "", "", nil)
		if status != http.StatusServiceUnavailable {
			t.Errorf("%s = %d %s, want 503", path, status, resp)
		}
		var got map[string]any
		if err := json.Unmarshal(resp, &got); err != nil {
			t.Errorf("%s: body is not JSON: %s", path, resp)
			continue
		}
		if len(got) != 2 || got["status"] != "failed" || got["reason"] != "storage" {
			t.Errorf(`%s body = %s, want {"status":"failed","reason":"storage"}`, path, resp)
		}
		for _, leak := range []string{r.DataDir, "/", "wal", "such file"} {
			if strings.Contains(string(resp), leak) {
				t.Errorf("%s reveals %q: %s", path, leak, resp)
			}
		}
	}
	if logs := r.Logs(); !strings.Contains(logs, filepath.Join(r.DataDir, "wal")) {
		t.Errorf("the log should hold the storage error with its path:\n%s", logs)
	}
}

// TestOversizedHeaders: request headers over the relay's buffer get 431 with the JSON error
// body, from a raw client and from an ordinary Go client (not a connection reset), and the
// relay stays healthy.
func TestOversizedHeaders(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	for _, size := range []int{9 << 10, 64 << 10, 1 << 20} {
		req := "GET /api/webhooks/endpoints HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + r.Token +
			"\r\nX-Pad: " + strings.Repeat("p", size) + "\r\n\r\n"
		status, body, _ := rawExchange(t, r.Addr, req)
		checkErrorBody(t, status, body, http.StatusRequestHeaderFieldsTooLarge, "request_header_too_large")

		hreq, _ := http.NewRequest("GET", r.URL+"/api/webhooks/endpoints", nil)
		hreq.Header.Set("Authorization", "Bearer "+r.Token)
		hreq.Header.Set("X-Pad", strings.Repeat("q", size))
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Errorf("Go client with %d bytes of headers: %v", size, err)
			continue
		}
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		resp.Body.Close()
		checkErrorBody(t, resp.StatusCode, []byte(b.String()), http.StatusRequestHeaderFieldsTooLarge, "request_header_too_large")
	}
	checkAlive(t, r)
}

// TestConnectionLimits: --max-connections bounds the connections served at once, and
// --max-connections-per-ip those from one address; by default many connections from
// 127.0.0.1 (a sidecar's application) are all served.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	// hold opens n idle connections, closed at cleanup.
	hold := func(t *testing.T, addr string, n int) {
		for range n {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			t.Cleanup(func() { c.Close() })
		}
		time.Sleep(200 * time.Millisecond) // let the relay accept them
	}
	get := func(t *testing.T, addr string) int {
		status, _, _ := rawExchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
		return status
	}

	t.Run("default serves many from one address", func(t *testing.T) {
		t.Parallel()
		r := relaytest.Start(t, relaytest.Options{})
		hold(t, r.Addr, 300)
		if status := get(t, r.Addr); status != http.StatusOK {
			t.Errorf("with 300 connections open, healthz = %d", status)
		}
	})
	t.Run("max-connections", func(t *testing.T) {
		t.Parallel()
		r := relaytest.Start(t, relaytest.Options{Args: []string{"--max-connections", "3"}})
		hold(t, r.Addr, 3)
		if status := get(t, r.Addr); status != http.StatusServiceUnavailable {
			t.Errorf("a fourth connection = %d, want 503", status)
		}
	})
	t.Run("max-connections-per-ip", func(t *testing.T) {
		t.Parallel()
		r := relaytest.Start(t, relaytest.Options{Env: []string{"BLAMETRAIL_MAX_CONNECTIONS_PER_IP=2"}})
		hold(t, r.Addr, 2)
		if status := get(t, r.Addr); status != http.StatusTooManyRequests {
			t.Errorf("a third connection from 127.0.0.1 = %d, want 429", status)
		}
	})
	// Each listener has its own limits: a flood on one does not lock the other out, and each
	// is bounded. One relay per direction: a request served just before the connections are
	// held could still hold its worker when the next one is accepted, and have that refused.
	for _, full := range []string{"--listen", "--admin-listen"} {
		t.Run("per listener, "+full+" full", func(t *testing.T) {
			t.Parallel()
			r := relaytest.Start(t, relaytest.Options{AdminListen: true, Args: []string{"--max-connections", "3"}})
			fullAddr, otherAddr := r.Addr, r.AdminAddr
			if full == "--admin-listen" {
				fullAddr, otherAddr = otherAddr, fullAddr
			}
			hold(t, fullAddr, 3)
			// Polled: under load the relay may take longer than hold's pause to accept them.
			relaytest.Eventually(t, waitLong, "a fourth connection to "+full+" to get 503", func() bool {
				return get(t, fullAddr) == http.StatusServiceUnavailable
			})
			if status := get(t, otherAddr); status != http.StatusOK {
				t.Errorf("the other listener while %s is full = %d, want 200", full, status)
			}
		})
	}
}

// TestSlowlorisCutOff: a client that trickles its headers, a byte at a time, loses the
// connection once the read timeout (10 s and the largest body at 64 KiB/s) is over.
func TestSlowlorisCutOff(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--max-body-size", "1024"}})
	conn, err := net.DialTimeout("tcp", r.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- time.Since(start)
				return
			}
		}
	}()
	head := "GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Slow: " + strings.Repeat("s", 100)
	for i := 0; i < len(head); i++ {
		select {
		case d := <-closed:
			if d < 9*time.Second {
				t.Errorf("connection closed after %s, before the read timeout", d)
			}
			checkAlive(t, r)
			return
		case <-time.After(250 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			break
		}
	}
	select {
	case d := <-closed:
		t.Logf("closed after %s", d)
	case <-time.After(5 * time.Second):
		t.Fatalf("a connection trickling its headers is still open after %s", time.Since(start))
	}
}
