package store

import (
	"errors"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// TestResendWindowKeepsHistorySegments: compaction keeps the segments holding the events of
// deliveries in history, newest first, within HistoryPayloadBytes; a delivery whose segment
// went answers ErrPayloadExpired (and counts as expired in a recovery) instead of failing
// later, and what the window kept survives a restart.
func TestResendWindowKeepsHistorySegments(t *testing.T) {
	const seg = 16 << 10
	for _, tt := range []struct {
		name   string
		budget int64
		// whether the oldest and the newest failed delivery can still be resent
		oldest, newest bool
	}{
		{"none", -1, false, false},
		{"three segments", 3 * seg, false, true},
		{"default", 0, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, WAL: wal.Options{SegmentSize: seg, Sync: wal.SyncNone}, SnapshotBytes: 1 << 40,
				SnapshotInterval: time.Hour, HistoryLimit: 1000, PayloadCache: 1, HistoryPayloadBytes: tt.budget}
			s, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			ep := seedStore(t, s, 300) // about 30 events of 500 bytes per segment
			pend := s.Pending()
			for _, r := range pend {
				if _, ok := s.Begin(r.Delivery, time.Now()); !ok {
					t.Fatalf("%s not claimable", r.Delivery)
				}
				if _, err := s.Finish(Outcome{Delivery: r.Delivery, Attempt: Attempt{N: 1, At: time.Now(), StatusCode: 500}}); err != nil {
					t.Fatal(err)
				}
			}
			before := len(s.wal.Segments())
			for range 2 { // the second snapshot compacts what the first one covers
				if err := s.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			after := len(s.wal.Segments())
			if tt.budget < 0 && after > 3 || tt.budget == 0 && after < before {
				t.Fatalf("budget %d: %d segments before compaction, %d after", tt.budget, before, after)
			}
			oldest, newest := pend[0].Delivery.String(), pend[len(pend)-1].Delivery.String()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = Open(opts); err != nil { // the window's positions come back from the snapshot
				t.Fatal(err)
			}
			defer s.Close()
			for _, c := range []struct {
				id string
				ok bool
			}{{oldest, tt.oldest}, {newest, tt.newest}} {
				_, err := s.Resend(ep.ID, c.id)
				if c.ok && err != nil || !c.ok && !errors.Is(err, ErrPayloadExpired) {
					t.Errorf("resend %s: %v, want ok=%v or ErrPayloadExpired", c.id, err, c.ok)
				}
				if c.ok {
					job, ok := s.Begin(mustDeliveryID(t, c.id), time.Now())
					if !ok || job.PayloadErr != nil || len(job.Body) < 500 {
						t.Errorf("resent %s: ok=%v err=%v body %d bytes", c.id, ok, job.PayloadErr, len(job.Body))
					}
				}
			}
			res, err := s.Recover(ep.ID, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Resent+res.Expired != len(pend)-btoi(tt.oldest)-btoi(tt.newest) ||
				tt.budget < 0 && res.Resent != 0 || tt.budget == 0 && res.Expired != 0 {
				t.Fatalf("recover = %+v of %d failed", res, len(pend))
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func mustDeliveryID(t *testing.T, s string) DeliveryID {
	t.Helper()
	id, ok := ParseDeliveryID(s)
	if !ok {
		t.Fatalf("bad delivery id %q", s)
	}
	return id
}
