package delivery

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

const (
	// maxResponseHeader bounds a response's status line and headers together. CDNs, gateways
	// and cookies make headers of several KiB; fasthttp parses them inside the connection's
	// read buffer, so this is that buffer's size (its default, 4 KiB, failed such answers).
	//
	// The buffer is not held by idle connections: fasthttp takes a reader from one
	// client-wide sync.Pool for each attempt and puts it back once the streamed body is
	// closed, so memory is about maxResponseHeader per attempt in flight, whatever the number
	// of endpoints or pooled connections, and the garbage collector frees pooled readers
	// when traffic drops (TestSenderIdleConnectionMemory measures it).
	maxResponseHeader = 64 << 10
	// maxResponseBody is how much of a body is read, only so the connection can serve the
	// next attempt; it is discarded as it is read. Receivers are judged by their status.
	maxResponseBody = 64 << 10
	// maxBodyDrain bounds the time spent reading a body after the status is known, so a
	// receiver that trickles an endless body does not hold the attempt to its timeout.
	maxBodyDrain = time.Second
)

// sender performs single attempts over a shared keep-alive client.
type sender struct {
	cfg     Config
	client  *fasthttp.Client
	signers signerCache
}

// signerCache keeps HMAC state per secret: building a Signer decodes the secret and allocates
// two SHA-256 states, which per attempt would be most of the signing cost.
type signerCache struct {
	mu    sync.Mutex
	pools map[string]*sync.Pool
}

func (c *signerCache) get(secret string) (*signature.Signer, *sync.Pool, error) {
	c.mu.Lock()
	p, ok := c.pools[secret]
	if !ok {
		if c.pools == nil || len(c.pools) > 10_000 { // deleted endpoints' secrets drop out here
			c.pools = make(map[string]*sync.Pool)
		}
		p = &sync.Pool{}
		c.pools[secret] = p
	}
	c.mu.Unlock()
	if sg, ok := p.Get().(*signature.Signer); ok {
		return sg, p, nil
	}
	sg, err := signature.NewSigner(secret)
	return sg, p, err
}

type result struct {
	attempt    store.Attempt
	success    bool
	gone       bool
	retryAfter time.Duration
	class      Result
	took       time.Duration
}

func newSender(cfg Config) *sender {
	d := &netpolicy.Dialer{Policy: cfg.Policy, Timeout: cfg.Timeout}
	return &sender{cfg: cfg, client: &fasthttp.Client{
		DialTimeout: d.DialTimeout,
		// POST is not idempotent, but receivers dedupe on the delivery id and our own schedule
		// decides retries; fasthttp must never resend on its own.
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		MaxIdemponentCallAttempts: 1,
		MaxConnsPerHost:           4096,
		MaxConnWaitTimeout:        cfg.Timeout,
		// Shorter than common servers' keep-alive timeouts (Node and Apache: 5 s), so an
		// attempt rarely lands on a connection the receiver is closing: that fails as
		// "connection closed" and costs the delivery a whole retry step.
		MaxIdleConnDuration: 4 * time.Second,
		ReadTimeout:         cfg.Timeout,
		WriteTimeout:        cfg.Timeout,
		ReadBufferSize:      maxResponseHeader,
		// The body is streamed and drained up to maxResponseBody by discardBody, never
		// buffered; MaxResponseBodySize bounds it should fasthttp ever buffer it anyway.
		StreamResponseBody:  true,
		MaxResponseBodySize: maxResponseBody,
		// fasthttp's errors would otherwise quote response bytes. describe never copies
		// them either; this is one more guard.
		ConfigureClient: func(hc *fasthttp.HostClient) error {
			hc.SecureErrorLogMessage = true
			return nil
		},
		NoDefaultUserAgentHeader: true,
		// The URL is sent exactly as the customer wrote it.
		DisablePathNormalizing: true,
		// Header names go out exactly as the contract spells them (webhook-id, not Webhook-Id).
		DisableHeaderNamesNormalizing: true,
	}}
}

func (s *sender) send(job store.Job) result {
	start := time.Now()
	res := result{attempt: store.Attempt{N: job.N, At: start.UTC().Truncate(time.Millisecond)}}
	code, retryAfter, err := s.do(job, start)
	res.took = time.Since(start)
	res.attempt.DurationMS = res.took.Milliseconds()
	res.attempt.StatusCode = code
	res.retryAfter = retryAfter
	res.class = ResultHTTPError
	switch {
	case err != "":
		res.attempt.Error = truncateError(err)
		if code == 0 { // a redirect has its status and an error
			res.class = classify(err)
		}
	case code >= 200 && code < 300:
		res.success = true
		res.class = ResultSuccess
	case code == fasthttp.StatusGone:
		res.gone = true
	}
	return res
}

