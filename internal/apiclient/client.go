// Package apiclient is the Go client of the relay's admin API, used by the Terraform provider
// and by the relay's own tests. It owns transport concerns (auth, user agent, bounded retries
// that honour Retry-After) and turns error bodies into typed errors; the wire shapes come from
// internal/api. It must never log the token or a secret.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// Sentinel errors; an *Error matches them with errors.Is by status (and code).
var (
	// ErrNotFound is any 404: a missing object, but also a path the server does not serve
	// (a wrong base URL) or another HTTP server altogether. It never proves that an endpoint
	// is gone; ErrEndpointNotFound from a confirmed relay (see Confirm) does.
	ErrNotFound = errors.New("not found")
	// ErrEndpointNotFound is a 404 with the relay's code endpoint_not_found.
	ErrEndpointNotFound = errors.New("endpoint not found")
	ErrUnauthorized     = errors.New("unauthorized")
	// ErrForbidden is a 403: the token is valid but lacks the right, such as the relay's
	// ingest token (--ingest-token) on the admin API.
	ErrForbidden  = errors.New("forbidden")
	ErrValidation = errors.New("validation failed")
	ErrConflict   = errors.New("conflict")
)

// Error is a non-2xx answer. Code, Message and Field come from a relay's error body; when the
// body is not one (another server answered), ContentType and Excerpt say what it was.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string

	Method      string // of the request, such as GET
	Path        string // of the request, without the base URL's and without the query
	ContentType string // of the answer; "" when it had none
	Excerpt     string // the start of a body that is not a relay error, on one line
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s %s answered HTTP %d (%s): %s", e.Method, e.Path, e.Status, e.Code, e.Message)
	}
	ct := orNone(e.ContentType)
	body := "empty body"
	if e.Excerpt != "" {
		body = strconv.Quote(e.Excerpt)
	}
	return fmt.Sprintf("%s %s answered HTTP %d, %s: %s", e.Method, e.Path, e.Status, ct, body)
}

// Is lets callers branch with errors.Is(err, apiclient.ErrNotFound).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrEndpointNotFound:
		return e.Status == http.StatusNotFound && e.Code == api.CodeEndpointNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrValidation:
		return e.Status == http.StatusUnprocessableEntity
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// Client talks to one relay. The zero value is not usable; use New.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
	retries   int
	maxWait   time.Duration

	logRequest func(context.Context, RequestLog)

	confirmMu  sync.Mutex
	confirmed  *api.Info    // set by the first successful Confirm
	confirming *confirmCall // the GET /api/info in flight, which concurrent Confirms share
	failed     *confirmCall // the last failed one, shared for confirmFailureTTL after it ended
	failureTTL time.Duration
}

// Option adjusts a Client.
type Option func(*Client)

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithHTTPClient replaces the default http.Client (30 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a retryable request is retried (default 4) and the longest
// single wait between tries (default 30 s).
func WithRetries(n int, maxWait time.Duration) Option {
	return func(c *Client) { c.retries, c.maxWait = n, maxWait }
}

// RequestLog describes one HTTP request the client sent (each retry is one more): what a
// debug log may show. It never holds the token, a body or the base URL.
type RequestLog struct {
	Method   string
	Path     string // without the base URL and the query
	Status   int    // 0 when no answer came
	Duration time.Duration
	Attempt  int   // 1 for the first try
	Err      error // the transport error when no answer came
}

// WithRequestLog calls f after every request, with the request's context.
func WithRequestLog(f func(context.Context, RequestLog)) Option {
	return func(c *Client) { c.logRequest = f }
}

// New returns a client for the relay at baseURL (e.g. "http://127.0.0.1:8080").
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apiclient: endpoint %q must be an absolute http(s) URL such as http://127.0.0.1:8080", baseURL)
	}
	if token == "" {
		return nil, errors.New("apiclient: api token is empty")
	}
	c := &Client{
		base:      u,
		token:     token,
		http:      &http.Client{Timeout: 30 * time.Second},
		userAgent: "blametrail-apiclient",
		retries:   4,
		maxWait:   30 * time.Second,

		failureTTL: confirmFailureTTL,
	}
	for _, o := range opts {
		o(c)
	}
	// The relay never redirects; following one would send the token somewhere else.
	h := *c.http
	h.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &h
	return c, nil
}

