package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

// RelayPackage is the import path of the relay binary.
const RelayPackage = "github.com/blametrail/terraform-provider-blametrail/relay/cmd/blametrail-relay"

// BuildRelay compiles the relay (no race detector: this is a benchmark) into dir and returns
// the binary's path. It runs the go command in the current directory, which must be inside
// the module.
func BuildRelay(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "blametrail-relay")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "-ldflags", "-X main.version=bench", RelayPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build relay: %v\n%s", err, out)
	}
	return bin, nil
}

// RelayOptions says how to start a relay.
type RelayOptions struct {
	Bin  string   // the relay binary
	Args []string // flags beyond --listen, --data-dir, --api-token and --log-format
	// DataDir is used as is when set; otherwise a new temporary directory, removed by Close
	// unless Keep.
	DataDir string
	Keep    bool
	// StartTimeout bounds the wait for "relay listening" (default 60 s).
	StartTimeout time.Duration
}

// Relay is a running relay process.
type Relay struct {
	URL     string
	Addr    string
	Token   string
	DataDir string
	Client  *apiclient.Client

	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	logs   *logWatch
	ownDir bool
	keep   bool
}

// live holds every relay this process started and has not reaped, so KillAll can end them
// on Ctrl-C or a fatal error.
var live sync.Map // *Relay → struct{}

// KillAll sends SIGKILL to every relay still running and waits (bounded) for each to end.
func KillAll() {
	live.Range(func(k, _ any) bool {
		k.(*Relay).Kill()
		return true
	})
}

// StartRelay runs the relay on 127.0.0.1 with a port the kernel picks and waits until it
// logs "relay listening".
func StartRelay(ctx context.Context, opts RelayOptions) (*Relay, error) {
	r := &Relay{DataDir: opts.DataDir, keep: opts.Keep}
	if r.DataDir == "" {
		dir, err := os.MkdirTemp("", "blametrail-bench-data-")
		if err != nil {
			return nil, err
		}
		r.DataDir, r.ownDir = dir, true
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	r.Token = "bench_" + hex.EncodeToString(tok[:])

	args := append([]string{
		"--listen", "127.0.0.1:0", "--data-dir", r.DataDir, "--api-token", r.Token, "--log-format", "json",
	}, opts.Args...)
	r.cmd = exec.Command(opts.Bin, args...)
	dieWithParent(r.cmd)
	r.cmd.Stdout = io.Discard
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		r.removeDir()
		return nil, err
	}
	r.logs = newLogWatch()
	if err := r.cmd.Start(); err != nil {
		r.removeDir()
		return nil, fmt.Errorf("start relay: %w", err)
	}
	live.Store(r, struct{}{})
	r.done = make(chan struct{})
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		r.logs.consume(stderr)
	}()
	go func() {
		<-logsDone // Wait closes the pipe; read it to the end first
		r.err = r.cmd.Wait()
		live.Delete(r)
		close(r.done)
	}()

	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case addr := <-r.logs.listening:
		r.Addr, r.URL = addr, "http://"+addr
	case <-r.done:
		err := fmt.Errorf("relay exited before listening: %v\n%s", r.err, r.logs.Tail(40))
		r.removeDir()
		return nil, err
	case <-t.C:
		r.Close()
		return nil, fmt.Errorf("relay did not listen within %s\n%s", timeout, r.logs.Tail(40))
	case <-ctx.Done():
		r.Close()
		return nil, ctx.Err()
	}
	// Admin calls on a relay with a million pending deliveries may take a while (a re-enable
	// resumes all of them in one request), so the client waits longer than usual.
	c, err := apiclient.New(r.URL, r.Token, apiclient.WithUserAgent("blametrail-bench"),
		apiclient.WithRetries(0, 0), apiclient.WithHTTPClient(&http.Client{Timeout: 5 * time.Minute}))
	if err != nil {
		r.Close()
		return nil, err
	}
	r.Client = c
	return r, nil
}

// PID is the relay's process id.
func (r *Relay) PID() int { return r.cmd.Process.Pid }

// Exited reports whether the process has ended, and its error if so.
func (r *Relay) Exited() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM and waits up to grace for the relay to exit, then SIGKILLs it.
func (r *Relay) Stop(grace time.Duration) {
	if ok, _ := r.Exited(); ok {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		r.Kill()
	}
}

// Kill sends SIGKILL and waits (at most 10 s) for the process to be reaped.
func (r *Relay) Kill() {
	if ok, _ := r.Exited(); ok {
		return
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
	}
}

// Close stops the relay (SIGTERM, then SIGKILL after 10 s) and removes its data directory
// unless it was kept or supplied by the caller.
func (r *Relay) Close() {
	r.Stop(10 * time.Second)
	r.removeDir()
}

func (r *Relay) removeDir() {
	if r.ownDir && !r.keep {
		_ = os.RemoveAll(r.DataDir)
	}
}

// Logs returns what the relay logged that the harness keeps: counts by level, the warnings
// and errors by message, and the last lines.
func (r *Relay) Logs() LogSummary { return r.logs.Summary() }

