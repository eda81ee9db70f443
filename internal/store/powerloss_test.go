package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/crashfs"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// acked is what the store acknowledged before the power went: what a restart must keep.
type acked struct {
	mu       sync.Mutex
	secrets  map[string]string       // endpoint id -> secret
	events   map[string]IngestResult // idempotency key -> answer
	bodies   map[string]string       // idempotency key -> data
	name     [2]string               // the renamed endpoint: last acknowledged name, name in flight
	disabled bool                    // the failing endpoint's disable was reported
	resent   []string                // deliveries whose resend was acknowledged
	bad      error                   // an error other than the power going
}

// powerLossRun runs a concurrent workload on a store over crashfs, cuts the power at a random
// operation (or at the end), reopens the disk as a reboot finds it, and checks the promise:
// the store opens without Repair, and everything acknowledged is there, fanned out once.
func powerLossRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	disk := crashfs.New()
	lost := disk.LoseAt(1+rng.Int64N(2500), rand.New(rand.NewPCG(seed, 1)))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := Options{Dir: "/data", WAL: wal.Options{FS: disk, SegmentSize: 8 << 10}, DisableAfter: 3,
		SnapshotBytes: 1 << 40, SnapshotInterval: time.Hour, Logger: quiet}
	a := &acked{secrets: map[string]string{}, events: map[string]IngestResult{}, bodies: map[string]string{}}
	var all, failing string
	if s, err := Open(opts); err == nil {
		all, failing = powerLossWorkload(s, a, rng.Uint64())
		var after *crashfs.FS
		select {
		case after = <-lost:
		default:
			after = disk.PowerLoss(rand.New(rand.NewPCG(seed, 2)))
		}
		_ = s.Close() // fails: the power is gone; this only stops its goroutines
		opts.WAL.FS = after
	} else {
		opts.WAL.FS = <-lost
	}

	s, err := Open(opts)
	if err != nil {
		t.Fatalf("seed %d: the store does not open after a power loss without --wal-repair: %v", seed, err)
	}
	defer s.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bad != nil {
		t.Fatalf("seed %d: the workload failed before the power did: %v", seed, a.bad)
	}
	for _, id := range a.resent {
		job, ok := s.Begin(mustDeliveryID(t, id), time.Now().Add(time.Hour))
		if !ok || job.PayloadErr != nil || !strings.Contains(string(job.Body), `"pad"`) {
			t.Fatalf("seed %d: acknowledged resend of %s: claimable %v, payload %q, %v", seed, id, ok, job.Body, job.PayloadErr)
		}
	}
	for id, secret := range a.secrets {
		if got, err := s.Secret(id); err != nil || got != secret {
			t.Fatalf("seed %d: acknowledged endpoint %s: secret %q, %v", seed, id, got, err)
		}
	}
	if a.name[0] != "" {
		ep, err := s.Endpoint(all)
		if err != nil || (ep.Name != a.name[0] && ep.Name != a.name[1]) {
			t.Fatalf("seed %d: renamed endpoint is %q (%v), want the acknowledged %q or the in-flight %q", seed, ep.Name, err, a.name[0], a.name[1])
		}
	}
	if a.disabled {
		if ep, err := s.Endpoint(failing); err != nil || ep.Active {
			t.Fatalf("seed %d: a reported auto-disable was taken back: %+v, %v", seed, ep, err)
		}
	}
	fanned := map[string]int{} // event id -> deliveries to the all-events endpoint
	s.mu.Lock()
	for _, d := range s.deliveries {
		if d.ep.ID == all {
			fanned[d.ev.id.format("evt_")]++
		}
	}
	s.mu.Unlock()
	for key, res := range a.events {
		if n := fanned[res.EventID]; n != 1 {
			t.Fatalf("seed %d: acknowledged event %s (%s) has %d deliveries to the endpoint it matched, want 1", seed, res.EventID, key, n)
		}
		again, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(a.bodies[key]), IdempotencyKey: key})
		if err != nil || again != res {
			t.Fatalf("seed %d: repeat of acknowledged key %s: %+v, %v; want %+v", seed, key, again, err, res)
		}
	}
}

