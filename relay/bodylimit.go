package relay

import (
	"time"

	"github.com/valyala/fasthttp"
)

// Bounds on reading a refused body before answering 413.
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
	deadline := time.Now().Add(drainMaxTime)
	buf := make([]byte, 32<<10)
	for n := 0; n < cl; {
		now := time.Now()
		if !now.Before(deadline) {
			return
		}
		_ = conn.SetReadDeadline(now.Add(min(drainIdle, deadline.Sub(now))))
		m, err := conn.Read(buf)
		n += m
		if err != nil {
			return
		}
	}
}
