package store

import (
	"runtime"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// BenchmarkQueuedMemory reports the live heap each queued delivery costs in a durable store
// (bodies in the WAL, the payload cache at its smallest), once its first attempt failed and
// a retry is due: the shape of a backlog behind a dead receiver. Run with -benchtime=1x.
func BenchmarkQueuedMemory(b *testing.B) {
	const n = 200_000
	for b.Loop() {
		s, err := Open(Options{Dir: b.TempDir(), WAL: wal.Options{Sync: wal.SyncNone}, PayloadCache: 1,
			SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		url, name := "https://a.example/h", "a"
		if _, err := s.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_x"); err != nil {
			b.Fatal(err)
		}
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		data := []byte(`{"k":1}`)
		for range n {
			if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		retry := time.Now().Add(time.Hour)
		for _, r := range s.Pending() {
			if _, ok := s.Begin(r.Delivery, time.Now()); !ok {
				b.Fatal("not claimable")
			}
			if _, err := s.Finish(Outcome{Delivery: r.Delivery, RetryAt: retry,
				Attempt: Attempt{N: 1, At: time.Now(), Error: "connect: connection refused"}}); err != nil {
				b.Fatal(err)
			}
		}
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/queued")
		runtime.KeepAlive(s)
		s.Close()
	}
}
