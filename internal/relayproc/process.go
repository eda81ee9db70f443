package relayproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Sentinel errors; failures wrap them with the relay's output.
var (
	// ErrExitedBeforeListening: the relay ended before it logged "relay listening".
	ErrExitedBeforeListening = errors.New("relay exited before listening")
	// ErrNotListening: the relay did not log "relay listening" in time (it was killed).
	ErrNotListening = errors.New("relay did not listen in time")
	// ErrStillRunning: Wait's timeout passed with the relay still running.
	ErrStillRunning = errors.New("relay still running")
)

const (
	// DefaultStartTimeout bounds Start's wait for "relay listening" when Options leaves it 0.
	DefaultStartTimeout = 60 * time.Second
	// KillWait bounds Kill's wait for the kernel to end a SIGKILLed relay.
	KillWait = 10 * time.Second
	// errorOutput is how much of the relay's output a start error quotes (its tail).
	errorOutput = 64 << 10
)

// Options says how to run a relay.
type Options struct {
	// Bin is the relay binary (see Build and Builder).
	Bin string
	// Args is the whole command line after the binary's name. Start needs it to log JSON on
	// 127.0.0.1 (--log-format json --listen 127.0.0.1:0) to find the address.
	Args []string
	// Env is added to this process's environment.
	Env []string
	// Log receives the relay's stdout and stderr; nil means a new NewLog(0). Pass the previous
	// run's Log to keep one record across restarts.
	Log *Log
	// OnLine, when set, is called for each line of output, in order, from one goroutine,
	// without the newline. It must be quick and must not keep the slice.
	OnLine func(line []byte)
	// StartTimeout bounds Start's wait for "relay listening"; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Process is a running (or ended) relay.
type Process struct {
	cmd       *exec.Cmd
	log       *Log
	started   time.Time
	listening chan struct{} // closed once "relay listening" was read; addr and adminAddr are set first
	addr      string
	adminAddr string        // "" when the relay runs without --admin-listen
	done      chan struct{} // closed once the process was reaped; err is set first
	err       error
}

// live holds every relay started here and not yet reaped, for KillAll.
var live sync.Map // *Process → struct{}

// KillAll SIGKILLs every relay this process started that is still running, and waits
// (KillWait at most each) for them to end. Harnesses defer it and call it on a second Ctrl-C.
func KillAll() {
	live.Range(func(k, _ any) bool {
		_ = k.(*Process).Kill()
		return true
	})
}

// Launch starts the relay and returns at once; see Start to wait until it listens.
func Launch(opts Options) (*Process, error) {
	if opts.Log == nil {
		opts.Log = NewLog(0)
	}
	cmd := exec.Command(opts.Bin, opts.Args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	dieWithParent(cmd)
	// One pipe for stdout and stderr keeps their lines in the order the relay wrote them.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &Process{cmd: cmd, log: opts.Log, listening: make(chan struct{}), done: make(chan struct{})}
	p.started = time.Now()
	err = cmd.Start()
	pw.Close() // the child has its copy; EOF on pr now means it ended
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start relay: %w", err)
	}
	live.Store(p, struct{}{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer pr.Close()
		readLines(pr, p.log, func(line []byte) {
			p.noteListening(line)
			if opts.OnLine != nil {
				opts.OnLine(line)
			}
		})
	}()
	go func() {
		<-read // read the output to its end before reaping
		p.err = cmd.Wait()
		live.Delete(p)
		close(p.done)
	}()
	return p, nil
}

var listenMsg = []byte(`"relay listening"`)

// noteListening closes p.listening at the first JSON line {"msg":"relay listening","addr":…},
// which also has "admin_addr" when the relay runs with --admin-listen.
func (p *Process) noteListening(line []byte) {
	if p.addr != "" || !bytes.Contains(line, listenMsg) {
		return
	}
	var m struct {
		Msg, Addr string
		AdminAddr string `json:"admin_addr"`
	}
	if json.Unmarshal(line, &m) == nil && m.Msg == "relay listening" && m.Addr != "" {
		p.addr, p.adminAddr = m.Addr, m.AdminAddr
		close(p.listening)
	}
}

// Start launches the relay and waits until it listens (Options.StartTimeout). On failure
// the relay has been killed and reaped, and the error quotes the tail of its output.
func Start(ctx context.Context, opts Options) (*Process, error) {
	p, err := Launch(opts)
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	if _, err := p.WaitListening(ctx, timeout); err != nil {
		_ = p.Kill()
		return nil, err
	}
	return p, nil
}

// WaitListening waits up to timeout for the "relay listening" line and returns its address.
// It does not stop the relay on failure.
func (p *Process) WaitListening(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.listening:
		return p.addr, nil
	case <-p.done:
		select {
		case <-p.listening: // listened, then ended: the caller sees the exit soon enough
			return p.addr, nil
		default:
		}
		return "", fmt.Errorf("%w (%v)\n%s", ErrExitedBeforeListening, p.err, p.log.Tail(errorOutput))
	case <-t.C:
		return "", fmt.Errorf("%w: not within %s\n%s", ErrNotListening, timeout, p.log.Tail(errorOutput))
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the relay to listen: %w", ctx.Err())
	}
}

// Listening is closed once the relay logged "relay listening".
func (p *Process) Listening() <-chan struct{} { return p.listening }

// Addr is the host:port the relay listens on (its --listen), once Listening is closed; "" before.
func (p *Process) Addr() string {
	select {
	case <-p.listening:
		return p.addr
	default:
		return ""
	}
}

// URL is "http://" + Addr, or "" before the relay listens.
func (p *Process) URL() string {
	if a := p.Addr(); a != "" {
		return "http://" + a
	}
	return ""
}

// AdminAddr is the host:port of the relay's --admin-listen, once Listening is closed; "" before,
// and when the relay serves its admin API on Addr.
func (p *Process) AdminAddr() string {
	select {
	case <-p.listening:
		return p.adminAddr
	default:
		return ""
	}
}

// AdminURL is "http://" + AdminAddr, or "" when AdminAddr is.
func (p *Process) AdminURL() string {
	if a := p.AdminAddr(); a != "" {
		return "http://" + a
	}
	return ""
}

// PID is the relay's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Started is when the relay was started.
func (p *Process) Started() time.Time { return p.started }

// Log is the relay's output so far.
func (p *Process) Log() *Log { return p.log }

// Done is closed once the relay has ended and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the relay has ended, and if so how (nil for exit code 0, an
// *exec.ExitError otherwise).
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// ExitCode is the relay's exit status once it has ended; -1 while it runs or when a signal
// ended it.
func (p *Process) ExitCode() int {
	if ok, _ := p.Exited(); !ok {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Wait waits up to timeout for the relay to end by itself and returns how it ended (as
// Exited), or an error wrapping ErrStillRunning.
func (p *Process) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("%w after %s", ErrStillRunning, timeout)
	}
}

// Signal sends sig to the relay; os.ErrProcessDone once it has ended.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM, waits up to grace for the relay to end, then kills it; it returns how
// the relay ended (as Exited). A relay that has ended already is left as it is.
func (p *Process) Stop(grace time.Duration) error {
	if ok, err := p.Exited(); ok {
		return err
	}
	_ = p.Signal(syscall.SIGTERM)
	if err := p.Wait(grace); !errors.Is(err, ErrStillRunning) {
		return err
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return p.err
}

// Kill sends SIGKILL, as a crash would, and waits (KillWait at most) for the relay to end.
func (p *Process) Kill() error {
	if ok, _ := p.Exited(); ok {
		return nil
	}
	_ = p.cmd.Process.Kill()
	if err := p.Wait(KillWait); errors.Is(err, ErrStillRunning) {
		return fmt.Errorf("SIGKILL: %w", err)
	}
	return nil
}
