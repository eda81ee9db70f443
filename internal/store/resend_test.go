package store_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// resendModes runs a test on a memory-only store and on a durable one.
func resendModes(t *testing.T, f func(t *testing.T, opts store.Options)) {
	t.Run("memory", func(t *testing.T) { f(t, store.Options{}) })
	t.Run("durable", func(t *testing.T) {
		f(t, store.Options{Dir: t.TempDir(), WAL: wal.Options{Sync: wal.SyncNone}, PayloadCache: 1})
	})
}

// TestResendStartsFreshSeries: a failed delivery resent keeps its id and attempts, becomes due
// now, sends the same body, and its retry series starts over (Series 1) while attempt numbers
// go on; a succeeded one can be resent too.
func TestResendStartsFreshSeries(t *testing.T) {
	resendModes(t, func(t *testing.T, opts store.Options) {
		f := newCoreFixture(t, opts)
		ep := f.endpoint("a")
		f.ingest(api.TypeIncidentOpened, "")
		dlv := f.only(ep.ID).ID
		first, _ := f.begin(dlv)
		body := bytes.Clone(first.Body)
		f.s.Finish(store.Outcome{Delivery: first.Delivery, Attempt: store.Attempt{N: 1, At: f.clock.Now(), StatusCode: 500},
			RetryAt: f.clock.Now().Add(time.Millisecond)})
		f.clock.Add(time.Millisecond)
		f.failDelivery(dlv, 1) // attempts 2 and 3; failed
		if d := f.only(ep.ID); d.Status != api.StatusFailed || len(d.Attempts) != 3 {
			t.Fatalf("before resend: %s with %d attempts", d.Status, len(d.Attempts))
		}
		f.ready.take()

		f.clock.Add(time.Second)
		v, err := f.s.Resend(ep.ID, dlv)
		if err != nil {
			t.Fatal(err)
		}
		if v.ID != dlv || v.Status != api.StatusPending || len(v.Attempts) != 3 || v.NextAttemptAt == nil || !v.NextAttemptAt.Equal(f.clock.Now()) {
			t.Fatalf("resent delivery = %+v, want pending, due now, 3 attempts kept", v)
		}
		if r := f.ready.take(); len(r) != 1 || r[0].Delivery.String() != dlv {
			t.Fatalf("announced %v, want the resent delivery", r)
		}
		checkStats(t, f.s)
		job, ok := f.begin(dlv)
		if !ok || job.N != 4 || job.Series != 1 || !bytes.Equal(job.Body, body) || !job.Accepted.IsZero() {
			t.Fatalf("job after resend: ok=%v N=%d Series=%d accepted=%v body=%q", ok, job.N, job.Series, job.Accepted, job.Body)
		}
		if _, err := f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 4, At: f.clock.Now(), StatusCode: 500},
			RetryAt: f.clock.Now().Add(time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Millisecond)
		if job, _ := f.begin(dlv); job.N != 5 || job.Series != 2 {
			t.Fatalf("retry of the resend: N=%d Series=%d, want 5 and 2", job.N, job.Series)
		}
		f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 5, At: f.clock.Now(), StatusCode: 200}, Success: true})
		if d := f.only(ep.ID); d.Status != api.StatusSucceeded || len(d.Attempts) != 5 || d.Attempts[4].N != 5 {
			t.Fatalf("after resend succeeded: %+v", d)
		}
		if _, err := f.s.Resend(ep.ID, dlv); err != nil {
			t.Fatalf("resend a succeeded delivery: %v", err)
		}
		if job, _ := f.begin(dlv); job.N != 6 || job.Series != 1 {
			t.Fatalf("second resend: N=%d Series=%d, want 6 and 1", job.N, job.Series)
		}
		checkStats(t, f.s)
	})
}

