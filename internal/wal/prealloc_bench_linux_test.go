package wal

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFdatasyncPrealloc measures what preallocating a segment would save the fsync path
// (issue 14): a 1,100-byte record written and fdatasynced, into a file that grows, one
// fallocated to its full size, one zero-filled, and one fallocated with FALLOC_FL_KEEP_SIZE.
// It reports the process's CPU per fsync beside the wall time; the WAL does not preallocate
// (yet). Run with: go test ./internal/wal -run '^$' -bench FdatasyncPrealloc -benchtime 2000x
func BenchmarkFdatasyncPrealloc(b *testing.B) {
	const size = 64 << 20
	for _, tt := range []struct {
		name string
		prep func(f *os.File) error
	}{
		{"append", func(*os.File) error { return nil }},
		{"fallocate", func(f *os.File) error { return syscall.Fallocate(int(f.Fd()), 0, 0, size) }},
		{"keep-size", func(f *os.File) error { return syscall.Fallocate(int(f.Fd()), 1 /* FALLOC_FL_KEEP_SIZE */, 0, size) }},
		{"zero-filled", func(f *os.File) error {
			zero := make([]byte, 1<<20)
			for range size >> 20 {
				if _, err := f.Write(zero); err != nil {
					return err
				}
			}
			return f.Sync()
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "seg"), os.O_CREATE|os.O_RDWR, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := tt.prep(f); err != nil {
				b.Skipf("%s: %v", tt.name, err)
			}
			rec := make([]byte, 1100)
			off := int64(0)
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.WriteAt(rec, off%(size-int64(len(rec)))); err != nil {
					b.Fatal(err)
				}
				off += int64(len(rec))
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