// do performs one attempt and returns the status, the Retry-After of a 429 or 503, and a
// failure in the words of describe ("" when the receiver answered with a non-3xx status).
func (s *sender) do(job store.Job, now time.Time) (int, time.Duration, string) {
	if err := s.checkScheme(job.URL); err != nil {
		return 0, 0, describe(err, s.cfg.Timeout)
	}
	signer, pool, err := s.signers.get(job.Secret)
	if err != nil {
		return 0, 0, "endpoint secret unusable"
	}
	defer pool.Put(signer)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	ts := now.Unix()
	// Room for the timestamp and two signatures (a rotation's overlap), so nothing allocates.
	var buf [20 + 2*signature.SignatureLen + 1]byte
	tsText := strconv.AppendInt(buf[:0], ts, 10)
	dlv := job.Delivery.String()
	sig := signer.AppendSignature(buf[len(tsText):len(tsText)], dlv, ts, job.Body)
	if job.PrevSecret != "" && now.Before(job.PrevExpires) {
		// "v1,<new> v1,<old>": a receiver that holds either secret verifies.
		if sig, err = s.appendSignature(append(sig, ' '), job.PrevSecret, dlv, ts, job.Body); err != nil {
			return 0, 0, "endpoint secret unusable"
		}
	}

	req.Header.DisableNormalizing()
	req.SetRequestURI(job.URL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.SetUserAgent(s.cfg.UserAgent)
	req.Header.Set(signature.HeaderBlameTrailEvent, job.EventType)
	req.Header.Set(signature.HeaderBlameTrailDelivery, dlv)
	req.Header.SetBytesV(signature.HeaderBlameTrailTimestamp, tsText)
	req.Header.SetBytesV(signature.HeaderBlameTrailSignature, sig)
	req.Header.Set(signature.HeaderID, dlv)
	req.Header.SetBytesV(signature.HeaderTimestamp, tsText)
	req.Header.SetBytesV(signature.HeaderSignature, sig)
	req.SetBodyRaw(job.Body)

	if err := s.client.DoTimeout(req, resp, s.cfg.Timeout); err != nil {
		return 0, 0, describe(err, s.cfg.Timeout)
	}
	// The status and headers are in; the answer is known. What is left of the body only
	// decides whether the connection is kept.
	defer discardBody(resp)
	code := resp.StatusCode()
	var retryAfter time.Duration
	if code == fasthttp.StatusTooManyRequests || code == fasthttp.StatusServiceUnavailable {
		retryAfter = parseRetryAfter(string(resp.Header.Peek("Retry-After")), time.Now())
	}
	if code >= 300 && code < 400 {
		return code, 0, redirectError(code, resp.Header.Peek("Location"))
	}
	return code, retryAfter, ""
}

// appendSignature appends the signature made with secret to dst.
func (s *sender) appendSignature(dst []byte, secret, msgID string, ts int64, body []byte) ([]byte, error) {
	signer, pool, err := s.signers.get(secret)
	if err != nil {
		return dst, err
	}
	defer pool.Put(signer)
	return signer.AppendSignature(dst, msgID, ts, body), nil
}

// discardBody reads and drops what is left of a streamed body, so the connection can serve
// the next attempt. A body longer than maxResponseBody, one still arriving after
// maxBodyDrain, or a broken one closes the connection instead: fasthttp pools it only when
// the body was read to its end.
func discardBody(resp *fasthttp.Response) {
	body, ok := resp.BodyStream().(fasthttp.ReadCloserWithError)
	if !ok {
		_ = resp.CloseBodyStream()
		return
	}
	// Closing the stream from the timer interrupts a Read that is waiting for bytes.
	stop := time.AfterFunc(maxBodyDrain, func() { _ = body.CloseWithError(errDrainTimeout) })
	_, _ = io.CopyN(io.Discard, body, maxResponseBody+1)
	stop.Stop()
	_ = resp.CloseBodyStream()
}

var errDrainTimeout = errors.New("response body still arriving")

// checkScheme re-checks the scheme at send time: the relay may have been restarted without
// --allow-http since the endpoint was created. The URL was validated at create time, so a
// prefix test is enough (parsing it per attempt showed up in profiles).
func (s *sender) checkScheme(raw string) error {
	switch {
	case hasPrefixFold(raw, "https://"):
		return nil
	case hasPrefixFold(raw, "http://"):
		if s.cfg.Policy.AllowHTTP {
			return nil
		}
		return fmt.Errorf("%w: http destinations need --allow-http", netpolicy.ErrDestinationRefused)
	}
	return fmt.Errorf("%w: only http and https URLs are delivered to", netpolicy.ErrDestinationRefused)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
