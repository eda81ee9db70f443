package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relayproc"
)

// RelayPackage is the import path of the relay binary.
const RelayPackage = relayproc.Package

// BuildRelay compiles the relay (no race detector: this is a benchmark) into dir and returns
// the binary's path. It runs the go command in the current directory, which must be inside
// the module.
func BuildRelay(ctx context.Context, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return relayproc.Build(ctx, relayproc.BuildOptions{Dir: dir, Version: "bench"})
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

	proc   *relayproc.Process
	logs   *logWatch
	ownDir bool
	keep   bool
}

// KillAll sends SIGKILL to every relay still running and waits (bounded) for each to end.
func KillAll() { relayproc.KillAll() }

// startLog is how much of a relay's raw output is kept, for the error of a failed start; the
// harness's own record of the log is the bounded summary logWatch keeps.
const startLog = 64 << 10

// StartRelay runs the relay on 127.0.0.1 with a port the kernel picks and waits until it
// logs "relay listening".
func StartRelay(ctx context.Context, opts RelayOptions) (*Relay, error) {
	r := &Relay{DataDir: opts.DataDir, keep: opts.Keep, logs: newLogWatch()}
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
	p, err := relayproc.Start(ctx, relayproc.Options{Bin: opts.Bin, Args: args,
		Log: relayproc.NewLog(startLog), OnLine: r.logs.line, StartTimeout: opts.StartTimeout})
	if err != nil {
		r.removeDir()
		return nil, err
	}
	r.proc = p
	r.Addr, r.URL = p.Addr(), p.URL()
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
func (r *Relay) PID() int { return r.proc.PID() }

// Exited reports whether the process has ended, and its error if so.
func (r *Relay) Exited() (bool, error) { return r.proc.Exited() }

// Stop sends SIGTERM and waits up to grace for the relay to exit, then SIGKILLs it.
func (r *Relay) Stop(grace time.Duration) { _ = r.proc.Stop(grace) }

// Signal sends sig to the relay process (SIGUSR1 asks it for a snapshot).
func (r *Relay) Signal(sig os.Signal) error { return r.proc.Signal(sig) }

// Kill sends SIGKILL and waits (at most 10 s) for the process to be reaped.
func (r *Relay) Kill() { _ = r.proc.Kill() }

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
		byLevel:  map[string]int64{},
		warnings: map[string]int64{},
		tail:     make([]string, 0, logTailLines),
	}
}

// line takes one line of the relay's output (relayproc's line callback: one goroutine, in
// order, the slice not kept).
func (w *logWatch) line(line []byte) {
	level, isJSON := levelOf(line)
	// Decode only the lines that matter, outside the lock: snapshots, and warnings and errors
	// (counted by message).
	var snap SnapshotWindow
	var isSnap, isWarn bool
	var entry struct {
		Msg string `json:"msg"`
	}
	switch level {
	case "INFO":
		snap, isSnap = parseSnapshotLine(line)
	case "WARN", "ERROR":
		isWarn = json.Unmarshal(line, &entry) == nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
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
	if isSnap && len(w.snaps) < logSnapshots {
		w.snaps = append(w.snaps, snap)
	}
	if _, ok := w.warnings[entry.Msg]; isWarn && (ok || len(w.warnings) < logWarnKinds) {
		w.warnings[entry.Msg]++
	}
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
