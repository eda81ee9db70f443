package fleet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// TestCounterConcurrentRelays: three relays (three pools) with four workers each record the
// same failures at once, every failure by every worker: each counts once, and exactly one
// call in the whole fleet disables the endpoint at the threshold. Another endpoint's count is
// its own.
func TestCounterConcurrentRelays(t *testing.T) {
	t.Parallel()
	dsn := newDSN(t)
	relays := []*DB{open(t, dsn, Options{MaxConns: 4}), open(t, dsn, Options{MaxConns: 4}), open(t, dsn, Options{MaxConns: 4})}
	a, b := create(t, relays[0], sample()), create(t, relays[1], sample())
	const failures, threshold, bFailures = 30, 10, 5
	var disabledA, disabledB, calls atomic.Int64
	var wg sync.WaitGroup
	for r, db := range relays {
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), uint64(w)))
				for _, i := range rng.Perm(failures) {
					d, err := db.RecordFailure(t.Context(), a.ID, fmt.Sprintf("dlv_a%02d", i), threshold)
					if err != nil {
						t.Error(err)
						return
					}
					if d {
						disabledA.Add(1)
					}
					if i < bFailures {
						d, err := db.RecordFailure(t.Context(), b.ID, fmt.Sprintf("dlv_b%02d", i), threshold)
						if err != nil {
							t.Error(err)
							return
						}
						if d {
							disabledB.Add(1)
						}
					}
					calls.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if calls.Load() != 3*4*failures {
		t.Fatalf("%d calls", calls.Load())
	}
	ea, eb := get(t, relays[2], a.ID), get(t, relays[2], b.ID)
	if ea.ConsecutiveFailures != failures || ea.Active || ea.DisabledReason != api.DisabledConsecutiveFailures {
		t.Errorf("endpoint a: failures %d active %v reason %q; want %d, disabled", ea.ConsecutiveFailures, ea.Active, ea.DisabledReason, failures)
	}
	if n := disabledA.Load(); n != 1 {
		t.Errorf("%d calls reported disabling endpoint a, want exactly 1", n)
	}
	if eb.ConsecutiveFailures != bFailures || !eb.Active || disabledB.Load() != 0 {
		t.Errorf("endpoint b: failures %d active %v disabled by %d calls", eb.ConsecutiveFailures, eb.Active, disabledB.Load())
	}
	conn := raw(t, dsn)
	if n := sqlInt(t, conn, "SELECT count(*) FROM blametrail_failures WHERE endpoint_id = $1", a.ID); n != failures {
		t.Errorf("failure set of a: %d rows", n)
	}
}

