package bench

import (
	"context"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
)

// TestSmokeScenario1 runs the real relay through scenario 1 for two seconds at a tiny,
// paced load and checks the harness's bookkeeping end to end. It asserts no timing: the
// machine running tests is shared.
func TestSmokeScenario1(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the relay binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Cleanup(KillAll)
	h, err := NewHarness(ctx, Options{
		Scenarios: []int{1}, Duration: 2 * time.Second, Clients: 4, Rate: 200,
		DrainTimeout: 20 * time.Second, MaxEvents: 1 << 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Baseline == nil || h.Baseline.Completed == 0 || h.Baseline.Losses != 0 {
		t.Errorf("baseline: %+v", h.Baseline)
	}
	r := h.Results[1]
	if r == nil {
		t.Fatal("no result for scenario 1")
	}
	if r.Err != "" {
		t.Fatalf("scenario 1 failed: %s", r.Err)
	}
	if r.Load.Acked == 0 || r.Completed == 0 {
		t.Errorf("acked %d, delivered %d: want both > 0", r.Load.Acked, r.Completed)
	}
	if r.Completed != r.Load.Acked {
		t.Errorf("delivered %d of %d acked events", r.Completed, r.Load.Acked)
	}
	if r.Losses != 0 || r.BadSignatures != 0 || r.OtherDeliveryIDs != 0 || r.OtherEventIDs != 0 || r.Malformed != 0 {
		t.Errorf("losses %d, bad signatures %d (%v), two delivery ids %d, event id mismatches %d, malformed %d",
			r.Losses, r.BadSignatures, r.SignatureErrors, r.OtherDeliveryIDs, r.OtherEventIDs, r.Malformed)
	}
	if r.RelayCPUS <= 0 || r.PeakRSSMiB <= 0 {
		t.Errorf("relay CPU %v s, peak RSS %v MiB: want both read from /proc", r.RelayCPUS, r.PeakRSSMiB)
	}
	if !r.Drained || r.RelayExit != "" {
		t.Errorf("drained %v, relay exit %q", r.Drained, r.RelayExit)
	}
	var buf []byte
	w := &appendWriter{&buf}
	if err := WriteTable(w, h.Metrics()); err != nil || len(buf) == 0 {
		t.Errorf("WriteTable: %v, %d bytes", err, len(buf))
	}
}

type appendWriter struct{ b *[]byte }

func (w *appendWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// TestSmokeOpenLoop runs scenario 6 (a fixed 1,000 events/s) for one second: the posts follow
// the scenario's own schedule, not Options.Rate, and the steady CPU per event is read. Counts
// only: no timing is asserted.
func TestSmokeOpenLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the relay binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Cleanup(KillAll)
	h, err := NewHarness(ctx, Options{
		Scenarios: []int{6}, Duration: time.Second, Clients: 4, Rate: 50, // the baseline's rate; 6 has its own
		DrainTimeout: 20 * time.Second, MaxEvents: 1 << 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	r := h.Results[6]
	if r == nil || r.Err != "" {
		t.Fatalf("scenario 6: %+v", r)
	}
	// Scheduled posts fall within the second (both ends included): at most 1,001, and far
	// more than the 50 that Options.Rate would have allowed.
	if r.Load.Acked > openLoopLow+1 || r.Load.Acked <= 50 {
		t.Errorf("acked %d events in one second at %d/s", r.Load.Acked, openLoopLow)
	}
	if r.Completed != r.Load.Acked || r.Losses != 0 || r.CPUPerEventUS <= 0 {
		t.Errorf("delivered %d of %d, losses %d, CPU per event %v µs", r.Completed, r.Load.Acked, r.Losses, r.CPUPerEventUS)
	}
}

// TestSmokeFleet runs scenario 8 for one second: three relays on one throwaway PostgreSQL,
// every acknowledged event delivered once, and change propagation measured.
func TestSmokeFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three relays")
	}
	pgtest.Start(t).Close() // skips (or fails under CI) when PostgreSQL is not installed
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t.Cleanup(KillAll)
	h, err := NewHarness(ctx, Options{
		Scenarios: []int{8}, Duration: time.Second, Clients: 6, Rate: 300,
		DrainTimeout: 30 * time.Second, MaxEvents: 1 << 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	r := h.Results[8]
	if r == nil || r.Err != "" {
		t.Fatalf("scenario 8: %+v", r)
	}
	if r.Load.Acked == 0 || r.Completed != r.Load.Acked || r.Losses != 0 || r.BadSignatures != 0 {
		t.Errorf("acked %d, delivered %d, losses %d, bad signatures %d", r.Load.Acked, r.Completed, r.Losses, r.BadSignatures)
	}
	if r.Propagation == nil || r.Propagation.N != propagationSamples {
		t.Errorf("propagation: %+v, want %d samples", r.Propagation, propagationSamples)
	}
}
