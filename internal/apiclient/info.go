package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

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
// The first success is kept for the client's life, so a Terraform run asks once; failures are
// not kept, so a relay that was starting is asked again.
//
// The error wraps ErrNotRelay when something else answered, is an *Error matching
// ErrUnauthorized when a relay refused the token (ErrForbidden when the token is its ingest
// token, which may only post events), and is the transport or status error otherwise (the
// relay is down, or a proxy in front of it failed).
func (c *Client) Confirm(ctx context.Context) (api.Info, error) {
	c.confirmMu.Lock()
	defer c.confirmMu.Unlock()
	if c.confirmed != nil {
		return *c.confirmed, nil
	}
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
	c.confirmed = &info
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