// Snapshots returns the snapshots the relay has logged so far ("snapshot written"), oldest
// first.
func (r *Relay) Snapshots() []SnapshotWindow {
	r.logs.mu.Lock()
	defer r.logs.mu.Unlock()
	return append([]SnapshotWindow(nil), r.logs.snaps...)
}

// LogSummary is what a relay logged, condensed.
type LogSummary struct {
	Lines    int64            `json:"lines"`
	Bytes    int64            `json:"bytes"`
	ByLevel  map[string]int64 `json:"by_level"`
	Warnings map[string]int64 `json:"warnings_by_msg,omitempty"` // WARN and ERROR, by msg
	Crash    []string         `json:"crash,omitempty"`           // lines that are not JSON: panics, fatal errors
	Tail     []string         `json:"tail,omitempty"`            // the last lines
}

// logWatch reads the relay's JSON log: it announces the listen address, counts lines by level
// and warnings by message, keeps the last lines and anything that is not JSON (a panic), all
// within fixed bounds so a relay that logs a million lines costs the harness no memory.
type logWatch struct {
	listening chan string

	mu       sync.Mutex
	lines    int64
	bytes    int64
	byLevel  map[string]int64
	warnings map[string]int64
	crash    []string
	tail     []string
	tailNext int
	snaps    []SnapshotWindow
}

const (
	logTailLines   = 100
	logCrashLines  = 400
	logWarnKinds   = 64
	logSummaryTail = 30
	logSnapshots   = 100_000 // a relay snapshots every second at most
)

func newLogWatch() *logWatch {
	return &logWatch{
		listening: make(chan string, 1),
		byLevel:   map[string]int64{},
		warnings:  map[string]int64{},
		tail:      make([]string, 0, logTailLines),
	}
}

func (w *logWatch) consume(rd io.Reader) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var entry struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Addr  string `json:"addr"`
	}
	for sc.Scan() {
		line := sc.Bytes()
		level, isJSON := levelOf(line)
		w.mu.Lock()
		w.lines++
		w.bytes += int64(len(line)) + 1
		w.byLevel[level]++
		if len(w.tail) < logTailLines {
			w.tail = append(w.tail, string(line))
		} else {
			w.tail[w.tailNext] = string(line)
			w.tailNext = (w.tailNext + 1) % logTailLines
		}
		if !isJSON && len(w.crash) < logCrashLines {
			w.crash = append(w.crash, string(line))
		}
		w.mu.Unlock()
		if level == "INFO" {
			if sw, ok := parseSnapshotLine(line); ok {
				w.mu.Lock()
				if len(w.snaps) < logSnapshots {
					w.snaps = append(w.snaps, sw)
				}
				w.mu.Unlock()
				continue
			}
		}
		// Decode only the few lines that matter: the listen line and warnings.
		if !isJSON || (level == "INFO" && !bytes.Contains(line, []byte(`"relay listening"`))) {
			continue
		}
		entry.Msg, entry.Addr = "", ""
		if json.Unmarshal(line, &entry) != nil {
			continue
		}
		if entry.Msg == "relay listening" && entry.Addr != "" {
			select {
			case w.listening <- entry.Addr:
			default:
			}
		}
		if level == "WARN" || level == "ERROR" {
			w.mu.Lock()
			if _, ok := w.warnings[entry.Msg]; ok || len(w.warnings) < logWarnKinds {
				w.warnings[entry.Msg]++
			}
			w.mu.Unlock()
		}
	}
	_, _ = io.Copy(io.Discard, rd)
}

// levelOf finds slog's "level" field without decoding the line.
func levelOf(line []byte) (string, bool) {
	if len(line) == 0 || line[0] != '{' {
		return "non-json", false
	}
	for _, l := range [...]string{"INFO", "WARN", "ERROR", "DEBUG"} {
		if bytes.Contains(line, []byte(`"level":"`+l+`"`)) {
			return l, true
		}
	}
	return "other", true
}

// Tail returns up to n of the last lines.
func (w *logWatch) Tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var all []string
	if len(w.tail) < logTailLines {
		all = w.tail
	} else {
		all = append(append([]string(nil), w.tail[w.tailNext:]...), w.tail[:w.tailNext]...)
	}
	all = append(append([]string(nil), w.crash...), all...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}

func (w *logWatch) Summary() LogSummary {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := LogSummary{Lines: w.lines, Bytes: w.bytes, ByLevel: map[string]int64{}, Warnings: map[string]int64{}}
	for k, v := range w.byLevel {
		s.ByLevel[k] = v
	}
	for k, v := range w.warnings {
		s.Warnings[k] = v
	}
	s.Crash = append(s.Crash, w.crash...)
	if len(w.tail) < logTailLines {
		s.Tail = append(s.Tail, w.tail...)
	} else {
		s.Tail = append(append(s.Tail, w.tail[w.tailNext:]...), w.tail[:w.tailNext]...)
	}
	if n := len(s.Tail); n > logSummaryTail {
		s.Tail = s.Tail[n-logSummaryTail:]
	}
	return s
}

// errRelayDied is returned when the relay exits in the middle of a scenario.
var errRelayDied = errors.New("relay exited during the scenario")
