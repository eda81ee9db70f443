package store_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// dirSums maps every file under dir to a hash of its contents: what a read-only open must not
// change.
func dirSums(t *testing.T, dir string) map[string][sha256.Size]byte {
	t.Helper()
	out := map[string][sha256.Size]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyDir copies the files under src to dst: with every write acknowledged, the image a
// crash at that moment would leave.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEndpointStatesReadOnly: a store opened ReadOnly on a stopped relay's dir (a snapshot,
// then records after it in the WAL) reports every endpoint's whole state (secrets, the
// previous secret and its expiry, the disabled reason, event types, the counter, times),
// refuses every change and any snapshot, and leaves the directory byte for byte as it was,
// Close included: not even a stale snapshot temp file is removed.
func TestEndpointStatesReadOnly(t *testing.T) {
	opts := store.Options{Dir: t.TempDir(), WAL: wal.Options{Sync: wal.SyncBatch}, DisableAfter: 5}
	f := newCoreFixture(t, opts)
	a := f.endpoint("a", api.TypeIncidentOpened, api.TypeIncidentResolved)
	b := f.endpoint("b")
	if err := f.close(); err != nil { // a snapshot holds a and b ...
		t.Fatal(err)
	}
	f = newCoreFixture(t, opts) // ... the WAL after it the rest
	f.clock.Add(time.Second)
	if _, err := f.s.RotateSecret(b.ID, "whsec_b2", time.Hour); err != nil {
		t.Fatal(err)
	}
	rotatedAt := f.clock.Now()
	f.setActive(a.ID, false)
	f.ingest(api.TypeIncidentOpened, "") // a delivery to b, which fails twice
	f.failDelivery(f.only(b.ID).ID, 0)
	f.ingest(api.TypeIncidentOpened, "")
	for _, d := range f.deliveriesOf(b.ID) {
		if d.Status == api.StatusPending {
			f.failDelivery(d.ID, 0)
		}
	}
	wantB := f.endpointView(b.ID)
	if wantB.ConsecutiveFailures != 2 {
		t.Fatalf("b has %d consecutive failures, want 2", wantB.ConsecutiveFailures)
	}
	wantA := f.endpointView(a.ID)
	dir := t.TempDir()
	copyDir(t, opts.Dir, dir) // as a relay killed now leaves it
	if err := os.WriteFile(filepath.Join(dir, "snapshot.tmp"), []byte("interrupted"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := dirSums(t, dir)

	opts.Dir, opts.ReadOnly = dir, true
	var logs bytes.Buffer // written by Open only
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	opts.Now = func() time.Time { return rotatedAt.Add(time.Minute) }
	s, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.EndpointStates()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "records_replayed=0 ") || !strings.Contains(logs.String(), "records_replayed=") {
		t.Fatalf("the read-only open replayed no record: the test does not cover the WAL after a snapshot\n%s", logs.String())
	}
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("EndpointStates = %+v, want a then b", got)
	}
	ga, gb := got[0], got[1]
	if ga.Active || ga.DisabledReason != api.DisabledManual || ga.Secret != "whsec_a" || ga.PrevSecret != "" ||
		!slices.Equal(ga.EventTypes, []string{api.TypeIncidentOpened, api.TypeIncidentResolved}) ||
		ga.URL != wantA.URL || ga.Name != "a" || !ga.CreatedAt.Equal(wantA.CreatedAt) || !ga.UpdatedAt.Equal(wantA.UpdatedAt) ||
		ga.Version != 0 {
		t.Errorf("a = %+v, want %+v with secret whsec_a", ga, wantA)
	}
	if !gb.Active || gb.DisabledReason != "" || gb.Secret != "whsec_b2" || gb.PrevSecret != "whsec_b" ||
		!gb.PrevSecretExpires.Equal(rotatedAt.Add(time.Hour)) || gb.EventTypes == nil || len(gb.EventTypes) != 0 ||
		gb.ConsecutiveFailures != 2 || !gb.CreatedAt.Equal(wantB.CreatedAt) {
		t.Errorf("b = %+v, want %+v with secret whsec_b2, previous whsec_b until %s", gb, wantB, rotatedAt.Add(time.Hour))
	}
	// A copy, not the store's own slice.
	ga.EventTypes[0] = "changed"
	if again, _ := s.EndpointStates(); again[0].EventTypes[0] != api.TypeIncidentOpened {
		t.Error("EndpointStates handed out the store's own event types")
	}

	if _, err := s.CreateEndpoint(api.EndpointInput{URL: coreStr("https://x.example/h"), Name: coreStr("x")}, "whsec_x"); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("CreateEndpoint on a read-only store: %v, want ErrReadOnly", err)
	}
	if err := s.SyncEndpoint(fleetState("ep_01m8c5xqc02hd66h7026x3c9s3", 1, true)); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("SyncEndpoint on a read-only store: %v, want ErrReadOnly", err)
	}
	if err := s.Snapshot(); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Snapshot on a read-only store: %v, want ErrReadOnly", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := dirSums(t, dir)
	for name, sum := range before {
		if a, ok := after[name]; !ok || a != sum {
			t.Errorf("%s changed or went away during a read-only open", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s appeared during a read-only open", name)
		}
	}
}

// TestReadOnlyNeedsState: a read-only open of a dir that holds no relay state fails and
// creates nothing, rather than reading an empty state.
func TestReadOnlyNeedsState(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.Open(store.Options{Dir: dir, ReadOnly: true}); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only open of an empty dir: %v, want a not-exist error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a read-only open created %v", ents)
	}
}
