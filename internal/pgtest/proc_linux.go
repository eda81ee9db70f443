package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// sysProcAttr runs a child as cred (nil: as ourselves) and has the kernel SIGKILL it when the
// thread that started it ends, which happens when this process dies: a test binary killed
// before its cleanup takes its postmaster with it, whose backends then exit by themselves.
// Go sets the parent-death signal after switching user, so the switch does not clear it.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}

// unknownID is procID's answer when it cannot tell.
const unknownID = "?"

// procID is "pid starttime" of a running process, "" if there is none (or it is a zombie).
func procID(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces: the fields after it start past the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return unknownID
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[19] field 22 (start time).
	if len(f) < 20 {
		return unknownID
	}
	if f[0] == "Z" || f[0] == "X" {
		return ""
	}
	return fmt.Sprintf("%d %s", pid, f[19])
}
