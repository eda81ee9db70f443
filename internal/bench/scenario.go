package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

// Options configure a harness run. Zero values take the defaults of DefaultOptions.
type Options struct {
	RelayBin  string   // the relay binary; empty: built from the module into a temp dir
	Scenarios []int    // which of 1..8 to run, in order; empty: all
	RelayArgs []string // extra relay flags, appended last (so they override the scenario's)

	Duration time.Duration // posting time of scenarios 1–4, 6, 7 and of the baseline
	Clients  int           // concurrent posting clients
	Rate     float64       // events/s in all for scenarios 1–4 and the baseline; 0: as fast as they go (6 and 7 have their own)
	DataSize int           // bytes of each event's data object
	Fanout   int           // endpoints in scenarios 2 and 4

	FailRate    float64       // scenario 3: fraction of attempts answered 500
	SlowLatency time.Duration // scenario 4: the slow endpoint's answer time

	BacklogEvents       int64         // scenario 5: events queued while the receiver is down
	BacklogMode         string        // scenario 5: "refused" (nothing listens) or "hold" (never answers)
	BacklogFillTimeout  time.Duration // scenario 5: bound on the fill
	BacklogDrainTimeout time.Duration // scenario 5: bound on the drain
	// BacklogSnapshotInterval, when positive, is passed to scenario 5's relay as
	// --snapshot-interval and adds a trickle phase after the fill that lasts until a snapshot
	// of the whole backlog has run while events were posted (see runBacklog). 0: the relay's
	// default interval and no trickle; only the fill's snapshots are measured.
	BacklogSnapshotInterval time.Duration

	DrainTimeout time.Duration // scenarios 1–4, 6, 7: bound on waiting for every delivery
	MaxEvents    int64         // per scenario: capacity of the bookkeeping tables, and a hard bound on posts
	Keep         bool          // keep the relays' data directories

	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

// DefaultOptions are the documented defaults (`blametrail-bench --help`).
func DefaultOptions() Options {
	return Options{
		Scenarios:           []int{1, 2, 3, 4, 5, 6, 7, 8},
		Duration:            10 * time.Second,
		Clients:             64,
		DataSize:            1024,
		Fanout:              20,
		FailRate:            0.10,
		SlowLatency:         2 * time.Second,
		BacklogEvents:       1_000_000,
		BacklogMode:         "refused",
		BacklogFillTimeout:  10 * time.Minute,
		BacklogDrainTimeout: 10 * time.Minute,
		DrainTimeout:        90 * time.Second,
		MaxEvents:           4_000_000,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if len(o.Scenarios) == 0 {
		o.Scenarios = d.Scenarios
	}
	if o.Duration <= 0 {
		o.Duration = d.Duration
	}
	if o.Clients <= 0 {
		o.Clients = d.Clients
	}
	if o.DataSize <= 0 {
		o.DataSize = d.DataSize
	}
	if o.Fanout <= 0 {
		o.Fanout = d.Fanout
	}
	if o.FailRate <= 0 {
		o.FailRate = d.FailRate
	}
	if o.SlowLatency <= 0 {
		o.SlowLatency = d.SlowLatency
	}
	if o.BacklogEvents <= 0 {
		o.BacklogEvents = d.BacklogEvents
	}
	if o.BacklogMode == "" {
		o.BacklogMode = d.BacklogMode
	}
	if o.BacklogFillTimeout <= 0 {
		o.BacklogFillTimeout = d.BacklogFillTimeout
	}
	if o.BacklogDrainTimeout <= 0 {
		o.BacklogDrainTimeout = d.BacklogDrainTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = d.DrainTimeout
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = d.MaxEvents
	}
	o.MaxEvents = max(o.MaxEvents, o.BacklogEvents)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Baseline is the same client posting the same (signed) bodies straight to the same kind of
// receiver: the most a relay on this machine could hope to match.
type Baseline struct {
	Load        *LoadResult `json:"load"`
	Completed   int64       `json:"completed"`
	ReqPerSec   float64     `json:"requests_per_s"`
	Latency     Latency     `json:"latency"` // receipt − send time, as for the relay
	CPUPerReqUS float64     `json:"cpu_us_per_request"`
	Losses      int64       `json:"losses"`
	BadSigs     int64       `json:"bad_signatures"`
}

// ScenarioResult is everything one scenario measured.
type ScenarioResult struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"`
	RelayArgs   []string `json:"relay_args"`
	Endpoints   int      `json:"endpoints"`
	SlowIndexes []int    `json:"slow_endpoints,omitempty"`

	Load *LoadResult `json:"load"`

	Expected         int64    `json:"expected_deliveries"` // acked events × counted endpoints
	Completed        int64    `json:"completed_deliveries"`
	DeliveriesPerSec float64  `json:"deliveries_per_s"`
	DeliveryWindowS  float64  `json:"delivery_window_s"` // first post → last receipt
	Latency          Latency  `json:"latency"`           // counted (fast) endpoints
	SlowLatency      *Latency `json:"slow_latency,omitempty"`
	SlowCompleted    int64    `json:"slow_completed,omitempty"`

	Attempts          int64 `json:"attempts"`              // requests at counted receivers
	InjectedFailures  int64 `json:"injected_failures"`     // answered 500 on purpose
	RetriesAfterFail  int64 `json:"retries_after_failure"` // expected redeliveries
	DuplicatesAfterOK int64 `json:"duplicates_after_success"`
	OtherDeliveryIDs  int64 `json:"events_with_two_delivery_ids"` // a bug
	OtherEventIDs     int64 `json:"event_id_mismatches"`          // a bug
	Losses            int64 `json:"losses"`
	BadSignatures     int64 `json:"bad_signatures"`
	Malformed         int64 `json:"malformed"`
	DeliveredUnacked  int64 `json:"delivered_but_not_acked"`

	Drained    bool    `json:"drained"`
	DrainWaitS float64 `json:"drain_wait_s"` // after the last post

	RelayCPUS       float64          `json:"relay_cpu_s"`
	CPUPerDelivUS   float64          `json:"relay_cpu_us_per_delivery"`
	CPUPerEventUS   float64          `json:"relay_cpu_us_per_event_while_posting"`
	PeakRSSMiB      float64          `json:"relay_peak_rss_mib"`        // VmHWM at the end
	MaxSampledMiB   float64          `json:"relay_max_sampled_rss_mib"` // VmRSS every 200 ms
	RelayExit       string           `json:"relay_exit,omitempty"`      // set when the relay died
	RelayLogs       LogSummary       `json:"relay_logs"`
	SignatureErrors map[string]int64 `json:"signature_errors,omitempty"`

	Backlog *BacklogResult `json:"backlog,omitempty"`
	// Propagation (scenario 8): from a PATCH's answer through one relay until the others act
	// on it.
	Propagation *Latency `json:"propagation,omitempty"`
	Err         string   `json:"error,omitempty"`
}

// BacklogResult is scenario 5's own figures.
type BacklogResult struct {
	Mode           string  `json:"mode"`
	Events         int64   `json:"events"`
	FillS          float64 `json:"fill_s"`
	FillRate       float64 `json:"fill_events_per_s"`
	FillMaxRSSMiB  float64 `json:"fill_max_sampled_rss_mib"`
	FillHWMMiB     float64 `json:"fill_hwm_mib"`
	HoldS          float64 `json:"deactivate_s,omitempty"` // PATCH active:false
	ResumeS        float64 `json:"reenable_s,omitempty"`   // PATCH active:true
	DrainS         float64 `json:"drain_s"`
	DrainRate      float64 `json:"drain_deliveries_per_s"`
	DrainMaxRSSMiB float64 `json:"drain_max_sampled_rss_mib"`
	WALBytesAtFill int64   `json:"data_dir_bytes_after_fill"`
	WALBytesAtEnd  int64   `json:"data_dir_bytes_after_drain"`
	WALBytesAtStop int64   `json:"data_dir_bytes_after_stop"`

	// Trickle is the phase after the fill: a few events/s posted while a snapshot of the
	// whole backlog, asked for with SIGUSR1, runs.
	Trickle *LoadResult `json:"trickle,omitempty"`
	// Snapshot is ingest while the relay's snapshots ran, over the fill and the trickle;
	// TrickleSnapshot over the trickle alone (light load: the snapshot's own cost).
	Snapshot        *SnapshotIngest  `json:"snapshot_ingest,omitempty"`
	TrickleSnapshot *SnapshotIngest  `json:"trickle_snapshot_ingest,omitempty"`
	Snapshots       []SnapshotWindow `json:"snapshots,omitempty"` // as the relay logged them
}

// Harness runs scenarios against one relay binary.
type Harness struct {
	opts     Options
	bin      string
	binDir   string
	Baseline *Baseline
	Results  map[int]*ScenarioResult
}

// NewHarness prepares a run: it builds the relay unless opts.RelayBin is set.
func NewHarness(ctx context.Context, opts Options) (*Harness, error) {
	opts.fill()
	h := &Harness{opts: opts, Results: map[int]*ScenarioResult{}}
	if opts.RelayBin != "" {
		h.bin = opts.RelayBin
		return h, nil
	}
	dir, err := os.MkdirTemp("", "blametrail-bench-bin-")
	if err != nil {
		return nil, err
	}
	h.binDir = dir
	h.progress("building the relay binary")
	if h.bin, err = BuildRelay(ctx, dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return h, nil
}

// Close removes the binary the harness built.
func (h *Harness) Close() {
	if h.binDir != "" {
		_ = os.RemoveAll(h.binDir)
	}
}

func (h *Harness) progress(format string, args ...any) {
	fmt.Fprintf(h.opts.Progress, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// noteEvery prints what line returns every interval until the returned stop is called.
func (h *Harness) noteEvery(every time.Duration, line func() string) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.progress("%s", line())
			}
		}
	}()
	return func() { close(done); <-exited }
}

// Run runs the baseline and then each scenario in order. A scenario that fails is reported
// with its error and the run goes on; ctx ending stops everything.
func (h *Harness) Run(ctx context.Context) error {
	if err := h.runBaseline(ctx); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	for _, id := range h.opts.Scenarios {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var res *ScenarioResult
		var err error
		switch id {
		case 1, 2, 3, 4, 6, 7:
			res, err = h.runFlow(ctx, h.flowSpec(id))
		case 5:
			res, err = h.runBacklog(ctx)
		case 8:
			res, err = h.runFleet(ctx)
		default:
			return fmt.Errorf("no scenario %d (1..8)", id)
		}
		if res == nil {
			res = &ScenarioResult{ID: id, Name: scenarioNames[id]}
		}
		if err != nil {
			res.Err = err.Error()
			h.progress("scenario %d failed: %v", id, err)
		}
		h.Results[id] = res
	}
	return ctx.Err()
}

var scenarioNames = map[int]string{
	1: "1 endpoint, 1 KiB events, --fsync batch",
	2: "fan-out to 20 endpoints",
	3: "10% of attempts answered 500, short retry schedule",
	4: "one endpoint answers after 2 s, 19 fast",
	5: "backlog: receiver down while events queue, then up",
	6: "open loop: 1,000 events/s, 1 endpoint",
	7: "open loop: 10,000 events/s, 1 endpoint",
	8: "fleet: 3 relays on one PostgreSQL, clients post to all three",
}

// Open-loop rates of scenarios 6 and 7: well below saturation, so latency is the relay's own
// and not a queue behind the load generator.
const (
	openLoopLow  = 1_000
	openLoopHigh = 10_000
)

func (h *Harness) runBaseline(ctx context.Context) error {
	h.progress("baseline: %d clients post signed events straight to a receiver for %s", h.opts.Clients, h.opts.Duration)
	rc, err := StartReceiver(ReceiverConfig{Capacity: h.opts.MaxEvents})
	if err != nil {
		return err
	}
	defer rc.Close()
	const secret = "whsec_YmVuY2htYXJrLWJhc2VsaW5lLXNlY3JldC0zMmI=" // 32 bytes; only signs local test traffic
	rc.SetSecret(secret)
	acks := newAckTable(h.opts.MaxEvents)
	var next atomic.Int64
	cpu0, _ := ProcCPU(os.Getpid())
	load := RunLoad(ctx, LoadConfig{
		Addr: rc.Addr, Path: "/hook", Sign: secret, Accept: 200,
		Clients: h.opts.Clients, Duration: h.opts.Duration, DataSize: h.opts.DataSize, Rate: h.opts.Rate,
	}, acks, &next)
	cpu1, _ := ProcCPU(os.Getpid())
	v := verify(acks, load.Seqs, []*Receiver{rc})
	b := &Baseline{Load: load, Completed: v.completed, Latency: v.latency, Losses: v.losses,
		BadSigs: rc.badSignatures.Load()}
	if last := rc.lastOKAtNS.Load(); last > load.FirstNS {
		b.ReqPerSec = Rate(v.completed, time.Duration(last-load.FirstNS))
	}
	if v.completed > 0 {
		b.CPUPerReqUS = float64((cpu1 - cpu0).Microseconds()) / float64(v.completed)
	}
	h.Baseline = b
	h.progress("baseline: %s, p99 %s", FormatValue(b.ReqPerSec, "/s"), FormatValue(b.Latency.P99, "ms"))
	return ctx.Err()
}

type flowSpec struct {
	id        int
	endpoints int
	slow      map[int]bool
	failRate  float64
	args      []string
	rate      float64 // events/s on a fixed schedule; 0: Options.Rate
}

// baseArgs are the flags every scenario's relay gets; a scenario's own come after them and
// the user's --relay-args after those (the last occurrence of a flag wins).
var baseArgs = []string{
	"--allow-http", "--allow-private-networks", "--fsync", "batch",
	"--shutdown-timeout", "5s", "--retry-schedule", "100ms,200ms,400ms,800ms,1600ms",
}

func (h *Harness) flowSpec(id int) flowSpec {
	switch id {
	case 2:
		return flowSpec{id: 2, endpoints: h.opts.Fanout}
	case 3:
		return flowSpec{id: 3, endpoints: 1, failRate: h.opts.FailRate,
			args: []string{"--retry-schedule", "10ms,20ms,40ms,80ms,160ms"}}
	case 4:
		// The slow endpoint is created first, so it is first in every fan-out.
		return flowSpec{id: 4, endpoints: h.opts.Fanout, slow: map[int]bool{0: true}}
	case 6:
		return flowSpec{id: 6, endpoints: 1, rate: openLoopLow}
	case 7:
		return flowSpec{id: 7, endpoints: 1, rate: openLoopHigh}
	}
	return flowSpec{id: 1, endpoints: 1}
}

func (h *Harness) relayArgs(scenario []string) []string {
	args := append(append(append([]string(nil), baseArgs...), scenario...), h.opts.RelayArgs...)
	return args
}

// closeRelay stops r gracefully, or kills it at once when the run is being cancelled.
func closeRelay(ctx context.Context, r *Relay) {
	if ctx.Err() != nil {
		r.Kill()
	}
	r.Close()
}

func (h *Harness) runFlow(ctx context.Context, spec flowSpec) (*ScenarioResult, error) {
	res := &ScenarioResult{ID: spec.id, Name: scenarioNames[spec.id], Endpoints: spec.endpoints,
		RelayArgs: h.relayArgs(spec.args)}
	for i := range spec.endpoints {
		if spec.slow[i] {
			res.SlowIndexes = append(res.SlowIndexes, i)
		}
	}
	h.progress("scenario %d: %s", spec.id, res.Name)
	relay, err := StartRelay(ctx, RelayOptions{Bin: h.bin, Args: res.RelayArgs, Keep: h.opts.Keep})
	if err != nil {
		return res, err
	}
	defer closeRelay(ctx, relay)
	if h.opts.Keep {
		h.progress("scenario %d: relay data dir %s (kept)", spec.id, relay.DataDir)
	}

	var fast, slow []*Receiver
	defer func() {
		for _, rc := range append(fast, slow...) {
			rc.Close()
		}
	}()
	for i := range spec.endpoints {
		cfg := ReceiverConfig{Capacity: h.opts.MaxEvents}
		if spec.slow[i] {
			cfg.Latency = h.opts.SlowLatency
		} else {
			cfg.FailRate = spec.failRate
			// 1 attempt + 5 retries: never fail the last, so injected failures cost retries,
			// not deliveries, and "nothing lost" measures the relay.
			cfg.MaxFailsPerDelivery = 5
		}
		rc, err := StartReceiver(cfg)
		if err != nil {
			return res, err
		}
		if spec.slow[i] {
			slow = append(slow, rc)
		} else {
			fast = append(fast, rc)
		}
		if err := createEndpoint(ctx, relay.Client, rc, fmt.Sprintf("bench-%d-%d", spec.id, i)); err != nil {
			return res, err
		}
	}

	sampler := startMemSampler(relay.PID(), 200*time.Millisecond)
	defer sampler.Stop()
	acks := newAckTable(h.opts.MaxEvents)
	var next atomic.Int64
	rate := h.opts.Rate
	if spec.rate > 0 {
		rate = spec.rate
	}
	h.progress("scenario %d: %d clients post for %s (rate %s)", spec.id, h.opts.Clients, h.opts.Duration, rateText(rate))
	cpu0, _ := ProcCPU(relay.PID())
	res.Load = RunLoad(ctx, LoadConfig{
		Addr: relay.Addr, Path: "/api/events", Token: relay.Token, Accept: 202, WantDeliveries: spec.endpoints,
		Clients: h.opts.Clients, Duration: h.opts.Duration, DataSize: h.opts.DataSize, Rate: rate,
	}, acks, &next)
	cpuPost, _ := ProcCPU(relay.PID())
	h.progress("scenario %d: %d events acknowledged (%s); waiting for the drain", spec.id,
		res.Load.Acked, FormatValue(res.Load.AckRate, "/s"))

	postEnd := time.Now()
	res.Drained = waitDrain(ctx, relay, acks, res.Load, fast, h.opts.DrainTimeout, h.opts.Progress, spec.id)
	res.DrainWaitS = time.Since(postEnd).Seconds()
	h.finish(res, relay, sampler)

	v := verify(acks, res.Load.Seqs, fast)
	res.fillVerdict(v, fast)
	if last := maxLastOK(fast); last > res.Load.FirstNS {
		window := time.Duration(last - res.Load.FirstNS)
		res.DeliveryWindowS = window.Seconds()
		res.DeliveriesPerSec = Rate(v.completed, window)
	}
	if v.completed > 0 {
		res.CPUPerDelivUS = res.RelayCPUS * 1e6 / float64(v.completed)
	}
	if res.Load.Acked > 0 && cpuPost > cpu0 {
		// Over the posting window only: start-up and the idle drain wait are left out, so at a
		// fixed rate this is the steady cost of one event (its ingest and its delivery).
		res.CPUPerEventUS = float64((cpuPost - cpu0).Microseconds()) / float64(res.Load.Acked)
	}
	if len(slow) > 0 {
		sv := verify(acks, res.Load.Seqs, slow)
		res.SlowLatency = &sv.latency
		res.SlowCompleted = sv.completed
		res.BadSignatures += sumCounter(slow, func(r *Receiver) int64 { return r.badSignatures.Load() })
		res.OtherDeliveryIDs += sumCounter(slow, func(r *Receiver) int64 { return r.otherDelivery.Load() })
	}
	h.progress("scenario %d: %s deliveries, %s, p99 %s, losses %d", spec.id, group(res.Completed),
		FormatValue(res.DeliveriesPerSec, "/s"), FormatValue(res.Latency.P99, "ms"), res.Losses)
	return res, ctx.Err()
}

// finish reads the relay's CPU and peak RSS while it still runs, and its logs.
func (h *Harness) finish(res *ScenarioResult, relay *Relay, sampler *memSampler) {
	if cpu, err := ProcCPU(relay.PID()); err == nil {
		res.RelayCPUS = cpu.Seconds()
	}
	if m, err := ProcMem(relay.PID()); err == nil {
		res.PeakRSSMiB = mib(m.HWM)
	}
	sampler.Stop()
	res.MaxSampledMiB = mib(sampler.Max())
	if exited, err := relay.Exited(); exited {
		res.RelayExit = fmt.Sprintf("exited: %v", err)
	}
	res.RelayLogs = relay.Logs()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func createEndpoint(ctx context.Context, c *apiclient.Client, rc *Receiver, name string) error {
	ep, err := c.CreateEndpoint(ctx, apiclient.EndpointCreate{URL: rc.URL, Name: name, EventTypes: []string{EventType}})
	if err != nil {
		return fmt.Errorf("create endpoint: %w", err)
	}
	if ep.Secret == "" {
		return errors.New("create endpoint: the answer carries no secret")
	}
	rc.SetSecret(ep.Secret)
	return nil
}

// waitDrain waits until every acknowledged event has been answered 2xx by every receiver in
// rcs, the timeout passes, the relay dies, or ctx ends. It reports whether all arrived.
func waitDrain(ctx context.Context, relay *Relay, acks *ackTable, load *LoadResult, rcs []*Receiver,
	timeout time.Duration, progress io.Writer, id int) bool {
	deadline := time.Now().Add(timeout)
	lastNote := time.Now()
	lastScan := time.Time{}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if dead, _ := relay.Exited(); dead {
			return false
		}
		ready := true
		var got int64
		for _, rc := range rcs {
			c := rc.Completed()
			got += c
			if c < load.Acked {
				ready = false
			}
		}
		// Counts can reach the mark while an acked event is missing (an event delivered but
		// not acknowledged, e.g. a client timeout, counts too), so confirm by a scan.
		if ready && time.Since(lastScan) > 500*time.Millisecond {
			lastScan = time.Now()
			if verify(acks, load.Seqs, rcs).losses == 0 {
				return true
			}
		}
		if time.Since(lastNote) > 5*time.Second {
			lastNote = time.Now()
			fmt.Fprintf(progress, "%s  scenario %d: drain: %s of %s deliveries\n", time.Now().Format("15:04:05"),
				id, group(got), group(load.Acked*int64(len(rcs))))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return verify(acks, load.Seqs, rcs).losses == 0
}

// verdict is a scan of acks against what receivers recorded.
type verdict struct {
	completed      int64 // (event, receiver) pairs answered 2xx, acked events only
	losses         int64 // acked, never answered 2xx
	eventMismatch  int64 // body's event id differs from the acked one
	deliveredNoAck int64 // answered 2xx but never acked
	latency        Latency
}

func verify(acks *ackTable, seqs int64, rcs []*Receiver) verdict {
	var v verdict
	samples := make([]int64, 0, seqs*int64(len(rcs)))
	for seq := range seqs {
		ack := acks.get(seq)
		for _, rc := range rcs {
			a := rc.table.get(seq)
			if ack == 0 {
				if a.oks > 0 {
					v.deliveredNoAck++
				}
				continue
			}
			if a.oks == 0 {
				v.losses++
				continue
			}
			v.completed++
			samples = append(samples, a.okAt-a.sent)
			if a.event != 0 && ack != 1 && a.event != ack {
				v.eventMismatch++
			}
		}
	}
	v.latency = Summarize(samples)
	return v
}

func (res *ScenarioResult) fillVerdict(v verdict, rcs []*Receiver) {
	res.Expected = res.Load.Acked * int64(len(rcs))
	res.Completed = v.completed
	res.Losses = v.losses
	res.Latency = v.latency
	res.DeliveredUnacked = v.deliveredNoAck
	res.OtherEventIDs = v.eventMismatch
	res.Attempts = sumCounter(rcs, func(r *Receiver) int64 { return r.requests.Load() })
	res.InjectedFailures = sumCounter(rcs, func(r *Receiver) int64 { return r.injected.Load() })
	res.RetriesAfterFail = sumCounter(rcs, func(r *Receiver) int64 { return r.afterFail.Load() })
	res.DuplicatesAfterOK = sumCounter(rcs, func(r *Receiver) int64 { return r.afterOK.Load() })
	res.OtherDeliveryIDs = sumCounter(rcs, func(r *Receiver) int64 { return r.otherDelivery.Load() })
	res.OtherEventIDs += sumCounter(rcs, func(r *Receiver) int64 { return r.otherEvent.Load() })
	res.BadSignatures = sumCounter(rcs, func(r *Receiver) int64 { return r.badSignatures.Load() })
	res.Malformed = sumCounter(rcs, func(r *Receiver) int64 { return r.malformed.Load() })
	for _, rc := range rcs {
		for k, n := range rc.SignatureErrors() {
			if res.SignatureErrors == nil {
				res.SignatureErrors = map[string]int64{}
			}
			res.SignatureErrors[k] += n
		}
	}
}

func sumCounter(rcs []*Receiver, f func(*Receiver) int64) int64 {
	var n int64
	for _, rc := range rcs {
		n += f(rc)
	}
	return n
}

func maxLastOK(rcs []*Receiver) int64 {
	var m int64
	for _, rc := range rcs {
		m = max(m, rc.lastOKAtNS.Load())
	}
	return m
}

// freePort returns a 127.0.0.1 address nothing listens on (it was free a moment ago).
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = walkFiles(dir, func(size int64) { n += size })
	return n
}

func joinArgs(a []string) string { return strings.Join(a, " ") }

func rateText(rate float64) string {
	if rate <= 0 {
		return "as fast as the clients go"
	}
	return FormatValue(rate, "/s")
}
