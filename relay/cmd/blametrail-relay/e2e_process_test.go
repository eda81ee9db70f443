package main_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

var permissive = []string{"--allow-http", "--allow-private-networks", "--retry-schedule", fastSchedule}

// TestGeneratedToken: without --api-token the relay writes a token to <data-dir>/api-token
// (mode 0600), accepts it, never logs it, and reads the same token on the next start.
func TestGeneratedToken(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	rr := startRaw(t, append([]string{"--data-dir", dataDir}, permissive...)...)
	path := filepath.Join(dataDir, "api-token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("api-token file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("api-token mode = %o, want 600", mode)
	}
	raw, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(raw))
	if len(token) < 32 {
		t.Fatalf("generated token %q is too short", token)
	}
	c, err := apiclient.New(rr.URL, token, apiclient.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateEndpoint(testCtx(t), apiclient.EndpointCreate{URL: "https://hooks.example.com/", Name: "n"}); err != nil {
		t.Errorf("the generated token does not work: %v", err)
	}
	wrong, _ := apiclient.New(rr.URL, token+"x", apiclient.WithRetries(0, 0))
	if _, err := wrong.AllEndpoints(testCtx(t)); !errors.Is(err, apiclient.ErrUnauthorized) {
		t.Errorf("a wrong token: %v, want 401", err)
	}
	if code, _ := rr.terminate(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	logs := rr.logs.String()
	if !strings.Contains(logs, path) {
		t.Errorf("the logs should name the token file %s:\n%s", path, logs)
	}

	// A second start reads the same token.
	rr2 := startRaw(t, append([]string{"--data-dir", dataDir}, permissive...)...)
	c2, _ := apiclient.New(rr2.URL, token, apiclient.WithRetries(0, 0))
	if _, err := c2.AllEndpoints(testCtx(t)); err != nil {
		t.Errorf("token after restart: %v", err)
	}
	if raw2, _ := os.ReadFile(path); string(raw2) != string(raw) {
		t.Errorf("the token file changed on restart")
	}
	rr2.terminate(t, 20*time.Second)
	for i, l := range []string{logs, rr2.logs.String()} {
		if strings.Contains(l, token) {
			t.Errorf("run %d logged the api token:\n%s", i+1, l)
		}
	}
}

// TestGracefulShutdown: SIGTERM while an attempt is in flight lets it finish, then the
// process exits 0 well within --shutdown-timeout.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	rc := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		started <- struct{}{}
		time.Sleep(time.Second)
		w.WriteHeader(http.StatusOK)
	})
	const token = "test_graceful_shutdown_token"
	rr := startRaw(t, append([]string{"--data-dir", t.TempDir(), "--api-token", token, "--shutdown-timeout", "10s",
		"--log-level", "debug"}, permissive...)...)
	c, _ := apiclient.New(rr.URL, token, apiclient.WithRetries(0, 0))
	ep, err := c.CreateEndpoint(testCtx(t), apiclient.EndpointCreate{URL: rc.URL, Name: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ingest(testCtx(t), apiclient.Event{Type: api.TypeIncidentOpened, Data: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(waitLong):
		t.Fatal("the attempt never reached the receiver")
	}
	code, took := rr.terminate(t, 10*time.Second+5*time.Second)
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, rr.logs)
	}
	t.Logf("exited %s after SIGTERM", took)
	logs := rr.logs.String()
	if !strings.Contains(logs, `"msg":"delivery succeeded"`) || !strings.Contains(logs, ep.ID) {
		t.Errorf("the in-flight attempt was not recorded as succeeded before exit:\n%s", logs)
	}
	if strings.Contains(logs, "still in flight") {
		t.Errorf("shutdown gave up on the attempt:\n%s", logs)
	}
	if i, j := strings.Index(logs, "delivery succeeded"), strings.LastIndex(logs, `"msg":"stopped"`); j < 0 || i > j {
		t.Errorf("want the attempt recorded before \"stopped\":\n%s", logs)
	}
}

// TestShutdownTimeoutBoundsExit: an attempt that outlasts --shutdown-timeout does not keep the
// process alive; it exits 0 and says the attempt stays pending.
func TestShutdownTimeoutBoundsExit(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		started <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() { close(release) })
	const token = "test_shutdown_timeout_token"
	rr := startRaw(t, append([]string{"--data-dir", t.TempDir(), "--api-token", token, "--shutdown-timeout", "300ms",
		"--delivery-timeout", "60s"}, permissive...)...)
	c, _ := apiclient.New(rr.URL, token, apiclient.WithRetries(0, 0))
	if _, err := c.CreateEndpoint(testCtx(t), apiclient.EndpointCreate{URL: rc.URL, Name: "stuck"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ingest(testCtx(t), apiclient.Event{Type: api.TypeIncidentOpened, Data: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	<-started
	code, took := rr.terminate(t, 20*time.Second)
	if code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, rr.logs)
	}
	t.Logf("exited %s after SIGTERM", took)
	if !strings.Contains(rr.logs.String(), "still in flight") {
		t.Errorf("want a warning that an attempt was still in flight:\n%s", rr.logs)
	}
}

// TestUsageErrors: bad flags or environment stop the binary with exit code 2 and a message.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	bin := relaytest.Binary(t)
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"bad schedule", []string{"--retry-schedule", "1m,soon"}, nil, "retry-schedule"},
		{"bad timeout", []string{"--delivery-timeout", "0s"}, nil, "delivery-timeout"},
		{"bad fsync", []string{"--fsync", "sometimes"}, nil, "fsync"},
		{"bad env bool", nil, []string{"BLAMETRAIL_ALLOW_HTTP=maybe"}, "allow-http"},
		{"bad env disable-after", nil, []string{"BLAMETRAIL_DISABLE_AFTER=-1"}, "disable-after"},
		{"positional argument", []string{"serve"}, nil, "serve"},
		{"zero connections", []string{"--max-connections", "0"}, nil, "--max-connections: 0 is outside"},
		{"connections env", nil, []string{"BLAMETRAIL_MAX_CONNECTIONS=many"}, "max-connections"},
		{"negative per ip", []string{"--max-connections-per-ip", "-1"}, nil, "--max-connections-per-ip: -1 is outside"},
		{"per ip over total", []string{"--max-connections", "10", "--max-connections-per-ip", "11"}, nil, "--max-connections-per-ip"},
		{"short ingest token env", nil, []string{"BLAMETRAIL_INGEST_TOKEN= short-token \n"}, "--ingest-token: the token from BLAMETRAIL_INGEST_TOKEN"},
		{"ingest token equal to the api token", []string{"--api-token", "same-token-for-both-0123", "--ingest-token", "same-token-for-both-0123"}, nil,
			"--ingest-token: equals the API token"},
		{"admin listen equal to listen", []string{"--listen", "127.0.0.1:18080", "--admin-listen", "127.0.0.1:18080"}, nil,
			`--admin-listen: "127.0.0.1:18080" and --listen "127.0.0.1:18080" are the same address`},
		{"admin listen not an address", nil, []string{"BLAMETRAIL_ADMIN_LISTEN=8081"}, `--admin-listen: "8081" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(relaytest.Context(t, 30*time.Second), bin,
				append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want code 2\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output does not mention %q:\n%s", tt.want, out)
			}
		})
	}
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--retry-schedule") && !strings.Contains(string(out), "-retry-schedule") {
		t.Errorf("--help: %v\n%s", err, out)
	}
}
