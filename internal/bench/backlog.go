package bench

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

// Scenario 5 queues a backlog while the receiver is down, then brings it up and measures the
// drain. The relay creates deliveries only for endpoints that are active when an event
// arrives (an inactive endpoint gets none, so "deactivate during the fill" queues nothing).
// Two ways to be down are offered:
//
//   - "refused" (default): nothing listens on the endpoint's port. Every delivery's first
//     attempt fails with "connection refused" and is parked for a retry 1 h later (schedule
//     1h,1s,2s,4s,8s), so the fill is the real dead-receiver path (a failed attempt recorded
//     per delivery) without a retry storm. Then the endpoint is deactivated (its deliveries
//     become held), a receiver starts on that port, and the endpoint is re-enabled, which
//     resumes every held delivery at once: the drain starts at one known instant instead of
//     being paced by retry timers.
//   - "hold": a receiver accepts connections but answers nothing until released, with
//     --delivery-timeout 1h: --max-in-flight attempts hang and the rest wait in the relay's
//     queue without any attempt. Releasing the receiver starts the drain.

func (h *Harness) runBacklog(ctx context.Context) (*ScenarioResult, error) {
	mode := h.opts.BacklogMode
	var args []string
	switch mode {
	case "refused":
		args = []string{"--retry-schedule", "1h,1s,2s,4s,8s"}
	case "hold":
		args = []string{"--delivery-timeout", "1h"}
	default:
		return nil, fmt.Errorf("backlog mode %q is not refused or hold", mode)
	}
	// Snapshots. The fill alone makes several while events are posted (the WAL grows by about
	// 1.5 KiB per event, and a snapshot is due after 64 MiB of it, then after twice the last
	// snapshot's size: measured, 3 with 200,000 events and 6 with 1,000,000, the largest
	// 264 MiB), with the relay's default settings; the fill saturates the relay, so its
	// latencies say more about saturation than about snapshots. After the fill a trickle phase
	// (a light open-loop load) asks the relay for a snapshot of the whole backlog with SIGUSR1:
	// that is where the snapshot's own cost to ingest shows, and what the targets judge.
	// --backlog-snapshot-interval also passes a short --snapshot-interval; it is off by default
	// because the relay then snapshots back to back
	// through the fill and the drain (a snapshot is due whenever the interval has passed since
	// the last one ended and anything changed), which moves the fill rate, RSS and drain
	// figures this scenario exists to measure. Measured with 200,000 events on 2 shared
	// cores, 1s against the default (three runs): 24 snapshots instead of 3, RSS during the
	// fill 215 MiB against 181–186, drain 18,163/s against 24,428–26,918/s (the fill rate,
	// 4,693/s against 4,265–6,401/s, was within the noise).
	snapInterval := h.opts.BacklogSnapshotInterval
	if snapInterval > 0 {
		args = append(args, "--snapshot-interval", snapInterval.String())
	}
	res := &ScenarioResult{ID: 5, Name: scenarioNames[5], Endpoints: 1, RelayArgs: h.relayArgs(args)}
	b := &BacklogResult{Mode: mode, Events: h.opts.BacklogEvents}
	res.Backlog = b
	h.progress("scenario 5: %s (mode %s, %s events)", res.Name, mode, group(h.opts.BacklogEvents))

	relay, err := StartRelay(ctx, RelayOptions{Bin: h.bin, Args: res.RelayArgs, Keep: h.opts.Keep})
	if err != nil {
		return res, err
	}
	defer closeRelay(ctx, relay)
	if h.opts.Keep {
		h.progress("scenario 5: relay data dir %s (kept)", relay.DataDir)
	}

	var rc *Receiver
	defer func() {
		if rc != nil {
			rc.Close()
		}
	}()
	// The trickle posts at most trickleRate × its time bound.
	trickleBound := snapInterval + trickleExtra
	capacity := h.opts.BacklogEvents + 1 + int64(trickleRate*trickleBound.Seconds()) + 1
	url := ""
	addr := ""
	if mode == "hold" {
		if rc, err = StartReceiver(ReceiverConfig{Hold: true, Capacity: capacity}); err != nil {
			return res, err
		}
		url = rc.URL
	} else {
		if addr, err = freePort(); err != nil {
			return res, err
		}
		url = "http://" + addr + "/hook"
	}
	ep, err := relay.Client.CreateEndpoint(ctx, apiclient.EndpointCreate{URL: url, Name: "bench-5", EventTypes: []string{EventType}})
	if err != nil {
		return res, fmt.Errorf("create endpoint: %w", err)
	}
	if rc != nil {
		rc.SetSecret(ep.Secret)
	}

	sampler := startMemSampler(relay.PID(), 200*time.Millisecond)
	defer sampler.Stop()
	acks := newAckTable(capacity)
	var next atomic.Int64
	h.progress("scenario 5: filling with %s events, %d clients, receiver down", group(h.opts.BacklogEvents), h.opts.Clients)
	fillStart := time.Now()
	stopNotes := h.noteEvery(10*time.Second, func() string {
		m, _ := ProcMem(relay.PID())
		return fmt.Sprintf("scenario 5: fill: %s of %s events posted, relay RSS %s", group(next.Load()),
			group(h.opts.BacklogEvents), FormatValue(mib(m.RSS), "MiB"))
	})
	res.Load = RunLoad(ctx, LoadConfig{
		Addr: relay.Addr, Path: "/api/events", Token: relay.Token, Accept: 202, WantDeliveries: 1,
		Clients: h.opts.Clients, Count: h.opts.BacklogEvents, Duration: h.opts.BacklogFillTimeout,
		DataSize: h.opts.DataSize, Spans: true,
	}, acks, &next)
	stopNotes()
	b.FillS = time.Since(fillStart).Seconds()
	b.FillRate = res.Load.AckRate
	b.FillMaxRSSMiB = mib(sampler.Max())
	if m, err := ProcMem(relay.PID()); err == nil {
		b.FillHWMMiB = mib(m.HWM)
	}
	b.WALBytesAtFill = dirSize(relay.DataDir)
	h.progress("scenario 5: %s events acknowledged in %.1fs (%s); relay RSS max %s, VmHWM %s",
		group(res.Load.Acked), b.FillS, FormatValue(b.FillRate, "/s"),
		FormatValue(b.FillMaxRSSMiB, "MiB"), FormatValue(b.FillHWMMiB, "MiB"))
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if dead, err := relay.Exited(); dead {
		h.finish(res, relay, sampler)
		return res, fmt.Errorf("%w during the fill: %v", errRelayDied, err)
	}
	// all is what the drain must deliver: the fill, and the trickle when there is one.
	b.Trickle = h.trickle(ctx, relay, acks, &next, trickleBound)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	// Only what waitDrain and verify read.
	all := &LoadResult{Acked: res.Load.Acked + b.Trickle.Acked, Seqs: max(res.Load.Seqs, b.Trickle.Seqs)}
	sampler.Reset()

	var t0 time.Time
	if mode == "hold" {
		t0 = time.Now()
		rc.Release()
	} else {
		off, on := false, true
		t := time.Now()
		if _, err := relay.Client.UpdateEndpoint(ctx, ep.ID, apiclient.EndpointPatch{Active: &off}); err != nil {
			return res, fmt.Errorf("deactivate endpoint: %w", err)
		}
		b.HoldS = time.Since(t).Seconds()
		if rc, err = startReceiverOn(ctx, addr, capacity); err != nil {
			return res, err
		}
		rc.SetSecret(ep.Secret)
		t0 = time.Now()
		if _, err := relay.Client.UpdateEndpoint(ctx, ep.ID, apiclient.EndpointPatch{Active: &on}); err != nil {
			return res, fmt.Errorf("re-enable endpoint: %w", err)
		}
		b.ResumeS = time.Since(t0).Seconds()
	}
	h.progress("scenario 5: receiver up; draining")
	res.Drained = waitDrain(ctx, relay, acks, all, []*Receiver{rc}, h.opts.BacklogDrainTimeout, h.opts.Progress, 5)
	res.DrainWaitS = time.Since(t0).Seconds()
	h.finish(res, relay, sampler)
	// Every snapshot so far (fill, trickle, drain), before the one a graceful stop writes.
	phases := [][]span{res.Load.spans}
	if b.Trickle != nil {
		phases = append(phases, b.Trickle.spans)
	}
	b.Snapshots = relay.Snapshots()
	si := snapshotIngest(b.Snapshots, phases...)
	b.Snapshot = &si
	if b.Trickle != nil {
		ti := snapshotIngest(b.Snapshots, b.Trickle.spans)
		b.TrickleSnapshot = &ti
	}
	res.Load.spans = nil
	if b.Trickle != nil {
		b.Trickle.spans = nil
	}
	h.progress("scenario 5: %d snapshots (%d while posting; longest %s, lock held at most %s); ingest overlapping them: %d POSTs, p99 %s, longest stall %s",
		si.Snapshots, si.Overlapping, FormatValue(si.MaxDurationMS, "ms"), FormatValue(si.MaxCaptureMS, "ms"),
		si.Requests, FormatValue(si.P99MS, "ms"), FormatValue(si.StallMS, "ms"))
	b.DrainMaxRSSMiB = res.MaxSampledMiB
	res.MaxSampledMiB = max(res.MaxSampledMiB, b.FillMaxRSSMiB)
	b.WALBytesAtEnd = dirSize(relay.DataDir)
	// A graceful stop writes a last snapshot; what is left is what a restart would replay.
	relay.Stop(30 * time.Second)
	b.WALBytesAtStop = dirSize(relay.DataDir)

	v := verify(acks, all.Seqs, []*Receiver{rc})
	res.fillVerdict(v, []*Receiver{rc})
	res.Expected = all.Acked
	if last := rc.lastOKAtNS.Load(); last > t0.UnixNano() {
		d := time.Duration(last - t0.UnixNano())
		b.DrainS = d.Seconds()
		b.DrainRate = Rate(v.completed, d)
		res.DeliveriesPerSec = b.DrainRate
		res.DeliveryWindowS = b.DrainS
	}
	if v.completed > 0 {
		res.CPUPerDelivUS = res.RelayCPUS * 1e6 / float64(v.completed)
	}
	h.progress("scenario 5: drained %s deliveries in %.1fs (%s), losses %d, relay VmHWM %s",
		group(v.completed), b.DrainS, FormatValue(b.DrainRate, "/s"), res.Losses, FormatValue(res.PeakRSSMiB, "MiB"))
	return res, ctx.Err()
}

