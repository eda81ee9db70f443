package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/valyala/fasthttp"
)

// Requests fasthttp cannot read never reach the handler: they come to handleTransportError,
// and fasthttp reports the connection's error once more through its Logger. fasthttp's parse
// errors quote the raw request (the header value it refused, a snippet of the whole header
// block), so both paths go through redactTransport: an Authorization header next to one
// malformed line must not put the API token in the log.

// handleTransportError answers requests fasthttp could not read, above all bodies over the
// limit, in the same JSON error shape as everything else. The request is never echoed.
func (s *Server) handleTransportError(ctx *fasthttp.RequestCtx, err error, role listenerRole) {
	defer s.countTransportError(ctx, role)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		drainRefusedBody(ctx)
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds the limit")
		return
	}
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) {
		drainRefusedHeaders(ctx)
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request_header_too_large",
			fmt.Sprintf("request headers exceed %d bytes", readBufferSize))
		return
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		writeError(ctx, fasthttp.StatusRequestTimeout, "timeout", "request not received in time")
		return
	}
	s.log.Debug("unreadable request", "remote", remoteAddr(ctx), "err", redactTransport(err.Error()))
	writeError(ctx, fasthttp.StatusBadRequest, "bad_request", "request could not be parsed")
}

func remoteAddr(ctx *fasthttp.RequestCtx) string {
	if a := ctx.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// redacted replaces request data in transport errors.
const redacted = "[redacted]"

// redactTransport returns msg with every double-quoted span replaced by "[redacted]", and
// nothing after "contents:". fasthttp formats request data with %q (a header value, the
// request line, the header buffer), so what remains is its own wording: enough to tell a
// duplicate Content-Length from a control byte, never a header value. A quote left open runs
// to the end of msg and is redacted as well.
func redactTransport(msg string) string {
	if i := strings.Index(msg, "contents:"); i >= 0 {
		msg = msg[:i] + "contents: " + redacted
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		b.WriteString(`"` + redacted + `"`)
		msg = msg[i+1:]
		end := closingQuote(msg)
		if end < 0 {
			return b.String()
		}
		msg = msg[end+1:]
	}
}

// closingQuote is the index of the quote that ends a Go-quoted string whose opening quote
// was just before s, or -1.
func closingQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// fasthttpLogger routes fasthttp's own messages into slog. Errors among the arguments are
// redacted like transport errors, and text arguments are dropped: fasthttp passes addresses
// and counts as such, but text may be a request (its ctx logger prints the URI).
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case error:
			safe[i] = redactTransport(v.Error())
		case string, []byte, fmt.Stringer:
			if addr, ok := a.(net.Addr); ok {
				safe[i] = addr.String()
			} else if ip, ok := a.(net.IP); ok {
				safe[i] = ip.String()
			} else {
				safe[i] = redacted
			}
		default:
			safe[i] = v
		}
	}
	l.log.Warn("http server", "detail", fmt.Sprintf(format, safe...))
}
