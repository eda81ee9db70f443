package store_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// changeLog records what the store told OnDelivery.
type changeLog struct{ recorder[store.DeliveryState] }

// one is the single state told since the last take; its View must be what the API shows now.
func (c *changeLog) one(t *testing.T, f *coreFixture, epID string) store.DeliveryState {
	t.Helper()
	got := c.take()
	if len(got) != 1 {
		t.Fatalf("told %d changes, want 1", len(got))
	}
	want, err := f.s.Delivery(got[0].ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if v := got[0].View(); !reflect.DeepEqual(v, want) || v.EndpointID != epID {
		t.Fatalf("told %+v, the API shows %+v", v, want)
	}
	checkAttemptsJSON(t, got[0])
	return got[0]
}

// TestDeliveryChanges: each change of a delivery (created, each attempt, finished, resent by
// Resend and by Recover, a test ping) is told once, as the API then shows it, with a Version
// that grows with every change; a store without OnDelivery is told nothing, and a version read
// back after a restart is the one last told.
func TestDeliveryChanges(t *testing.T) {
	resendModes(t, func(t *testing.T, opts store.Options) {
		changes := &changeLog{}
		opts.OnDelivery = changes.add
		f := newCoreFixture(t, opts)
		ep := f.endpoint("a")
		f.ingest(api.TypeIncidentOpened, "")
		st := changes.one(t, f, ep.ID)
		if st.Status != api.StatusPending || st.Attempts() != 0 || st.Version != 0 || st.Next == 0 {
			t.Fatalf("created: %+v", st)
		}
		dlv, last := st.ID.String(), st.Version
		next := func(wantStatus string, wantAttempts int) {
			t.Helper()
			st := changes.one(t, f, ep.ID)
			if st.ID.String() != dlv || st.Status != wantStatus || st.Attempts() != wantAttempts || st.Version <= last {
				t.Fatalf("told %s with %d attempts, version %d after %d; want %s with %d", st.Status, st.Attempts(),
					st.Version, last, wantStatus, wantAttempts)
			}
			last = st.Version
		}
		f.attempt(dlv, 500, time.Millisecond)
		next(api.StatusPending, 1)
		f.clock.Add(time.Millisecond)
		f.attempt(dlv, 503, 0)
		next(api.StatusFailed, 2)
		if _, err := f.s.Resend(ep.ID, dlv); err != nil {
			t.Fatal(err)
		}
		next(api.StatusPending, 2)
		f.attempt(dlv, 500, 0)
		next(api.StatusFailed, 3)
		f.clock.Add(time.Millisecond)
		if res, err := f.s.Recover(ep.ID, time.Time{}); err != nil || res.Resent != 1 {
			t.Fatalf("recover: %+v, %v", res, err)
		}
		next(api.StatusPending, 3)
		f.attempt(dlv, 200, 0)
		next(api.StatusSucceeded, 4)

		ping, err := f.s.SendTest(ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st := changes.one(t, f, ep.ID); st.ID.String() != ping || st.EventType != api.TypeTestPing {
			t.Fatalf("test ping told as %+v", st)
		}
		// A fan-out tells each delivery it created.
		other := f.endpoint("b")
		f.ingest(api.TypeIncidentOpened, "")
		got := changes.take()
		if len(got) != 2 || got[0].EndpointID != ep.ID || got[1].EndpointID != other.ID || got[0].EventID != got[1].EventID {
			t.Fatalf("fan-out to two endpoints told %+v", got)
		}
		// Finished states read back after a restart have the version last told.
		if opts.Dir != "" {
			if err := f.close(); err != nil {
				t.Fatal(err)
			}
			g := newCoreFixture(t, opts)
			states, more := g.s.DeliveryStates(ep.ID, store.DeliveryID{}, 10)
			if more || len(states) != 3 || states[0].ID.String() != dlv || states[0].Version != last {
				t.Fatalf("after restart: %+v (more %v), want %s at version %d first", states, more, dlv, last)
			}
		}
	})
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("quiet")
	f.ingest(api.TypeIncidentOpened, "")
	f.attempt(f.only(ep.ID).ID, 200, 0) // nothing to tell, and nothing breaks
}

// TestDeliveryStatesPages: DeliveryStates walks an endpoint's deliveries, pending and finished,
// in id order a page at a time, each as the API shows it.
func TestDeliveryStatesPages(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	for range 25 {
		f.ingest(api.TypeIncidentOpened, "")
	}
	all := f.deliveriesOf(ep.ID) // newest first
	for i, d := range all {
		if i%3 == 0 {
			f.attempt(d.ID, 200, 0)
		}
	}
	all = f.deliveriesOf(ep.ID)
	var got []api.Delivery
	var after store.DeliveryID
	for pages := 0; ; pages++ {
		states, more := f.s.DeliveryStates(ep.ID, after, 7)
		for _, st := range states {
			got = append(got, st.View())
		}
		if len(states) > 0 {
			after = states[len(states)-1].ID
		}
		if !more {
			if pages != 3 {
				t.Errorf("%d pages of 7 for 25 deliveries, want 4", pages+1)
			}
			break
		}
	}
	if len(got) != len(all) {
		t.Fatalf("listed %d deliveries, want %d", len(got), len(all))
	}
	for i := range got {
		if want := all[len(all)-1-i]; !reflect.DeepEqual(got[i], want) {
			t.Fatalf("#%d: %+v, want %+v", i, got[i], want)
		}
	}
	if states, more := f.s.DeliveryStates("ep_00000000000000000000000000", store.DeliveryID{}, 7); states != nil || more {
		t.Errorf("unknown endpoint: %v, %v", states, more)
	}
}

// TestAttemptsJSON: AppendAttemptsJSON says what the API's JSON says, for error messages with
// quotes, control characters and non-ASCII text; a NUL and invalid UTF-8 become U+FFFD.
func TestAttemptsJSON(t *testing.T) {
	for _, msg := range []string{"", "plain", `quote " and \ backslash`, "tab\tnewline\n\x01\x1f", "héllo ✓ 🙂 <&>",
		"nul\x00byte", "bad \xff utf-8 \xe2\x82", "\u2028\u2029"} {
		t.Run(fmt.Sprintf("%q", msg), func(t *testing.T) {
			changes := &changeLog{}
			f := newCoreFixture(t, store.Options{OnDelivery: changes.add})
			ep := f.endpoint("a")
			f.ingest(api.TypeIncidentOpened, "")
			d := f.only(ep.ID)
			job, _ := f.begin(d.ID)
			o := store.Outcome{Delivery: job.Delivery, Attempt: store.Attempt{N: 1, At: f.clock.Now().Add(123 * time.Millisecond),
				Error: msg, DurationMS: 42}, RetryAt: f.clock.Now().Add(time.Second)}
			if msg == "" {
				o.Attempt.StatusCode = 502
			}
			if _, err := f.s.Finish(o); err != nil {
				t.Fatal(err)
			}
			changes.take()
			f.clock.Add(2 * time.Second)
			f.attempt(d.ID, 200, 0)
			st := changes.take()[0]
			checkAttemptsJSON(t, st)
			b := st.AppendAttemptsJSON(nil)
			if strings.Contains(string(b), `\u0000`) {
				t.Errorf("JSON holds \\u0000, which jsonb refuses: %s", b)
			}
		})
	}
}

// checkAttemptsJSON: the state's attempts JSON decodes to its View's attempts (with a NUL and
// invalid UTF-8 as U+FFFD).
func checkAttemptsJSON(t *testing.T, st store.DeliveryState) {
	t.Helper()
	b := st.AppendAttemptsJSON([]byte("x"))[1:]
	var got []api.Attempt
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := st.View().Attempts
	for i, a := range want {
		if a.Error != nil {
			var sb strings.Builder
			for _, r := range *a.Error { // each invalid byte decodes as U+FFFD
				if r == 0 {
					r = '\ufffd'
				}
				sb.WriteRune(r)
			}
			s := sb.String()
			want[i].Error = &s
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("attempts JSON %s decodes to %+v, want %+v", b, got, want)
	}
}

// BenchmarkDeliveryChanges is what telling OnDelivery adds to a delivery that is accepted and
// succeeds at its first attempt (Ingest, Begin, Finish on a store without a log), against the
// same without OnDelivery (the baseline: a single relay). The hook here only counts.
func BenchmarkDeliveryChanges(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("on=%v", on), func(b *testing.B) {
			var n int
			opts := store.Options{HistoryLimit: 10, HistoryCache: 1000, WAL: wal.Options{}}
			if on {
				opts.OnDelivery = func(store.DeliveryState) { n++ }
			}
			s := store.New(opts)
			url, name := "https://a.example/h", "a"
			if _, err := s.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_x"); err != nil {
				b.Fatal(err)
			}
			data := []byte(`{}`)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: data}); err != nil {
					b.Fatal(err)
				}
				for _, r := range s.Pending() {
					job, ok := s.Begin(r.Delivery, now.Add(time.Hour))
					if !ok {
						b.Fatal("not begun")
					}
					if _, err := s.Finish(store.Outcome{Delivery: job.Delivery, Success: true,
						Attempt: store.Attempt{N: 1, At: now, StatusCode: 200}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			if on && n != 2*b.N {
				b.Fatalf("told %d changes for %d deliveries", n, b.N)
			}
		})
	}
}
