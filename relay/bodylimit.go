package relay

import (
	"bytes"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Bounds on reading a refused body (or header block) before answering 413 (or 431).
const (
	drainMaxBytes = 4 << 20
	drainMaxTime  = 2 * time.Second
	drainIdle     = 200 * time.Millisecond
)

// drainRefusedBody reads and discards what remains of a request body that is over the limit,
// so that the 413 reaches the client. fasthttp refuses such a body before reading it and then
// closes the connection; closing a socket with unread data makes the kernel send a reset,
// which destroys the 413 in flight and leaves a client that is still writing with
// "connection reset by peer" instead of an answer. Only a declared length up to
// drainMaxBytes is drained, for at most drainMaxTime; anything larger is simply cut off.
func drainRefusedBody(ctx *fasthttp.RequestCtx) {
	cl := ctx.Request.Header.ContentLength()
	conn := ctx.Conn()
	if cl <= 0 || cl > drainMaxBytes || conn == nil {
		return
	}
	drainConn(conn, cl, func([]byte) bool { return false })
}

// drainRefusedHeaders is drainRefusedBody for a header block over the read buffer (431): it
// reads what remains of the headers, up to their blank line, under the same bounds, so that
// a client still writing them gets the 431 rather than a reset.
func drainRefusedHeaders(ctx *fasthttp.RequestCtx) {
	conn := ctx.Conn()
	if conn == nil {
		return
	}
	end := []byte("\r\n\r\n")
	var tail []byte // the last bytes read, for a blank line split across reads
	drainConn(conn, drainMaxBytes, func(chunk []byte) bool {
		tail = append(tail, chunk...)
		if bytes.Contains(tail, end) {
			return true
		}
		tail = append(tail[:0], tail[max(0, len(tail)-len(end)+1):]...)
		return false
	})
}

// drainConn reads and discards from conn until done says so of what it just read, limit bytes
// were read, a read fails, or drainMaxTime passed (each read waits at most drainIdle).
func drainConn(conn net.Conn, limit int, done func(chunk []byte) bool) {
	deadline := time.Now().Add(drainMaxTime)
	buf := make([]byte, 32<<10)
	for n := 0; n < limit; {
		now := time.Now()
		if !now.Before(deadline) {
			return
		}
		_ = conn.SetReadDeadline(now.Add(min(drainIdle, deadline.Sub(now))))
		m, err := conn.Read(buf)
		n += m
		if err != nil || done(buf[:m]) {
			return
		}
	}
}
