//go:build unix

package fleet

import (
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
)

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUpsertDeliveries is the fleet's view's cost per delivery state written in batches
// of 500 (one statement each): new pending rows, then the same deliveries finished.
// ns/state is wall time per state with one connection (PostgreSQL's work included);
// cpu-ns/state is this process's CPU alone (pgx's encoding: what a relay pays). There is no
// baseline: a single relay writes nothing.
func BenchmarkUpsertDeliveries(b *testing.B) {
	dsn := pgtest.Shared(b).CreateDB(b, "bench")
	ctx := b.Context()
	db, err := Open(ctx, dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ep, err := db.Create(ctx, sample())
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	attempts := `[{"n":1,"at":"2026-11-26T15:00:00.123Z","status_code":200,"error":null,"duration_ms":12}]`
	rows := make([]DeliveryRow, batch)
	b.ReportAllocs()
	n := 0
	cpu := cpuTime()
	for b.Loop() {
		if n%batch == 0 && n > 0 {
			// The batch is full: write it new, then finished (two states per delivery).
			if _, err := db.UpsertDeliveries(ctx, "relay-a", rows); err != nil {
				b.Fatal(err)
			}
			for i := range rows {
				rows[i].Status, rows[i].Attempts, rows[i].Version, rows[i].NextAttemptAt = api.StatusSucceeded, attempts, 4, time.Time{}
			}
			if _, err := db.UpsertDeliveries(ctx, "relay-a", rows); err != nil {
				b.Fatal(err)
			}
		}
		rows[n%batch] = DeliveryRow{ID: dlvID(), EndpointID: ep.ID, EventID: "evt_01", EventType: api.TypeIncidentOpened,
			Status: api.StatusPending, NextAttemptAt: time.Now()}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*n), "ns/state")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(2*n), "cpu-ns/state")
}
