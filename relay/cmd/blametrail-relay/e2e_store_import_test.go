package main_test

// End to end on the real binary: `blametrail-relay store import` moves a single relay's
// endpoints into a fleet's PostgreSQL with their ids and secrets.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// importPassword is in every DSN these tests give: it must never be printed. The test
// cluster trusts local connections, so it is never checked either.
const importPassword = "import_dsn_password_4711"

// runCmd runs the relay binary with args and no BLAMETRAIL_* variables, and returns its exit
// code, stdout and stderr.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(relaytest.Context(t, 2*time.Minute), relaytest.Binary(t), args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "BLAMETRAIL_") })
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	if strings.Contains(e.String(), "WARNING: DATA RACE") {
		t.Errorf("%v reported a data race:\n%s", args, e.String())
	}
	if strings.Contains(o.String()+e.String(), importPassword) {
		t.Errorf("%v printed the DSN's password:\n%s\n%s", args, o.String(), e.String())
	}
	return code, o.String(), e.String()
}

// fileSums hashes every file under dir but the lock file, whose PID each holder rewrites.
func fileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "LOCK" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = fmt.Sprintf("%x", sha256.Sum256(b))[:12]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStoreImport: a single relay's endpoints (one disabled, one in a rotation's overlap) are
// imported into a fresh database; a fleet relay on a new data dir then serves them with the
// same ids, state and secrets, and a second import skips both; neither import changed a file
// of the data dir. The old relay, restarted in
// fleet mode on its own data dir, delivers the event it had queued, signed with both imported
// secrets; while it runs, import refuses its data dir.
func TestStoreImport(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "import") + " password=" + importPassword
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	// Retries 3 s apart: the event stays queued from the first failed attempt until the stop.
	schedule := []string{"--retry-schedule", "3s,3s,3s,3s,3s"}
	single := relaytest.Start(t, relaytest.Options{Args: schedule})

	disabled := createEndpoint(t, single, apiclient.EndpointCreate{URL: rc.URL + "/disabled", Name: "import: disabled",
		Description: "disabled before the move", EventTypes: []string{api.TypeIncidentResolved}})
	patchEndpoint(t, single, disabled.ID, apiclient.EndpointPatch{Active: new(false)})
	rotated := createEndpoint(t, single, apiclient.EndpointCreate{URL: rc.URL, Name: "import: rotated"})
	oldSecret := rotated.Secret
	if _, err := single.Client.RotateSecret(testCtx(t), rotated.ID, apiclient.SecretRotation{ExpirePreviousIn: "1h"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]api.Endpoint{disabled.ID: getEndpoint(t, single, disabled.ID), rotated.ID: getEndpoint(t, single, rotated.ID)}
	wantSecrets := map[string]api.SecretInfo{}
	for id := range want {
		info, err := single.Client.SecretInfo(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		wantSecrets[id] = info
	}
	if info := wantSecrets[rotated.ID]; info.Secret == oldSecret || info.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotation: %+v", info)
	}
	if res := ingest(t, single, api.TypeIncidentOpened, map[string]any{"queued": true}); res.Deliveries != 1 {
		t.Fatalf("ingest: %+v, want one delivery (to the active endpoint)", res)
	}
	waitCount(t, rc, 1) // the first attempt failed: the delivery is queued
	single.Stop()

	noSecrets := func(out string) {
		t.Helper()
		for _, s := range []string{oldSecret, wantSecrets[rotated.ID].Secret, wantSecrets[disabled.ID].Secret} {
			if strings.Contains(out, s) {
				t.Errorf("import printed a signing secret:\n%s", out)
			}
		}
	}

	// PostgreSQL that cannot be reached: exit 1, nothing imported.
	code, out, errOut := runCmd(t, "store", "import", "--data-dir", single.DataDir,
		"--store", "host="+filepath.Join(t.TempDir(), "nosock")+" dbname=bt connect_timeout=2 password="+importPassword)
	if code != 1 || !strings.Contains(errOut, "open the fleet's PostgreSQL") {
		t.Errorf("unreachable PostgreSQL: exit %d, want 1 with a message\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	before := fileSums(t, single.DataDir)
	code, out, errOut = runCmd(t, "store", "import", "--data-dir", single.DataDir, "--store", dsn)
	if code != 0 {
		t.Fatalf("import: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	noSecrets(out + errOut)
	for _, line := range []string{
		"imported " + disabled.ID + ` name="import: disabled" active=false disabled_reason=manual`,
		"imported " + rotated.ID + ` name="import: rotated" previous_secret_expires=`,
		"2 imported, 0 skipped",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("import's output lacks %q:\n%s", line, out)
		}
	}

	// A fleet relay on a new data dir: the same endpoints, state and secrets.
	fleetRelay := relaytest.Start(t, relaytest.Options{Args: []string{"--store", dsn}})
	all, err := fleetRelay.Client.AllEndpoints(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != disabled.ID || all[1].ID != rotated.ID {
		t.Fatalf("the fleet lists %+v, want the two imported endpoints", all)
	}
	for id, w := range want {
		got := getEndpoint(t, fleetRelay, id)
		if got.URL != w.URL || got.Name != w.Name || got.Description != w.Description || !slices.Equal(got.EventTypes, w.EventTypes) ||
			got.Active != w.Active || (got.DisabledReason == nil) != (w.DisabledReason == nil) ||
			got.DisabledReason != nil && *got.DisabledReason != *w.DisabledReason ||
			!got.CreatedAt.Equal(w.CreatedAt) || !got.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("through the fleet %s = %+v, want %+v", id, got, w)
		}
		info, err := fleetRelay.Client.SecretInfo(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		ws := wantSecrets[id]
		if info.Secret != ws.Secret || (info.PreviousSecretExpiresAt == nil) != (ws.PreviousSecretExpiresAt == nil) ||
			info.PreviousSecretExpiresAt != nil && !info.PreviousSecretExpiresAt.Equal(*ws.PreviousSecretExpiresAt) {
			t.Errorf("secret of %s through the fleet differs from the single relay's (previous expiry %v, want %v)",
				id, info.PreviousSecretExpiresAt, ws.PreviousSecretExpiresAt)
		}
	}

	// Again: both skipped, nothing changed.
	code, out, errOut = runCmd(t, "store", "import", "--data-dir", single.DataDir, "--store", dsn)
	if code != 0 || !strings.Contains(out, "skipped  "+disabled.ID) || !strings.Contains(out, "skipped  "+rotated.ID) ||
		!strings.Contains(out, "0 imported, 2 skipped") {
		t.Errorf("second import: exit %d, want 0 with both skipped\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	noSecrets(out + errOut)
	if after := fileSums(t, single.DataDir); !maps.Equal(before, after) {
		t.Errorf("import changed the data dir (LOCK aside):\nbefore %v\nafter  %v", before, after)
	}

	// The old relay in fleet mode on its own data dir: it keeps its queued delivery.
	rc.SetHandler(nil) // 200 from now on
	n := rc.Count()
	moved := relaytest.Start(t, relaytest.Options{DataDir: single.DataDir, Token: single.Token, Args: append([]string{"--store", dsn}, schedule...)})
	code, out, errOut = runCmd(t, "store", "import", "--data-dir", single.DataDir, "--store", dsn)
	if code != 1 || !regexp.MustCompile(`in use by another process \(pid \d+\).*stop the relay first`).MatchString(errOut) {
		t.Errorf("import of a running relay's data dir: exit %d, want 1 naming the holder\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	req := waitCount(t, rc, n+1)[n]
	for _, secret := range []string{wantSecrets[rotated.ID].Secret, oldSecret} {
		if err := signature.VerifyHeaders(secret, req.Header, req.Body); err != nil {
			t.Errorf("the queued event, delivered after the move, does not verify with an imported secret: %v", err)
		}
	}
	waitDeliveries(t, moved, rotated.ID, "the queued delivery to succeed", func(ds []api.Delivery) bool {
		return len(ds) == 1 && ds[0].Status == api.StatusSucceeded
	})
}

// TestStoreImportUsage: usage errors exit 2, a data dir that is missing or holds no relay
// state exits 1 (and is not turned into one), and --help of the relay and of import say what
// they do.
func TestStoreImportUsage(t *testing.T) {
	t.Parallel()
	dsn := "host=/nonexistent dbname=bt password=" + importPassword
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"store without a command", []string{"store"}, 2, "a command is required"},
		{"unknown store command", []string{"store", "export"}, 2, `unknown command "export"`},
		{"no flags", []string{"store", "import"}, 2, "--data-dir: is required"},
		{"no store", []string{"store", "import", "--data-dir", dir}, 2, "--store: is required"},
		{"store local", []string{"store", "import", "--data-dir", dir, "--store", "local"}, 2, "--store: is required"},
		{"relay flag", []string{"store", "import", "--data-dir", dir, "--store", dsn, "--listen", ":0"}, 2, "-listen"},
		{"bad key", []string{"store", "import", "--data-dir", dir, "--store", dsn, "--store-secret-key", "short"}, 2, "--store-secret-key"},
		{"relay with an argument", []string{"--data-dir", dir, "import"}, 2, `unexpected argument "import"`},
		{"missing data dir", []string{"store", "import", "--data-dir", filepath.Join(dir, "missing"), "--store", dsn}, 1, "no such file"},
		{"not a relay's data dir", []string{"store", "import", "--data-dir", dir, "--store", dsn}, 1, "holds no relay state"},
		{"store help", []string{"store", "--help"}, 0, "seed a fleet's PostgreSQL"},
		{"import help", []string{"store", "import", "--help"}, 0, "Seeds a fleet's PostgreSQL from a single relay's data dir"},
		{"relay help", []string{"--help"}, 0, "store import"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Errorf("exit %d, want %d saying %q\nstdout:\n%s\nstderr:\n%s", code, tt.code, tt.want, out, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("import created the missing data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("import made a relay state in a dir that held none: %v", err)
	}
}

// TestStoreImportEncrypted: with --store-secret-key, import writes secrets encrypted as the
// relays do (a reader without the key cannot read them, a fleet relay with it serves them);
// a later import with another key, or none, is refused before it writes anything, since the
// fleet's relays could not read what it would write, or would find plaintext next to
// ciphertext.
func TestStoreImportEncrypted(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "import_key") + " password=" + importPassword
	const key = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="
	const otherKey = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	single := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, single, apiclient.EndpointCreate{URL: "https://hooks.example.com/encrypted", Name: "encrypted"})
	single.Stop()

	code, out, errOut := runCmd(t, "store", "import", "--data-dir", single.DataDir, "--store", dsn, "--store-secret-key", key)
	if code != 0 || !strings.Contains(out, "imported "+ep.ID) {
		t.Fatalf("import with a key: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, key) {
		t.Errorf("import printed the key:\n%s%s", out, errOut)
	}
	db, err := fleet.Open(testCtx(t), dsn, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Get(testCtx(t), ep.ID); !errors.Is(err, fleet.ErrSecretKey) {
		t.Errorf("read without the key: %v, want ErrSecretKey (the secret stored encrypted)", err)
	}

	for name, args := range map[string][]string{"another key": {"--store-secret-key", otherKey}, "no key": nil} {
		code, out, errOut := runCmd(t, append([]string{"store", "import", "--data-dir", single.DataDir, "--store", dsn}, args...)...)
		if code != 1 || !strings.Contains(errOut, "encrypted with another key than --store-secret-key") || strings.Contains(out, ep.ID) {
			t.Errorf("import with %s into an encrypted fleet: exit %d, want 1 before any endpoint\nstdout:\n%s\nstderr:\n%s", name, code, out, errOut)
		}
	}

	r := relaytest.Start(t, relaytest.Options{Args: []string{"--store", dsn, "--store-secret-key", key}})
	got, err := r.Client.Secret(testCtx(t), ep.ID)
	if err != nil || got != ep.Secret {
		t.Errorf("a fleet relay with the key: secret differs from the single relay's (err %v)", err)
	}
}
