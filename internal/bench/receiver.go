package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// ReceiverConfig says how a receiver behaves.
type ReceiverConfig struct {
	// Addr to listen on; empty means 127.0.0.1 with a port the kernel picks.
	Addr string
	// Latency is how long each request is held before it is answered.
	Latency time.Duration
	// FailRate is the fraction of requests answered 500, chosen by request count (exactly
	// ⌊n·rate⌋ of the first n requests fail, spread evenly), so runs are reproducible.
	FailRate float64
	// MaxFailsPerDelivery stops injecting failures into a delivery after this many (0 = no
	// cap). Scenario 3 sets it below the relay's attempts, so an unlucky delivery that keeps
	// drawing the failing request slots is not failed for good and counted as lost.
	MaxFailsPerDelivery int
	// Hold makes every request wait until Release is called (a receiver that accepts
	// connections but does not answer).
	Hold bool
	// Capacity is the number of event sequence numbers the receiver can record.
	Capacity int64
}

// Receiver is a fasthttp webhook receiver on 127.0.0.1. It verifies every request's signature
// with relay/signature (once a secret is set), answers 200 or, for an injected failure, 500,
// and records per event what arrived, when, and under which delivery id.
type Receiver struct {
	URL  string
	Addr string

	cfg     ReceiverConfig
	srv     *fasthttp.Server
	ln      net.Listener
	served  chan struct{}
	closing chan struct{}
	gate    chan struct{}
	closed  sync.Once
	secret  atomic.Pointer[string]
	table   *arrivalTable
	failsMu sync.Mutex
	fails   map[uint64]int // injected failures per delivery id hash

	requests      atomic.Int64 // every request
	okAnswers     atomic.Int64 // answered 2xx
	injected      atomic.Int64 // answered 500 on purpose
	badSignatures atomic.Int64
	malformed     atomic.Int64 // no seq/sent_ns in the body, or seq out of range
	firstOKs      atomic.Int64 // events answered 2xx for the first time: completed deliveries
	afterOK       atomic.Int64 // arrivals of an event already answered 2xx
	afterFail     atomic.Int64 // arrivals of an event whose earlier arrivals all failed
	otherDelivery atomic.Int64 // a second delivery id for one event: the relay fanned out twice
	otherEvent    atomic.Int64 // a second event id for one seq
	firstAtNS     atomic.Int64
	lastOKAtNS    atomic.Int64

	errMu     sync.Mutex
	sigErrors map[string]int64
}

// StartReceiver listens and serves until Close.
func StartReceiver(cfg ReceiverConfig) (*Receiver, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1 << 20
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: listen %s: %w", addr, err)
	}
	rc := &Receiver{
		cfg:       cfg,
		ln:        ln,
		Addr:      ln.Addr().String(),
		served:    make(chan struct{}),
		closing:   make(chan struct{}),
		table:     newArrivalTable(cfg.Capacity),
		sigErrors: map[string]int64{},
	}
	if cfg.Hold {
		rc.gate = make(chan struct{})
	}
	rc.URL = "http://" + rc.Addr + "/hook"
	rc.srv = &fasthttp.Server{
		Handler:               rc.handle,
		Name:                  "blametrail-bench-receiver",
		ReadTimeout:           60 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    1 << 20,
		Concurrency:           64 << 10,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
	}
	go func() {
		defer close(rc.served)
		_ = rc.srv.Serve(ln)
	}()
	return rc, nil
}

// SetSecret turns on signature verification with the endpoint's secret.
func (rc *Receiver) SetSecret(s string) { rc.secret.Store(&s) }

// Release lets held requests (Hold) through and answers later ones at once.
func (rc *Receiver) Release() {
	if rc.gate != nil {
		select {
		case <-rc.gate:
		default:
			close(rc.gate)
		}
	}
}

// Close stops the receiver: held and sleeping requests are cut short, open connections are
// closed, and it waits at most 5 s.
func (rc *Receiver) Close() {
	rc.closed.Do(func() {
		close(rc.closing)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rc.srv.ShutdownWithContext(ctx)
		_ = rc.ln.Close()
		select {
		case <-rc.served:
		case <-ctx.Done():
		}
	})
}

// Completed is the number of events answered 2xx at least once.
func (rc *Receiver) Completed() int64 { return rc.firstOKs.Load() }

