package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks write to b.TempDir(), so set TMPDIR to measure another disk. Every figure is per
// record of 1 KiB of data (1032 bytes on disk); MB/s counts data bytes, 1 MB = 10^6 bytes.

const benchRecord = 1024

// reportRate adds records/s and MB/s for n records of benchRecord bytes in d.
func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "rec/s")
	b.ReportMetric(float64(n)*benchRecord/1e6/d.Seconds(), "MB/s")
}

// BenchmarkAppend: each of P appenders appends a record and waits until it is durable under
// the policy, until b.N records are in.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncBatch, SyncAlways, SyncNone} {
		for _, p := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/appenders=%d", policyName(policy), p), func(b *testing.B) {
				o := Options{Dir: b.TempDir(), Sync: policy, Logger: discardLogger()}
				w, err := Open(o, Position{}, func(Position, []byte) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				data := payload(1, benchRecord)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.SetBytes(benchRecord)
				b.ResetTimer()
				start := time.Now()
				for range p {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, wait := w.Append(data); wait() != nil {
								b.Error("append failed")
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				reportRate(b, b.N, elapsed)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkRawWriteFsync is the physical baseline: the same 1032-byte frames written with one
// os.File.Write each, with an fsync after each (what one durable record costs at least) and
// without (what the page cache costs).
func BenchmarkRawWriteFsync(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "write+fsync"
		if !sync {
			name = "write"
		}
		b.Run(name, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			frame := appendFrame(nil, payload(1, benchRecord))
			b.SetBytes(benchRecord)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := f.Write(frame); err != nil {
					b.Fatal(err)
				}
				if sync {
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			reportRate(b, b.N, elapsed)
		})
	}
}

// BenchmarkReplay: one op is one record replayed by Open; the log holds b.N records of 1 KiB
// in default (64 MiB) segments, from the page cache. Run with -benchtime 100000x or 1000000x
// for a log of that size; s/Mrec is the recovery time per million records.
func BenchmarkReplay(b *testing.B) {
	o := Options{Dir: b.TempDir(), Sync: SyncNone, Logger: discardLogger()}
	w, err := Open(o, Position{}, func(Position, []byte) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	data := payload(1, benchRecord)
	var last func() error
	for range b.N {
		_, last = w.Append(data)
	}
	if err := last(); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}

	b.SetBytes(benchRecord)
	b.ResetTimer()
	start := time.Now()
	n := 0
	w, err = Open(o, Position{}, func(_ Position, d []byte) error {
		n += len(d) / benchRecord
		return nil
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	w.Close()
	if n != b.N {
		b.Fatalf("replayed %d records, wrote %d", n, b.N)
	}
	reportRate(b, n, elapsed)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/rec")
	b.ReportMetric(elapsed.Seconds()/float64(n)*1e6, "s/Mrec")
}
