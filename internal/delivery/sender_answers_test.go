package delivery

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// leak is what hostile receivers echo back; it must never reach an attempt's error.
const leak = "tok_L34K_s3cr3t"

// answerSender is a sender for the tests in this file: loopback and http allowed.
func answerSender(timeout time.Duration) *sender {
	return newSender(Config{
		Timeout:   timeout,
		Policy:    netpolicy.Policy{AllowHTTP: true, AllowPrivate: true},
		UserAgent: "BlameTrail-Webhooks/unit",
	})
}

func sendOnce(t *testing.T, s *sender, url string) result {
	t.Helper()
	secret, err := signature.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s.send(store.Job{Delivery: testDelivery(t, "dlv_01h00000000000000000000010"), EndpointID: "ep_unit",
		EventType: "incident.opened", URL: url, Secret: secret, Body: []byte(`{"id":"evt_1"}`), N: 1})
}

// checkErrorText holds for every stored attempt error: short, valid UTF-8, none of the
// receiver's bytes.
func checkErrorText(t *testing.T, msg string) {
	t.Helper()
	if len(msg) > maxErrorLen {
		t.Errorf("error is %d bytes, more than %d: %q", len(msg), maxErrorLen, msg)
	}
	if !utf8.ValidString(msg) {
		t.Errorf("error is not valid UTF-8: %q", msg)
	}
	if strings.Contains(strings.ToLower(msg), strings.ToLower(leak)) {
		t.Errorf("error carries the receiver's secret: %q", msg)
	}
}

// TestSenderAcceptsLargeResponseHeaders: CDNs, gateways and cookies make response headers of
// several KiB; a 2xx with up to 64 KiB of them is a success. Beyond that the error says so in
// fixed words.
func TestSenderAcceptsLargeResponseHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n, cookies int
		_, _ = fmt.Sscanf(r.URL.Query().Get("n"), "%d", &n)
		_, _ = fmt.Sscanf(r.URL.Query().Get("cookies"), "%d", &cookies)
		if n > 0 {
			w.Header().Set("X-Padding", leak+strings.Repeat("p", n-len(leak)))
		}
		for i := range cookies {
			w.Header().Add("Set-Cookie", fmt.Sprintf("c%d=%s%s", i, leak, strings.Repeat("c", 1000)))
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	s := answerSender(2 * time.Second)
	tests := []struct {
		name    string
		query   string
		success bool
		err     string
	}{
		{"4 KiB header", "n=4096", true, ""},
		{"32 KiB header", "n=32768", true, ""},
		{"63 KiB header", "n=64512", true, ""},
		{"32 cookies of 1 KiB", "cookies=32", true, ""},
		{"60 cookies of 1 KiB", "cookies=60", true, ""},
		{"80 KiB header", "n=81920", false, "response header too large"},
		{"1 MiB header", "n=1048576", false, "response header too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := sendOnce(t, s, srv.URL+"/hook?"+tt.query)
			if res.success != tt.success || res.attempt.Error != tt.err {
				t.Errorf("success %v, code %d, error %q; want success %v, error %q",
					res.success, res.attempt.StatusCode, res.attempt.Error, tt.success, tt.err)
			}
			checkErrorText(t, res.attempt.Error)
		})
	}
}

