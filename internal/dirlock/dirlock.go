// Package dirlock owns the rule of one process per data dir: an exclusive lock on
// <dir>/LOCK (flock, as etcd and Prometheus take theirs), held for the life of the process,
// with the holder's PID written inside so that a second process can say who holds it.
//
// The kernel drops a flock when its holder exits, however it exits (SIGKILL included), so a
// stale LOCK file never blocks a restart. It must never be taken by two code paths of one
// process: flock conflicts between open files, not between processes.
package dirlock

import (
	"errors"
	"fmt"
)

// FileName is the lock file in the data dir.
const FileName = "LOCK"

// ErrLocked: another process holds the data dir.
var ErrLocked = errors.New("dirlock: data dir is in use")

// LockedError names the data dir and, when it could be read, the holder's PID.
type LockedError struct {
	Dir string
	PID int // 0 when unknown
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = fmt.Sprintf("another process (pid %d)", e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by %s: two relays on one data dir would lose acknowledged events; "+
		"stop the other one or give this one its own --data-dir", e.Dir, holder)
}

func (e *LockedError) Unwrap() error { return ErrLocked }
