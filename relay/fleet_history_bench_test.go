//go:build unix

package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHistoryWriter is the relay's cost per delivery of the fleet's deliveries view,
// without PostgreSQL: a delivery accepted and succeeding at its first attempt (a memory store's
// Ingest, Begin and Finish), with the store telling its two changes to the writer, which
// coalesces them, encodes the row and hands batches to a Write that does nothing. The baseline
// is the same delivery on a single relay (no hook, no writer). cpu-ns/delivery counts every
// goroutine (the writer's too); BenchmarkUpsertDeliveries (internal/fleet) adds the statement.
func BenchmarkHistoryWriter(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("writer=%v", on), func(b *testing.B) {
			var dropped int64
			f := &fleetLink{cfg: Config{HistoryLimit: 100}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			f.history = fleet.NewDeliveryWriter(fleet.WriterOptions[store.DeliveryState]{
				Key:     func(st store.DeliveryState) [16]byte { return st.ID },
				Version: func(st store.DeliveryState) int64 { return st.Version },
				Row:     rowOf,
				Write:   func(context.Context, []fleet.DeliveryRow) error { return nil },
				OnDrop:  func(n int64) { dropped += n },
			})
			opts := store.Options{HistoryLimit: 10, HistoryCache: 1000}
			if on {
				opts.OnDelivery = f.history.Add
			}
			var ready []store.Ready
			opts.OnReady = func(r store.Ready) { ready = append(ready, r) }
			s := store.New(opts)
			url, name := "https://a.example/h", "a"
			if _, err := s.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_x"); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { f.history.Run(ctx); close(done) }()
			data := []byte(`{"n":1}`)
			now := time.Now()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				ready = ready[:0]
				if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: data}); err != nil {
					b.Fatal(err)
				}
				for _, r := range ready {
					job, ok := s.Begin(r.Delivery, now.Add(time.Hour))
					if !ok {
						b.Fatal("not begun")
					}
					if _, err := s.Finish(store.Outcome{Delivery: job.Delivery, Success: true,
						Attempt: store.Attempt{N: 1, At: now, StatusCode: 200, DurationMS: 12}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			cancel()
			<-done // the writer's last batch is part of the cost
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/delivery")
			if dropped > 0 {
				b.Fatalf("the writer dropped %d changes", dropped)
			}
		})
	}
}
