package relaytest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// ExitResult is how a run that was expected to stop by itself ended.
type ExitResult struct {
	// Code is the exit status; -1 when the process did not exit by itself (it was killed).
	Code int
	// Output is everything it wrote to stdout and stderr.
	Output string
	// Listening: it started serving ("relay listening") instead of stopping, and was killed.
	Listening bool
	// TimedOut: it was still running at the deadline, and was killed.
	TimedOut bool
	// Took is how long it ran.
	Took time.Duration
}

// Exited reports whether the process ended by itself.
func (e ExitResult) Exited() bool { return !e.Listening && !e.TimedOut }

// RunToExit runs the relay binary as Start would (same default flags; a new t.TempDir() and
// a random token unless opts sets them) for a run that must end by itself: a refused flag, a
// data dir it must not use. It waits up to timeout. A relay that starts serving instead is
// killed at once (so it never works on the data dir alongside anything else), as is one still
// running at the deadline; the result says which.
func RunToExit(t testing.TB, opts Options, timeout time.Duration) ExitResult {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Token == "" {
		opts.Token = randomToken()
	}
	cmd := exec.Command(binary(t), opts.args()...)
	cmd.Env = append(os.Environ(), opts.Env...)
	listening := make(chan struct{})
	var once sync.Once
	out := &lineWriter{onLine: func(line string) {
		if strings.Contains(line, `"msg":"relay listening"`) {
			once.Do(func() { close(listening) })
		}
	}}
	// One writer for both: exec then calls Write from one goroutine at a time.
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start relay: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	res := ExitResult{Code: -1}
	select {
	case <-done:
	case <-listening:
		res.Listening = true
	case <-time.After(timeout):
		res.TimedOut = true
	}
	if !res.Exited() {
		_ = cmd.Process.Kill()
		<-done
	} else {
		res.Code = cmd.ProcessState.ExitCode()
	}
	res.Took = time.Since(start)
	res.Output = out.String()
	if strings.Contains(res.Output, "WARNING: DATA RACE") {
		t.Errorf("the relay reported a data race:\n%s", res.Output)
	}
	return res
}

// lineWriter keeps what is written and calls onLine for each complete line.
type lineWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	part   []byte
	onLine func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.onLine(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