// The trickle: a steady, light ingest load (open loop, so a stall shows in full in every
// POST queued behind it) while a snapshot of the whole backlog runs.
const (
	trickleRate    = 200              // events/s
	trickleClients = 4                // enough for 200/s at a few ms each
	trickleExtra   = 90 * time.Second // beyond the snapshot interval: bound on the wait
	trickleTail    = 1 * time.Second  // posts go on this long after the snapshot ends
	trickleWarmup  = 1 * time.Second  // posts before the snapshot is asked for
	tricklePoll    = 100 * time.Millisecond
)

// trickle posts trickleRate events/s, asks the relay for a snapshot (SIGUSR1) after
// trickleWarmup, and stops trickleTail after a snapshot that started during the trickle has
// been logged, or when bound or ctx ends.
func (h *Harness) trickle(ctx context.Context, relay *Relay, acks *ackTable, next *atomic.Int64, bound time.Duration) *LoadResult {
	h.progress("scenario 5: trickle of %d events/s until a snapshot has run (at most %s)", trickleRate, bound)
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-tctx.Done():
			return
		case <-time.After(trickleWarmup):
		}
		if err := relay.Signal(syscall.SIGUSR1); err != nil {
			h.progress("scenario 5: could not ask the relay for a snapshot: %v", err)
		}
		t := time.NewTicker(tricklePoll)
		defer t.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-t.C:
			}
			for _, w := range relay.Snapshots() {
				if !w.Start().Before(start) {
					select {
					case <-tctx.Done():
					case <-time.After(trickleTail):
					}
					cancel()
					return
				}
			}
			if dead, _ := relay.Exited(); dead {
				cancel()
				return
			}
		}
	}()
	load := RunLoad(tctx, LoadConfig{
		Addr: relay.Addr, Path: "/api/events", Token: relay.Token, Accept: 202, WantDeliveries: 1,
		Clients: trickleClients, Duration: bound, Rate: trickleRate, DataSize: h.opts.DataSize, Spans: true,
	}, acks, next)
	cancel()
	<-watched
	h.progress("scenario 5: trickle: %s events acknowledged in %.1fs, POST→202 p99 %s", group(load.Acked),
		time.Since(start).Seconds(), FormatValue(load.AckTime.P99, "ms"))
	return load
}

// startReceiverOn starts a receiver on addr, retrying for a few seconds in case the port is
// still in TIME_WAIT or briefly taken.
func startReceiverOn(ctx context.Context, addr string, capacity int64) (*Receiver, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc, err := StartReceiver(ReceiverConfig{Addr: addr, Capacity: capacity})
		if err == nil {
			return rc, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func walkFiles(dir string, f func(size int64)) error {
	return filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				f(info.Size())
			}
		}
		return nil
	})
}