// TestCounterSequence: replays never count, a success resets (and writes nothing when there
// is nothing to reset), the threshold disables once, an inactive endpoint keeps counting
// without being disabled again, re-enabling starts over.
func TestCounterSequence(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	ctx := t.Context()
	ep := create(t, db, sample())
	fail := func(dlv string, wantDisabled bool, wantCount int) {
		t.Helper()
		d, err := db.RecordFailure(ctx, ep.ID, dlv, 3)
		if err != nil {
			t.Fatal(err)
		}
		e := get(t, db, ep.ID)
		if d != wantDisabled || e.ConsecutiveFailures != wantCount {
			t.Fatalf("after %s: disabled %v, count %d; want %v, %d", dlv, d, e.ConsecutiveFailures, wantDisabled, wantCount)
		}
	}
	fail("d1", false, 1)
	fail("d1", false, 1) // replay
	fail("d2", false, 2)

	before := get(t, db, ep.ID).Version
	if err := db.RecordSuccess(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	reset := get(t, db, ep.ID)
	if reset.ConsecutiveFailures != 0 || reset.Version <= before {
		t.Fatalf("after success: count %d, version %d (was %d)", reset.ConsecutiveFailures, reset.Version, before)
	}
	if err := db.RecordSuccess(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if v := get(t, db, ep.ID).Version; v != reset.Version {
		t.Errorf("a success with nothing to reset wrote: version %d, was %d", v, reset.Version)
	}
	fail("d1", false, 0) // replayed after the reset: still counted once only

	fail("d3", false, 1)
	fail("d4", false, 2)
	fail("d5", true, 3)
	fail("d6", false, 4)
	fail("d5", false, 4)
	e := get(t, db, ep.ID)
	if e.Active || e.DisabledReason != api.DisabledConsecutiveFailures {
		t.Fatalf("at the threshold: %+v", e)
	}
	if _, err := db.Update(ctx, ep.ID, api.EndpointInput{Active: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	fail("d7", false, 1)
	fail("d8", false, 2)
	fail("d9", true, 3)

	// Threshold 0 never disables; a disabled-by-hand endpoint keeps its reason.
	never := create(t, db, sample())
	manual := sample()
	manual.Active = false
	manual = create(t, db, manual)
	for i := range 5 {
		for _, id := range []string{never.ID, manual.ID} {
			threshold := map[string]int{never.ID: 0, manual.ID: 2}[id]
			if d, err := db.RecordFailure(ctx, id, fmt.Sprint("x", i), threshold); d || err != nil {
				t.Fatalf("%s: disabled %v, %v", id, d, err)
			}
		}
	}
	if e := get(t, db, never.ID); !e.Active || e.ConsecutiveFailures != 5 {
		t.Errorf("threshold 0: %+v", e)
	}
	if e := get(t, db, manual.ID); e.DisabledReason != api.DisabledManual || e.ConsecutiveFailures != 5 {
		t.Errorf("manual: %+v", e)
	}
}

// TestGone: a 410 counts once and disables "gone" once; DisableGone disables without counting;
// unknown endpoints are ErrNotFound (but a success for one is no error).
func TestGone(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	ctx := t.Context()
	ep := create(t, db, sample())
	for i, want := range []struct {
		dlv      string
		disabled bool
		count    int
	}{{"g1", true, 1}, {"g1", false, 1}, {"g2", false, 2}} {
		d, err := db.RecordGone(ctx, ep.ID, want.dlv)
		e := get(t, db, ep.ID)
		if err != nil || d != want.disabled || e.ConsecutiveFailures != want.count || e.Active || e.DisabledReason != api.DisabledGone {
			t.Errorf("RecordGone #%d: disabled %v, %v, endpoint %+v", i, d, err, e)
		}
	}

	other := create(t, db, sample())
	for i, want := range []bool{true, false} {
		d, err := db.DisableGone(ctx, other.ID)
		if err != nil || d != want {
			t.Errorf("DisableGone #%d: %v, %v; want %v", i, d, err, want)
		}
	}
	if e := get(t, db, other.ID); e.Active || e.DisabledReason != api.DisabledGone || e.ConsecutiveFailures != 0 {
		t.Errorf("after DisableGone: %+v", e)
	}

	if _, err := db.RecordFailure(ctx, "ep_missing", "d", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordFailure: %v", err)
	}
	if _, err := db.RecordGone(ctx, "ep_missing", "d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordGone: %v", err)
	}
	if _, err := db.DisableGone(ctx, "ep_missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DisableGone: %v", err)
	}
	if err := db.RecordSuccess(ctx, "ep_missing"); err != nil {
		t.Errorf("RecordSuccess: %v", err)
	}
}

// TestTrimFailures: rows older than the retention go, newer ones stay (and keep deduplicating);
// an endpoint's rows go with it.
func TestTrimFailures(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{FailureRetention: time.Hour})
	ctx := t.Context()
	conn := raw(t, dsn)
	ep, gone := create(t, db, sample()), create(t, db, sample())
	for i := range 5 {
		for _, id := range []string{ep.ID, gone.ID} {
			if _, err := db.RecordFailure(ctx, id, fmt.Sprint("d", i), 100); err != nil {
				t.Fatal(err)
			}
		}
	}
	sqlExec(t, conn, `UPDATE blametrail_failures SET failed_at = now() - interval '61 minutes'
		WHERE endpoint_id = $1 AND delivery_id IN ('d0', 'd1')`, ep.ID)
	if err := db.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if n := sqlInt(t, conn, "SELECT count(*) FROM blametrail_failures WHERE endpoint_id = $1", gone.ID); n != 0 {
		t.Errorf("%d failure rows outlived their endpoint", n)
	}
	n, err := db.TrimFailures(ctx)
	if err != nil || n != 2 {
		t.Fatalf("TrimFailures: %d, %v; want 2", n, err)
	}
	if d, _ := db.RecordFailure(ctx, ep.ID, "d4", 100); d || get(t, db, ep.ID).ConsecutiveFailures != 5 {
		t.Errorf("a kept row no longer deduplicates")
	}
	if _, err := db.RecordFailure(ctx, ep.ID, "d0", 100); err != nil || get(t, db, ep.ID).ConsecutiveFailures != 6 {
		t.Errorf("a trimmed key did not count again (retention is what bounds dedup)")
	}
}
