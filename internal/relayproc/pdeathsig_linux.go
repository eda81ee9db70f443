package relayproc

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL the relay when the thread that started it ends: the
// test binary or harness was killed or crashed without stopping it. Go ends an OS thread only
// when a goroutine locked to it (runtime.LockOSThread) returns without unlocking, which no
// caller of this package does while its relays run.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