// powerLossWorkload creates two endpoints, then ingests from two goroutines (one also takes
// snapshots), renames one endpoint and fails the other's deliveries until it is disabled,
// recording what was acknowledged. It stops at the first error: the power is gone.
func powerLossWorkload(s *Store, a *acked, seed uint64) (all, failing string) {
	create := func(name string) string {
		url := "https://" + name + ".example/h"
		ep, err := s.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_"+name)
		if err != nil {
			return ""
		}
		a.mu.Lock()
		a.secrets[ep.ID] = ep.Secret
		a.mu.Unlock()
		return ep.ID
	}
	if all, failing = create("all"), create("failing"); all == "" || failing == "" {
		return all, failing
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range 120 {
				key := fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"pad":"%0*d"}`, rng.IntN(900), i)
				res, err := s.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(body), IdempotencyKey: key})
				if err != nil {
					return
				}
				a.mu.Lock()
				a.events[key], a.bodies[key] = res, body
				a.mu.Unlock()
				if w == 1 && i%25 == 24 && s.Snapshot() != nil {
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 40 {
			name := fmt.Sprintf("all-%d", i)
			a.mu.Lock()
			a.name[1] = name
			a.mu.Unlock()
			if _, err := s.UpdateEndpoint(all, api.EndpointInput{Name: &name}); err != nil {
				return
			}
			a.mu.Lock()
			a.name[0] = name
			a.mu.Unlock()
		}
	})
	wg.Go(func() {
		for range 200 {
			for _, r := range s.Pending() {
				if r.EndpointID != failing {
					continue
				}
				if _, ok := s.Begin(r.Delivery, time.Now()); !ok {
					continue
				}
				reason, err := s.Finish(Outcome{Delivery: r.Delivery, Attempt: Attempt{N: 1, At: time.Now(), StatusCode: 500}})
				if err != nil {
					return
				}
				if reason != "" {
					a.mu.Lock()
					a.disabled = true
					a.mu.Unlock()
					return
				}
			}
			if s.Err() != nil {
				return
			}
		}
	})
	wg.Go(func() { powerLossResends(s, a, all) })
	wg.Wait()
	return all, failing
}

// powerLossResends delivers deliveries of the endpoint all, one at a time, and resends each.
func powerLossResends(s *Store, a *acked, all string) {
	done := map[DeliveryID]bool{}
	for tries := 0; len(done) < 30 && tries < 2000; tries++ {
		if tries > 0 {
			time.Sleep(50 * time.Microsecond) // the ingesters have not caught up
		}
		for _, r := range s.Pending() {
			if r.EndpointID != all || done[r.Delivery] {
				continue
			}
			if _, ok := s.Begin(r.Delivery, time.Now()); !ok {
				continue
			}
			done[r.Delivery] = true
			_, err := s.Finish(Outcome{Delivery: r.Delivery, Success: true, Attempt: Attempt{N: 1, At: time.Now(), StatusCode: 200}})
			if err == nil {
				_, err = s.Resend(all, r.Delivery.String())
			}
			a.mu.Lock()
			switch {
			case err == nil:
				a.resent = append(a.resent, r.Delivery.String())
			case s.Err() == nil && !errors.Is(err, crashfs.ErrPowerLost): // a read may see it first
				a.bad = err
			}
			a.mu.Unlock()
			if err != nil {
				return
			}
			break
		}
		if s.Err() != nil {
			return
		}
	}
}

// TestPowerLoss cuts the power at many random points of a concurrent workload (ingest with
// idempotency keys, snapshots and compaction, endpoint updates, auto-disable) and checks that
// the store always opens without repair and keeps everything it acknowledged. More crash
// points: make fuzz (FuzzPowerLossStore).
func TestPowerLoss(t *testing.T) {
	runs := 60
	if testing.Short() {
		runs = 10
	}
	for seed := range uint64(runs) {
		powerLossRun(t, seed)
	}
}

func FuzzPowerLossStore(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { powerLossRun(t, seed) })
}
