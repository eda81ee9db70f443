package signature

import (
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxSignatures bounds how many entries of a signature header are examined, so a hostile
// header cannot make a receiver spend unbounded CPU. Rotation needs two; 16 is generous.
const maxSignatures = 16

// maxTimestampDigits is the length of the largest int64; anything longer cannot parse.
const maxTimestampDigits = 19

// maxTimestamp is 9999-12-31T23:59:59Z, far beyond any real clock yet well inside what
// time.Unix represents.
const maxTimestamp = 253402300799

// Verify checks one delivery against secret. timestampHeader is the decimal Unix-seconds
// header value; signatureHeader may hold several space-separated "v1,<base64>" entries, and
// any one matching is enough (entries of other versions are ignored). The timestamp must
// lie within tolerance of now in either direction; tolerance <= 0 means DefaultTolerance.
//
// It returns nil on success, or an error wrapping one of the sentinel errors. It never
// panics, whatever the input.
func Verify(secret, msgID, timestampHeader, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := DecodeSecret(secret)
	if err != nil {
		return err
	}
	switch {
	case msgID == "":
		return fmt.Errorf("%w: message id", ErrMissingHeader)
	case timestampHeader == "":
		return fmt.Errorf("%w: timestamp", ErrMissingHeader)
	case signatureHeader == "":
		return fmt.Errorf("%w: signature", ErrMissingHeader)
	}

	// The timestamp is checked before any MAC is computed: stale or garbage requests are the
	// cheap ones to turn away.
	ts, err := parseTimestamp(timestampHeader)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// time.Unix wraps for seconds near MaxInt64, so absurd values are turned away before it;
	// past that, time.Time.Sub saturates instead of overflowing.
	if ts > maxTimestamp {
		return fmt.Errorf("%w: %d is beyond year 9999", ErrTimestampTooNew, ts)
	}
	sent := time.Unix(ts, 0)
	if age := now.Sub(sent); age > tolerance {
		return fmt.Errorf("%w: %s old, tolerance %s", ErrTimestampTooOld, age.Truncate(time.Second), tolerance)
	}
	if ahead := sent.Sub(now); ahead > tolerance {
		return fmt.Errorf("%w: %s ahead, tolerance %s", ErrTimestampTooNew, ahead.Truncate(time.Second), tolerance)
	}

	// Like Standard Webhooks libraries, sign the re-formatted number rather than the raw
	// header; parseTimestamp allows no sign, so the two can differ only by leading zeros.
	expected := newSignerKey(key).compute(msgID, ts, body)
	if matchAny(expected, signatureHeader) {
		return nil
	}
	return ErrNoMatchingSignature
}

// VerifyHeaders verifies a delivery from its HTTP headers against the current time and
// DefaultTolerance. Each value is read from the webhook-* header when present, else from
// its X-BlameTrail-* counterpart.
func VerifyHeaders(secret string, h http.Header, body []byte) error {
	return Verify(secret,
		headerValue(h, HeaderID, HeaderBlameTrailDelivery),
		headerValue(h, HeaderTimestamp, HeaderBlameTrailTimestamp),
		headerValue(h, HeaderSignature, HeaderBlameTrailSignature),
		body, time.Now(), DefaultTolerance)
}

func headerValue(h http.Header, preferred, fallback string) string {
	if v := h.Get(preferred); v != "" {
		return v
	}
	return h.Get(fallback)
}

// parseTimestamp accepts only ASCII digits: strconv.ParseInt would also take a sign, and a
// "+" or "-" form would sign differently on the two sides.
func parseTimestamp(v string) (int64, error) {
	if len(v) > maxTimestampDigits {
		return 0, fmt.Errorf("%w: %d characters", ErrInvalidTimestamp, len(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not decimal Unix seconds", ErrInvalidTimestamp, v)
		}
	}
	ts, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidTimestamp, err)
	}
	return ts, nil
}

// matchAny reports whether any of the first maxSignatures entries of header is a v1
// signature equal to expected. It walks the header in place rather than splitting it, so a
// huge header costs no allocation.
func matchAny(expected []byte, header string) bool {
	// A padded encoding of a SHA-256 MAC is 44 characters; DecodedLen rounds up to 33.
	var buf [33]byte
	rest := header
	for seen := 0; seen < maxSignatures; {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return false
		}
		var entry string
		entry, rest, _ = strings.Cut(rest, " ")
		seen++

		encoded, ok := strings.CutPrefix(entry, versionPrefix)
		if !ok || len(encoded) != base64.StdEncoding.EncodedLen(len(expected)) {
			continue
		}
		n, err := base64.StdEncoding.Decode(buf[:], []byte(encoded))
		if err != nil {
			continue
		}
		if hmac.Equal(expected, buf[:n]) {
			return true
		}
	}
	return false
}
