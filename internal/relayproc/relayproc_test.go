package relayproc

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var builder = Builder{Race: RaceEnabled, Version: "test"}

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the relay binary")
	}
	bin, err := builder.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// args is a command line the relay starts with, on a port the kernel picks.
func args(t *testing.T, extra ...string) []string {
	return append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--api-token", "relayproc-test-token", "--log-format", "json"}, extra...)
}

// start runs a relay and kills it at cleanup.
func start(t *testing.T, opts Options) *Process {
	t.Helper()
	p, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

func TestStartListenStop(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var lines []string
	p := start(t, Options{Bin: binary(t), Args: args(t), OnLine: func(l []byte) {
		mu.Lock()
		lines = append(lines, string(l))
		mu.Unlock()
	}})
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") || p.URL() != "http://"+p.Addr() {
		t.Fatalf("Addr %q, URL %q", p.Addr(), p.URL())
	}
	if p.AdminAddr() != "" || p.AdminURL() != "" {
		t.Errorf("AdminAddr %q, AdminURL %q without --admin-listen, want both empty", p.AdminAddr(), p.AdminURL())
	}
	if ok, _ := p.Exited(); ok || p.ExitCode() != -1 || p.PID() <= 0 {
		t.Fatalf("exited %v, exit code %d, pid %d: want a running relay", ok, p.ExitCode(), p.PID())
	}
	if err := p.Wait(50 * time.Millisecond); !errors.Is(err, ErrStillRunning) {
		t.Errorf("Wait on a running relay = %v, want ErrStillRunning", err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("Stop: %v\n%s", err, p.Log())
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(p.Log().String(), `"msg":"relay listening"`) {
		t.Errorf("the log lacks the listen line:\n%s", p.Log())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 || strings.Join(lines, "\n")+"\n" != p.Log().String() {
		t.Errorf("the lines handed to OnLine differ from the log:\n%q\n%q", lines, p.Log())
	}
	if _, ok := live.Load(p); ok {
		t.Error("a reaped relay is still in the live set")
	}
}

// TestAdminAddr: with --admin-listen, the listen line's admin_addr is the admin listener's
// address, apart from Addr.
func TestAdminAddr(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Bin: binary(t), Args: args(t, "--admin-listen", "127.0.0.1:0")})
	if !strings.HasPrefix(p.AdminAddr(), "127.0.0.1:") || p.AdminAddr() == p.Addr() || p.AdminURL() != "http://"+p.AdminAddr() {
		t.Fatalf("Addr %q, AdminAddr %q, AdminURL %q", p.Addr(), p.AdminAddr(), p.AdminURL())
	}
}

// TestLogAcrossRuns: a Log passed to a second run keeps the first run's lines.
func TestLogAcrossRuns(t *testing.T) {
	t.Parallel()
	bin, log := binary(t), NewLog(0)
	a := args(t)
	p := start(t, Options{Bin: bin, Args: a, Log: log})
	if err := p.Kill(); err != nil || p.ExitCode() != -1 {
		t.Fatalf("Kill: %v, exit code %d, want -1 (a signal)", err, p.ExitCode())
	}
	p2 := start(t, Options{Bin: bin, Args: a, Log: log})
	if n := strings.Count(log.String(), `"msg":"relay listening"`); n != 2 {
		t.Errorf("%d listen lines in the shared log, want 2:\n%s", n, log)
	}
	if p2.Log() != log {
		t.Error("the second run writes elsewhere")
	}
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	tests := []struct {
		name    string
		opts    Options
		ctx     func() context.Context
		want    error
		wantOut string
	}{
		{
			name: "bad flag", opts: Options{Args: args(t, "--retry-schedule", "1m,soon")},
			want: ErrExitedBeforeListening, wantOut: "retry-schedule",
		},
		{
			name: "bad env", opts: Options{Args: args(t), Env: []string{"BLAMETRAIL_ALLOW_HTTP=maybe"}},
			want: ErrExitedBeforeListening, wantOut: "allow-http",
		},
		{
			// Text logs: the listen line is never seen, so the relay is killed at the timeout.
			name: "no JSON", opts: Options{Args: args(t, "--log-format", "text"), StartTimeout: 3 * time.Second},
			want: ErrNotListening, wantOut: "relay listening",
		},
		{
			name: "cancelled", opts: Options{Args: args(t)},
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			want: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			tt.opts.Bin = bin
			p, err := Start(ctx, tt.opts)
			if p != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Start = %v, %v; want nil, %v", p, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantOut) {
				t.Errorf("the error does not quote the relay's output (%q):\n%v", tt.wantOut, err)
			}
		})
	}
	t.Run("no binary", func(t *testing.T) {
		t.Parallel()
		_, err := Start(context.Background(), Options{Bin: t.TempDir() + "/nothing"})
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Start of a missing binary = %v, want ErrNotExist", err)
		}
	})
}

// TestKillAll: KillAll ends every relay started and not yet reaped. It is not parallel: the
// parallel tests start their relays only after it has run.
func TestKillAll(t *testing.T) {
	bin := binary(t)
	ps := []*Process{start(t, Options{Bin: bin, Args: args(t)}), start(t, Options{Bin: bin, Args: args(t)})}
	KillAll()
	for _, p := range ps {
		if ok, _ := p.Exited(); !ok {
			t.Errorf("relay %d still running after KillAll", p.PID())
		}
	}
}
