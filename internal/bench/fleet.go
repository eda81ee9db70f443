package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
)

// Scenario 8: a fleet. Three relays share one PostgreSQL (a throwaway cluster the harness
// starts, as the tests do), the clients post to all three, and one endpoint receives. Beside
// throughput it measures change propagation: how long after a PATCH through relay 1 answers
// relays 2 and 3 act on it.

const fleetRelays = 3

// propagationSamples is how many toggles the propagation figure is made of.
const propagationSamples = 40

func (h *Harness) runFleet(ctx context.Context) (*ScenarioResult, error) {
	res := &ScenarioResult{ID: 8, Name: scenarioNames[8], Endpoints: 1}
	h.progress("scenario 8: %s", res.Name)
	cluster, err := pgtest.New()
	if err != nil {
		return res, fmt.Errorf("start PostgreSQL (scripts/ensure-postgres.sh installs it): %w", err)
	}
	defer cluster.Close()
	res.RelayArgs = h.relayArgs([]string{"--store", "<throwaway PostgreSQL>"})
	args := h.relayArgs([]string{"--store", cluster.DSN("postgres")})
	relays := make([]*Relay, 0, fleetRelays)
	defer func() {
		for _, r := range relays {
			closeRelay(ctx, r)
		}
	}()
	for range fleetRelays {
		r, err := StartRelay(ctx, RelayOptions{Bin: h.bin, Args: args, Keep: h.opts.Keep})
		if err != nil {
			return res, err
		}
		relays = append(relays, r)
	}
	rc, err := StartReceiver(ReceiverConfig{Capacity: h.opts.MaxEvents})
	if err != nil {
		return res, err
	}
	defer rc.Close()
	sink, err := StartReceiver(ReceiverConfig{Capacity: 1 << 16}) // the propagation probes' endpoint
	if err != nil {
		return res, err
	}
	defer sink.Close()
	if err := createEndpoint(ctx, relays[0].Client, rc, "bench-8"); err != nil {
		return res, err
	}
	probe, err := relays[0].Client.CreateEndpoint(ctx, apiclient.EndpointCreate{URL: sink.URL, Name: "bench-8-probe",
		EventTypes: []string{probeType}})
	if err != nil {
		return res, fmt.Errorf("create the probe endpoint: %w", err)
	}
	// Every relay knows both endpoints once it fans a probe out to the later one.
	for _, r := range relays {
		if err := waitFanout(ctx, r, 1, 30*time.Second); err != nil {
			return res, fmt.Errorf("relay never synced: %w", err)
		}
	}

	samplers := make([]*memSampler, len(relays))
	for i, r := range relays {
		samplers[i] = startMemSampler(r.PID(), 200*time.Millisecond)
	}
	acks := newAckTable(h.opts.MaxEvents)
	var next atomic.Int64
	loads := make([]*LoadResult, len(relays))
	var wg sync.WaitGroup
	for i, r := range relays {
		wg.Go(func() {
			loads[i] = RunLoad(ctx, LoadConfig{
				Addr: r.Addr, Path: "/api/events", Token: r.Token, Accept: 202, WantDeliveries: 1,
				Clients: max(1, h.opts.Clients/len(relays)), Duration: h.opts.Duration, DataSize: h.opts.DataSize, Rate: h.opts.Rate,
			}, acks, &next)
		})
	}
	wg.Wait()
	res.Load = mergeLoads(loads, next.Load())
	h.progress("scenario 8: %d events acknowledged by %d relays (%s); waiting for the drain", res.Load.Acked,
		len(relays), FormatValue(res.Load.AckRate, "/s"))
	postEnd := time.Now()
	res.Drained = waitDrain(ctx, relays[0], acks, res.Load, []*Receiver{rc}, h.opts.DrainTimeout, h.opts.Progress, 8)
	res.DrainWaitS = time.Since(postEnd).Seconds()
	for i, r := range relays {
		part := &ScenarioResult{}
		h.finish(part, r, samplers[i])
		res.RelayCPUS += part.RelayCPUS
		res.PeakRSSMiB = max(res.PeakRSSMiB, part.PeakRSSMiB)
		res.MaxSampledMiB = max(res.MaxSampledMiB, part.MaxSampledMiB)
		if part.RelayExit != "" {
			res.RelayExit = part.RelayExit
		}
		res.RelayLogs.Lines += part.RelayLogs.Lines
		res.RelayLogs.Crash = append(res.RelayLogs.Crash, part.RelayLogs.Crash...)
	}
	v := verify(acks, res.Load.Seqs, []*Receiver{rc})
	res.fillVerdict(v, []*Receiver{rc})
	if last := rc.lastOKAtNS.Load(); last > res.Load.FirstNS {
		window := time.Duration(last - res.Load.FirstNS)
		res.DeliveryWindowS = window.Seconds()
		res.DeliveriesPerSec = Rate(v.completed, window)
	}
	if v.completed > 0 {
		res.CPUPerDelivUS = res.RelayCPUS * 1e6 / float64(v.completed)
	}

	h.progress("scenario 8: measuring change propagation (%d toggles through relay 1)", propagationSamples)
	lat, err := measurePropagation(ctx, relays, probe.ID)
	if err != nil {
		return res, err
	}
	res.Propagation = &lat
	h.progress("scenario 8: %s deliveries, %s, propagation p50 %s p99 %s", group(res.Completed),
		FormatValue(res.DeliveriesPerSec, "/s"), FormatValue(lat.P50, "ms"), FormatValue(lat.P99, "ms"))
	return res, ctx.Err()
}

