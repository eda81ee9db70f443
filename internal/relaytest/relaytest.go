// Package relaytest starts the real relay binary for tests: it builds
// relay/cmd/blametrail-relay once per test process (with -race when the tests run with it),
// runs it on 127.0.0.1 with a port the kernel picks, and hands back its URLs, tokens, an
// admin client and an ingest client. Tests outside the relay use it instead of importing the relay's server
// package, so they exercise what users run. It also provides recording receivers.
//
// Building, starting, watching and stopping the process is internal/relayproc's; this package
// adds the test defaults (flags, data dir, token), the admin client, the data race check and
// failing the test.
package relaytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relayproc"
)

// builder builds the relay once per test process, with -race when the tests have it.
var builder = relayproc.Builder{Race: relayproc.RaceEnabled, Version: "test"}

// tb is the part of testing.TB a relay needs. Start passes its *testing.T; StartMain, which
// runs in TestMain where no *testing.T exists, passes a mainTB.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Binary returns the path of the relay binary, building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	return binary(t)
}

func binary(t tb) string {
	t.Helper()
	bin, err := builder.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Options says how to start a relay.
type Options struct {
	// Args are extra flags. The defaults suit tests: --allow-http --allow-private-networks
	// and a 100ms-based retry schedule, unless Args sets them.
	Args []string
	// DataDir is reused across restarts; empty means a new t.TempDir().
	DataDir string
	// Env adds BLAMETRAIL_* variables.
	Env []string
	// Token is the API token; empty means a random one.
	Token string
	// IngestToken, when set, is passed as --ingest-token, and Relay.IngestClient uses it.
	IngestToken string
	// AdminListen starts the relay with --admin-listen 127.0.0.1:0: the admin API, UI and
	// metrics on a port of their own (Relay.AdminURL), ingest and health on Relay.URL.
	AdminListen bool
}

// DefaultArgs are the flags every test relay gets unless overridden.
var DefaultArgs = []string{
	"--allow-http", "--allow-private-networks",
	"--retry-schedule", "100ms,200ms,400ms,800ms,1600ms",
	"--delivery-timeout", "2s",
	"--shutdown-timeout", "5s",
}

// Relay is a running relay process.
type Relay struct {
	// URL and Addr are --listen's: everything, or ingest and health with Options.AdminListen.
	URL  string
	Addr string
	// AdminURL and AdminAddr are where the admin API is: --admin-listen's with
	// Options.AdminListen, URL and Addr without.
	AdminURL  string
	AdminAddr string
	// Token is the API (admin) token; IngestToken is Options.IngestToken.
	Token       string
	IngestToken string
	DataDir     string
	// Client talks to the admin API (AdminURL) with Token.
	Client *apiclient.Client
	// IngestClient posts events to URL with IngestToken, or Token when that is empty.
	IngestClient *apiclient.Client

	t    tb
	opts Options
	proc *relayproc.Process // the latest run
	// logs is shared by every run of this relay: a Restart appends, so the logs (and the data
	// race check at cleanup) cover earlier runs.
	logs *relayproc.Log
}

// Start runs a relay and waits until it listens. It is stopped (SIGTERM) at cleanup.
func Start(t testing.TB, opts Options) *Relay {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Token == "" {
		opts.Token = randomToken()
	}
	r := &Relay{t: t, opts: opts, Token: opts.Token, IngestToken: opts.IngestToken, DataDir: opts.DataDir}
	r.start()
	t.Cleanup(func() {
		r.Stop()
		if logs := r.Logs(); strings.Contains(logs, "WARNING: DATA RACE") {
			t.Errorf("the relay reported a data race:\n%s", logs)
		}
	})
	return r
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "test_" + hex.EncodeToString(b[:])
}

// args is the command line for opts: listen, data dir, token, JSON logs, the defaults Args
// does not override, then Args.
func (opts Options) args() []string {
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", opts.DataDir, "--api-token", opts.Token, "--log-format", "json"}
	if opts.IngestToken != "" {
		args = append(args, "--ingest-token", opts.IngestToken)
	}
	if opts.AdminListen {
		args = append(args, "--admin-listen", "127.0.0.1:0")
	}
	set := map[string]bool{}
	for _, a := range opts.Args {
		if strings.HasPrefix(a, "--") {
			set[strings.SplitN(a, "=", 2)[0]] = true
		}
	}
	for i := 0; i < len(DefaultArgs); i++ {
		a := DefaultArgs[i]
		hasValue := i+1 < len(DefaultArgs) && !strings.HasPrefix(DefaultArgs[i+1], "--")
		if !set[a] {
			args = append(args, a)
			if hasValue {
				args = append(args, DefaultArgs[i+1])
			}
		}
		if hasValue {
			i++
		}
	}
	return append(args, opts.Args...)
}

func (r *Relay) start() {
	r.t.Helper()
	if r.logs == nil {
		r.logs = relayproc.NewLog(0)
	}
	p, err := relayproc.Start(context.Background(), relayproc.Options{
		Bin: binary(r.t), Args: r.opts.args(), Env: r.opts.Env, Log: r.logs,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.proc = p
	r.Addr, r.URL = p.Addr(), p.URL()
	r.AdminAddr, r.AdminURL = p.AdminAddr(), p.AdminURL()
	if r.AdminAddr == "" {
		r.AdminAddr, r.AdminURL = r.Addr, r.URL
	}
	r.Client = r.client(r.AdminURL, r.Token)
	ingestToken := r.IngestToken
	if ingestToken == "" {
		ingestToken = r.Token
	}
	r.IngestClient = r.client(r.URL, ingestToken)
}

func (r *Relay) client(url, token string) *apiclient.Client {
	r.t.Helper()
	c, err := apiclient.New(url, token, apiclient.WithUserAgent("relaytest"), apiclient.WithRetries(0, 0))
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// PID is the relay's process id (that of its latest run).
func (r *Relay) PID() int {
	if r.proc == nil {
		return 0
	}
	return r.proc.PID()
}

// Restart starts the relay again on the same data dir (after Stop or Kill). It gets new
// ports; the URLs, addresses and clients are updated.
func (r *Relay) Restart() {
	r.t.Helper()
	r.start()
}

// Stop sends SIGTERM and waits for the process to end (SIGKILL after 15 s).
func (r *Relay) Stop() {
	if r.proc != nil {
		_ = r.proc.Stop(15 * time.Second)
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the process to end.
func (r *Relay) Kill() {
	if r.proc != nil {
		_ = r.proc.Kill()
	}
}

// Wait waits for the process to exit by itself and returns its error.
func (r *Relay) Wait(timeout time.Duration) error { return r.proc.Wait(timeout) }

// Logs returns everything the relay wrote so far.
func (r *Relay) Logs() string {
	if r.logs == nil {
		return ""
	}
	return r.logs.String()
}

// Do sends a raw request to the relay's URL (for tests of bad input) and returns status and
// body.
func (r *Relay) Do(method, path, contentType, token string, body []byte) (int, []byte, http.Header) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.URL+path, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// Eventually polls cond every 20 ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Context returns a context bounded by d and cancelled at cleanup.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
