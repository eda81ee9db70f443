// Command blametrail-relay runs the BlameTrail webhook relay. Flags and BLAMETRAIL_*
// variables are listed by --help.
//
//	blametrail-relay [flags]                  run the relay
//	blametrail-relay store import [flags]     seed a fleet's PostgreSQL from a stopped relay's data dir
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/blametrail/terraform-provider-blametrail/internal/dirlock"
	"github.com/blametrail/terraform-provider-blametrail/relay"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run())
}

func run() int {
	// A command is a first argument that is not a flag; the relay itself takes only flags, so
	// its command line is unchanged.
	if len(os.Args) > 1 && os.Args[1] == "store" {
		return runStore(os.Args[2:])
	}
	cfg, err := relay.LoadConfig(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "blametrail-relay:", err)
		return 2
	}
	cfg.Version = version
	opts := &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: relay.ReplaceLogAttr}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	log := slog.New(h)
	slog.SetDefault(log)
	// A soft limit makes the collector work harder near it instead of letting the heap double:
	// a sidecar's memory is bounded by configuration, not by the backlog.
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Info("go soft memory limit", "bytes", debug.SetMemoryLimit(-1), "from", "GOMEMLIMIT")
	} else {
		self, _ := os.ReadFile("/proc/self/cgroup") // none: only the mount's root is read
		cgroupMax, err := relay.CgroupMemoryMax("/sys/fs/cgroup", self)
		if err != nil {
			log.Warn("memory limit: the container's limit could not be read; using the configured one", "err", err)
		}
		limit, source := relay.EffectiveMemoryLimit(cfg.MemoryLimit, cfg.MemoryLimitGiven, cgroupMax)
		if limit > 0 {
			debug.SetMemoryLimit(limit)
		}
		log.Info("go soft memory limit", "bytes", limit, "from", source)
	}

	// Before anything else touches the data dir, or the port: a second relay started by
	// mistake must say which data dir is taken and by whom, not that the port is.
	lock, err := dirlock.Acquire(cfg.DataDir)
	if err != nil {
		log.Error("refusing to start", "err", err)
		return 1
	}
	defer lock.Release()

	// Both sockets before serving anything: a taken admin port stops the relay before its
	// ingest listener accepts a single event.
	var lns relay.Listeners
	if lns.Main, err = listen("--listen", cfg.Listen, log); err != nil {
		return 1
	}
	defer lns.Main.Close()
	if cfg.AdminListen != "" {
		if lns.Admin, err = listen("--admin-listen", cfg.AdminListen, log); err != nil {
			return 1
		}
		defer lns.Admin.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := relay.Run(ctx, cfg, lns, log); err != nil {
		log.Error("relay stopped", "err", err)
		return 1
	}
	return 0
}

// listen binds addr for flag, logging a failure with the flag's name.
func listen(flag, addr string, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("cannot listen", "flag", flag, "addr", addr, "err", err)
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return ln, nil
}

const storeUsage = `Usage: blametrail-relay store import --data-dir DIR --store DSN [--store-secret-key KEY]

Commands:
  import   seed a fleet's PostgreSQL from a stopped relay's data dir: endpoints keep their ids
           and signing secrets (blametrail-relay store import --help)
`

// runStore runs `blametrail-relay store <command>`: 0 done, 1 failed, 2 usage.
func runStore(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, "blametrail-relay store: a command is required\n\n"+storeUsage)
		return 2
	}
	switch args[0] {
	case "import":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, storeUsage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "blametrail-relay store: unknown command %q\n\n%s", args[0], storeUsage)
		return 2
	}
	cfg, err := relay.LoadImportConfig(args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "blametrail-relay store import:", err)
		return 2
	}
	// Warnings of the state's recovery (a damaged snapshot, a torn tail) go to stderr; the
	// endpoints and the summary to stdout.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := relay.ImportStore(ctx, cfg, os.Stdout, log)
	summary := fmt.Sprintf("%d imported, %d skipped (already in the fleet)", res.Imported, res.Skipped)
	if err != nil {
		fmt.Fprintf(os.Stderr, "blametrail-relay store import: %v\n", err)
		if res.Imported+res.Skipped > 0 {
			fmt.Fprintf(os.Stderr, "blametrail-relay store import: stopped after %s; running it again skips those\n", summary)
		}
		return 1
	}
	fmt.Fprintf(os.Stdout, "import from %s done: %s\n", cfg.DataDir, summary)
	return 0
}
