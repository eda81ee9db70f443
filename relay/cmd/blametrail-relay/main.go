// Command blametrail-relay runs the BlameTrail webhook relay. Flags and BLAMETRAIL_*
// variables are listed by --help.
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
	if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit)
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
