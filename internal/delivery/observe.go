package delivery

import (
	"strings"
	"time"
)

// Result classifies an attempt for the metrics. Its values are bounded (labels of a series).
type Result uint8

const (
	ResultSuccess   Result = iota // a 2xx within the timeout
	ResultHTTPError               // any other status, redirects and 410 included
	ResultTimeout                 // no connection or no response within the timeout
	ResultNetwork                 // connection, DNS or TLS failure, or a malformed response
	ResultRefused                 // the network policy refused the destination
	ResultLocal                   // nothing was sent: the payload or the secret was unusable
	NumResults
)

var resultNames = [NumResults]string{"success", "http_error", "timeout", "network", "refused", "local"}

// String is the result's label value.
func (r Result) String() string {
	if r < NumResults {
		return resultNames[r]
	}
	return "unknown"
}

// Observer is told what the engine does, for metrics. Its methods are called from the
// attempt goroutines, concurrently, and must be cheap and never block. Config.Observer nil
// means nobody is told.
type Observer interface {
	// Attempt: one attempt ended with result after took.
	Attempt(result Result, took time.Duration)
	// Finished: a delivery ended, succeeded or failed for good. latency is from the event's
	// acceptance to the end of the successful attempt (0 when it failed, negative when it is
	// not measured: a resent delivery's event was accepted long before the resend).
	Finished(succeeded bool, latency time.Duration)
	// Disabled: the engine's outcome disabled an endpoint, for reason (api.Disabled*).
	Disabled(reason string)
}

// classify maps a failure phrase from describe (the attempt's stored error) to a Result.
func classify(msg string) Result {
	switch {
	case strings.HasPrefix(msg, "timeout:"):
		return ResultTimeout
	case strings.HasPrefix(msg, "destination refused by network policy"), msg == "invalid endpoint url":
		return ResultRefused
	case msg == "endpoint secret unusable":
		return ResultLocal
	}
	return ResultNetwork
}
