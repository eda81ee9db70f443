package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// The official Standard Webhooks test vector; matching it is what makes the scheme
// interoperable with their libraries.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swBody      = `{"test": 2432232314}`
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// referenceSignature recomputes a signature straight from crypto/hmac, independently of the
// package's own buffer handling.
func referenceSignature(t testing.TB, secret, msgID, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("reference: decoding secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestStandardWebhooksVector(t *testing.T) {
	got, err := signature.Sign(swSecret, swMsgID, time.Unix(swTimestamp, 0), []byte(swBody))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if got != swSignature {
		t.Errorf("Sign = %q, want %q", got, swSignature)
	}
	if ref := referenceSignature(t, swSecret, swMsgID, "1614265330", []byte(swBody)); ref != swSignature {
		t.Errorf("reference = %q, want %q (test helper is wrong)", ref, swSignature)
	}
	err = signature.Verify(swSecret, swMsgID, "1614265330", swSignature, []byte(swBody),
		time.Unix(swTimestamp+10, 0), 0)
	if err != nil {
		t.Errorf("Verify(official vector) = %v", err)
	}
}

func TestSignKnownAnswer(t *testing.T) {
	secret, err := signature.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		msgID string
		ts    int64
		body  []byte
	}{
		{"empty body", "dlv_1", 1700000000, nil},
		{"json", "dlv_2KtXz", 1700000001, []byte(`{"type":"drift.detected","data":{}}`)},
		{"unicode and newlines", "dlv_ü", 1, []byte("héllo\r\nwörld\n✓")},
		{"binary", "dlv_bin", 4102444800, []byte{0, 0xff, '.', 0x80}},
		{"dots in id", "a.b.c", 1700000000, []byte(".")},
		{"long id grows scratch", strings.Repeat("x", 500), 1700000000, []byte("b")},
	}
	s, err := signature.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := referenceSignature(t, secret, tt.msgID, strconv.FormatInt(tt.ts, 10), tt.body)

			got, err := signature.Sign(secret, tt.msgID, time.Unix(tt.ts, 0), tt.body)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got != want {
				t.Errorf("Sign = %q, want %q", got, want)
			}
			// The Signer is reused across subtests on purpose: stale HMAC or scratch state
			// from the previous call would show up here.
			prefix := []byte("keep:")
			app := s.AppendSignature(prefix, tt.msgID, tt.ts, tt.body)
			if string(app) != "keep:"+want {
				t.Errorf("AppendSignature = %q, want %q", app, "keep:"+want)
			}
			if len(got) != signature.SignatureLen {
				t.Errorf("len = %d, want SignatureLen %d", len(got), signature.SignatureLen)
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	a, err := signature.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := signature.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two generated secrets are equal")
	}
	if !strings.HasPrefix(a, signature.SecretPrefix) {
		t.Errorf("secret %q lacks prefix %q", a, signature.SecretPrefix)
	}
	key, err := signature.DecodeSecret(a)
	if err != nil {
		t.Fatalf("DecodeSecret(generated): %v", err)
	}
	if len(key) != 32 {
		t.Errorf("key length = %d, want 32", len(key))
	}
}

func TestDecodeSecret(t *testing.T) {
	key32 := strings.Repeat("A", 43) + "=" // 32 zero bytes
	tests := []struct {
		name    string
		secret  string
		wantLen int
		wantErr bool
	}{
		{"prefixed", "whsec_" + key32, 32, false},
		{"bare base64", key32, 32, false},
		{"standard webhooks 24-byte key", swSecret, 24, false},
		{"surrounding whitespace", " whsec_" + key32 + "\n", 32, false},
		{"64 bytes", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 64)), 64, false},
		{"empty", "", 0, true},
		{"prefix only", "whsec_", 0, true},
		{"not base64", "whsec_!!!notbase64!!!", 0, true},
		{"url-safe alphabet", "whsec_" + strings.Repeat("_", 43) + "=", 0, true},
		{"missing padding", "whsec_" + strings.Repeat("A", 43), 0, true},
		{"too short", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)), 0, true},
		{"too long", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), 0, true},
		{"double prefix", "whsec_whsec_" + key32, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := signature.DecodeSecret(tt.secret)
			if tt.wantErr {
				if !errors.Is(err, signature.ErrInvalidSecret) {
					t.Fatalf("err = %v, want ErrInvalidSecret", err)
				}
				if !strings.HasPrefix(err.Error(), "signature: ") {
					t.Errorf("error %q lacks package prefix", err)
				}
				// NewSigner and Sign must reject it the same way.
				if _, err := signature.NewSigner(tt.secret); !errors.Is(err, signature.ErrInvalidSecret) {
					t.Errorf("NewSigner err = %v, want ErrInvalidSecret", err)
				}
				if _, err := signature.Sign(tt.secret, "id", time.Now(), nil); !errors.Is(err, signature.ErrInvalidSecret) {
					t.Errorf("Sign err = %v, want ErrInvalidSecret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeSecret: %v", err)
			}
			if len(key) != tt.wantLen {
				t.Errorf("len(key) = %d, want %d", len(key), tt.wantLen)
			}
		})
	}
}

func TestSecretWithoutPrefixSignsTheSame(t *testing.T) {
	bare := strings.TrimPrefix(swSecret, signature.SecretPrefix)
	got, err := signature.Sign(bare, swMsgID, time.Unix(swTimestamp, 0), []byte(swBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != swSignature {
		t.Errorf("Sign(bare secret) = %q, want %q", got, swSignature)
	}
}