// probeType is the event type only the probe endpoint takes, so probes never reach the
// counted receiver.
const probeType = "deploy.ingested"

// waitFanout posts probes to r until one fans out to want endpoints.
func waitFanout(ctx context.Context, r *Relay, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for ctx.Err() == nil {
		n, err := postProbe(ctx, r)
		if err == nil && n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s a probe fanned out to %d endpoints (want %d): %v", limit, n, want, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ctx.Err()
}

func postProbe(ctx context.Context, r *Relay) (int, error) {
	res, err := r.Client.Ingest(ctx, apiclient.Event{Type: probeType, Data: map[string]any{"probe": true}})
	if err != nil {
		return -1, err
	}
	return res.Deliveries, nil
}

// measurePropagation toggles the probe endpoint through relay 1 and times, from the PATCH's
// answer, until every other relay fans out (or stops fanning out) accordingly.
func measurePropagation(ctx context.Context, relays []*Relay, probeID string) (Latency, error) {
	samples := make([]int64, 0, propagationSamples)
	for i := range propagationSamples {
		active := i%2 == 1
		if _, err := relays[0].Client.UpdateEndpoint(ctx, probeID, apiclient.EndpointPatch{Active: &active}); err != nil {
			return Latency{}, fmt.Errorf("toggle the probe endpoint: %w", err)
		}
		start := time.Now()
		want := 0
		if active {
			want = 1
		}
		var wg sync.WaitGroup
		errs := make([]error, len(relays)-1)
		for k, r := range relays[1:] {
			wg.Go(func() { errs[k] = waitFanout(ctx, r, want, 30*time.Second) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return Latency{}, err
		}
		samples = append(samples, time.Since(start).Nanoseconds())
	}
	return Summarize(samples), nil
}

// mergeLoads adds up loads that shared one table and sequence counter.
func mergeLoads(loads []*LoadResult, seqs int64) *LoadResult {
	out := &LoadResult{Statuses: map[int]int64{}, Seqs: seqs}
	var samples []int64
	for _, l := range loads {
		out.Posted += l.Posted
		out.Acked += l.Acked
		out.Errors += l.Errors
		out.FanoutBad += l.FanoutBad
		for k, v := range l.Statuses {
			out.Statuses[k] += v
		}
		if out.FirstErr == "" {
			out.FirstErr = l.FirstErr
		}
		if out.FirstNS == 0 || l.FirstNS > 0 && l.FirstNS < out.FirstNS {
			out.FirstNS = l.FirstNS
		}
		out.LastNS = max(out.LastNS, l.LastNS)
		out.Elapsed = max(out.Elapsed, l.Elapsed)
		samples = append(samples, l.ackSamples...)
	}
	out.AckTime = Summarize(samples)
	if out.LastNS > out.FirstNS {
		out.AckRate = Rate(out.Acked, time.Duration(out.LastNS-out.FirstNS))
	}
	return out
}
