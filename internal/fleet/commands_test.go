package fleet

import (
	"encoding/json"
	"testing"
	"time"
)

// TestCommandsReachOtherRelays: a command sent by one relay reaches every other listening
// relay (not its sender), whose results the sender reads back; trimming removes old ones.
func TestCommandsReachOtherRelays(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{})
	other := open(t, dsn, Options{})
	got := make(chan Command, 4)
	for _, relay := range []string{"a", "b"} {
		go db.ListenCommands(t.Context(), relay, func(c Command) { //nolint:errcheck // ends with the test
			got <- c
			if err := other.PutResult(t.Context(), c.ID, relay, map[string]string{"from": relay}); err != nil {
				t.Error(err)
			}
		})
	}
	var id int64
	deadline := time.Now().Add(10 * time.Second)
	for { // the listeners may not be listening yet: send until they answer
		var err error
		id, err = db.SendCommand(t.Context(), Command{Kind: "resend", EndpointID: "ep_x", DeliveryID: "dlv_y", FromRelay: "a"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		rs, err := db.Results(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			if len(rs) != 1 || rs[0].Relay != "b" {
				t.Fatalf("results %+v, want only relay b's (a sent it)", rs)
			}
			var body map[string]string
			if json.Unmarshal(rs[0].Result, &body) != nil || body["from"] != "b" {
				t.Fatalf("result %s", rs[0].Result)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no relay answered a command")
		}
	}
	c := <-got
	if c.Kind != "resend" || c.EndpointID != "ep_x" || c.DeliveryID != "dlv_y" || c.FromRelay != "a" {
		t.Fatalf("command %+v", c)
	}
	if err := db.TrimCommands(t.Context(), -time.Second); err != nil {
		t.Fatal(err)
	}
	if rs, _ := db.Results(t.Context(), id); len(rs) != 0 {
		t.Fatalf("results survived the trim: %+v", rs)
	}
}
