package store

import (
	"fmt"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// BenchmarkSnapshotCapture measures a snapshot's copy of the state (the lock is held for the
// captureAt part), with n deliveries queued (the backlog bench's 1M case is the one with a target:
// the lock held ≤ 50 ms).
func BenchmarkSnapshotCapture(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("queued=%d", n), func(b *testing.B) {
			s := New(Options{})
			url, name := "https://a.example/h", "a"
			if _, err := s.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_x"); err != nil {
				b.Fatal(err)
			}
			data := []byte(`{}`)
			for range n {
				if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: data}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				// As Snapshot does: the array is allocated before the lock is taken.
				s.mu.Lock()
				slots := s.deliverySlots()
				s.mu.Unlock()
				buf := make([]capDelivery, slots+slots/8+1024)
				s.mu.Lock()
				c := s.captureAt(wal.Position{Segment: 1}, buf)
				s.mu.Unlock()
				if len(c.dls) != n {
					b.Fatalf("captured %d deliveries, want %d", len(c.dls), n)
				}
			}
		})
	}
}
