//go:build unix

package dirlock

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAcquire: the second taker of a data dir fails at once with an error naming the dir and
// the holder's PID; after Release the dir can be taken again; a LOCK file left by a process
// that died (no flock held) does not block.
func TestAcquire(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire: %v, want a *LockedError", err)
	}
	if le.PID != os.Getpid() || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("error %q (pid %d) does not name %s and pid %d", err, le.PID, dir, os.Getpid())
	}
	releaseAndRetake(t, first, dir)

	stale := t.TempDir()
	if err := os.WriteFile(filepath.Join(stale, FileName), []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(stale)
	if err != nil {
		t.Fatalf("a stale LOCK file blocked: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(stale, FileName))
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("LOCK holds %q, want our pid", b)
	}
	_ = l.Release()
}

// TestAcquireAfterLockFileReplaced: deleting or replacing LOCK while its holder runs (a
// "stale lock file" cleanup) must not let a second taker in: two relays would append to one
// log, and a restart would cut what one of them acknowledged as a torn tail. Once the holder
// releases, the data dir can be taken again.
func TestAcquireAfterLockFileReplaced(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alter func(t *testing.T, lock string)
	}{
		{"removed", func(t *testing.T, lock string) {
			if err := os.Remove(lock); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by another file", func(t *testing.T, lock string) {
			other := lock + ".new"
			if err := os.WriteFile(other, []byte("1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, lock); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			first, err := Acquire(dir)
			if err != nil {
				t.Fatal(err)
			}
			tc.alter(t, filepath.Join(dir, FileName))
			second, err := Acquire(dir)
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
				if second != nil {
					_ = second.Release()
				}
				t.Fatalf("Acquire while the holder runs, its LOCK %s: %v, want a *LockedError naming %s", tc.name, err, dir)
			}
			releaseAndRetake(t, first, dir)
		})
	}
}

// releaseAndRetake releases held and checks that dir can then be taken (and releases it).
func releaseAndRetake(t *testing.T, held *Lock, dir string) {
	t.Helper()
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if err := again.Release(); err != nil {
		t.Fatal(err)
	}
}
