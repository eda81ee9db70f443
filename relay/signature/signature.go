// Package signature owns the webhook signing scheme shared by the relay (which signs every
// delivery) and by receivers (which verify them): secret format, header names, the signed
// content layout, and the verification rules (timestamp tolerance, multiple signatures).
//
// The scheme is compatible with the Standard Webhooks specification, so a receiver may use
// any Standard Webhooks library instead of this package:
//
//	secret    = "whsec_" + base64(32 random bytes)
//	content   = msgID + "." + unixSeconds + "." + rawBody
//	signature = "v1," + base64(HMAC-SHA256(key, content))
//
// A signature header may carry several space-separated signatures so that a secret can be
// rotated without a window in which receivers reject deliveries.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix marks a signing secret. It is optional on input: a bare base64 key is
// accepted too, as Standard Webhooks libraries do.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a delivery's timestamp may be from the receiver's clock, in
// either direction, before it is rejected as a possible replay.
const DefaultTolerance = 5 * time.Minute

// Header names. The relay sends both families with identical values: the webhook-* names so
// Standard Webhooks libraries work unchanged, the X-BlameTrail-* names for receivers that
// predate them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"

	HeaderBlameTrailDelivery  = "X-BlameTrail-Delivery"
	HeaderBlameTrailTimestamp = "X-BlameTrail-Timestamp"
	HeaderBlameTrailSignature = "X-BlameTrail-Signature"
	// HeaderBlameTrailEvent carries the event type. It is not signed on its own; the event
	// type is also inside the signed body, which is what receivers should trust.
	HeaderBlameTrailEvent = "X-BlameTrail-Event"
)

// SignatureLen is the length of one "v1,<base64>" signature, so that callers of
// AppendSignature can size their buffer once.
const SignatureLen = len(versionPrefix) + 44 // base64 of a 32-byte SHA-256 MAC, padded

// Sentinel errors. Callers branch on them with errors.Is; the returned errors usually wrap
// them with detail.
var (
	ErrInvalidSecret       = errors.New("signature: invalid secret")
	ErrMissingHeader       = errors.New("signature: missing header")
	ErrInvalidTimestamp    = errors.New("signature: invalid timestamp")
	ErrTimestampTooOld     = errors.New("signature: timestamp too old")
	ErrTimestampTooNew     = errors.New("signature: timestamp too far in the future")
	ErrNoMatchingSignature = errors.New("signature: no matching signature")
)

const (
	versionPrefix = "v1,"
	// secretBytes is what GenerateSecret draws: the Standard Webhooks recommendation and
	// the SHA-256 block-size sweet spot.
	secretBytes = 32
	// Keys shorter than minKeyBytes are too weak to sign with; 24 is the floor used by
	// Standard Webhooks (its own test vector uses a 24-byte key). The upper bound only keeps
	// absurd inputs out; HMAC would hash anything longer than a block anyway.
	minKeyBytes = 24
	maxKeyBytes = 64
)

// GenerateSecret returns a new "whsec_"-prefixed secret drawn from crypto/rand.
func GenerateSecret() (string, error) {
	var key [secretBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", fmt.Errorf("signature: generating secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// DecodeSecret returns the HMAC key held by secret. The "whsec_" prefix is optional and
// surrounding whitespace is ignored, because secrets are often pasted or read from files
// with a trailing newline. The error wraps ErrInvalidSecret.
func DecodeSecret(secret string) ([]byte, error) {
	s := strings.TrimPrefix(strings.TrimSpace(secret), SecretPrefix)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// The base64 error holds only an offset, never secret material, so it is safe to
		// pass on.
		return nil, fmt.Errorf("%w: not standard base64: %v", ErrInvalidSecret, err)
	}
	if len(key) < minKeyBytes || len(key) > maxKeyBytes {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d to %d",
			ErrInvalidSecret, len(key), minKeyBytes, maxKeyBytes)
	}
	return key, nil
}

// Signer computes signatures for one secret. It keeps its HMAC state and scratch space
// between calls so that signing does not allocate; in exchange a Signer is NOT safe for
// concurrent use. Keep one per worker goroutine, or share them through a sync.Pool.
type Signer struct {
	mac     hash.Hash
	scratch []byte // "msgID.timestamp." prefix; hmac's Write takes []byte only
	sum     [sha256.Size]byte
}

// NewSigner returns a Signer for secret (see DecodeSecret for the accepted forms).
func NewSigner(secret string) (*Signer, error) {
	key, err := DecodeSecret(secret)
	if err != nil {
		return nil, err
	}
	return newSignerKey(key), nil
}

func newSignerKey(key []byte) *Signer {
	return &Signer{
		mac: hmac.New(sha256.New, key),
		// Room for typical delivery ids and a 19-digit timestamp; longer ids grow it once.
		scratch: make([]byte, 0, 128),
	}
}

// AppendSignature appends "v1,<base64 MAC>" for the given delivery to dst and returns the
// extended slice. With cap(dst)-len(dst) >= SignatureLen it does not allocate.
func (s *Signer) AppendSignature(dst []byte, msgID string, timestamp int64, body []byte) []byte {
	mac := s.compute(msgID, timestamp, body)
	dst = append(dst, versionPrefix...)
	return base64.StdEncoding.AppendEncode(dst, mac)
}

// compute returns the raw MAC of the signed content. The result aliases s.sum and is only
// valid until the next call.
func (s *Signer) compute(msgID string, timestamp int64, body []byte) []byte {
	p := append(s.scratch[:0], msgID...)
	p = append(p, '.')
	p = strconv.AppendInt(p, timestamp, 10)
	p = append(p, '.')
	s.scratch = p

	s.mac.Reset()
	s.mac.Write(p)
	s.mac.Write(body)
	return s.mac.Sum(s.sum[:0])
}

// Sign returns the signature header value for one delivery. It is a convenience for tests
// and one-off use; the relay's hot path uses a Signer.
func Sign(secret, msgID string, timestamp time.Time, body []byte) (string, error) {
	s, err := NewSigner(secret)
	if err != nil {
		return "", err
	}
	return string(s.AppendSignature(make([]byte, 0, SignatureLen), msgID, timestamp.Unix(), body)), nil
}
