package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Metric is one row of the report: a figure, the baseline it is compared with, their ratio,
// and the target from the benchmark issue when there is one.
type Metric struct {
	Scenario int      `json:"scenario"` // 0 for the baseline
	Name     string   `json:"metric"`
	Value    float64  `json:"value"`
	Unit     string   `json:"unit"`
	Text     string   `json:"text,omitempty"` // a non-numeric value ("yes", an error)
	Baseline *float64 `json:"baseline,omitempty"`
	BaseUnit string   `json:"baseline_unit,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Target   string   `json:"target,omitempty"`
	Met      *bool    `json:"met,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUModel   string  `json:"cpu_model"`
	CPUs       int     `json:"cpus"`
	MemTotalGB float64 `json:"mem_total_gib"`
	Kernel     string  `json:"kernel"`
	GoVersion  string  `json:"go_version"`
	LoadStart  string  `json:"loadavg_start"`
	LoadEnd    string  `json:"loadavg_end"`
	ClockTicks string  `json:"clock_ticks"`
}

// Report is the whole result, as written to JSON.
type Report struct {
	Command    string            `json:"command"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt time.Time         `json:"finished_at"`
	TotalS     float64           `json:"total_s"`
	Machine    Machine           `json:"machine"`
	Options    map[string]string `json:"options"`
	Baseline   *Baseline         `json:"baseline"`
	Scenarios  []*ScenarioResult `json:"scenarios"`
	Metrics    []Metric          `json:"metrics"`
	Notes      []string          `json:"notes"`
}

// MachineInfo reads /proc for the report's machine section.
func MachineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemTotalGB = float64(kb) / (1 << 20)
		}
	}
	hz, src := ClockTicks()
	m.ClockTicks = fmt.Sprintf("%d Hz (%s)", hz, src)
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func f64(v float64) *float64 { return &v }
func yes(v bool) *bool       { return &v }

// Targets from issue 5 ("Targets on this 2-core machine"), raised where issue 14
// ("Performance, round two") raised them.
const (
	targetS1Ratio     = 0.35 // issue 14 (issue 5: 0.30)
	targetS1P99MS     = 50
	targetS2Ratio     = 0.60
	targetS4P99Factor = 1.5
	targetS5RSSMiB    = 300 // issue 14: peak over fill, drain and re-enable (issue 5: 512)
	targetS5Drain     = 0.5
	targetS5ResumeS   = 1.0  // issue 14: re-enable an endpoint holding the backlog
	targetS6P99MS     = 5    // issue 14: open loop at 1,000 events/s
	targetS7P99MS     = 20   // issue 14: open loop at 10,000 events/s
	targetS6CPUUS     = 200  // issue 14: relay CPU per event at a steady 1,000 events/s
	targetS8PropMS    = 1000 // issue 13: a change through any relay acts on every relay within 1 s
	// Ingest while a snapshot runs (the lock is held only to copy the state).
	targetS5SnapP99MS   = 50
	targetS5SnapStallMS = 50
)

// Metrics turns the results into report rows, in scenario order.
func (h *Harness) Metrics() []Metric {
	var out []Metric
	b := h.Baseline
	if b == nil {
		b = &Baseline{}
	}
	out = append(out,
		Metric{Scenario: 0, Name: "requests/s (client → receiver, no relay)", Value: b.ReqPerSec, Unit: "/s"},
		Metric{Scenario: 0, Name: "latency p50", Value: b.Latency.P50, Unit: "ms"},
		Metric{Scenario: 0, Name: "latency p99", Value: b.Latency.P99, Unit: "ms"},
		Metric{Scenario: 0, Name: "latency max", Value: b.Latency.Max, Unit: "ms"},
		Metric{Scenario: 0, Name: "POST→200 p99 (as the client saw it)", Value: ackP99(b.Load), Unit: "ms"},
		Metric{Scenario: 0, Name: "harness CPU per request (client+receiver)", Value: b.CPUPerReqUS, Unit: "µs"},
		Metric{Scenario: 0, Name: "losses", Value: float64(b.Losses), Unit: "count"},
	)
	vsBase := func(m Metric, base float64) Metric {
		m.Baseline = f64(base)
		if r, ok := Ratio(m.Value, base); ok {
			m.Ratio = f64(r)
		}
		return m
	}
	zero := func(id int, name string, v int64) Metric {
		return Metric{Scenario: id, Name: name, Value: float64(v), Unit: "count", Target: "0", Met: yes(v == 0)}
	}
	for _, id := range h.opts.Scenarios {
		r := h.Results[id]
		if r == nil {
			continue
		}
		if r.Err != "" {
			out = append(out, Metric{Scenario: id, Name: "error", Text: r.Err, Target: "none", Met: yes(false)})
		}
		if r.Load == nil {
			continue
		}
		ingest := vsBase(Metric{Scenario: id, Name: "ingest events/s (202s)", Value: r.Load.AckRate, Unit: "/s"}, b.ReqPerSec)
		out = append(out, ingest,
			vsBase(Metric{Scenario: id, Name: "ingest POST→202 p99", Value: r.Load.AckTime.P99, Unit: "ms"}, ackP99(b.Load)))
		dl := Metric{Scenario: id, Name: "deliveries/s", Value: r.DeliveriesPerSec, Unit: "/s"}
		if id == 5 {
			dl.Name = "drain deliveries/s"
		}
		dl = vsBase(dl, b.ReqPerSec)
		switch id {
		case 1:
			dl.Target = fmt.Sprintf("≥ %.2f× baseline", targetS1Ratio)
			dl.Met = yes(dl.Ratio != nil && *dl.Ratio >= targetS1Ratio)
		case 2:
			dl.Target = fmt.Sprintf("≥ %.2f× baseline", targetS2Ratio)
			dl.Met = yes(dl.Ratio != nil && *dl.Ratio >= targetS2Ratio)
		}
		out = append(out, dl)
		latName := "ingest→receipt"
		if id == 4 {
			latName = "fast endpoints' ingest→receipt"
		}
		p99 := vsBase(Metric{Scenario: id, Name: latName + " p99", Value: r.Latency.P99, Unit: "ms"}, b.Latency.P99)
		if target := map[int]float64{1: targetS1P99MS, 6: targetS6P99MS, 7: targetS7P99MS}[id]; target > 0 {
			p99.Target = fmt.Sprintf("≤ %g ms", target)
			p99.Met = yes(r.Latency.N > 0 && r.Latency.P99 <= target)
		}
		out = append(out,
			vsBase(Metric{Scenario: id, Name: latName + " p50", Value: r.Latency.P50, Unit: "ms"}, b.Latency.P50),
			p99,
			vsBase(Metric{Scenario: id, Name: latName + " max", Value: r.Latency.Max, Unit: "ms"}, b.Latency.Max),
		)
		if id == 4 {
			m := Metric{Scenario: 4, Name: "fast p99 ÷ scenario 2's p99", Unit: "×",
				Target: fmt.Sprintf("≤ %.1f×", targetS4P99Factor)}
			if s2 := h.Results[2]; s2 != nil && s2.Latency.N > 0 {
				m.Value = r.Latency.P99 / s2.Latency.P99
				m.Baseline = f64(s2.Latency.P99)
				m.BaseUnit = "ms"
				m.Met = yes(r.Latency.N > 0 && m.Value <= targetS4P99Factor)
			} else {
				m.Text = "n/a (run scenario 2 before 4)"
			}
			out = append(out, m)
			if r.SlowLatency != nil {
				out = append(out,
					Metric{Scenario: 4, Name: "slow endpoint: deliveries received", Value: float64(r.SlowCompleted), Unit: "count"},
					Metric{Scenario: 4, Name: "slow endpoint: ingest→receipt p50", Value: r.SlowLatency.P50, Unit: "ms"})
			}
		}
		if id == 8 {
			m := Metric{Scenario: 8, Name: "fleet deliveries/s ÷ scenario 1's (one relay)", Unit: "×"}
			if s1 := h.Results[1]; s1 != nil && s1.DeliveriesPerSec > 0 {
				m.Value, m.Baseline, m.BaseUnit = r.DeliveriesPerSec/s1.DeliveriesPerSec, f64(s1.DeliveriesPerSec), "/s"
			} else {
				m.Text = "n/a (run scenario 1 too)"
			}
			out = append(out, m)
			if p := r.Propagation; p != nil {
				out = append(out,
					Metric{Scenario: 8, Name: "change propagation p50 (PATCH through relay 1 → relays 2, 3 act)", Value: p.P50, Unit: "ms"},
					Metric{Scenario: 8, Name: "change propagation p99", Value: p.P99, Unit: "ms",
						Target: fmt.Sprintf("≤ %d ms", targetS8PropMS), Met: yes(p.N > 0 && p.P99 <= targetS8PropMS)})
			}
		}
		if id == 5 && r.Backlog != nil {
			bl := r.Backlog
			out = append(out,
				Metric{Scenario: 5, Name: "backlog events queued", Value: float64(r.Load.Acked), Unit: "count"},
				Metric{Scenario: 5, Name: "fill time", Value: bl.FillS, Unit: "s"},
				Metric{Scenario: 5, Name: "relay RSS max during fill (VmRSS/200 ms)", Value: bl.FillMaxRSSMiB, Unit: "MiB",
					Target: fmt.Sprintf("≤ %d MiB", targetS5RSSMiB), Met: yes(bl.FillMaxRSSMiB > 0 && bl.FillMaxRSSMiB <= targetS5RSSMiB)},
				Metric{Scenario: 5, Name: "relay VmHWM at end of fill", Value: bl.FillHWMMiB, Unit: "MiB",
					Target: fmt.Sprintf("≤ %d MiB", targetS5RSSMiB), Met: yes(bl.FillHWMMiB > 0 && bl.FillHWMMiB <= targetS5RSSMiB)},
				Metric{Scenario: 5, Name: "data dir after fill", Value: mib(bl.WALBytesAtFill), Unit: "MiB"},
				Metric{Scenario: 5, Name: "data dir after drain", Value: mib(bl.WALBytesAtEnd), Unit: "MiB"},
				Metric{Scenario: 5, Name: "data dir after graceful stop", Value: mib(bl.WALBytesAtStop), Unit: "MiB"},
				Metric{Scenario: 5, Name: "drain time", Value: bl.DrainS, Unit: "s"},
			)
			if bl.ResumeS > 0 {
				out = append(out, Metric{Scenario: 5, Name: "re-enable the endpoint holding the backlog (PATCH)", Value: bl.ResumeS,
					Unit: "s", Target: fmt.Sprintf("≤ %g s", targetS5ResumeS), Met: yes(bl.ResumeS <= targetS5ResumeS)})
			}
			m := Metric{Scenario: 5, Name: "drain ÷ scenario 1 deliveries/s", Unit: "×",
				Target: fmt.Sprintf("≥ %.1f×", targetS5Drain)}
			if s1 := h.Results[1]; s1 != nil && s1.DeliveriesPerSec > 0 {
				m.Value = bl.DrainRate / s1.DeliveriesPerSec
				m.Baseline = f64(s1.DeliveriesPerSec)
				m.BaseUnit = "/s"
				m.Met = yes(m.Value >= targetS5Drain)
			} else {
				m.Text = "n/a (run scenario 1 too)"
			}
			out = append(out, m)
			out = append(out, snapshotMetrics(bl)...)
		}
		out = append(out,
			Metric{Scenario: id, Name: "relay CPU (utime+stime)", Value: r.RelayCPUS, Unit: "s"},
			vsBase(Metric{Scenario: id, Name: "relay CPU per delivery", Value: r.CPUPerDelivUS, Unit: "µs",
				BaseUnit: "µs"}, b.CPUPerReqUS),
		)
		if r.CPUPerEventUS > 0 {
			m := Metric{Scenario: id, Name: "relay CPU per event while posting", Value: r.CPUPerEventUS, Unit: "µs"}
			if id == 6 {
				m.Target = fmt.Sprintf("≤ %d µs", targetS6CPUUS)
				m.Met = yes(m.Value <= targetS6CPUUS)
			}
			out = append(out, m)
		}
		rss := Metric{Scenario: id, Name: "relay peak RSS (VmHWM)", Value: r.PeakRSSMiB, Unit: "MiB"}
		if id == 5 {
			rss.Target = fmt.Sprintf("≤ %d MiB", targetS5RSSMiB)
			rss.Met = yes(r.PeakRSSMiB > 0 && r.PeakRSSMiB <= targetS5RSSMiB)
		}
		out = append(out, rss,
			Metric{Scenario: id, Name: "deliveries completed / expected", Value: float64(r.Completed), Unit: "count",
				Text: fmt.Sprintf("%s / %s", group(r.Completed), group(r.Expected))},
			zero(id, "losses (acked, never received)", r.Losses),
			zero(id, "bad signatures", r.BadSignatures),
			zero(id, "events with two delivery ids (bug)", r.OtherDeliveryIDs),
			zero(id, "event id mismatches (bug)", r.OtherEventIDs),
			Metric{Scenario: id, Name: "duplicates after a 2xx (at-least-once redelivery)", Value: float64(r.DuplicatesAfterOK), Unit: "count"},
		)
		if id == 3 || r.InjectedFailures > 0 || r.RetriesAfterFail > 0 {
			extra := r.Attempts - r.Completed
			out = append(out,
				Metric{Scenario: id, Name: "attempts at receivers", Value: float64(r.Attempts), Unit: "count"},
				Metric{Scenario: id, Name: "injected 500s", Value: float64(r.InjectedFailures), Unit: "count",
					Text: fmt.Sprintf("%s (%.2f%% of attempts)", group(r.InjectedFailures), pct(r.InjectedFailures, r.Attempts))},
				Metric{Scenario: id, Name: "extra attempts (attempts − deliveries)", Value: float64(extra), Unit: "count",
					Target: "= injected 500s", Met: yes(extra == r.InjectedFailures)},
				Metric{Scenario: id, Name: "retries after a failure", Value: float64(r.RetriesAfterFail), Unit: "count"},
			)
		}
		if r.RelayExit != "" {
			out = append(out, Metric{Scenario: id, Name: "relay died", Text: r.RelayExit, Target: "no", Met: yes(false)})
		}
		if len(r.RelayLogs.Crash) > 0 {
			out = append(out, Metric{Scenario: id, Name: "relay non-JSON output (panic?)", Value: float64(len(r.RelayLogs.Crash)),
				Unit: "count", Target: "0", Met: yes(false)})
		}
		out = append(out, Metric{Scenario: id, Name: "drained within timeout", Text: yesNo(r.Drained), Target: "yes", Met: yes(r.Drained)})
	}
	return out
}

// snapshotMetrics are scenario 5's rows on ingest while the relay's snapshots ran. The targets
// judge the trickle (a light open-loop load while a snapshot of the whole backlog runs): the
// fill saturates the relay, so its figures are shown for context, without a target.
func snapshotMetrics(bl *BacklogResult) []Metric {
	si := bl.Snapshot
	if si == nil {
		return nil
	}
	out := []Metric{
		{Scenario: 5, Name: "snapshots written (while posting / in all)", Value: float64(si.Snapshots), Unit: "count",
			Text: fmt.Sprintf("%d / %d", si.Overlapping, si.Snapshots)},
		{Scenario: 5, Name: "longest snapshot (whole)", Value: si.MaxDurationMS, Unit: "ms"},
		{Scenario: 5, Name: "longest snapshot capture (lock held)", Value: si.MaxCaptureMS, Unit: "ms"},
		{Scenario: 5, Name: "largest snapshot", Value: mib(si.MaxBytes), Unit: "MiB"},
	}
	out = append(out, snapshotIngestRows(si, "while filling (saturated)", false)...)
	if bl.Trickle != nil {
		out = append(out, Metric{Scenario: 5, Name: "trickle after the fill (events acked)", Value: float64(bl.Trickle.Acked),
			Unit: "count", Text: fmt.Sprintf("%s at %d/s, POST→202 p99 %s", group(bl.Trickle.Acked), trickleRate,
				FormatValue(bl.Trickle.AckTime.P99, "ms"))})
	}
	if ti := bl.TrickleSnapshot; ti != nil {
		out = append(out, snapshotIngestRows(ti, fmt.Sprintf("at %d/s", trickleRate), true)...)
	}
	return out
}

// snapshotIngestRows are the POST count, p99 and longest stall of ingest overlapping
// snapshots, judged against the targets when judged is set.
func snapshotIngestRows(si *SnapshotIngest, load string, judged bool) []Metric {
	p99 := Metric{Scenario: 5, Name: "ingest p99 during a snapshot, " + load, Value: si.P99MS, Unit: "ms"}
	if si.OutsideRequests > 0 {
		p99.Baseline = f64(si.OutsideP99MS)
		if r, ok := Ratio(si.P99MS, si.OutsideP99MS); ok {
			p99.Ratio = f64(r)
		}
	}
	stall := Metric{Scenario: 5, Name: "longest ingest stall during a snapshot, " + load, Value: si.StallMS, Unit: "ms",
		Text: fmt.Sprintf("%s (POST %s, gap %s)", FormatValue(si.StallMS, "ms"),
			FormatValue(si.MaxPostMS, "ms"), FormatValue(si.MaxGapMS, "ms"))}
	if judged {
		p99.Target, p99.Met = fmt.Sprintf("≤ %d ms", targetS5SnapP99MS), yes(si.Requests > 0 && si.P99MS <= targetS5SnapP99MS)
		stall.Target, stall.Met = fmt.Sprintf("≤ %d ms", targetS5SnapStallMS), yes(si.Requests > 0 && si.StallMS <= targetS5SnapStallMS)
	}
	if si.Requests == 0 {
		p99.Text = "n/a (no snapshot overlapped an ingest POST)"
		stall.Text = p99.Text
	}
	return []Metric{
		{Scenario: 5, Name: "ingest POSTs overlapping a snapshot, " + load, Value: float64(si.Requests), Unit: "count"},
		p99, stall,
	}
}

func ackP99(l *LoadResult) float64 {
	if l == nil {
		return 0
	}
	return l.AckTime.P99
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteTable prints the metrics as an aligned table.
func WriteTable(w io.Writer, metrics []Metric) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmetric\tvalue\tbaseline\tratio\ttarget\tmet?")
	last := -1
	for _, m := range metrics {
		sc := ""
		if m.Scenario != last {
			sc = "baseline"
			if m.Scenario > 0 {
				sc = fmt.Sprint(m.Scenario)
			}
			if last != -1 {
				fmt.Fprintln(tw, "\t\t\t\t\t\t")
			}
			last = m.Scenario
		}
		val := m.Text
		if val == "" {
			val = FormatValue(m.Value, m.Unit)
		}
		base, ratio := "", ""
		if m.Baseline != nil {
			u := m.BaseUnit
			if u == "" {
				u = m.Unit
			}
			base = FormatValue(*m.Baseline, u)
			if m.Ratio != nil {
				ratio = FormatRatio(*m.Ratio, true)
			} else if m.Unit != "×" {
				ratio = "n/a"
			}
		}
		met := ""
		if m.Met != nil {
			met = yesNo(*m.Met)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sc, m.Name, val, base, ratio, m.Target, met)
	}
	return tw.Flush()
}

// Report assembles the JSON report.
func (h *Harness) Report(command string, started time.Time, machine Machine) *Report {
	machine.LoadEnd = loadavg()
	r := &Report{
		Command: command, StartedAt: started.UTC(), FinishedAt: time.Now().UTC(),
		TotalS: time.Since(started).Seconds(), Machine: machine, Baseline: h.Baseline,
		Metrics: h.Metrics(),
		Options: map[string]string{
			"scenarios":                 fmt.Sprint(h.opts.Scenarios),
			"duration":                  h.opts.Duration.String(),
			"clients":                   fmt.Sprint(h.opts.Clients),
			"rate":                      fmt.Sprint(h.opts.Rate),
			"data_size":                 fmt.Sprint(h.opts.DataSize),
			"fanout":                    fmt.Sprint(h.opts.Fanout),
			"fail_rate":                 fmt.Sprint(h.opts.FailRate),
			"slow_latency":              h.opts.SlowLatency.String(),
			"backlog_events":            fmt.Sprint(h.opts.BacklogEvents),
			"backlog_mode":              h.opts.BacklogMode,
			"backlog_snapshot_interval": h.opts.BacklogSnapshotInterval.String(),
			"drain_timeout":             h.opts.DrainTimeout.String(),
			"relay_args":                joinArgs(h.opts.RelayArgs),
			"relay_bin":                 h.bin,
		},
		Notes: []string{
			"ratios: relay figure ÷ baseline figure; the baseline is the same fasthttp client posting the same signed bodies straight to the same receiver, same clients and duration",
			"deliveries/s: (event, endpoint) pairs answered 2xx ÷ (last such receipt − first post); latency: receipt time − send time embedded in the event, first 2xx receipt",
			"relay CPU per delivery is compared with the harness's own CPU per request in the baseline (client + receiver in one process)",
			"duplicates after a 2xx are allowed (delivery is at least once); two delivery ids for one event at one endpoint is a bug",
		},
	}
	if s5 := h.Results[5]; s5 != nil && s5.Backlog != nil && s5.Backlog.Snapshot != nil {
		r.Notes = append(r.Notes, "scenario 5, during a snapshot: a snapshot's window is [end − duration, end] from the relay's \"snapshot written\" log line; "+
			"an ingest POST counts when its send→answer overlaps a window (p99 of those; its baseline is the p99 of the POSTs of the same phases that overlapped none); "+
			"the stall is the longer of the longest such POST and the longest time between two consecutive answers that overlaps a window")
	}
	if h.opts.Rate > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("--rate %g: the baseline and scenarios 1–4 were paced at that many events/s, so their throughput ratios compare paced loads; run without --rate for capacity", h.opts.Rate))
	}
	for _, id := range h.opts.Scenarios {
		if s := h.Results[id]; s != nil {
			r.Scenarios = append(r.Scenarios, s)
		}
	}
	return r
}

// WriteJSON writes the report, indented.
func WriteJSON(path string, r *Report) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
