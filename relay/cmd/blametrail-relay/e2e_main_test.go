package main_test

import (
	"os"
	"strings"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
)

// TestMain shortens the exit of every relay this package starts: a binary built with -race
// sleeps a second at exit (GORACE atexit_sleep_ms, default 1000) in case other goroutines are
// about to report, and this package starts dozens of relays. Races are still reported.
// pgtest.Main runs the tests, then stops the PostgreSQL cluster the fleet tests share
// (pgtest.Shared) and removes its initdb template.
func TestMain(m *testing.M) {
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	pgtest.Main(m)
}
