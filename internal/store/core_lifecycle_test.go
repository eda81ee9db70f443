package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

func TestCoreAutoDisable(t *testing.T) {
	tests := []struct {
		name         string
		disableAfter int
		failures     int
		wantActive   bool
	}{
		{"disabled at the threshold", 3, 3, false},
		{"one below stays active", 3, 2, true},
		{"0 never disables", 0, 12, true},
		{"default threshold of the relay", 10, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCoreFixture(t, store.Options{DisableAfter: tt.disableAfter})
			ep := f.endpoint("a")
			var disabled []string
			for range tt.failures {
				f.ingest(api.TypeIncidentOpened, "")
				d := f.deliveriesOf(ep.ID)[0]
				disabled = append(disabled, f.failDelivery(d.ID, 1))
			}
			got := f.endpointView(ep.ID)
			if got.Active != tt.wantActive || got.ConsecutiveFailures != tt.failures {
				t.Fatalf("endpoint = %+v, want active %v with %d failures", got, tt.wantActive, tt.failures)
			}
			if !tt.wantActive {
				if coreReason(got) != api.DisabledConsecutiveFailures || disabled[len(disabled)-1] != api.DisabledConsecutiveFailures {
					t.Errorf("reason %q, Finish said %q", coreReason(got), disabled[len(disabled)-1])
				}
				if res := f.ingest(api.TypeIncidentOpened, ""); res.Deliveries != 0 {
					t.Errorf("ingest while disabled: %+v", res)
				}
				if _, err := f.s.SendTest(ep.ID); !errors.Is(err, store.ErrInactive) {
					t.Errorf("SendTest while disabled: %v", err)
				}
			}
		})
	}

	t.Run("pending deliveries are held when it trips", func(t *testing.T) {
		f := newCoreFixture(t, store.Options{DisableAfter: 1})
		ep := f.endpoint("a")
		f.ingest(api.TypeIncidentOpened, "")
		f.ingest(api.TypeIncidentOpened, "")
		ds := f.deliveriesOf(ep.ID) // newest first
		if got := f.failDelivery(ds[1].ID, 0); got != api.DisabledConsecutiveFailures {
			t.Fatalf("Finish said %q", got)
		}
		if d := f.deliveriesOf(ep.ID)[0]; d.Status != api.StatusHeld || d.NextAttemptAt != nil {
			t.Errorf("the other delivery = %+v, want held", d)
		}
		if _, ok := f.begin(ds[0].ID); ok {
			t.Error("Begin claimed a held delivery")
		}
	})

	t.Run("test pings do not count", func(t *testing.T) {
		f := newCoreFixture(t, store.Options{DisableAfter: 2})
		ep := f.endpoint("a")
		for range 3 {
			dlv, err := f.s.SendTest(ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			f.failDelivery(dlv, 0)
		}
		if got := f.endpointView(ep.ID); !got.Active || got.ConsecutiveFailures != 0 {
			t.Errorf("after failed test pings: %+v", got)
		}
		// Nor does a successful test ping reset a real failure count.
		f.ingest(api.TypeIncidentOpened, "")
		f.failDelivery(f.deliveriesOf(ep.ID)[0].ID, 0)
		dlv, _ := f.s.SendTest(ep.ID)
		f.attempt(dlv, 200, 0)
		if got := f.endpointView(ep.ID); got.ConsecutiveFailures != 1 {
			t.Errorf("consecutive_failures = %d after a failure and a test ping, want 1", got.ConsecutiveFailures)
		}
	})
}

func TestCoreGoneDisablesAtOnce(t *testing.T) {
	f := newCoreFixture(t, store.Options{DisableAfter: 10})
	ep := f.endpoint("a")
	f.ingest(api.TypeIncidentOpened, "")
	f.ingest(api.TypeIncidentOpened, "")
	ds := f.deliveriesOf(ep.ID)
	disabled, ok := f.attempt(ds[1].ID, 410, time.Minute) // a retry offered is ignored on 410
	if !ok || disabled != api.DisabledGone {
		t.Fatalf("Finish said %q, %v", disabled, ok)
	}
	got := f.endpointView(ep.ID)
	if got.Active || coreReason(got) != api.DisabledGone || got.ConsecutiveFailures != 1 {
		t.Errorf("endpoint = %+v, want disabled gone", got)
	}
	ds = f.deliveriesOf(ep.ID)
	if ds[1].Status != api.StatusFailed || len(ds[1].Attempts) != 1 || ds[0].Status != api.StatusHeld {
		t.Errorf("deliveries = %+v", ds)
	}
	// Re-enabling clears the reason and resumes the held one.
	got = f.setActive(ep.ID, true)
	if !got.Active || got.DisabledReason != nil || got.ConsecutiveFailures != 0 {
		t.Errorf("re-enabled = %+v", got)
	}
	if d := f.deliveriesOf(ep.ID)[0]; d.Status != api.StatusPending {
		t.Errorf("held delivery after re-enable = %+v", d)
	}
}

