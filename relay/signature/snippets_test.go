package signature_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// The receiver snippets in examples/verify are independent implementations of the scheme; these
// tests keep them in agreement with the Go signer. Locally a missing interpreter only skips,
// but in CI (CI set) it fails, so the snippets cannot silently go untested.
func TestReceiverSnippets(t *testing.T) {
	interpreters := []struct {
		name   string
		binary string
		script string
	}{
		{"python", "python3", "verify_signature.py"},
		{"node", "node", "verify_signature.js"},
	}

	secret := mustSecret(t)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	stale := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	const id = "dlv_01HZXK3M9Q7T2V5B8N4C6D1F0G"

	type run struct {
		name, secret, id, ts, sig string
		body                      []byte
		extra                     []string
		wantOK                    bool
	}
	var runs []run
	bodies := []struct {
		name string
		body []byte
	}{
		{"json", []byte(`{"type":"drift.detected","data":{"stack":"prod","resources":3}}`)},
		{"unicode", []byte(`{"author":"Zoë Ünal","note":"✓ 変更 🚀"}`)},
		{"newlines", []byte("{\n  \"a\": 1,\r\n  \"b\": \"x\\ny\"\n}\n")},
		{"empty", nil},
	}
	for _, b := range bodies {
		sig := mustSign(t, secret, id, now, b.body)
		tampered := append(append([]byte(nil), b.body...), ' ')
		runs = append(runs,
			run{name: b.name + "/valid", secret: secret, id: id, ts: ts, sig: sig, body: b.body, wantOK: true},
			run{name: b.name + "/tampered body", secret: secret, id: id, ts: ts, sig: sig, body: tampered},
			run{name: b.name + "/wrong secret", secret: mustSecret(t), id: id, ts: ts, sig: sig, body: b.body},
		)
	}
	body := bodies[0].body
	oldSig := mustSign(t, mustSecret(t), id, now, body)
	goodSig := mustSign(t, secret, id, now, body)
	runs = append(runs,
		run{name: "rotation header", secret: secret, id: id, ts: ts, sig: "v1a,zzz " + oldSig + " " + goodSig, body: body, wantOK: true},
		run{name: "secret without prefix", secret: strings.TrimPrefix(secret, signature.SecretPrefix), id: id, ts: ts, sig: goodSig, body: body, wantOK: true},
		run{name: "tampered id", secret: secret, id: id + "x", ts: ts, sig: goodSig, body: body},
		run{name: "stale timestamp", secret: secret, id: id, ts: stale, sig: mustSign(t, secret, id, now.Add(-10*time.Minute), body), body: body},
		run{name: "non-numeric timestamp", secret: secret, id: id, ts: "12ab", sig: goodSig, body: body},
		run{name: "bad secret", secret: "whsec_short", id: id, ts: ts, sig: goodSig, body: body},
		run{name: "standard webhooks vector", secret: swSecret, id: swMsgID, ts: "1614265330", sig: swSignature,
			body: []byte(swBody), extra: []string{"--tolerance", "2000000000"}, wantOK: true},
	)

	dir := t.TempDir()
	for _, in := range interpreters {
		t.Run(in.name, func(t *testing.T) {
			bin, err := exec.LookPath(in.binary)
			if err != nil {
				if os.Getenv("CI") == "" {
					t.Skipf("%s not installed; set CI to make this a failure", in.binary)
				}
				t.Fatalf("%s is required in CI: %v", in.binary, err)
			}
			script := filepath.Join("..", "..", "examples", "verify", in.script)
			for i, r := range runs {
				t.Run(r.name, func(t *testing.T) {
					bodyFile := filepath.Join(dir, in.name+strconv.Itoa(i)+".body")
					if err := os.WriteFile(bodyFile, r.body, 0o600); err != nil {
						t.Fatal(err)
					}
					args := append([]string{script,
						"--secret", r.secret, "--id", r.id, "--timestamp", r.ts,
						"--signature", r.sig, "--body-file", bodyFile}, r.extra...)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
					got := strings.TrimSpace(string(out))

					var exitErr *exec.ExitError
					switch {
					case err != nil && !errors.As(err, &exitErr):
						t.Fatalf("running %s: %v\n%s", in.script, err, got)
					case r.wantOK && (err != nil || got != "verified"):
						t.Fatalf("want exit 0 and \"verified\", got %v: %s", err, got)
					case !r.wantOK && err == nil:
						t.Fatalf("want non-zero exit, got success: %s", got)
					case !r.wantOK && !strings.HasPrefix(got, "not verified: "):
						t.Errorf("want a reason on stdout, got %q", got)
					}
				})
			}
		})
	}
}
