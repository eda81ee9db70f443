package signature_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

func mustSecret(t testing.TB) string {
	t.Helper()
	s, err := signature.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSign(t testing.TB, secret, msgID string, ts time.Time, body []byte) string {
	t.Helper()
	sig, err := signature.Sign(secret, msgID, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestVerify(t *testing.T) {
	secret, oldSecret, otherSecret := mustSecret(t), mustSecret(t), mustSecret(t)
	now := time.Unix(1700000000, 0)
	const id = "dlv_01HZX"
	body := []byte(`{"type":"drift.detected","data":{"stack":"prod"}}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := mustSign(t, secret, id, now, body)
	old := mustSign(t, oldSecret, id, now, body)
	wrong := mustSign(t, otherSecret, id, now, body)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	signedAt := func(d time.Duration) string { return mustSign(t, secret, id, now.Add(d), body) }

	tests := []struct {
		name      string
		secret    string
		id        string
		ts        string
		sig       string
		body      []byte
		tolerance time.Duration
		want      error // nil means success
	}{
		{name: "round trip", secret: secret, id: id, ts: ts, sig: good, body: body},
		{name: "bare secret", secret: strings.TrimPrefix(secret, "whsec_"), id: id, ts: ts, sig: good, body: body},
		{name: "rotation: new then old", secret: secret, id: id, ts: ts, sig: good + " " + old, body: body},
		{name: "rotation: old then new", secret: secret, id: id, ts: ts, sig: old + " " + good, body: body},
		{name: "rotation: old secret still verifies", secret: oldSecret, id: id, ts: ts, sig: good + " " + old, body: body},
		{name: "extra spaces between entries", secret: secret, id: id, ts: ts, sig: "  " + old + "   " + good + " ", body: body},
		{name: "unknown version ignored", secret: secret, id: id, ts: ts, sig: "v1a,xyz " + good, body: body},
		{name: "leading zeros in timestamp", secret: secret, id: id, ts: "00" + ts, sig: good, body: body},
		{name: "empty body", secret: secret, id: id, ts: ts, sig: mustSign(t, secret, id, now, nil), body: nil},

		{name: "wrong secret", secret: secret, id: id, ts: ts, sig: wrong, body: body, want: signature.ErrNoMatchingSignature},
		{name: "tampered body", secret: secret, id: id, ts: ts, sig: good, body: append([]byte{' '}, body...), want: signature.ErrNoMatchingSignature},
		{name: "truncated body", secret: secret, id: id, ts: ts, sig: good, body: body[:len(body)-1], want: signature.ErrNoMatchingSignature},
		{name: "tampered id", secret: secret, id: id + "x", ts: ts, sig: good, body: body, want: signature.ErrNoMatchingSignature},
		{name: "tampered timestamp", secret: secret, id: id, ts: at(time.Second), sig: good, body: body, want: signature.ErrNoMatchingSignature},
		{name: "right mac, other version", secret: secret, id: id, ts: ts, sig: "v2" + strings.TrimPrefix(good, "v1"), body: body, want: signature.ErrNoMatchingSignature},
		{name: "missing version", secret: secret, id: id, ts: ts, sig: strings.TrimPrefix(good, "v1,"), body: body, want: signature.ErrNoMatchingSignature},
		{name: "mac without padding", secret: secret, id: id, ts: ts, sig: strings.TrimSuffix(good, "="), body: body, want: signature.ErrNoMatchingSignature},
		{name: "comma separated entries", secret: secret, id: id, ts: ts, sig: old + "," + good, body: body, want: signature.ErrNoMatchingSignature},
		{name: "garbage signature", secret: secret, id: id, ts: ts, sig: "v1,!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", body: body, want: signature.ErrNoMatchingSignature},
		{name: "spaces only", secret: secret, id: id, ts: ts, sig: "   ", body: body, want: signature.ErrNoMatchingSignature},

		{name: "within tolerance, past", secret: secret, id: id, ts: at(-5 * time.Minute), sig: signedAt(-5 * time.Minute), body: body},
		{name: "within tolerance, future", secret: secret, id: id, ts: at(5 * time.Minute), sig: signedAt(5 * time.Minute), body: body},
		{name: "too old", secret: secret, id: id, ts: at(-5*time.Minute - time.Second), sig: signedAt(-5*time.Minute - time.Second), body: body, want: signature.ErrTimestampTooOld},
		{name: "too new", secret: secret, id: id, ts: at(5*time.Minute + time.Second), sig: signedAt(5*time.Minute + time.Second), body: body, want: signature.ErrTimestampTooNew},
		{name: "custom tolerance rejects", secret: secret, id: id, ts: at(-time.Minute), sig: signedAt(-time.Minute), body: body, tolerance: 30 * time.Second, want: signature.ErrTimestampTooOld},
		{name: "custom tolerance accepts", secret: secret, id: id, ts: at(-time.Hour), sig: signedAt(-time.Hour), body: body, tolerance: 2 * time.Hour},
		{name: "negative tolerance means default", secret: secret, id: id, ts: at(-time.Hour), sig: signedAt(-time.Hour), body: body, tolerance: -1, want: signature.ErrTimestampTooOld},
		{name: "epoch", secret: secret, id: id, ts: "0", sig: good, body: body, want: signature.ErrTimestampTooOld},
		{name: "year 10000", secret: secret, id: id, ts: "253402300800", sig: good, body: body, want: signature.ErrTimestampTooNew},
		{name: "max int64", secret: secret, id: id, ts: "9223372036854775807", sig: good, body: body, want: signature.ErrTimestampTooNew},

		{name: "missing id", secret: secret, id: "", ts: ts, sig: good, body: body, want: signature.ErrMissingHeader},
		{name: "missing timestamp", secret: secret, id: id, ts: "", sig: good, body: body, want: signature.ErrMissingHeader},
		{name: "missing signature", secret: secret, id: id, ts: ts, sig: "", body: body, want: signature.ErrMissingHeader},

		{name: "timestamp not a number", secret: secret, id: id, ts: "yesterday", sig: good, body: body, want: signature.ErrInvalidTimestamp},
		{name: "timestamp with sign", secret: secret, id: id, ts: "+" + ts, sig: good, body: body, want: signature.ErrInvalidTimestamp},
		{name: "negative timestamp", secret: secret, id: id, ts: "-" + ts, sig: good, body: body, want: signature.ErrInvalidTimestamp},
		{name: "timestamp with space", secret: secret, id: id, ts: ts + " ", sig: good, body: body, want: signature.ErrInvalidTimestamp},
		{name: "timestamp in milliseconds overflows", secret: secret, id: id, ts: "9223372036854775808", sig: good, body: body, want: signature.ErrInvalidTimestamp},
		{name: "timestamp too long", secret: secret, id: id, ts: strings.Repeat("1", 40), sig: good, body: body, want: signature.ErrInvalidTimestamp},
		{name: "fractional timestamp", secret: secret, id: id, ts: ts + ".5", sig: good, body: body, want: signature.ErrInvalidTimestamp},
		{name: "unicode digits", secret: secret, id: id, ts: "١٧٠٠٠٠٠٠٠٠", sig: good, body: body, want: signature.ErrInvalidTimestamp},

		{name: "bad secret wins", secret: "whsec_short", id: "", ts: "", sig: "", body: body, want: signature.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signature.Verify(tt.secret, tt.id, tt.ts, tt.sig, tt.body, now, tt.tolerance)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "signature: ") {
				t.Errorf("error %q lacks package prefix", err)
			}
		})
	}
}

// A hostile header must not make Verify examine more than a bounded number of entries.
func TestVerifySignatureCap(t *testing.T) {
	secret := mustSecret(t)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	good := mustSign(t, secret, "dlv_1", now, nil)
	decoy := mustSign(t, mustSecret(t), "dlv_1", now, nil)

	tests := []struct {
		name   string
		decoys int
		want   error
	}{
		{"match is 16th entry", 15, nil},
		{"match is 17th entry", 16, signature.ErrNoMatchingSignature},
		{"match after thousands", 5000, signature.ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := strings.Repeat(decoy+" ", tt.decoys) + good
			err := signature.Verify(secret, "dlv_1", ts, header, nil, now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyHeaders(t *testing.T) {
	secret := mustSecret(t)
	body := []byte(`{"ok":true}`)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := mustSign(t, secret, "dlv_A", now, body)
	wrongSig := mustSign(t, mustSecret(t), "dlv_A", now, body)

	header := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name string
		h    http.Header
		want error
	}{
		{"standard webhooks names", header(
			signature.HeaderID, "dlv_A", signature.HeaderTimestamp, ts, signature.HeaderSignature, sig), nil},
		{"blametrail names", header(
			signature.HeaderBlameTrailDelivery, "dlv_A", signature.HeaderBlameTrailTimestamp, ts,
			signature.HeaderBlameTrailSignature, sig), nil},
		{"both families", header(
			signature.HeaderID, "dlv_A", signature.HeaderTimestamp, ts, signature.HeaderSignature, sig,
			signature.HeaderBlameTrailDelivery, "dlv_A", signature.HeaderBlameTrailTimestamp, ts,
			signature.HeaderBlameTrailSignature, sig), nil},
		{"webhook-* preferred over X-BlameTrail-*", header(
			signature.HeaderID, "dlv_A", signature.HeaderTimestamp, ts, signature.HeaderSignature, wrongSig,
			signature.HeaderBlameTrailDelivery, "dlv_A", signature.HeaderBlameTrailTimestamp, ts,
			signature.HeaderBlameTrailSignature, sig), signature.ErrNoMatchingSignature},
		{"fallback per header", header(
			signature.HeaderID, "dlv_A", signature.HeaderBlameTrailTimestamp, ts, signature.HeaderSignature, sig), nil},
		{"no headers", http.Header{}, signature.ErrMissingHeader},
		{"no signature", header(signature.HeaderID, "dlv_A", signature.HeaderTimestamp, ts), signature.ErrMissingHeader},
		{"stale", header(
			signature.HeaderID, "dlv_A", signature.HeaderTimestamp, strconv.FormatInt(now.Add(-time.Hour).Unix(), 10),
			signature.HeaderSignature, sig), signature.ErrTimestampTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signature.VerifyHeaders(secret, tt.h, body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyHeaders = %v, want %v", err, tt.want)
			}
		})
	}
}
