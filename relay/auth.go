package relay

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/valyala/fasthttp"
)

// The relay knows two bearer tokens. The API token (--api-token, or the data dir's generated
// file) is the admin token: it may do everything, posting events included. The ingest token
// (--ingest-token), when set, may only post events: it is the one to give the application,
// so that a compromised application cannot read signing secrets or redirect endpoints.
// Neither token is ever logged or echoed.

// right is what a route needs of the presented token.
type right int

const (
	rightAdmin  right = iota // everything but ingest: the admin API, /api/info, /metrics
	rightIngest              // POST /api/events
)

// tokens are the bearer tokens the relay accepts.
type tokens struct {
	admin     tokenCheck
	ingest    tokenCheck
	hasIngest bool
}

func newTokens(admin, ingest string) tokens {
	return tokens{admin: newTokenCheck(admin), ingest: newTokenCheck(ingest), hasIngest: ingest != ""}
}

// tokenCheck compares bearer tokens in constant time. Both sides are hashed first so the
// comparison does not even leak the token's length.
type tokenCheck [sha256.Size]byte

func newTokenCheck(token string) tokenCheck { return sha256.Sum256([]byte(token)) }

// matches compares with the digest of a presented token (sha256.Sum256).
func (t tokenCheck) matches(presented [sha256.Size]byte) bool {
	return subtle.ConstantTimeCompare(t[:], presented[:]) == 1
}

// authorized is authorizedFor(ctx, rightAdmin): every authenticated route but ingest.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool { return s.authorizedFor(ctx, rightAdmin) }

// authorizedFor reports whether the request's bearer token grants want, and answers the
// request when it does not: 401 for a missing or unknown token, 403 for the ingest token on
// any other route.
//
// 403, not 401: the ingest token is a valid credential without the right (RFC 9110 §15.5.4,
// and RFC 6750 §3.1's insufficient_scope). A 401 would tell clients that the token is wrong or
// expired, which sends an operator hunting for a typo (and the web UI back to sign-in) when
// the fix is to use the other token; the 403's message says so. Nothing leaks: whoever gets
// the 403 holds the ingest token already. On a listener that does not serve a route at all
// (--admin-listen, see listeners.go) the route is a 404 before any token is looked at.
func (s *Server) authorizedFor(ctx *fasthttp.RequestCtx, want right) bool {
	auth := ctx.Request.Header.Peek("Authorization")
	// The scheme name is case-insensitive (RFC 9110 §11.1).
	found := len(auth) > 7 && bytes.EqualFold(auth[:7], []byte("Bearer "))
	var presented []byte
	if found {
		presented = bytes.TrimSpace(auth[7:])
	}
	// One hash, and both comparisons always run: the time taken does not depend on which
	// token came close.
	digest := sha256.Sum256(presented)
	admin := s.tokens.admin.matches(digest)
	ingest := s.tokens.ingest.matches(digest)
	admin = found && admin
	ingest = found && s.tokens.hasIngest && ingest
	switch {
	case admin, ingest && want == rightIngest:
		return true
	case ingest:
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="blametrail-relay", error="insufficient_scope"`)
		writeError(ctx, fasthttp.StatusForbidden, "forbidden",
			"this is the ingest token: it can only post events (POST /api/events); use the API token (--api-token) for this")
		return false
	}
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="blametrail-relay"`)
	msg := "missing bearer token: send Authorization: Bearer <api token>"
	if len(auth) > 0 {
		msg = "invalid api token"
	}
	writeError(ctx, fasthttp.StatusUnauthorized, "unauthorized", msg)
	return false
}