// TestSenderBodiesAreNotKept: a receiver is judged by its status; its body is read only to
// reuse the connection, never past maxResponseBody, and never kept. A 2xx with a huge,
// endless or trickling body is a success within the timeout, and that connection is closed
// instead of pooled.
func TestSenderBodiesAreNotKept(t *testing.T) {
	var newConns atomic.Int32
	stop := make(chan struct{})
	handlerDone := make(chan string, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Length", "1024")
			_, _ = w.Write([]byte(strings.Repeat(leak, 1024)[:1024]))
		case "/small-chunked":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(leak))
		case "/1mib":
			w.Header().Set("Content-Length", fmt.Sprint(1<<20))
			_, _ = w.Write([]byte(strings.Repeat("b", 1<<20)))
		case "/endless", "/trickle":
			w.WriteHeader(200)
			chunk := []byte(strings.Repeat(leak, 2048))
			if r.URL.Path == "/trickle" {
				chunk = chunk[:1]
			}
			for {
				if _, err := w.Write(chunk); err != nil {
					break
				}
				w.(http.Flusher).Flush()
				if r.URL.Path == "/trickle" {
					select {
					case <-time.After(20 * time.Millisecond):
					case <-stop:
						return
					}
				}
				select {
				case <-stop:
					return
				default:
				}
			}
			handlerDone <- r.URL.Path
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })

	const timeout = 3 * time.Second
	s := answerSender(timeout)
	tests := []struct {
		path     string
		newConns int32 // connections opened so far, after this attempt
		closes   bool  // the receiver sees its connection closed while still writing
	}{
		{"/small", 1, false},
		{"/small", 1, false}, // a body within the cap is drained and the connection reused
		{"/small-chunked", 1, false},
		{"/1mib", 1, false}, // reused the pooled connection, then closed it
		{"/small", 2, false},
		{"/endless", 2, true},
		{"/small", 3, false},
		{"/trickle", 3, true},
		{"/small", 4, false},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d%s", i, tt.path), func(t *testing.T) {
			start := time.Now()
			res := sendOnce(t, s, srv.URL+tt.path)
			took := time.Since(start)
			if !res.success || res.attempt.StatusCode != 200 || res.attempt.Error != "" {
				t.Errorf("result = %+v, want a success with status 200 and no error", res)
			}
			if took > timeout/2 {
				t.Errorf("took %s, want well within the %s timeout", took, timeout)
			}
			if tt.closes {
				select {
				case p := <-handlerDone:
					if p != tt.path {
						t.Errorf("handler %s ended, want %s", p, tt.path)
					}
				case <-time.After(2 * time.Second):
					t.Errorf("the receiver is still writing %s: the connection was kept", tt.path)
				}
			}
			// The server counts a connection when it reads its first request.
			if n := newConns.Load(); n != tt.newConns {
				t.Errorf("%d connections opened, want %d", n, tt.newConns)
			}
		})
	}
}

