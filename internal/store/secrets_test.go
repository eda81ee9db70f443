package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// job begins the endpoint's only delivery at the fake clock's now and gives it back at once
// (a 500 with a retry right away), so it can be begun again later.
func (f *coreFixture) signingJob(epID string) store.Job {
	f.t.Helper()
	d := f.only(epID)
	job, ok := f.begin(d.ID)
	if !ok {
		f.t.Fatalf("delivery %s not begun", d.ID)
	}
	now := f.clock.Now()
	if _, err := f.s.Finish(store.Outcome{Delivery: job.Delivery, RetryAt: now,
		Attempt: store.Attempt{N: job.N, At: now, StatusCode: 500}}); err != nil {
		f.t.Fatal(err)
	}
	return job
}

func TestRotateSecretOverlap(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	f.ingest(api.TypeIncidentOpened, "")
	start := f.clock.Now()

	info, err := f.s.RotateSecret(ep.ID, "whsec_new", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := start.Add(time.Hour)
	if info.Secret != "whsec_new" || info.PreviousSecretExpiresAt == nil || !info.PreviousSecretExpiresAt.Equal(want) {
		t.Fatalf("rotate = %+v, want whsec_new expiring %s", info, want)
	}
	if got, _ := f.s.SecretInfo(ep.ID); got.Secret != "whsec_new" || got.PreviousSecretExpiresAt == nil {
		t.Fatalf("SecretInfo = %+v", got)
	}
	if sec, _ := f.s.Secret(ep.ID); sec != "whsec_new" {
		t.Fatalf("Secret = %q", sec)
	}
	job := f.signingJob(ep.ID)
	if job.Secret != "whsec_new" || job.PrevSecret != "whsec_a" || !job.PrevExpires.Equal(want) {
		t.Fatalf("job during the overlap: secret %q prev %q until %s", job.Secret, job.PrevSecret, job.PrevExpires)
	}

	// A patch keeps the overlap: it rewrites the endpoint's whole record.
	f.update(ep.ID, api.EndpointInput{Name: coreStr("renamed")})
	if got, _ := f.s.SecretInfo(ep.ID); got.PreviousSecretExpiresAt == nil {
		t.Fatal("a patch ended the overlap")
	}

	f.clock.Add(time.Hour - f.clock.Now().Sub(start)) // exactly at the expiry: no longer valid
	job = f.signingJob(ep.ID)
	if job.PrevSecret != "" {
		t.Fatalf("job after the expiry still carries the previous secret")
	}
	if got, _ := f.s.SecretInfo(ep.ID); got.Secret != "whsec_new" || got.PreviousSecretExpiresAt != nil {
		t.Fatalf("SecretInfo after the expiry = %+v", got)
	}
	// The expired secret may come back: it signs nothing any more.
	if _, err := f.s.RotateSecret(ep.ID, "whsec_a", 0); err != nil {
		t.Fatalf("rotate back to an expired secret: %v", err)
	}
}

func TestRotateSecretRules(t *testing.T) {
	f := newCoreFixture(t, store.Options{})
	ep := f.endpoint("a")
	if _, err := f.s.RotateSecret("ep_01JD0000000000000000000000", "whsec_x", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown endpoint: %v", err)
	}
	if _, err := f.s.RotateSecret(ep.ID, "whsec_a", time.Hour); !errors.Is(err, store.ErrSecretInUse) {
		t.Fatalf("rotate to the current secret: %v", err)
	}
	if info, err := f.s.RotateSecret(ep.ID, "whsec_b", 0); err != nil || info.PreviousSecretExpiresAt != nil {
		t.Fatalf("rotate with no overlap = %+v, %v", info, err)
	}
	if _, err := f.s.RotateSecret(ep.ID, "whsec_c", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RotateSecret(ep.ID, "whsec_b", time.Hour); !errors.Is(err, store.ErrSecretInUse) {
		t.Fatalf("rotate to the previous secret while it signs: %v", err)
	}
	// A second rotation inside the overlap: c becomes the previous one, b stops at once.
	if _, err := f.s.RotateSecret(ep.ID, "whsec_d", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	f.ingest(api.TypeIncidentOpened, "")
	if job := f.signingJob(ep.ID); job.Secret != "whsec_d" || job.PrevSecret != "whsec_c" {
		t.Fatalf("job after two rotations: %q, %q", job.Secret, job.PrevSecret)
	}
}

// TestRotateSecretSurvivesRestart: the rotation's expiry is in its record, so a replay of
// the WAL, and a snapshot, both restore the same overlap however late the restart is.
func TestRotateSecretSurvivesRestart(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		name := "wal"
		if snapshot {
			name = "snapshot"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := newCoreFixture(t, store.Options{Dir: dir})
			ep := f.endpoint("a")
			info, err := f.s.RotateSecret(ep.ID, "whsec_new", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if snapshot {
				if err := f.s.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.close(); err != nil {
				t.Fatal(err)
			}
			g := newCoreFixture(t, store.Options{Dir: dir})
			g.clock.Add(30 * time.Minute)
			got, err := g.s.SecretInfo(ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Secret != "whsec_new" || got.PreviousSecretExpiresAt == nil || !got.PreviousSecretExpiresAt.Equal(*info.PreviousSecretExpiresAt) {
				t.Fatalf("after restart: %+v, want expiry %s", got, info.PreviousSecretExpiresAt)
			}
			g.ingest(api.TypeIncidentOpened, "")
			if job := g.signingJob(ep.ID); job.PrevSecret != "whsec_a" {
				t.Fatalf("after restart the previous secret does not sign: %+v", job)
			}
		})
	}
}
