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
// fallocated to its full size, one zero-filled, and one fallocated with FALLOC_FL_KEEP_SIZE;
// and, on the fallocated file, sync_file_range(SYNC_FILE_RANGE_WRITE) starting the record's
// writeback before the fdatasync that still has to make it durable (sync_file_range alone
// flushes neither metadata nor the disk's cache, so it cannot replace the fdatasync). It reports the process's CPU per fsync beside the wall time; the WAL does not preallocate
// (yet). Run with: go test ./internal/wal -run '^$' -bench FdatasyncPrealloc -benchtime 2000x
func BenchmarkFdatasyncPrealloc(b *testing.B) {
	const size = 64 << 20
	for _, tt := range []struct {
		name       string
		prep       func(f *os.File) error
		rangeFirst bool
	}{
		{"append", func(*os.File) error { return nil }, false},
		{"fallocate", func(f *os.File) error { return syscall.Fallocate(int(f.Fd()), 0, 0, size) }, false},
		{"keep-size", func(f *os.File) error { return syscall.Fallocate(int(f.Fd()), 1 /* FALLOC_FL_KEEP_SIZE */, 0, size) }, false},
		{"zero-filled", func(f *os.File) error {
			zero := make([]byte, 1<<20)
			for range size >> 20 {
				if _, err := f.Write(zero); err != nil {
					return err
				}
			}
			return f.Sync()
		}, false},
		{"fallocate+sync_file_range", func(f *os.File) error { return syscall.Fallocate(int(f.Fd()), 0, 0, size) }, true},
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
				if tt.rangeFirst {
					if err := syncFileRange(f, off%(size-int64(len(rec))), int64(len(rec))); err != nil {
						b.Skipf("sync_file_range: %v", err)
					}
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

// syncFileRange starts writeback of [off, off+n) without waiting for it (SYNC_FILE_RANGE_WRITE).
func syncFileRange(f *os.File, off, n int64) error {
	const syncFileRangeWrite = 2
	_, _, errno := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, f.Fd(), uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
