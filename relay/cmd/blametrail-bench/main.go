// Command blametrail-bench is the relay's end-to-end load harness: it builds (or takes) the
// relay binary, runs it on 127.0.0.1 with fasthttp receivers and a fasthttp load generator,
// and prints each figure beside a baseline measured in the same run (the same client posting
// the same bodies straight to the same receiver), with the targets of the benchmark issue.
//
//	go run ./relay/cmd/blametrail-bench --json bench-results.json
//
// Scenarios: 1 one endpoint; 2 fan-out to 20; 3 10% of attempts answered 500; 4 one
// endpoint answering after 2 s beside 19 fast ones; 5 a backlog queued while the receiver is
// down, then drained; 6 and 7 one endpoint at a fixed 1,000 and 10,000 events/s (open loop:
// latency below saturation); 8 three relays in fleet mode on one PostgreSQL (a throwaway cluster
// the harness starts). Ctrl-C stops the run and every process it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	d := bench.DefaultOptions()
	fs := flag.NewFlagSet("blametrail-bench", flag.ContinueOnError)
	scenarios := fs.String("scenarios", "1,2,3,4,5,6,7,8", "scenarios to run, in order (scenario 4 compares with 2, and 5 with 1, when they ran before)")
	duration := fs.Duration("duration", d.Duration, "posting time per scenario (1–4, 6, 7) and for the baseline")
	clients := fs.Int("clients", d.Clients, "concurrent posting clients")
	rate := fs.Float64("rate", 0, "events/s in all for scenarios 1–4 and the baseline (open loop); 0: as fast as the clients go")
	backlog := fs.Int64("backlog-events", d.BacklogEvents, "scenario 5: events queued while the receiver is down")
	backlogMode := fs.String("backlog-mode", d.BacklogMode, "scenario 5: refused (nothing listens; deactivate, start receiver, re-enable) or hold (receiver never answers until released)")
	jsonPath := fs.String("json", "", "write the results as JSON to this file")
	relayBin := fs.String("relay-bin", "", "relay binary to run (default: build ./relay/cmd/blametrail-relay)")
	relayArgs := fs.String("relay-args", "", "extra relay flags, space-separated, appended last (e.g. \"--max-in-flight 64\")")
	keep := fs.Bool("keep", false, "keep the relays' data directories")
	dataSize := fs.Int("data-size", d.DataSize, "bytes of each event's data object")
	fanout := fs.Int("fanout", d.Fanout, "endpoints in scenarios 2 and 4")
	failRate := fs.Float64("fail-rate", d.FailRate, "scenario 3: fraction of attempts answered 500")
	slow := fs.Duration("slow-latency", d.SlowLatency, "scenario 4: the slow endpoint's answer time")
	drain := fs.Duration("drain-timeout", d.DrainTimeout, "scenarios 1–4, 6, 7: longest wait for every delivery after the posts end")
	backlogDrain := fs.Duration("backlog-drain-timeout", d.BacklogDrainTimeout, "scenario 5: longest wait for the drain")
	backlogSnap := fs.Duration("backlog-snapshot-interval", d.BacklogSnapshotInterval, "scenario 5: also pass this --snapshot-interval to the relay (0: the relay's default). The trickle after the fill asks for a snapshot of the whole backlog with SIGUSR1 either way")
	backlogFill := fs.Duration("backlog-fill-timeout", d.BacklogFillTimeout, "scenario 5: longest time spent queueing the backlog")
	cpuProfile := fs.String("cpuprofile", "", "write the harness's own CPU profile (not the relay's) to this file")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "blametrail-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ids, err := parseScenarios(*scenarios)
	if err != nil {
		fmt.Fprintln(os.Stderr, "blametrail-bench: --scenarios:", err)
		return 2
	}
	opts := bench.Options{
		RelayBin: *relayBin, Scenarios: ids, RelayArgs: strings.Fields(*relayArgs),
		Duration: *duration, Clients: *clients, Rate: *rate, DataSize: *dataSize, Fanout: *fanout,
		FailRate: *failRate, SlowLatency: *slow,
		BacklogEvents: *backlog, BacklogMode: *backlogMode,
		BacklogFillTimeout: *backlogFill, BacklogDrainTimeout: *backlogDrain, BacklogSnapshotInterval: *backlogSnap,
		DrainTimeout: *drain, Keep: *keep, Progress: os.Stderr,
	}
	if *quiet {
		opts.Progress = nil
	}

	// First Ctrl-C: cancel the run (processes are stopped by the deferred cleanups). Second:
	// kill every relay at once and exit.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "blametrail-bench: stopping (again to kill at once)")
		cancel()
		<-sigs
		bench.KillAll()
		os.Exit(130)
	}()
	defer bench.KillAll()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "blametrail-bench:", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "blametrail-bench:", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	started := time.Now()
	machine := bench.MachineInfo()
	h, err := bench.NewHarness(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "blametrail-bench:", err)
		return 1
	}
	defer h.Close()
	runErr := h.Run(ctx)

	report := h.Report("blametrail-bench "+strings.Join(os.Args[1:], " "), started, machine)
	fmt.Printf("BlameTrail relay benchmark — %s, %d CPUs, %s, load %s → %s, %.0fs in all\n\n",
		machine.CPUModel, machine.CPUs, machine.GoVersion, machine.LoadStart, report.Machine.LoadEnd, report.TotalS)
	if err := bench.WriteTable(os.Stdout, report.Metrics); err != nil {
		fmt.Fprintln(os.Stderr, "blametrail-bench:", err)
	}
	if *jsonPath != "" {
		if err := bench.WriteJSON(*jsonPath, report); err != nil {
			fmt.Fprintln(os.Stderr, "blametrail-bench: write json:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "results written to %s\n", *jsonPath)
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "blametrail-bench:", runErr)
		return 1
	}
	return 0
}

func parseScenarios(s string) ([]int, error) {
	var ids []int
	seen := map[int]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 8 {
			return nil, fmt.Errorf("%q is not a scenario 1..8", p)
		}
		if !seen[n] {
			seen[n] = true
			ids = append(ids, n)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("no scenario given")
	}
	return ids, nil
}
