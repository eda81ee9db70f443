package api

import (
	"time"
)

// CodeInvalidSince is a recover body whose since is missing or not an RFC 3339 time.
const CodeInvalidSince = "invalid_since"

// Resend and recover refusals (409), told apart by code.
const (
	CodeDeliveryNotFinished = "delivery_not_finished"
	CodeEndpointInactive    = "endpoint_inactive"
	CodePayloadExpired      = "payload_expired"
)

// RecoverInput is a parsed POST /api/webhooks/endpoints/{id}/recover body.
type RecoverInput struct {
	// Since: failed deliveries whose last attempt was at or after it are resent.
	Since time.Time
}

// RecoverResult is the 202 body of a recover: how many failed deliveries were resent, how many
// could not be (their payload is no longer kept), and whether the call stopped at its bound
// with more left (call again: those already resent are pending and skipped).
type RecoverResult struct {
	Resent  int  `json:"resent"`
	Expired int  `json:"expired"`
	More    bool `json:"more"`
	// Relays (fleet mode) is how many relays took part: each holds the deliveries of the
	// events it accepted, and one that is down recovers nothing until it is back.
	Relays int `json:"relays,omitempty"`
}

// ParseRecover parses {"since":"<RFC 3339>"}. since is required: recovering "everything" by
// default would resend a whole history to a receiver that just came back.
func ParseRecover(body []byte) (RecoverInput, error) {
	var in RecoverInput
	if len(body) == 0 {
		return in, invalid(CodeInvalidSince, "since", "since is required: send {\"since\":\"<RFC 3339 time>\"}")
	}
	var since []byte
	err := scanObject(body, func(key string, raw []byte) error {
		if key != "since" {
			return invalid("unknown_field", key, "unknown field %q (allowed: since)", truncate(key, 64))
		}
		since = raw
		return nil
	})
	if err != nil {
		return in, err
	}
	if since == nil || isNull(since) {
		return in, invalid(CodeInvalidSince, "since", "since is required: an RFC 3339 time such as \"2026-11-26T15:00:00Z\"")
	}
	var s string
	if err := decodeField(since, &s); err != nil {
		return in, invalid(CodeInvalidSince, "since", "since must be a string holding an RFC 3339 time")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return in, invalid(CodeInvalidSince, "since", "since must be an RFC 3339 time such as \"2026-11-26T15:00:00Z\", not %q", truncate(s, 64))
	}
	in.Since = t.UTC()
	return in, nil
}
