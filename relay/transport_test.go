package relay

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRedactTransport(t *testing.T) {
	tests := []struct{ in, want string }{
		{`error when reading request headers: fasthttp: duplicate content-length header: buffer size=186, contents: "POST / HTTP/1.1\r\nAuthorization: Bearer secret\r\n"`,
			`error when reading request headers: fasthttp: duplicate content-length header: buffer size=186, contents: [redacted]`},
		{`error when reading request headers: invalid header value "Bearer se\"cr\\et": buffer size=10`,
			`error when reading request headers: invalid header value "[redacted]": buffer size=10`},
		{`unsupported http request method "G\x01T" in "G\x01T / HTTP/1.1\r\nAuthorization: Bearer secret"`,
			`unsupported http request method "[redacted]" in "[redacted]"`},
		{`open quote "Bearer secret`, `open quote "[redacted]"`},
		{`fasthttp: small read buffer. increase readbuffersize (n=8192, reader buffered=8192)`,
			`fasthttp: small read buffer. increase readbuffersize (n=8192, reader buffered=8192)`},
	}
	for _, tt := range tests {
		if got := redactTransport(tt.in); got != tt.want {
			t.Errorf("redactTransport(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestFasthttpLoggerRedacts(t *testing.T) {
	var b strings.Builder
	l := fasthttpLogger{slog.New(slog.NewTextHandler(&b, nil))}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	l.Printf("error when serving connection %q<->%q: %v", local, local,
		errors.New(`invalid header value "Bearer secret-token": contents: "Authorization: Bearer secret-token"`))
	l.Printf("%.3f %s - %s", 1.5, "GET http://relay/?token=secret-token", []byte("secret-token"))
	l.Printf("The number of connections from %s exceeds MaxConnsPerIP=%d", net.IPv4(10, 0, 0, 1), 5)
	out := b.String()
	if strings.Contains(out, "secret") {
		t.Errorf("the fasthttp logger printed a secret:\n%s", out)
	}
	for _, want := range []string{"127.0.0.1:8080", "10.0.0.1", "MaxConnsPerIP=5", "invalid header value"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestTransferTimeout(t *testing.T) {
	for _, tt := range []struct {
		body int
		want time.Duration
	}{
		{256 << 10, 14 * time.Second},
		{1024, 10*time.Second + 15625*time.Microsecond},
		{MaxBodySizeLimit, 10*time.Second + 240*time.Second},
	} {
		if got := transferTimeout(tt.body); got != tt.want {
			t.Errorf("transferTimeout(%d) = %s, want %s", tt.body, got, tt.want)
		}
	}
}
