//go:build unix

package store

import (
	"syscall"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// freeBytes reports the room left on the file system holding dir, when fsys is the real one.
// Other file systems (the tests' in-memory ones) report nothing and are never refused.
func freeBytes(fsys wal.FS, dir string) (int64, bool) {
	if _, ok := fsys.(wal.OSFS); !ok {
		return 0, false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