// do sends one API call, retrying 429 and 503 (502 and 504 too, except for POST; see
// retryableStatus) and connections that were refused, with exponential backoff that honours
// Retry-After, at most c.retries times. out may be nil.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("apiclient: encode %s %s: %w", method, path, err)
		}
	}
	// path arrives escaped (ids go through url.PathEscape); setting only Path would escape
	// it a second time, turning "%2F" into "%252F".
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	}
	u.RawQuery = query.Encode()
	for try := 0; ; try++ {
		start := time.Now()
		resp, err := c.send(ctx, method, u.String(), body)
		if c.logRequest != nil {
			l := RequestLog{Method: method, Path: path, Duration: time.Since(start), Attempt: try + 1, Err: err}
			if err == nil {
				l.Status = resp.StatusCode
			}
			c.logRequest(ctx, l)
		}
		var wait time.Duration
		switch {
		case err != nil:
			if try >= c.retries || !retryableNetError(err) {
				return fmt.Errorf("apiclient: %s %s: %w", method, path, err)
			}
			wait = backoff(try)
		case retryableStatus(method, resp.StatusCode) && try < c.retries:
			wait = max(backoff(try), retryAfter(resp.Header.Get("Retry-After")))
			drain(resp)
		default:
			return c.decode(resp, method, path, out)
		}
		wait = min(wait, c.maxWait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("apiclient: %s %s: %w", method, path, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Client) send(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.http.Do(req)
}

// rawBody, as the out of do, receives a 2xx answer as it came, for callers that must judge
// what answered before trusting its shape (Info).
type rawBody struct {
	status      int
	contentType string
	body        []byte
}

func (c *Client) decode(resp *http.Response, method, path string, out any) error {
	defer drain(resp)
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("apiclient: %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Method: method, Path: path, ContentType: resp.Header.Get("Content-Type")}
		var eb api.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Message, e.Field = eb.Error.Code, eb.Error.Message, eb.Error.Field
		} else {
			e.Excerpt = c.excerpt(b)
		}
		return e
	}
	if rb, ok := out.(*rawBody); ok {
		rb.status, rb.contentType, rb.body = resp.StatusCode, resp.Header.Get("Content-Type"), b
		return nil
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("apiclient: %s %s: decode response: %w", method, path, err)
	}
	return nil
}

// excerptLen bounds the part of a foreign body quoted in an error: enough to recognise a
// "404 page not found" or an HTML title, too little to flood a diagnostic.
const excerptLen = 100

// excerpt is the start of body on one line, for an error that must say what answered. The
// token is cut out first: a server that echoes requests would otherwise put it in a
// diagnostic or a CI log.
func (c *Client) excerpt(body []byte) string {
	s := strings.ReplaceAll(string(body), c.token, "<redacted>")
	s = strings.ToValidUTF8(s[:min(len(s), 4<<10)], "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(s); len(r) > excerptLen {
		s = string(r[:excerptLen]) + "…"
	}
	return s
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// retryableStatus: 429 and 503 mean the relay did not act on the request, so any method may
// be sent again. 502 and 504 come from a proxy in front of the relay, which may have acted
// on the request before the proxy gave up: only requests that are safe to repeat (every
// method but POST, here) are retried, so a create is never made twice.
func retryableStatus(method string, code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return method != http.MethodPost
	}
	return false
}

// retryableNetError is true only where the request cannot have reached the relay, so even a
// POST is safe to send again.
func retryableNetError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

func backoff(try int) time.Duration {
	d := 200 * time.Millisecond << min(try, 8)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
