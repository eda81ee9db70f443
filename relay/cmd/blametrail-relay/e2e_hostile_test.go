package main_test

// Hostile input at the protocol level: requests fasthttp cannot parse, tokens that are too
// short or carry a newline, health probes of a relay whose storage failed. Every test sends
// its input to the real binary over 127.0.0.1.

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