// TestSenderErrorsCarryNoReceiverBytes: whatever a receiver answers, the error stored for the
// attempt (admin API, WAL, log) is one of our short fixed phrases, never its bytes.
func TestSenderErrorsCarryNoReceiverBytes(t *testing.T) {
	huge := strings.Repeat("h", 80<<10)
	tests := []struct {
		name    string
		answer  string
		code    int
		success bool
		err     string // exact
	}{
		{"500 with cookie and body", ("HTTP/1.1 500 Internal " + leak + "\r\nSet-Cookie: session=" + leak +
			"\r\nX-Debug: " + leak + "\r\nContent-Length: 15\r\n\r\n" + leak), 500, false, ""},
		{"500 with invalid UTF-8 reason", ("HTTP/1.1 500 \xff\xfe" + leak + "\r\nContent-Length: 0\r\n\r\n"), 500, false, ""},
		{"429 with a bad Retry-After", ("HTTP/1.1 429 Slow\r\nRetry-After: " + leak + "\r\nContent-Length: 0\r\n\r\n"), 429, false, ""},
		{"redirect with userinfo, path, query and fragment", ("HTTP/1.1 302 Found\r\nLocation: https://u:" + leak +
			"@Hooks.Example.com:8443/p/" + leak + "?token=" + leak + "#" + leak + "\r\nContent-Length: 0\r\n\r\n"),
			302, false, "redirect (302) not followed, to https://hooks.example.com:8443"},
		{"relative redirect", ("HTTP/1.1 307 Temporary Redirect\r\nLocation: /" + leak + "?t=" + leak + "\r\nContent-Length: 0\r\n\r\n"),
			307, false, "redirect (307) not followed, to the same host"},
		{"redirect to a host that is not a host", ("HTTP/1.1 301 Moved\r\nLocation: https://" + leak + "%00\xff.example/\r\nContent-Length: 0\r\n\r\n"),
			301, false, "redirect (301) not followed"},
		{"redirect without Location", ("HTTP/1.1 303 See Other\r\nContent-Length: 0\r\n\r\n"), 303, false, "redirect (303) not followed"},
		{"redirect to a huge Location", ("HTTP/1.1 308 Permanent\r\nLocation: https://example.com/" + leak + strings.Repeat("x", 4000) +
			"\r\nContent-Length: 0\r\n\r\n"), 308, false, "redirect (308) not followed, to https://example.com"},
		{"malformed status line", ("HTTP/1.1 " + leak + "\r\nContent-Length: 0\r\n\r\n"), 0, false, "malformed response"},
		{"not HTTP at all", (leak + " " + leak + "\r\n\r\n"), 0, false, "malformed response"},
		{"header line without a colon", ("HTTP/1.1 200 OK\r\n" + leak + "\r\nContent-Length: 0\r\n\r\n"), 0, false, "malformed response"},
		{"header too large", ("HTTP/1.1 200 OK\r\nX-A: " + leak + huge + leak + "\r\n\r\n"), 0, false, "response header too large"},
		{"headers cut off", ("HTTP/1.1 200 OK\r\nX-Token: " + leak), 0, false, "connection closed inside the response headers"},
		{"bad chunk size after a 200", ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + leak + "\r\n" + leak + "\r\n"), 200, true, ""},
		{"body cut short after a 200", ("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + leak), 200, true, ""},
		{"closed without an answer", (""), 0, false, "connection closed before a response"},
	}
	s := answerSender(2 * time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := sendOnce(t, s, relaytest.RawAnswer(t, tt.answer))
			if res.success != tt.success || res.attempt.StatusCode != tt.code || res.attempt.Error != tt.err {
				t.Errorf("success %v, code %d, error %q; want success %v, code %d, error %q",
					res.success, res.attempt.StatusCode, res.attempt.Error, tt.success, tt.code, tt.err)
			}
			checkErrorText(t, res.attempt.Error)
		})
	}
}

// TestSenderErrorVocabulary: network and TLS failures against real sockets map to fixed
// phrases.
func TestSenderErrorVocabulary(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/hook"
	ln.Close()

	// A receiver that resets the connection after reading the request.
	rst, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rst.Close() })
	go func() {
		for {
			conn, err := rst.Accept()
			if err != nil {
				return
			}
			_, _ = http.ReadRequest(bufio.NewReader(conn))
			_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nSet-Cookie: " + leak + "\r\n"))
			time.Sleep(50 * time.Millisecond) // the sender has read these bytes when the reset comes
			_ = conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}()

	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Set-Cookie", leak)
	}))
	t.Cleanup(untrusted.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(plain.Close)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then net/http notices the sender hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)

	s := answerSender(500 * time.Millisecond)
	tests := []struct {
		name string
		url  string
		err  string
	}{
		{"connection refused", refused, "connection refused"},
		{"connection reset", "http://" + rst.Addr().String() + "/hook", "connection reset"},
		{"untrusted certificate", untrusted.URL + "/hook", "tls: certificate signed by an unknown authority"},
		{"plain HTTP on an https URL", strings.Replace(plain.URL, "http://", "https://", 1) + "/hook", "tls: the receiver did not answer with TLS"},
		{"no answer within the timeout", hang.URL + "/hook", "timeout: no response within 500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := sendOnce(t, s, tt.url)
			if res.success || res.attempt.StatusCode != 0 || res.attempt.Error != tt.err {
				t.Errorf("success %v, code %d, error %q; want error %q", res.success, res.attempt.StatusCode, res.attempt.Error, tt.err)
			}
			checkErrorText(t, res.attempt.Error)
		})
	}
}