func TestCoreHeldAndResumed(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	f.ingest(api.TypeIncidentOpened, "")
	d := f.only(ep.ID)
	f.attempt(d.ID, 500, time.Hour) // pending, due in an hour
	f.ready.take()

	off := f.setActive(ep.ID, false)
	if off.Active || coreReason(off) != api.DisabledManual {
		t.Errorf("disabled = %+v", off)
	}
	if got := f.only(ep.ID); got.Status != api.StatusHeld || got.NextAttemptAt != nil {
		t.Errorf("after disabling: %+v, want held", got)
	}
	f.clock.Add(2 * time.Hour)
	if _, ok := f.begin(d.ID); ok {
		t.Error("Begin claimed a held delivery")
	}
	// Disabling again keeps the reason; a patch that does not touch active keeps it too.
	f.setActive(ep.ID, false)
	if got := f.update(ep.ID, api.EndpointInput{Name: coreStr("renamed")}); got.Active || coreReason(got) != api.DisabledManual {
		t.Errorf("after rename = %+v", got)
	}

	on := f.setActive(ep.ID, true)
	if !on.Active || on.DisabledReason != nil {
		t.Errorf("re-enabled = %+v", on)
	}
	got := f.only(ep.ID)
	if got.Status != api.StatusPending || got.NextAttemptAt == nil || !got.NextAttemptAt.Equal(on.UpdatedAt) {
		t.Errorf("after re-enabling: %+v, want pending due at %v", got, on.UpdatedAt)
	}
	// A re-enable announces the endpoint, not each delivery: the engine pulls them.
	if r := f.ready.take(); len(r) != 1 || !r[0].Resume || r[0].EndpointID != ep.ID || !r[0].Due.Equal(on.UpdatedAt) {
		t.Errorf("re-enable not announced as a resume: %+v", r)
	}
	if ids, _, more := f.s.DueAfter(ep.ID, store.DeliveryID{}, 10, f.clock.Now()); len(ids) != 1 || ids[0].String() != d.ID || more {
		t.Errorf("DueAfter after the re-enable = %v (more %v), want the resumed delivery", ids, more)
	}
	if _, ok := f.attempt(d.ID, 200, 0); !ok {
		t.Fatal("resumed delivery not begun")
	}
	if got := f.only(ep.ID); got.Status != api.StatusSucceeded || len(got.Attempts) != 2 {
		t.Errorf("after success: %+v", got)
	}

	// Disabled while an attempt is in flight: the outcome is recorded, a retry is held.
	f.ingest(api.TypeIncidentOpened, "")
	d2 := f.deliveriesOf(ep.ID)[0]
	job, _ := f.begin(d2.ID)
	f.setActive(ep.ID, false)
	if _, err := f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 1, At: f.clock.Now(), StatusCode: 503},
		RetryAt: f.clock.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := f.deliveriesOf(ep.ID)[0]; got.Status != api.StatusHeld || len(got.Attempts) != 1 {
		t.Errorf("in-flight attempt finished after disabling: %+v, want held with the attempt", got)
	}
}

func TestCoreHistoryLimit(t *testing.T) {
	f := newCoreFixture(t, store.Options{HistoryLimit: 3})
	ep := f.endpoint("a")
	var ids []string
	for range 6 {
		f.ingest(api.TypeIncidentOpened, "")
		ids = append(ids, f.deliveriesOf(ep.ID)[0].ID)
	}
	// Finish 0..4 in order; keep 5 pending.
	for _, i := range []int{0, 1, 2, 3, 4} {
		f.attempt(ids[i], 200, 0)
	}
	ds := f.deliveriesOf(ep.ID)
	var got []string
	for _, d := range ds {
		got = append(got, d.ID)
	}
	// Pending 5 is kept; of the finished, the newest three (2, 3, 4) remain.
	want := []string{ids[5], ids[4], ids[3], ids[2]}
	if !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v (newest first)", got, want)
	}
	for _, i := range []int{0, 1} {
		if _, err := f.s.Delivery(ids[i]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("trimmed delivery %d still readable: %v", i, err)
		}
	}
}

func TestCoreDeleteRemovesEverything(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	keep := f.endpoint("b")
	f.ingest(api.TypeIncidentOpened, "")
	f.ingest(api.TypeIncidentOpened, "")
	ds := f.deliveriesOf(ep.ID)
	f.attempt(ds[1].ID, 200, 0)
	job, ok := f.begin(ds[0].ID) // in flight while the endpoint goes
	if !ok {
		t.Fatal("not begun")
	}
	if err := f.s.DeleteEndpoint(ep.ID); err != nil {
		t.Fatal(err)
	}
	if disabled, err := f.s.Finish(store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 1, At: f.clock.Now(), StatusCode: 500},
		RetryAt: f.clock.Now()}); err != nil || disabled != "" {
		t.Errorf("Finish after delete = %q, %v", disabled, err)
	}
	for _, call := range []func() error{
		func() error { _, err := f.s.Endpoint(ep.ID); return err },
		func() error { _, err := f.s.Secret(ep.ID); return err },
		func() error { _, _, err := f.s.Deliveries(ep.ID, "", 10); return err },
		func() error { _, err := f.s.SendTest(ep.ID); return err },
		func() error { _, err := f.s.UpdateEndpoint(ep.ID, api.EndpointInput{}); return err },
		func() error { return f.s.DeleteEndpoint(ep.ID) },
		func() error { _, err := f.s.Delivery(ds[0].ID); return err },
		func() error { _, err := f.s.Delivery(ds[1].ID); return err },
	} {
		if err := call(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after delete: %v, want ErrNotFound", err)
		}
	}
	if _, ok := f.begin(ds[0].ID); ok {
		t.Error("Begin claimed a delivery of a deleted endpoint")
	}
	for _, r := range f.s.Pending() {
		if r.EndpointID == ep.ID {
			t.Errorf("pending after delete: %+v", r)
		}
	}
	if n := len(f.deliveriesOf(keep.ID)); n != 2 {
		t.Errorf("the other endpoint lost deliveries: %d", n)
	}
	eps, _, _ := f.s.Endpoints("", 10)
	if len(eps) != 1 || eps[0].ID != keep.ID {
		t.Errorf("endpoints after delete = %+v", eps)
	}
}

