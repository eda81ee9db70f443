package signature_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// A receiver checks the three header values it was sent against its copy of the secret.
// Real receivers pass time.Now(); a fixed clock keeps the example reproducible.
func ExampleVerify() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	now := time.Unix(1614265330, 0).Add(30 * time.Second)

	err := signature.Verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body, now, signature.DefaultTolerance)
	fmt.Println("genuine:", err)

	err = signature.Verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 1}`), now, 0)
	fmt.Println("tampered:", errors.Is(err, signature.ErrNoMatchingSignature))
	// Output:
	// genuine: <nil>
	// tampered: true
}

// The sender keeps a Signer per worker and appends into a reused buffer.
func ExampleSigner() {
	s, err := signature.NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 0, signature.SignatureLen)
	buf = s.AppendSignature(buf[:0], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	fmt.Println(string(buf))
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}
