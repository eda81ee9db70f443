//go:build !linux

package bench

import "os/exec"

// dieWithParent has no portable equivalent; KillAll covers the orderly exits. The figures
// this package reads from /proc exist only on Linux anyway.
func dieWithParent(*exec.Cmd) {}
