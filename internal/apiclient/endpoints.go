package apiclient

import (
	"context"
	"net/url"
	"strconv"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// EndpointCreate is the body of a create call.
type EndpointCreate struct {
	URL         string   `json:"url"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	EventTypes  []string `json:"event_types,omitempty"`
	Active      *bool    `json:"active,omitempty"`
	// Secret is a signing secret to use instead of a generated one ("whsec_…").
	Secret string `json:"secret,omitempty"`
}

// EndpointPatch holds the fields to change; nil fields are left alone. A non-nil empty
// EventTypes means "all event types".
type EndpointPatch struct {
	URL         *string   `json:"url,omitempty"`
	Name        *string   `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	EventTypes  *[]string `json:"event_types,omitempty"`
	Active      *bool     `json:"active,omitempty"`
}

const endpointsPath = "/api/webhooks/endpoints"

// CreateEndpoint creates an endpoint; the result carries its secret.
func (c *Client) CreateEndpoint(ctx context.Context, in EndpointCreate) (api.Endpoint, error) {
	var out api.Endpoint
	err := c.do(ctx, "POST", endpointsPath, nil, in, &out)
	return out, err
}

// Endpoint reads one endpoint (without its secret).
func (c *Client) Endpoint(ctx context.Context, id string) (api.Endpoint, error) {
	var out api.Endpoint
	err := c.do(ctx, "GET", endpointsPath+"/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// Secret reads an endpoint's signing secret.
func (c *Client) Secret(ctx context.Context, id string) (string, error) {
	var out api.Secret
	err := c.do(ctx, "GET", endpointsPath+"/"+url.PathEscape(id)+"/secret", nil, nil, &out)
	return out.Secret, err
}

// UpdateEndpoint changes the fields set in p.
func (c *Client) UpdateEndpoint(ctx context.Context, id string, p EndpointPatch) (api.Endpoint, error) {
	var out api.Endpoint
	err := c.do(ctx, "PATCH", endpointsPath+"/"+url.PathEscape(id), nil, p, &out)
	return out, err
}

// DeleteEndpoint deletes an endpoint.
func (c *Client) DeleteEndpoint(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", endpointsPath+"/"+url.PathEscape(id), nil, nil, nil)
}

// ListEndpoints reads one page; cursor "" starts at the first endpoint, limit 0 uses the
// relay's default.
func (c *Client) ListEndpoints(ctx context.Context, cursor string, limit int) (api.EndpointList, error) {
	var out api.EndpointList
	err := c.do(ctx, "GET", endpointsPath, pageQuery(cursor, limit), nil, &out)
	return out, err
}

// AllEndpoints follows the cursor to the end.
func (c *Client) AllEndpoints(ctx context.Context) ([]api.Endpoint, error) {
	var all []api.Endpoint
	cursor := ""
	for {
		page, err := c.ListEndpoints(ctx, cursor, api.MaxPageLimit)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.NextCursor == nil {
			return all, nil
		}
		cursor = *page.NextCursor
	}
}

// SendTest queues a test.ping delivery and returns its id.
func (c *Client) SendTest(ctx context.Context, id string) (string, error) {
	var out api.TestResult
	err := c.do(ctx, "POST", endpointsPath+"/"+url.PathEscape(id)+"/test", nil, nil, &out)
	return out.DeliveryID, err
}

// ListDeliveries reads one page of an endpoint's deliveries, newest first.
func (c *Client) ListDeliveries(ctx context.Context, id, cursor string, limit int) (api.DeliveryList, error) {
	var out api.DeliveryList
	err := c.do(ctx, "GET", endpointsPath+"/"+url.PathEscape(id)+"/deliveries", pageQuery(cursor, limit), nil, &out)
	return out, err
}

// Event is the body of an ingest call. Data must encode to a JSON object.
type Event struct {
	Type string `json:"type"`
	Data any    `json:"data"`
	ID   string `json:"id,omitempty"`
}

// Ingest posts an event; it returns once the relay has stored it durably.
func (c *Client) Ingest(ctx context.Context, ev Event) (api.IngestResult, error) {
	var out api.IngestResult
	err := c.do(ctx, "POST", "/api/events", nil, ev, &out)
	return out, err
}

// EventTypes lists the event types the relay knows.
func (c *Client) EventTypes(ctx context.Context) ([]string, error) {
	var out api.EventTypeList
	err := c.do(ctx, "GET", "/api/event-types", nil, nil, &out)
	return out.Data, err
}

func pageQuery(cursor string, limit int) url.Values {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}
