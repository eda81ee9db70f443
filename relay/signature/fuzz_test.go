package signature_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// FuzzVerify feeds arbitrary header values and bodies to Verify. Verify must never panic,
// must only return the documented sentinels, and a body correctly signed for a fuzzed id
// must always verify.
func FuzzVerify(f *testing.F) {
	f.Add(swSecret, swMsgID, "1614265330", swSignature, []byte(swBody), int64(swTimestamp))
	f.Add("whsec_", "", "", "", []byte(nil), int64(0))
	f.Add("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "dlv_1", "+1", "v1, v1,,, v2,x v1a,"+swSignature, []byte("\x00\xff"), int64(-1))
	f.Add(swSecret, "a.b", "99999999999999999999", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", []byte("."), int64(1<<62))

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sentinels := []error{
		signature.ErrInvalidSecret, signature.ErrMissingHeader, signature.ErrInvalidTimestamp,
		signature.ErrTimestampTooOld, signature.ErrTimestampTooNew, signature.ErrNoMatchingSignature,
	}
	f.Fuzz(func(t *testing.T, fuzzSecret, msgID, tsHeader, sigHeader string, body []byte, nowUnix int64) {
		now := time.Unix(nowUnix, 0)
		err := signature.Verify(fuzzSecret, msgID, tsHeader, sigHeader, body, now, 0)
		if err != nil && !isOneOf(err, sentinels) {
			t.Fatalf("Verify returned undocumented error %v", err)
		}
		_ = signature.Verify(secret, msgID, tsHeader, sigHeader, body, now, time.Duration(nowUnix))

		if msgID == "" {
			return // Verify rightly reports a missing header; nothing to round-trip
		}
		// The signing side takes a time, so use a realistic clock for the round trip.
		signedAt := time.Unix(1_700_000_000+nowUnix%1_000_000_000, 0)
		sig, err := signature.Sign(secret, msgID, signedAt, body)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		ts := strconv.FormatInt(signedAt.Unix(), 10)
		if err := signature.Verify(secret, msgID, ts, sig, body, signedAt, 0); err != nil {
			t.Fatalf("correctly signed input failed: %v", err)
		}
		// The fuzzed header ahead of the valid signature may only hide it by using up the
		// entry budget, never by making Verify misbehave.
		err = signature.Verify(secret, msgID, ts, sigHeader+" "+sig, body, signedAt, 0)
		if err != nil && !errors.Is(err, signature.ErrNoMatchingSignature) {
			t.Fatalf("valid signature after fuzzed entries: %v", err)
		}
	})
}

func isOneOf(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
