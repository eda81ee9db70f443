// Package netpolicy owns the webhook relay's outbound network policy: which
// customer-supplied webhook URLs are acceptable, and which network
// destinations the relay may connect to on a customer's behalf (SSRF
// protection).
//
// It has two layers. CheckURL is a cheap, DNS-free check used when an
// endpoint is created or updated, so customers get an immediate, readable
// error. Dialer is the authoritative check: it resolves the host once,
// vets every resolved address and connects to a vetted IP itself, so a DNS
// answer that changes between check and connect (DNS rebinding) cannot
// redirect the relay.
//
// This package must never perform a second DNS lookup between checking an
// address and connecting to it, never connect to an address it has not
// classified, and never let a refused address through because another
// resolved address was acceptable. It does no HTTP, logging or
// configuration parsing: callers own those.
package netpolicy

import (
	"errors"
	"fmt"
)

// Policy is the set of operator switches that relax the default, strict
// policy. The zero value is the strict policy used in production.
type Policy struct {
	// AllowHTTP permits plain-http endpoint URLs (--allow-http).
	AllowHTTP bool
	// AllowPrivate permits loopback, private, link-local and other
	// non-public destinations (--allow-private-networks), for local
	// development and self-hosted relays.
	AllowPrivate bool
}

// Sentinels for callers to branch on with errors.Is. Every CheckURL error
// wraps exactly one of them. Dialer errors wrap ErrDestinationRefused when
// the policy refused every resolved address, ErrInvalidURL for a malformed
// "host:port", and otherwise the underlying resolve or connect error.
var (
	// ErrInvalidURL marks a URL that is malformed or has a shape the relay
	// will not store (relative, fragment, bad port, too long, ...).
	ErrInvalidURL = errors.New("invalid url")
	// ErrSchemeNotAllowed marks http without AllowHTTP, or any scheme other
	// than http and https.
	ErrSchemeNotAllowed = errors.New("url scheme not allowed")
	// ErrDestinationRefused marks a destination that is, or resolves to, an
	// address the policy refuses.
	ErrDestinationRefused = errors.New("destination refused by network policy")
)

// Flag names quoted in error messages so an operator reading an API error
// knows which switch relaxes the rule.
const (
	flagAllowHTTP    = "--allow-http"
	flagAllowPrivate = "--allow-private-networks"
)

// policyError carries a message written for an API error body while still
// matching its sentinel with errors.Is. fmt.Errorf("%s: %w") would append the
// sentinel's text to every message, which reads badly to customers.
type policyError struct {
	msg  string
	kind error
}

func (e *policyError) Error() string { return e.msg }
func (e *policyError) Unwrap() error { return e.kind }

func invalidf(format string, args ...any) error {
	return &policyError{msg: fmt.Sprintf(format, args...), kind: ErrInvalidURL}
}

func schemef(format string, args ...any) error {
	return &policyError{msg: fmt.Sprintf(format, args...), kind: ErrSchemeNotAllowed}
}

func refusedf(format string, args ...any) error {
	return &policyError{msg: fmt.Sprintf(format, args...), kind: ErrDestinationRefused}
}
