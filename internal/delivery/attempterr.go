package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
)

// An attempt's error goes to the admin API, the WAL and the log. It is written in our own
// words from a fixed vocabulary: the status code is stored beside it, and nothing a receiver
// sent (status text, headers, cookies, Location, body) is ever copied into it, since those
// may carry the receiver's tokens. fasthttp's own errors quote response bytes, so they are
// classified, never passed on.
//
//	timeout: could not connect within <timeout>
//	timeout: no response within <timeout>
//	connection refused | connection reset | connection closed before a response
//	connection closed inside the response headers | network unreachable | host unreachable
//	connection error
//	dns: no such host | dns: lookup failed
//	tls: certificate signed by an unknown authority | tls: certificate is not valid for the host
//	tls: certificate expired or not yet valid | tls: certificate invalid
//	tls: certificate verification failed | tls: the receiver did not answer with TLS
//	tls: the receiver sent alert: <alert name> | tls: handshake failed
//	response header too large | malformed response
//	redirect (<code>) not followed[, to <scheme>://<host> | , to the same host]
//	too many connections to the receiver
//	destination refused by network policy: <our own text: host, addresses, address class>
//	invalid endpoint url | endpoint secret unusable | request failed
const maxErrorLen = 200

// describe maps an error from one attempt to a phrase of the vocabulary above.
func describe(err error, timeout time.Duration) string {
	var (
		small    *fasthttp.ErrSmallBuffer
		dnsErr   *net.DNSError
		opErr    *net.OpError
		netErr   net.Error
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case errors.Is(err, netpolicy.ErrDestinationRefused):
		return refusal(err)
	case errors.Is(err, netpolicy.ErrInvalidURL):
		return "invalid endpoint url"
	case errors.As(err, &small):
		return "response header too large"

	case errors.As(err, &unknown):
		return "tls: certificate signed by an unknown authority"
	case errors.As(err, &hostname):
		return "tls: certificate is not valid for the host"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "tls: certificate expired or not yet valid"
		}
		return "tls: certificate invalid"
	case errors.As(err, &verify):
		return "tls: certificate verification failed"
	case errors.As(err, &record):
		return "tls: the receiver did not answer with TLS"
	case errors.As(err, &alert):
		return "tls: the receiver sent alert: " + alertName(alert.Error())
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert from the peer this way; its text comes from the
		// standard library's table of alert names, keyed by one byte.
		return "tls: the receiver sent alert: " + alertName(opErr.Err.Error())

	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsTimeout:
			return fmt.Sprintf("timeout: could not connect within %s", timeout)
		case dnsErr.IsNotFound:
			return "dns: no such host"
		}
		return "dns: lookup failed"
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrTLSHandshakeTimeout),
		errors.As(err, &opErr) && opErr.Op == "dial" && opErr.Timeout():
		return fmt.Sprintf("timeout: could not connect within %s", timeout)
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timeout: no response within %s", timeout)

	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return "connection reset"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, fasthttp.ErrConnectionClosed), err == io.EOF:
		return "connection closed before a response"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "too many connections to the receiver"

	// fasthttp wraps every failure to read a status line and headers in this text, with the
	// parser's error (which quotes the receiver's bytes) after it.
	case strings.HasPrefix(err.Error(), "error when reading response headers"):
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "connection closed inside the response headers"
		}
		return "malformed response"
	case strings.Contains(err.Error(), "1xx informational responses"):
		return "malformed response"
	case strings.HasPrefix(err.Error(), "tls: "):
		return "tls: handshake failed"
	case errors.As(err, &opErr):
		return "connection error"
	}
	return "request failed"
}

// alertName keeps a TLS alert's name ("handshake failure", "alert(112)") when it looks like
// one of crypto/tls's, and nothing else.
func alertName(s string) string {
	s = strings.TrimPrefix(s, "tls: ")
	if len(s) == 0 || len(s) > 40 {
		return "unknown"
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != ' ' && c != '(' && c != ')' {
			return "unknown"
		}
	}
	return s
}

// refusal is the network policy's own text: it names the host from the endpoint URL, the
// addresses it resolved to and why each was refused, never anything a receiver sent.
func refusal(err error) string {
	const prefix = "destination refused by network policy"
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == netpolicy.ErrDestinationRefused {
			return prefix + ": " + strings.TrimPrefix(e.Error(), prefix+": ")
		}
	}
	return prefix
}

// redirectError says that a 3xx was not followed and, from its Location, at most the scheme
// and host: enough to see the usual fix (http to https, apex to www, a moved domain, a login
// gateway in front of the receiver). The path, query, fragment and user info are never
// repeated: signed URLs, session ids and OAuth state live there.
func redirectError(code int, location []byte) string {
	msg := fmt.Sprintf("redirect (%d) not followed", code)
	if target := redirectTarget(location); target != "" {
		msg += ", to " + target
	}
	return msg
}

func redirectTarget(location []byte) string {
	if len(location) == 0 || len(location) > 16<<10 {
		return ""
	}
	u, err := url.Parse(string(location))
	if err != nil {
		return ""
	}
	if u.Host == "" {
		if u.Scheme == "" && u.Opaque == "" {
			return "the same host"
		}
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "http", "https":
		scheme += "://"
	case "":
		scheme = "//"
	default:
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if !plainHost(host) || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + host
}

// plainHost accepts a DNS name or an IP literal of reasonable length, nothing else: no
// percent-escapes, no bytes that could forge a log line.
func plainHost(h string) bool {
	if h == "" || len(h) > 100 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' && c != ':' {
			return false
		}
	}
	return true
}

// truncateError bounds an attempt's stored error message to maxErrorLen bytes of valid
// UTF-8, cut on a rune boundary.
func truncateError(msg string) string {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if len(msg) <= maxErrorLen {
		return msg
	}
	const ellipsis = "…"
	cut := maxErrorLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + ellipsis
}
