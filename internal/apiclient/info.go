package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// ErrNotRelay: the server at the base URL answered GET /api/info, but not as a BlameTrail
// relay with an API version this client speaks. It may be another HTTP server, or the relay
// behind a wrong base path.
var ErrNotRelay = errors.New("not a BlameTrail relay")

const infoPath = "/api/info"

// Info asks the server what it is. It does not judge the answer; Confirm does.
func (c *Client) Info(ctx context.Context) (api.Info, error) {
	var raw rawBody
	if err := c.do(ctx, "GET", infoPath, nil, nil, &raw); err != nil {
		return api.Info{}, err
	}
	var info api.Info
	if err := json.Unmarshal(raw.body, &info); err != nil {
		return api.Info{}, fmt.Errorf("%w: GET %s answered HTTP %d, %s: %q", ErrNotRelay, infoPath,
			raw.status, orNone(raw.contentType), c.excerpt(raw.body))
	}
	return info, nil
}

// Confirm makes sure the base URL leads to a BlameTrail relay that speaks this client's API
// version and accepts the token: GET /api/info must answer name "blametrail-relay" and a
// supported api_version. Only then does an endpoint_not_found mean that an endpoint is gone.
// The first success is kept for the client's life, so a Terraform run asks once. Calls made
// while a GET /api/info is in flight wait for it and share its answer, success or failure, and
// a failure also answers the calls made in the confirmFailureTTL after it: Terraform reads
// many resources at once, in waves of -parallelism, and a relay that does not answer must cost
// a run one request timeout, not one per resource or per wave. After that a failure is not
// kept, so a relay that was starting is asked again.
//
// The error wraps ErrNotRelay when something else answered, is an *Error matching
// ErrUnauthorized when a relay refused the token (ErrForbidden when the token is its ingest
// token, which may only post events), and is the transport or status error otherwise (the
// relay is down, or a proxy in front of it failed).
func (c *Client) Confirm(ctx context.Context) (api.Info, error) {
	for {
		c.confirmMu.Lock()
		if c.confirmed != nil {
			info := *c.confirmed
			c.confirmMu.Unlock()
			return info, nil
		}
		if f := c.failed; f != nil && time.Since(f.endedAt) < c.failureTTL {
			c.confirmMu.Unlock()
			return f.info, f.err
		}
		if call := c.confirming; call != nil {
			c.confirmMu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return api.Info{}, fmt.Errorf("apiclient: GET %s: %w", infoPath, ctx.Err())
			}
			if call.ctxEnded {
				continue // the caller that asked gave up; its failure says nothing: ask again
			}
			return call.info, call.err
		}
		call := &confirmCall{done: make(chan struct{})}
		c.confirming = call
		c.confirmMu.Unlock()

		call.info, call.err = c.confirm(ctx)
		call.ctxEnded = call.err != nil && ctx.Err() != nil
		call.endedAt = time.Now()
		c.confirmMu.Lock()
		switch {
		case call.err == nil:
			c.confirmed = &call.info
		case !call.ctxEnded:
			c.failed = call
		}
		c.confirming = nil
		c.confirmMu.Unlock()
		close(call.done)
		return call.info, call.err
	}
}

// confirmCall is one GET /api/info that concurrent Confirms share.
type confirmCall struct {
	done     chan struct{} // closed once info and err are set
	info     api.Info
	err      error
	ctxEnded bool // err came from the asking caller's context ending, not from the server
	endedAt  time.Time
}

// confirmFailureTTL is how long a failed Confirm answers later calls without asking again:
// enough for the next waves of a Terraform run's reads, which follow within milliseconds.
const confirmFailureTTL = 2 * time.Second

// confirm asks GET /api/info once and judges the answer (see Confirm).
func (c *Client) confirm(ctx context.Context) (api.Info, error) {
	info, err := c.Info(ctx)
	var ae *Error
	switch {
	case err == nil:
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.Code == "unauthorized":
		return api.Info{}, err // a relay's own 401: the token is wrong, the address is right
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden && ae.Code == "forbidden":
		return api.Info{}, err // a relay's own 403: the ingest token, at the right address
	case errors.As(err, &ae) && ae.Status < 500:
		return api.Info{}, fmt.Errorf("%w: %w", ErrNotRelay, err)
	default:
		return api.Info{}, err
	}
	if info.Name != api.RelayName {
		return api.Info{}, fmt.Errorf("%w: GET %s answered name %q, want %q", ErrNotRelay, infoPath, info.Name, api.RelayName)
	}
	if !supportedAPIVersion(info.APIVersion) {
		return api.Info{}, fmt.Errorf("%w: GET %s answered api_version %d (relay version %q); this client speaks %d",
			ErrNotRelay, infoPath, info.APIVersion, info.Version, api.APIVersion)
	}
	return info, nil
}

func supportedAPIVersion(v int) bool { return v == api.APIVersion }

// BaseURL is the base URL the client was made with, credentials masked: what error messages
// name as "the relay".
func (c *Client) BaseURL() string { return strings.TrimRight(c.base.Redacted(), "/") }

func orNone(contentType string) string {
	if contentType == "" {
		return "no content type"
	}
	return contentType
}
