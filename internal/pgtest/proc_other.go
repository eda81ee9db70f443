//go:build !linux

package pgtest

import "syscall"

// sysProcAttr runs a child as cred. There is no parent-death signal outside Linux: a killed
// test binary may leave its postmaster running.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}

const unknownID = "?"

// procID cannot tell without /proc: sweep then removes nothing.
func procID(int) string { return unknownID }