func TestCorePagination(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	var ids []string
	for i := range 7 {
		ids = append(ids, f.endpoint(string(rune('a'+i))).ID)
	}
	var got []string
	var sizes []int
	cursor := ""
	for range 10 {
		page, next, err := f.s.Endpoints(cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		for _, ep := range page {
			got = append(got, ep.ID)
			if ep.Secret != "" {
				t.Errorf("list shows a secret")
			}
		}
		if next == "" {
			break
		}
		if next != page[len(page)-1].ID {
			t.Errorf("cursor %q is not the last id of the page", next)
		}
		cursor = next
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) || !slices.Equal(got, ids) {
		t.Errorf("pages %v of %v, want [3 3 1] of %v", sizes, got, ids)
	}
	if page, next, _ := f.s.Endpoints("", 7); len(page) != 7 || next != "" {
		t.Errorf("a page that fits exactly: %d, next %q", len(page), next)
	}
	for _, bad := range []string{"x", "ep_", "dlv_00000000000000000000000000"} {
		if _, _, err := f.s.Endpoints(bad, 3); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("Endpoints cursor %q: %v", bad, err)
		}
	}

	ep := ids[0]
	var dl []string
	for range 5 {
		f.ingest(api.TypeIncidentOpened, "")
		dl = append(dl, f.deliveriesOf(ep)[0].ID)
	}
	slices.Reverse(dl) // newest first
	got, cursor = nil, ""
	for range 10 {
		page, next, err := f.s.Deliveries(ep, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			got = append(got, d.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, dl) {
		t.Errorf("deliveries paged %v, want newest first %v", got, dl)
	}
	if _, _, err := f.s.Deliveries(ep, "ep_00000000000000000000000000", 2); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("Deliveries with an endpoint id as cursor: %v", err)
	}
}

// TestCoreDueAfterPages: DueAfter pages through an endpoint's due deliveries in id order,
// skipping ones in flight, not yet due or finished; it reads a bounded number of entries per
// call, and says when the list is read to its end.
func TestCoreDueAfterPages(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	for range 40 {
		f.ingest(api.TypeIncidentOpened, "")
	}
	ds := f.deliveriesOf(ep.ID) // newest first
	want := map[string]bool{}
	for i, d := range ds {
		switch i % 4 {
		case 0:
			f.attempt(d.ID, 200, 0) // finished
		case 1:
			f.attempt(d.ID, 500, time.Hour) // not due
		case 2:
			f.begin(d.ID) // in flight
		default:
			want[d.ID] = true
		}
	}
	var got []string
	cursor, calls := store.DeliveryID{}, 0
	for more := true; more; calls++ {
		var ids []store.DeliveryID
		ids, cursor, more = f.s.DueAfter(ep.ID, cursor, 3, f.clock.Now())
		for _, id := range ids {
			got = append(got, id.String())
		}
		if calls > 40 {
			t.Fatal("DueAfter never reached the end")
		}
	}
	if len(got) != len(want) {
		t.Fatalf("DueAfter found %v, want the %d due ones", got, len(want))
	}
	for i, id := range got {
		if !want[id] || i > 0 && id <= got[i-1] {
			t.Fatalf("DueAfter found %v: not due, or not in id order", got)
		}
	}
	// A page of 1 reads at most 16 entries: with none due in the first 16, it comes back
	// empty but says there is more, past where it stopped.
	for _, d := range ds[len(ds)-16:] {
		if want[d.ID] {
			f.attempt(d.ID, 200, 0)
		}
	}
	ids, next, more := f.s.DueAfter(ep.ID, store.DeliveryID{}, 1, f.clock.Now())
	if len(ids) != 0 || !more || next.String() != ds[len(ds)-16].ID {
		t.Fatalf("first page of 1 = %v, next %s, more %v; want none, more, next at the 16th", ids, next, more)
	}
	f.setActive(ep.ID, false)
	if ids, _, more := f.s.DueAfter(ep.ID, store.DeliveryID{}, 10, f.clock.Now()); len(ids) != 0 || more {
		t.Fatalf("a disabled endpoint has due deliveries: %v", ids)
	}
}