// TestResendRefusals: each reason a resend is refused has its own error, and changes nothing.
func TestResendRefusals(t *testing.T) {
	resendModes(t, func(t *testing.T, opts store.Options) {
		f := newCoreFixture(t, opts)
		a, b := f.endpoint("a"), f.endpoint("b", api.TypeDeployIngested)
		f.ingest(api.TypeIncidentOpened, "")
		pending := f.only(a.ID).ID
		f.ingest(api.TypeDeployIngested, "")
		ofB := f.deliveriesOf(b.ID)[0].ID
		f.attempt(ofB, 200, 0)
		before := coreView(t, f.s)
		for _, tt := range []struct {
			name, ep, dlv string
			want          error
		}{
			{"pending", a.ID, pending, store.ErrNotFinished},
			{"unknown delivery", a.ID, "dlv_00000000000000000000000000", store.ErrDeliveryNotFound},
			{"malformed delivery", a.ID, "dlv_nope", store.ErrDeliveryNotFound},
			{"another endpoint's delivery", a.ID, ofB, store.ErrDeliveryNotFound},
			{"unknown endpoint", "ep_00000000000000000000000000", ofB, store.ErrNotFound},
			{"unknown endpoint, malformed delivery", "ep_00000000000000000000000000", "x", store.ErrNotFound},
		} {
			if _, err := f.s.Resend(tt.ep, tt.dlv); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		}
		f.setActive(b.ID, false)
		if _, err := f.s.Resend(b.ID, ofB); !errors.Is(err, store.ErrInactive) {
			t.Errorf("disabled endpoint: %v, want ErrInactive", err)
		}
		if _, err := f.s.Recover(b.ID, time.Time{}); !errors.Is(err, store.ErrInactive) {
			t.Errorf("recover on a disabled endpoint: %v, want ErrInactive", err)
		}
		f.setActive(b.ID, true)
		if after := coreView(t, f.s); after == before {
			t.Fatal("view did not change with the toggles: the comparison below would prove nothing")
		}
		if d := f.deliveriesOf(b.ID)[0]; d.Status != api.StatusSucceeded {
			t.Fatalf("a refused resend changed the delivery: %s", d.Status)
		}
	})
}

// TestRecoverResendsFailedSince: only failed deliveries whose last attempt is at or after
// since are resent; pending and succeeded ones are not; a second call skips those already
// pending again.
func TestRecoverResendsFailedSince(t *testing.T) {
	resendModes(t, func(t *testing.T, opts store.Options) {
		f := newCoreFixture(t, opts)
		ep := f.endpoint("a")
		for range 5 {
			f.ingest(api.TypeIncidentOpened, "")
		}
		ds := f.deliveriesOf(ep.ID) // newest first
		f.attempt(ds[4].ID, 500, 0) // failed, oldest
		f.clock.Add(time.Minute)
		since := f.clock.Now()
		f.attempt(ds[3].ID, 500, 0) // failed at since
		f.clock.Add(time.Minute)
		f.attempt(ds[2].ID, 500, 0) // failed after
		f.attempt(ds[1].ID, 200, 0) // succeeded
		// ds[0] stays pending
		f.ready.take()

		res, err := f.s.Recover(ep.ID, since)
		if err != nil || res.Resent != 2 || res.Expired != 0 {
			t.Fatalf("recover since %v = %+v, %v; want 2 resent", since, res, err)
		}
		got := map[string]string{}
		for _, d := range f.deliveriesOf(ep.ID) {
			got[d.ID] = d.Status
		}
		want := map[string]string{ds[4].ID: api.StatusFailed, ds[3].ID: api.StatusPending, ds[2].ID: api.StatusPending,
			ds[1].ID: api.StatusSucceeded, ds[0].ID: api.StatusPending}
		for id, st := range want {
			if got[id] != st {
				t.Errorf("%s: %s, want %s", id, got[id], st)
			}
		}
		if r := f.ready.take(); len(r) != 2 {
			t.Fatalf("announced %d deliveries, want 2", len(r))
		}
		res, err = f.s.Recover(ep.ID, time.Time{})
		if err != nil || res.Resent != 1 {
			t.Fatalf("second recover = %+v, %v; want only the older failed one", res, err)
		}
		if res, _ := f.s.Recover(ep.ID, time.Time{}); res.Resent != 0 {
			t.Fatalf("third recover resent %d, want 0", res.Resent)
		}
		if _, err := f.s.Recover("ep_00000000000000000000000000", since); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("recover on an unknown endpoint: %v", err)
		}
		checkStats(t, f.s)
	})
}