// TestDescribeFixedVocabulary: errors that real sockets cannot easily produce here map to
// fixed phrases too, and anything unknown becomes a generic phrase, never its own text.
func TestDescribeFixedVocabulary(t *testing.T) {
	opErr := func(err error) error { return &net.OpError{Op: "read", Net: "tcp", Err: err} }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"dns not found", &net.DNSError{Err: "no such host " + leak, Name: leak + ".example", IsNotFound: true}, "dns: no such host"},
		{"dns timeout", &net.DNSError{Err: leak, IsTimeout: true}, "timeout: could not connect within 1s"},
		{"dns other", &net.DNSError{Err: leak, Server: leak}, "dns: lookup failed"},
		{"tls alert", fmt.Errorf("x: %w", tls.AlertError(40)), "tls: the receiver sent alert: handshake failure"},
		{"tls record header", tls.RecordHeaderError{Msg: leak}, "tls: the receiver did not answer with TLS"},
		{"wrapped unknown", fmt.Errorf("something %s: %w", leak, errors.New(leak)), "request failed"},
		{"io.EOF", io.EOF, "connection closed before a response"},
		{"op error with unknown cause", opErr(errors.New(leak)), "connection error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(tt.err, time.Second)
			if got != tt.want {
				t.Errorf("describe(%v) = %q, want %q", tt.err, got, tt.want)
			}
			checkErrorText(t, got)
		})
	}
}

// TestTruncateError: the cap cuts on a UTF-8 boundary and repairs invalid input.
func TestTruncateError(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("é", 300),
		strings.Repeat("a", maxErrorLen-1) + "€€",
		"bad \xff bytes",
		strings.Repeat("x", maxErrorLen),
	} {
		got := truncateError(in)
		if len(got) > maxErrorLen || !utf8.ValidString(got) {
			t.Errorf("truncateError(%d bytes) = %d bytes %q", len(in), len(got), got)
		}
	}
}

// TestSenderIdleConnectionMemory measures what pooled connections cost now that the read
// buffer is maxResponseHeader (64 KiB): fasthttp lends a reader to each attempt from one
// client-wide pool and takes it back when the attempt ends, so idle connections hold none,
// and the garbage collector frees the pooled readers. It fails if idle connections held a
// buffer of that size each. Figures: go test -run TestSenderIdleConnectionMemory -v
func TestSenderIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measures heap with many sockets")
	}
	const hosts, perHost = 20, 10
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(hosts * perHost)
	urls := make([]string, hosts)
	for i := range urls {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/hold" {
				arrived.Done()
				<-release
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(srv.Close)
		urls[i] = srv.URL
	}
	s := answerSender(10 * time.Second)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC() // sync.Pool keeps a victim cache for one more cycle
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()

	// hosts×perHost attempts in flight at once: each has its own connection and read buffer.
	var done sync.WaitGroup
	for _, u := range urls {
		for range perHost {
			done.Add(1)
			go func() {
				defer done.Done()
				if res := sendOnce(t, s, u+"/hold"); !res.success {
					t.Errorf("attempt failed: %+v", res)
				}
			}()
		}
	}
	arrived.Wait()
	time.Sleep(50 * time.Millisecond) // the senders are now waiting for their answers
	inFlight := heap()
	close(release)
	done.Wait()
	idle := heap()

	conns := uint64(hosts * perHost)
	perInFlight := (int64(inFlight) - int64(base)) / int64(conns)
	perIdle := (int64(idle) - int64(base)) / int64(conns)
	t.Logf("%d connections to %d hosts: %d B each while an attempt is in flight, %d B each idle (both sides of the socket, this process)",
		conns, hosts, perInFlight, perIdle)
	if perIdle > maxResponseHeader/2 {
		t.Errorf("an idle connection costs %d B: the %d B read buffer stays with it", perIdle, maxResponseHeader)
	}
}
