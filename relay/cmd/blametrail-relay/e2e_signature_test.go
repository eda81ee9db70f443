package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// TestSignatureIndependentVerifiers checks a delivery the real relay signed with the Go
// package and with the Python and Node verifiers from examples/verify, each a separate
// implementation of the scheme; a tampered copy must fail in all of them. In CI (CI=true) the
// interpreters are required; elsewhere a missing one skips its case.
func TestSignatureIndependentVerifiers(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, nil)
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	ingest(t, r, api.TypeIncidentOpened, map[string]any{"title": "Database down — ünïcode ✓", "n": 1.5, "tags": []string{"a", "b"}})
	req := waitCount(t, rc, 1)[0]

	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "body.json")
	tamperedFile := filepath.Join(dir, "tampered.json")
	tampered := bytes.Replace(req.Body, []byte(`"n":1.5`), []byte(`"n":2.5`), 1)
	if bytes.Equal(tampered, req.Body) {
		t.Fatalf("could not tamper with %s", req.Body)
	}
	if err := os.WriteFile(bodyFile, req.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tamperedFile, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	id := req.Header.Get("webhook-id")
	ts := req.Header.Get("webhook-timestamp")
	sig := req.Header.Get("webhook-signature")
	otherSecret, _ := signature.GenerateSecret()

	t.Run("go", func(t *testing.T) {
		if err := signature.VerifyHeaders(ep.Secret, req.Header, req.Body); err != nil {
			t.Errorf("VerifyHeaders: %v", err)
		}
		if err := signature.VerifyHeaders(ep.Secret, req.Header, tampered); !errors.Is(err, signature.ErrNoMatchingSignature) {
			t.Errorf("tampered body: %v, want ErrNoMatchingSignature", err)
		}
		if err := signature.VerifyHeaders(otherSecret, req.Header, req.Body); !errors.Is(err, signature.ErrNoMatchingSignature) {
			t.Errorf("other secret: %v, want ErrNoMatchingSignature", err)
		}
		// Only the BlameTrail header family present: still verifies.
		h := req.Header.Clone()
		for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			h.Del(k)
		}
		if err := signature.VerifyHeaders(ep.Secret, h, req.Body); err != nil {
			t.Errorf("X-BlameTrail-* headers alone: %v", err)
		}
	})

	verifiers := filepath.Join("..", "..", "..", "examples", "verify")
	for _, v := range []struct{ name, interpreter, script string }{
		{"python", "python3", "verify_signature.py"},
		{"node", "node", "verify_signature.js"},
	} {
		t.Run(v.name, func(t *testing.T) {
			bin, err := exec.LookPath(v.interpreter)
			if err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is required in CI: %v", v.interpreter, err)
				}
				t.Skipf("%s not installed: %v", v.interpreter, err)
			}
			script := filepath.Join(verifiers, v.script)
			run := func(secret, body, id string) (int, string) {
				ctx := relaytest.Context(t, 30*time.Second)
				cmd := exec.CommandContext(ctx, bin, script, "--secret", secret, "--id", id,
					"--timestamp", ts, "--signature", sig, "--body-file", body)
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				switch {
				case err == nil:
					return 0, string(out)
				case errors.As(err, &ee):
					return ee.ExitCode(), string(out)
				}
				t.Fatalf("run %s: %v\n%s", v.script, err, out)
				return -1, ""
			}
			if code, out := run(ep.Secret, bodyFile, id); code != 0 {
				t.Errorf("%s rejects a real delivery: exit %d\n%s", v.script, code, out)
			}
			for _, bad := range []struct{ name, secret, body, id string }{
				{"tampered body", ep.Secret, tamperedFile, id},
				{"other secret", otherSecret, bodyFile, id},
				{"other delivery id", ep.Secret, bodyFile, "dlv_other"},
			} {
				if code, out := run(bad.secret, bad.body, bad.id); code == 0 {
					t.Errorf("%s accepts a %s: %s", v.script, bad.name, out)
				}
			}
		})
	}
}
