package relay

import "net/url"

// logURL is an endpoint URL fit for the log: a URL may carry credentials (user:password@ or
// a token in the query), and logs must never hold a secret, so both are masked.
func logURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	return u.String()
}
