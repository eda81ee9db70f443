package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process figures come from Linux's /proc. CPU time in /proc/<pid>/stat is in clock ticks;
// the tick rate is asked of `getconf CLK_TCK` once, and assumed to be 100 (the Linux default
// on every mainstream architecture) when getconf is missing.

var (
	ticksOnce sync.Once
	ticks     int64
	ticksSrc  string
)

// ClockTicks returns the kernel's clock ticks per second and where the figure came from.
func ClockTicks() (int64, string) {
	ticksOnce.Do(func() {
		ticks, ticksSrc = 100, "assumed 100 (getconf CLK_TCK unavailable)"
		out, err := exec.Command("getconf", "CLK_TCK").Output()
		if err != nil {
			return
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			ticks, ticksSrc = n, "getconf CLK_TCK"
		}
	})
	return ticks, ticksSrc
}

// ProcCPU returns the user+system CPU time the process has used so far.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may hold spaces, so fields are counted from
// the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command field")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14 → f[11], stime field 15 → f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	hz, _ := ClockTicks()
	return time.Duration((ut + st) * int64(time.Second) / hz), nil
}

// Mem is a process's resident set now (VmRSS) and its high-water mark (VmHWM), in bytes.
type Mem struct {
	RSS int64
	HWM int64
}

// ProcMem reads VmRSS and VmHWM from /proc/<pid>/status.
func ProcMem(pid int) (Mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Mem{}, err
	}
	return parseStatusMem(b)
}

func parseStatusMem(b []byte) (Mem, error) {
	var m Mem
	var seen int
	for line := range bytes.Lines(b) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &m.RSS
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &m.HWM
		default:
			continue
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("proc status: %q: %w", line, err)
		}
		*dst = kb << 10
		seen++
	}
	if seen < 2 {
		return m, errors.New("proc status: VmRSS or VmHWM missing")
	}
	return m, nil
}

// memSampler polls a process's VmRSS every interval and keeps the largest value seen.
type memSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	maxRSS  int64
	samples int
}

func startMemSampler(pid int, every time.Duration) *memSampler {
	s := &memSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) sample() {
	m, err := ProcMem(s.pid)
	if err != nil {
		return // the process is gone; the last value stands
	}
	s.mu.Lock()
	s.maxRSS = max(s.maxRSS, m.RSS)
	s.samples++
	s.mu.Unlock()
}

// Max returns the largest VmRSS sampled so far.
func (s *memSampler) Max() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxRSS
}

// Reset forgets the maximum, to start a new phase.
func (s *memSampler) Reset() {
	s.mu.Lock()
	s.maxRSS = 0
	s.mu.Unlock()
}

// Stop ends the sampling and waits for the goroutine.
func (s *memSampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
