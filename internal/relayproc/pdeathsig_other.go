//go:build !linux

package relayproc

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; KillAll and the callers' cleanups
// cover the orderly exits.
func dieWithParent(*exec.Cmd) {}