// TestResendSurvivesRestart: a resend is in the log (and in a snapshot) with its body: after a
// restart the delivery is still pending, sends the same body, and its series still counts from
// the resend.
func TestResendSurvivesRestart(t *testing.T) {
	for _, snap := range []bool{false, true} {
		dir := t.TempDir()
		opts := store.Options{Dir: dir, WAL: wal.Options{Sync: wal.SyncNone}, PayloadCache: 1}
		f := newCoreFixture(t, opts)
		ep := f.endpoint("a")
		f.ingest(api.TypeIncidentOpened, "")
		dlv := f.only(ep.ID).ID
		job, _ := f.begin(dlv)
		body := bytes.Clone(job.Body)
		f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 1, At: f.clock.Now(), StatusCode: 500}})
		f.clock.Add(time.Second)
		if _, err := f.s.Resend(ep.ID, dlv); err != nil {
			t.Fatal(err)
		}
		job, _ = f.begin(dlv)
		f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: job.N, At: f.clock.Now(), StatusCode: 500},
			RetryAt: f.clock.Now().Add(time.Millisecond)})
		f.ingest(api.TypeIncidentResolved, "") // another event, so the payload cache no longer holds the first
		if snap {
			if err := f.s.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
		want := coreView(t, f.s)
		if err := f.close(); err != nil {
			t.Fatal(err)
		}
		g := newCoreFixture(t, opts)
		g.clock.Add(time.Hour)
		if got := coreView(t, g.s); got != want {
			t.Fatalf("snapshot=%v: state after restart differs:\n%s\nwant:\n%s", snap, got, want)
		}
		job, ok := g.begin(dlv)
		if !ok || job.N != 3 || job.Series != 2 || !bytes.Equal(job.Body, body) || job.PayloadErr != nil {
			t.Fatalf("snapshot=%v: after restart ok=%v N=%d Series=%d err=%v body=%q", snap, ok, job.N, job.Series, job.PayloadErr, job.Body)
		}
	}
}

// TestResendLargestBody: the resend record of the largest body the relay accepts (15 MiB) still
// fits in one WAL record, and the body read back after a restart is the same.
func TestResendLargestBody(t *testing.T) {
	opts := store.Options{Dir: t.TempDir(), WAL: wal.Options{Sync: wal.SyncNone}, PayloadCache: 1}
	f := newCoreFixture(t, opts)
	ep := f.endpoint("a")
	data := []byte(`"` + strings.Repeat("x", wal.MaxRecordSize-1<<20-2) + `"`)
	if _, err := f.s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: data}); err != nil {
		t.Fatal(err)
	}
	dlv := f.only(ep.ID).ID
	f.attempt(dlv, 500, 0)
	if _, err := f.s.Resend(ep.ID, dlv); err != nil {
		t.Fatalf("resend of a 15 MiB body: %v", err)
	}
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	g := newCoreFixture(t, opts)
	g.clock.Add(time.Hour)
	job, ok := g.begin(dlv)
	if !ok || job.PayloadErr != nil || !bytes.Contains(job.Body, data) {
		t.Fatalf("after restart: ok=%v err=%v, body %d bytes", ok, job.PayloadErr, len(job.Body))
	}
}

// TestRecoverBounded: one call resends at most MaxRecover deliveries, oldest first, and says
// there is more; the next call takes the rest.
func TestRecoverBounded(t *testing.T) {
	f := newCoreFixture(t, store.Options{HistoryLimit: 2 * store.MaxRecover})
	ep := f.endpoint("a")
	for range store.MaxRecover + 1 {
		f.ingest(api.TypeIncidentOpened, "")
	}
	for _, r := range f.s.Pending() { // oldest first
		f.attempt(r.Delivery.String(), 500, 0)
	}
	res, err := f.s.Recover(ep.ID, time.Time{})
	if err != nil || res.Resent != store.MaxRecover || !res.More {
		t.Fatalf("first recover = %+v, %v; want %d and more", res, err, store.MaxRecover)
	}
	if d := f.deliveriesOf(ep.ID)[0]; d.Status != api.StatusFailed {
		t.Fatalf("the newest failed delivery is %s, want it left for the next call", d.Status)
	}
	if res, err := f.s.Recover(ep.ID, time.Time{}); err != nil || res.Resent != 1 || res.More {
		t.Fatalf("second recover = %+v, %v; want the last one", res, err)
	}
}
