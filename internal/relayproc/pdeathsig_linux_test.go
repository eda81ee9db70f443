package relayproc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestParentDeathSignal: every relay is started with the parent-death signal SIGKILL.
func TestParentDeathSignal(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Bin: binary(t), Args: args(t)})
	if a := p.cmd.SysProcAttr; a == nil || a.Pdeathsig != syscall.SIGKILL {
		t.Errorf("SysProcAttr = %+v, want Pdeathsig SIGKILL", a)
	}
}

// TestOrphanDies: a harness that is SIGKILLed, so runs no cleanup, takes its relay with it.
// The harness is this test binary run again as TestHelperHarness.
func TestOrphanDies(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHarness$", "-test.v")
	cmd.Env = append(os.Environ(), "RELAYPROC_HELPER_BIN="+bin, "RELAYPROC_HELPER_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := 0
	sc := bufio.NewScanner(out)
	var seen bytes.Buffer
	for pid == 0 && sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if s, ok := strings.CutPrefix(sc.Text(), "relay pid "); ok {
			pid, _ = strconv.Atoi(s)
		}
	}
	if pid == 0 {
		t.Fatalf("the harness did not report its relay:\n%s", seen.String())
	}
	if !alive(pid) {
		t.Fatalf("relay %d not running before its harness dies", pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(KillWait)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("relay %d still running %s after its harness was killed", pid, KillWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs: it exists and is not a zombie (an orphan's new parent may
// not reap it at once).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// TestHelperHarness is the harness of TestOrphanDies: it starts a relay, prints its pid and
// waits to be killed. It does nothing in a normal run.
func TestHelperHarness(t *testing.T) {
	bin := os.Getenv("RELAYPROC_HELPER_BIN")
	if bin == "" {
		t.Skip("run by TestOrphanDies")
	}
	p, err := Start(t.Context(), Options{Bin: bin, Args: []string{"--listen", "127.0.0.1:0",
		"--data-dir", os.Getenv("RELAYPROC_HELPER_DIR"), "--api-token", "relayproc-test-token", "--log-format", "json"}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("relay pid %d\n", p.PID())
	time.Sleep(2 * time.Minute)
	t.Fatal("not killed")
}
