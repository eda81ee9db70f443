package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL the relay if the harness dies without running
// KillAll (SIGKILL, a crash).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