func (rc *Receiver) shouldFail(n int64) bool {
	r := rc.cfg.FailRate
	if r <= 0 {
		return false
	}
	return math.Floor(float64(n)*r) != math.Floor(float64(n-1)*r)
}

// allowFail counts an injected failure against the delivery, up to MaxFailsPerDelivery.
func (rc *Receiver) allowFail(id []byte) bool {
	max := rc.cfg.MaxFailsPerDelivery
	if max <= 0 {
		return true
	}
	h := fnv64(id)
	rc.failsMu.Lock()
	defer rc.failsMu.Unlock()
	if rc.fails == nil {
		rc.fails = make(map[uint64]int)
	}
	if rc.fails[h] >= max {
		return false
	}
	rc.fails[h]++
	return true
}

var (
	keySeq  = []byte(`"seq":`)
	keySent = []byte(`"sent_ns":`)
	keyID   = []byte(`{"id":"`)
)

// parseEventBody finds the harness's fields in a body: seq and sent_ns inside data, and the
// relay's event id when the body is the relay's envelope. It does not decode the JSON: the
// harness wrote those fields itself, first in data, before the padding.
func parseEventBody(b []byte) (seq, sent int64, eventID []byte, ok bool) {
	seq, ok1 := intAfter(b, keySeq)
	sent, ok2 := intAfter(b, keySent)
	if bytes.HasPrefix(b, keyID) {
		rest := b[len(keyID):]
		if i := bytes.IndexByte(rest, '"'); i > 0 {
			eventID = rest[:i]
		}
	}
	return seq, sent, eventID, ok1 && ok2
}

func intAfter(b, key []byte) (int64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	var n int64
	digits := 0
	for _, c := range b {
		if c < '0' || c > '9' || digits == 19 {
			break
		}
		n = n*10 + int64(c-'0')
		digits++
	}
	return n, digits > 0
}

func (rc *Receiver) handle(ctx *fasthttp.RequestCtx) {
	if rc.gate != nil {
		select {
		case <-rc.gate:
		case <-rc.closing:
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			return
		}
	}
	now := time.Now()
	nowNS := now.UnixNano()
	n := rc.requests.Add(1)
	rc.firstAtNS.CompareAndSwap(0, nowNS)

	body := ctx.PostBody()
	seq, sent, eventID, ok := parseEventBody(body)
	if !ok || seq >= rc.table.cap() {
		rc.malformed.Add(1)
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		return
	}
	id := ctx.Request.Header.Peek(signature.HeaderID)
	if sp := rc.secret.Load(); sp != nil {
		err := signature.Verify(*sp, string(id),
			string(ctx.Request.Header.Peek(signature.HeaderTimestamp)),
			string(ctx.Request.Header.Peek(signature.HeaderSignature)),
			body, now, 0)
		if err != nil {
			rc.badSignatures.Add(1)
			rc.errMu.Lock()
			if len(rc.sigErrors) < 16 {
				rc.sigErrors[err.Error()]++
			}
			rc.errMu.Unlock()
			ctx.SetStatusCode(fasthttp.StatusUnauthorized)
			return
		}
	}
	fail := rc.shouldFail(n) && rc.allowFail(id)
	if d := rc.cfg.Latency; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-rc.closing:
			t.Stop()
		}
	}
	var dh, eh uint64
	if len(id) > 0 {
		dh = fnv64(id)
	}
	if len(eventID) > 0 {
		eh = fnv64(eventID)
	}
	note := rc.table.record(seq, dh, eh, sent, nowNS, !fail)
	switch {
	case note.otherDelivery:
		rc.otherDelivery.Add(1)
	case note.afterOK:
		rc.afterOK.Add(1)
	case note.afterFail:
		rc.afterFail.Add(1)
	}
	if note.otherEvent {
		rc.otherEvent.Add(1)
	}
	if fail {
		rc.injected.Add(1)
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		return
	}
	rc.okAnswers.Add(1)
	if note.first {
		rc.firstOKs.Add(1)
		storeMax(&rc.lastOKAtNS, nowNS)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// SignatureErrors returns the distinct verification errors seen (at most 16 kinds).
func (rc *Receiver) SignatureErrors() map[string]int64 {
	rc.errMu.Lock()
	defer rc.errMu.Unlock()
	out := make(map[string]int64, len(rc.sigErrors))
	for k, v := range rc.sigErrors {
		out[k] = v
	}
	return out
}
