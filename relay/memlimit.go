package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultMemoryLimit is --memory-limit's default, 384 MiB: the Go runtime's soft limit for a
// relay on a host, or in a container whose memory limit is above it.
const DefaultMemoryLimit = 384 << 20

// CgroupMemoryMax returns the memory limit that applies to this process, or 0 when there is
// none: the smallest of its cgroup's and its ancestors' limits, cgroup v2's memory.max, else
// v1's memory.limit_in_bytes. root is where the cgroup file systems are mounted (normally
// /sys/fs/cgroup) and self the process's /proc/self/cgroup. Inside a container with its own
// cgroup namespace self names "/", and root holds the container's own files; without one
// (--cgroupns=host, a systemd unit's MemoryMax, cgroup v1) the limit sits on a directory below
// root, maybe on a parent of the process's cgroup. "max", v1's 2^63 rounded to a page and
// anything past 2^50 mean no limit. A file that is missing is no limit; one that cannot be
// read or parsed is an error, for the caller to log.
func CgroupMemoryMax(root string, self []byte) (int64, error) {
	v2, v1 := "/", "/"
	for line := range strings.Lines(string(self)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			v1 = parts[2]
		}
	}
	limit, found, err := smallestLimit(root, v2, "memory.max")
	if err != nil || found {
		return limit, err
	}
	limit, _, err = smallestLimit(filepath.Join(root, "memory"), v1, "memory.limit_in_bytes")
	return limit, err
}

// smallestLimit reads name in base/cgroup and each parent up to base, and returns the smallest
// limit, and whether any of the files exists. A cgroup path that is not below base (another
// namespace's view) is read at base alone.
func smallestLimit(base, cgroup, name string) (limit int64, found bool, err error) {
	dir := filepath.Join(base, filepath.FromSlash(path.Clean("/"+cgroup)))
	if _, err := os.Stat(dir); err != nil {
		dir = base
	}
	for {
		n, ok, err := readLimit(filepath.Join(dir, name))
		if err != nil {
			return 0, found, err
		}
		found = found || ok
		if n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
		if dir == base || len(dir) < len(base) {
			return limit, found, nil
		}
		dir = filepath.Dir(dir)
	}
}

// readLimit reads one limit file: 0 for no limit; ok false when the file does not exist.
func readLimit(file string) (n int64, ok bool, err error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cgroup memory limit: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return 0, true, nil
	}
	u, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, true, fmt.Errorf("cgroup memory limit: %s: %q is not a number of bytes", file, v)
	}
	if u == 0 || u > 1<<50 {
		return 0, true, nil
	}
	return int64(u), true, nil
}

// EffectiveMemoryLimit decides the soft limit: the one configured when it was given (flag or
// environment); otherwise the default, lowered to 90% of the container's limit when that is
// smaller, because a soft limit above the container's makes the collector work harder only
// after the kernel has killed the process. It says where the value came from, for the log.
func EffectiveMemoryLimit(configured int64, given bool, cgroupMax int64) (int64, string) {
	if given {
		return configured, "--memory-limit or BLAMETRAIL_MEMORY_LIMIT"
	}
	if c := cgroupMax / 10 * 9; cgroupMax > 0 && c < configured {
		return c, "90% of the container's memory limit"
	}
	return configured, "default"
}
