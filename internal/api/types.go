// Package api owns the relay's wire contract: the JSON shapes of endpoints, deliveries, events
// and errors, the event-type catalogue, and the parsing and validation of request bodies.
//
// Both sides of the admin API use it (the relay's handlers and internal/apiclient), so the
// contract is written once. It must never do I/O or hold state: every function is a pure
// transformation of bytes and values, which is what lets the parsers be fuzzed.
package api

import "time"

// Event types a source may post. TypeTestPing is only created by the test route.
const (
	TypeIncidentOpened       = "incident.opened"
	TypeIncidentAcknowledged = "incident.acknowledged"
	TypeIncidentResolved     = "incident.resolved"
	TypeDeployIngested       = "deploy.ingested"
	TypeTestPing             = "test.ping"
)

// EventTypes lists the types an endpoint may subscribe to, in display order.
var EventTypes = []string{
	TypeIncidentOpened,
	TypeIncidentAcknowledged,
	TypeIncidentResolved,
	TypeDeployIngested,
	TypeTestPing,
}

// IngestibleType reports whether a source may post this type to POST /api/events.
func IngestibleType(t string) bool {
	switch t {
	case TypeIncidentOpened, TypeIncidentAcknowledged, TypeIncidentResolved, TypeDeployIngested:
		return true
	}
	return false
}

// KnownType reports whether t is any event type, test.ping included.
func KnownType(t string) bool { return t == TypeTestPing || IngestibleType(t) }

// Disabled reasons.
const (
	DisabledManual              = "manual"
	DisabledConsecutiveFailures = "consecutive_failures"
	DisabledGone                = "gone"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusHeld      = "held"
)

// Endpoint is the JSON form of a webhook endpoint. Secret is only set on create.
type Endpoint struct {
	ID                  string    `json:"id"`
	URL                 string    `json:"url"`
	Name                string    `json:"name"`
	Description         string    `json:"description"`
	EventTypes          []string  `json:"event_types"`
	Active              bool      `json:"active"`
	DisabledReason      *string   `json:"disabled_reason"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	Secret              string    `json:"secret,omitempty"`
}

// EndpointList is a page of endpoints.
type EndpointList struct {
	Data       []Endpoint `json:"data"`
	NextCursor *string    `json:"next_cursor"`
}

// Secret is the body of GET /api/webhooks/endpoints/{id}/secret.
type Secret struct {
	Secret string `json:"secret"`
}

// Attempt is one HTTP attempt of a delivery.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	StatusCode *int      `json:"status_code"`
	Error      *string   `json:"error"`
	DurationMS int64     `json:"duration_ms"`
}

// Delivery is the JSON form of one (event, endpoint) delivery and its attempts.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	EndpointID    string     `json:"endpoint_id"`
	Status        string     `json:"status"`
	Attempts      []Attempt  `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

// DeliveryList is a page of deliveries, newest first.
type DeliveryList struct {
	Data       []Delivery `json:"data"`
	NextCursor *string    `json:"next_cursor"`
}

// TestResult is the body of POST /api/webhooks/endpoints/{id}/test.
type TestResult struct {
	DeliveryID string `json:"delivery_id"`
}

// IngestResult is the body of a 202 from POST /api/events.
type IngestResult struct {
	ID         string `json:"id"`
	Deliveries int    `json:"deliveries"`
}

// EventTypeList is the body of GET /api/event-types.
type EventTypeList struct {
	Data []string `json:"data"`
}

// Info is the body of GET /api/info: what a client talks to. The Terraform provider trusts an
// endpoint_not_found (and drops an endpoint from its state) only from a server whose Info has
// Name RelayName and an APIVersion it supports.
type Info struct {
	Name       string `json:"name"`
	APIVersion int    `json:"api_version"`
	Version    string `json:"version"`
}

// RelayName is Info.Name of every BlameTrail relay.
const RelayName = "blametrail-relay"

// APIVersion is Info.APIVersion of this admin API. It changes only when a change would break
// existing clients.
const APIVersion = 1

// The three 404 codes. Clients must tell them apart: only CodeEndpointNotFound says that an
// endpoint does not exist; CodeRouteNotFound means the request went to a path the relay does
// not serve (a wrong base URL, say), which says nothing about any endpoint.
const (
	CodeEndpointNotFound = "endpoint_not_found"
	CodeDeliveryNotFound = "delivery_not_found"
	CodeRouteNotFound    = "route_not_found"
)

// ErrorBody is every error response: {"error":{"code":…,"message":…}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable machine code and a human message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}
