package relaytest

import (
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/relayproc"
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
	log := relayproc.NewLog(0)
	p, err := relayproc.Launch(relayproc.Options{Bin: binary(t), Args: opts.args(), Env: opts.Env, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	res := ExitResult{Code: -1}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.Done():
	case <-p.Listening():
		res.Listening = true
	case <-timer.C:
		res.TimedOut = true
	}
	if !res.Exited() {
		_ = p.Kill()
	} else {
		res.Code = p.ExitCode()
	}
	res.Took = time.Since(p.Started())
	res.Output = log.String()
	if strings.Contains(res.Output, "WARNING: DATA RACE") {
		t.Errorf("the relay reported a data race:\n%s", res.Output)
	}
	return res
}
