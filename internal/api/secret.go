package api

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Signing secrets a caller brings, and rotation.
const (
	// SecretPrefix starts every signing secret (the Standard Webhooks "whsec_").
	SecretPrefix = "whsec_"
	// MinSecretBytes and MaxSecretBytes bound the key a brought secret holds, as
	// relay/signature does: shorter keys are too weak, longer ones only waste space.
	MinSecretBytes = 24
	MaxSecretBytes = 64

	// DefaultRotationOverlap is how long the previous secret keeps signing after a rotation
	// that does not say.
	DefaultRotationOverlap = 24 * time.Hour
	// MaxRotationOverlap is the longest overlap a rotation may ask for: 7 days.
	MaxRotationOverlap = 7 * 24 * time.Hour

	CodeInvalidSecret           = "invalid_secret"
	CodeInvalidExpirePreviousIn = "invalid_expire_previous_in"
)

// ValidateSecret is the rule for a secret a caller brings: "whsec_" followed by the standard,
// padded base64 (RFC 4648 §4, canonical) of MinSecretBytes to MaxSecretBytes bytes, nothing
// around it. It is stricter than what receivers accept (relay/signature.DecodeSecret trims
// whitespace and takes a bare key) so that the secret shown back is exactly the one given.
// The message never quotes the secret.
func ValidateSecret(s string) error {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return invalid(CodeInvalidSecret, "secret", "secret must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	// The decoder skips '\r' and '\n'; encoding back catches them and anything else that is
	// not the one canonical form.
	if err != nil || base64.StdEncoding.EncodeToString(key) != b64 {
		return invalid(CodeInvalidSecret, "secret", "secret must be %q followed by standard base64 (with padding)", SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return invalid(CodeInvalidSecret, "secret", "secret must hold %d to %d bytes of key, not %d", MinSecretBytes, MaxSecretBytes, len(key))
	}
	return nil
}

func parseSecretField(raw json.RawMessage) (string, error) {
	var s string
	if err := decodeField(raw, &s); err != nil {
		return "", invalid(CodeInvalidSecret, "secret", "secret must be a string")
	}
	if err := ValidateSecret(s); err != nil {
		return "", err
	}
	return s, nil
}

// ParseOverlap parses how long a previous secret stays valid: a Go duration ("24h", "90m",
// "0" or "0s" for at once) from 0 to MaxRotationOverlap, in whole milliseconds. The Terraform provider applies it at
// plan time.
func ParseOverlap(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalid(CodeInvalidExpirePreviousIn, "expire_previous_in",
			"expire_previous_in must be a duration such as \"24h\", \"90m\" or \"0s\", not %q", truncate(s, 32))
	}
	// Whole milliseconds, as every time the API shows: "1ns" would otherwise show an expiry
	// with nine decimals beside created_at's three.
	if d = d.Truncate(time.Millisecond); d < 0 || d > MaxRotationOverlap {
		return 0, invalid(CodeInvalidExpirePreviousIn, "expire_previous_in",
			"expire_previous_in must be from 0s to %s (7 days), not %s", "168h", truncate(s, 32))
	}
	return d, nil
}

// RotateInput is a parsed POST /api/webhooks/endpoints/{id}/secret/rotate body.
type RotateInput struct {
	// ExpirePreviousIn is how long the current secret keeps signing next to the new one;
	// 0 drops it at once.
	ExpirePreviousIn time.Duration
	// Secret is the new secret when the caller brings one; nil means the relay generates it.
	Secret *string
}

// ParseRotateSecret parses a rotation body: {"expire_previous_in"?, "secret"?}. An empty
// body (no bytes at all) takes the defaults, so `curl -X POST` rotates.
func ParseRotateSecret(body []byte) (RotateInput, error) {
	in := RotateInput{ExpirePreviousIn: DefaultRotationOverlap}
	if len(body) == 0 {
		return in, nil
	}
	var expire, secret []byte
	err := scanObject(body, func(key string, raw []byte) error {
		switch key {
		case "expire_previous_in":
			expire = raw
		case "secret":
			secret = raw
		default:
			return invalid("unknown_field", key, "unknown field %q (allowed: expire_previous_in, secret)", truncate(key, 64))
		}
		return nil
	})
	if err != nil {
		return in, err
	}
	if expire != nil && !isNull(expire) {
		var s string
		if err := decodeField(expire, &s); err != nil {
			return in, invalid(CodeInvalidExpirePreviousIn, "expire_previous_in",
				"expire_previous_in must be a string holding a duration such as \"24h\"")
		}
		if in.ExpirePreviousIn, err = ParseOverlap(s); err != nil {
			return in, err
		}
	}
	if secret != nil && !isNull(secret) {
		s, err := parseSecretField(secret)
		if err != nil {
			return in, err
		}
		in.Secret = &s
	}
	return in, nil
}

// SecretInfo is the body of GET /api/webhooks/endpoints/{id}/secret and of a rotation: the
// current secret, and when the previous one stops signing (null when no previous secret is
// valid any more). The previous secret itself is never shown: receivers that need it already
// hold it, and showing it would only widen who sees a secret that is being retired.
type SecretInfo struct {
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}
