package delivery

import (
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// TestEngineDropsTimersOfStoppedEndpoints: when an endpoint is disabled or deleted, the
// engine forgets its deliveries' retry timers at once instead of keeping them until they fall
// due (up to a day later); other endpoints' timers stay.
func TestEngineDropsTimersOfStoppedEndpoints(t *testing.T) {
	e := New(Config{Schedule: []time.Duration{time.Hour}})
	st := store.New(store.Options{OnReady: e.Ready, OnStop: e.Drop})
	e.SetStore(st)
	mk := func(name string) string {
		url := "https://" + name + ".example/h"
		ep, err := st.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_x")
		if err != nil {
			t.Fatal(err)
		}
		return ep.ID
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	later := time.Now().Add(time.Hour)
	for i, id := range []string{a, a, a, b, b, c} {
		var d store.DeliveryID
		d[15] = byte(i + 1)
		e.Ready(store.Ready{Delivery: d, EndpointID: id, Due: later})
	}
	if n := e.Scheduled(); n != 6 {
		t.Fatalf("%d scheduled, want 6", n)
	}
	off := false
	if _, err := st.UpdateEndpoint(a, api.EndpointInput{Active: &off}); err != nil {
		t.Fatal(err)
	}
	if n := e.Scheduled(); n != 3 {
		t.Fatalf("after disabling a: %d scheduled, want 3", n)
	}
	if err := st.DeleteEndpoint(b); err != nil {
		t.Fatal(err)
	}
	if n := e.Scheduled(); n != 1 {
		t.Fatalf("after deleting b: %d scheduled, want 1 (c's)", n)
	}
	name := "renamed"
	if _, err := st.UpdateEndpoint(c, api.EndpointInput{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if n := e.Scheduled(); n != 1 {
		t.Fatalf("a rename dropped timers: %d scheduled, want 1", n)
	}
	if len(e.timers) != 1 || e.timers[0].ep != c {
		t.Fatalf("the timer left is %+v, want c's", e.timers)
	}
}
