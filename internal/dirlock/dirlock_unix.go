//go:build unix

package dirlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Lock is a held data-dir lock: the flock on LOCK and, where the file system allows it, a
// flock on the data dir itself.
type Lock struct{ f, dir *os.File }

// Acquire takes the lock on dir (creating dir if needed) or fails at once with a *LockedError
// when another process holds it.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dirlock: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dirlock: open %s: %w", path, err)
	}
	if err := flock(f); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("dirlock: lock %s: %w", path, err)
	}
	// LOCK alone is not enough: once someone deletes it (a "stale lock file" cleanup, as for
	// a pidfile) the next process creates a new LOCK, locks that, and two relays append to
	// one log. The directory's inode cannot be swapped under a running relay that way, so
	// take it too.
	d, err := lockDir(dir)
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			// The holder's PID was in the LOCK file that was deleted; this one is new.
			return nil, &LockedError{Dir: dir}
		}
		return nil, err
	}
	// Written after the lock is held; a reader that comes between the truncate and the write
	// finds no PID and says so. A PID that cannot be written only makes that message vaguer.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f, dir: d}, nil
}

// lockDir flocks dir itself. A directory that cannot be opened or locked (some network file
// systems emulate flock with byte-range locks, which need a file open for writing) leaves the
// LOCK file as the only lock, as before: nil file, nil error. Only another holder is an error.
func lockDir(dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil
	}
	if err := flock(d); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, err
		}
		return nil, nil
	}
	return d, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func readPID(f *os.File) int {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Release drops the lock. The LOCK file stays: removing it would let a third process lock a
// new file while a second still waits on the old one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if l.dir != nil {
		// Closing the last descriptor drops a flock; the directory's lock goes with it.
		if cerr := l.dir.Close(); err == nil {
			err = cerr
		}
	}
	l.f, l.dir = nil, nil
	return err
}
