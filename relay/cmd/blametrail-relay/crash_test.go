package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// crashReceiver verifies every delivery and remembers, per event, the delivery ids it came
// with, so the test can tell "delivered at least once" from "fanned out twice".
type crashReceiver struct {
	rc     *relaytest.Receiver
	secret atomic.Value // string
	mu     sync.Mutex
	seen   map[string]map[string]bool // event id -> delivery ids
	types  map[string]bool
	bad    []string
}

func newCrashReceiver(t *testing.T) *crashReceiver {
	cr := &crashReceiver{seen: map[string]map[string]bool{}, types: map[string]bool{}}
	cr.rc = relaytest.NewReceiver(t, func(w http.ResponseWriter, r *relaytest.Request) {
		secret, _ := cr.secret.Load().(string)
		if err := signature.VerifyHeaders(secret, r.Header, r.Body); err != nil {
			cr.mu.Lock()
			cr.bad = append(cr.bad, err.Error())
			cr.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var env struct{ ID, Type string }
		_ = json.Unmarshal(r.Body, &env)
		cr.mu.Lock()
		cr.types[env.Type] = true
		if cr.seen[env.ID] == nil {
			cr.seen[env.ID] = map[string]bool{}
		}
		cr.seen[env.ID][r.Header.Get("webhook-id")] = true
		cr.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	return cr
}

// TestCrashRecoverySIGKILL is the durability contract checked from outside: concurrent ingests
// while SIGKILL lands at random moments, 20 times over one data dir. Afterwards every
// acknowledged event reaches every endpoint that matched it, no event has two delivery ids at
// one endpoint, and endpoints, secrets and disabled flags are as they were.
func TestCrashRecoverySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the real binary 21 times")
	}
	const rounds = 20
	all, opened := newCrashReceiver(t), newCrashReceiver(t)
	dead := relaytest.NewReceiver(t, nil) // the endpoint that stays disabled
	args := []string{"--retry-schedule", "50ms,100ms,200ms,400ms,800ms", "--wal-segment-size", "65536", "--snapshot-bytes", "1048576"}
	dataDir := t.TempDir()
	r := relaytest.Start(t, relaytest.Options{DataDir: dataDir, Args: args})
	ctx := relaytest.Context(t, 5*time.Minute)

	epAll, err := r.Client.CreateEndpoint(ctx, apiclient.EndpointCreate{URL: all.rc.URL, Name: "all"})
	must(t, err)
	epOpened, err := r.Client.CreateEndpoint(ctx, apiclient.EndpointCreate{URL: opened.rc.URL, Name: "opened", EventTypes: []string{api.TypeIncidentOpened}})
	must(t, err)
	off := false
	epOff, err := r.Client.CreateEndpoint(ctx, apiclient.EndpointCreate{URL: dead.URL, Name: "off", Active: &off})
	must(t, err)
	all.secret.Store(epAll.Secret)
	opened.secret.Store(epOpened.Secret)

	type acked struct{ id, typ string }
	var (
		mu      sync.Mutex
		ackedBy = map[string]acked{} // idempotency key -> first acknowledged event
		unsure  []apiclient.Event    // sent when the relay died: resent next round with the same key
	)
	types := []string{api.TypeIncidentOpened, api.TypeIncidentResolved, api.TypeDeployIngested}
	seq := 0
	for round := 0; round < rounds; round++ {
		if round > 0 {
			r.Restart()
		}
		mu.Lock()
		queue := append([]apiclient.Event(nil), unsure...)
		unsure = nil
		for i := 0; i < 400; i++ {
			seq++
			queue = append(queue, apiclient.Event{
				Type: types[seq%len(types)],
				ID:   fmt.Sprintf("crash-%d", seq),
				Data: map[string]any{"n": seq, "pad": string(make([]byte, 200))},
			})
		}
		mu.Unlock()
		work := make(chan apiclient.Event)
		var wg sync.WaitGroup
		client := r.Client
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ev := range work {
					res, err := client.Ingest(ctx, ev)
					mu.Lock()
					if err == nil {
						if prev, ok := ackedBy[ev.ID]; ok && prev.id != res.ID {
							t.Errorf("idempotency key %s acknowledged as %s and later as %s", ev.ID, prev.id, res.ID)
						}
						ackedBy[ev.ID] = acked{id: res.ID, typ: ev.Type}
					} else {
						unsure = append(unsure, ev)
					}
					mu.Unlock()
				}
			}()
		}
		killAt := time.After(time.Duration(30+rand.IntN(300)) * time.Millisecond)
		killed := false
	feed:
		for _, ev := range queue {
			select {
			case work <- ev:
			case <-killAt:
				r.Kill()
				killed = true
				break feed
			}
		}
		if !killed {
			r.Kill()
		}
		close(work)
		wg.Wait()
	}

	r.Restart()
	ctx2 := relaytest.Context(t, 3*time.Minute)
	// Endpoints, secrets and flags survived 20 crashes.
	for _, want := range []api.Endpoint{epAll, epOpened, epOff} {
		got, err := r.Client.Endpoint(ctx2, want.ID)
		must(t, err)
		sec, err := r.Client.Secret(ctx2, want.ID)
		must(t, err)
		if sec != want.Secret || got.URL != want.URL || got.Active != want.Active || fmt.Sprint(got.EventTypes) != fmt.Sprint(want.EventTypes) {
			t.Errorf("endpoint %s changed across crashes: got %+v (secret equal: %v), want %+v", want.ID, got, sec == want.Secret, want)
		}
	}
	if got, _ := r.Client.Endpoint(ctx2, epOff.ID); got.DisabledReason == nil || *got.DisabledReason != api.DisabledManual {
		t.Errorf("disabled endpoint lost its reason: %+v", got)
	}

	mu.Lock()
	defer mu.Unlock()
	wantOpened := 0
	for _, a := range ackedBy {
		if a.typ == api.TypeIncidentOpened {
			wantOpened++
		}
	}
	t.Logf("%d rounds, %d events acknowledged (%d incident.opened)", rounds, len(ackedBy), wantOpened)
	if len(ackedBy) < rounds {
		t.Fatalf("only %d events acknowledged: the load did not run", len(ackedBy))
	}
	missing := func() (n int, example string) {
		all.mu.Lock()
		defer all.mu.Unlock()
		opened.mu.Lock()
		defer opened.mu.Unlock()
		for key, a := range ackedBy {
			if len(all.seen[a.id]) == 0 || (a.typ == api.TypeIncidentOpened && len(opened.seen[a.id]) == 0) {
				n++
				example = key + " -> " + a.id
			}
		}
		return n, example
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		n, example := missing()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			mu.Unlock()
			t.Fatalf("%d acknowledged events never delivered after the crashes (e.g. %s)", n, example)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, cr := range []*crashReceiver{all, opened} {
		cr.mu.Lock()
		for ev, ids := range cr.seen {
			if len(ids) > 1 {
				t.Errorf("event %s fanned out twice to one endpoint: delivery ids %v", ev, ids)
			}
		}
		if len(cr.bad) > 0 {
			t.Errorf("%d deliveries failed signature verification, first: %s", len(cr.bad), cr.bad[0])
		}
		cr.mu.Unlock()
	}
	if n := dead.Count(); n != 0 {
		t.Errorf("the disabled endpoint received %d deliveries", n)
	}
	opened.mu.Lock()
	defer opened.mu.Unlock()
	if len(opened.types) != 1 || !opened.types[api.TypeIncidentOpened] {
		t.Errorf("the incident.opened endpoint received types %v", opened.types)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		var ae *apiclient.Error
		if errors.As(err, &ae) {
			t.Fatalf("%v (field %q)", err, ae.Field)
		}
		t.Fatal(err)
	}
}
