package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultMemoryLimit is --memory-limit's default, 384 MiB: the Go runtime's soft limit for a
// relay on a host, or in a container whose memory limit is above it.
const DefaultMemoryLimit = 384 << 20

// CgroupMemoryMax returns the memory limit of the cgroup the process sees at root (normally
// /sys/fs/cgroup: inside a container, the container's own), or 0 when there is none: cgroup v2's
// memory.max, else v1's memory/memory.limit_in_bytes. "max", v1's page-rounded 2^63 and
// anything past 2^50 mean no limit. A file that is missing is no limit; one that cannot be
// read or parsed is an error, for the caller to log.
func CgroupMemoryMax(root string) (int64, error) {
	for _, name := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("cgroup memory limit: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cgroup memory limit: %s: %q is not a number of bytes", name, v)
		}
		if n == 0 || n > 1<<50 {
			return 0, nil
		}
		return int64(n), nil
	}
	return 0, nil
}

// EffectiveMemoryLimit decides the soft limit: the one configured when it was given (flag or
// environment); otherwise the default, lowered to 90% of the container's limit when that is
// smaller, because a soft limit above the container's makes the collector work harder only
// after the kernel has killed the process. It says where the value came from, for the log.
func EffectiveMemoryLimit(configured int64, given bool, cgroupMax int64) (int64, string) {
	if given {
		return configured, "--memory-limit"
	}
	if c := cgroupMax / 10 * 9; cgroupMax > 0 && c < configured {
		return c, "90% of the container's memory limit"
	}
	return configured, "default"
}
