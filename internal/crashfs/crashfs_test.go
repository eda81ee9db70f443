package crashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, f *FS, name string, data []byte, sync bool) wal.File {
	t.Helper()
	fl, err := f.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	must(t, err)
	if _, err := fl.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		must(t, fl.Sync())
	}
	return fl
}

func read(t *testing.T, f *FS, name string) ([]byte, bool) {
	t.Helper()
	b, err := wal.ReadFile(f, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	must(t, err)
	return b, true
}

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

func TestFileOps(t *testing.T) {
	f := New()
	must(t, f.MkdirAll("/d/sub", 0o700))
	fl := create(t, f, "/d/b", []byte("hello"), false)
	if _, err := f.OpenFile("/d/b", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	if _, err := f.OpenFile("/d/missing", os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of a missing file: %v", err)
	}
	if _, err := f.OpenFile("/nodir/x", os.O_WRONLY|os.O_CREATE, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create in a missing dir: %v", err)
	}
	if _, err := f.OpenFile("/d/b", os.O_RDWR|os.O_WRONLY, 0); err == nil {
		t.Fatal("O_RDWR|O_WRONLY accepted")
	}
	// A write-only handle cannot read; a read-only one cannot write or truncate.
	if _, err := fl.ReadAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("read of a write-only file: %v", err)
	}
	ro, err := f.OpenFile("/d/b", os.O_RDONLY, 0)
	must(t, err)
	if _, err := ro.Write([]byte("x")); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("write of a read-only file: %v", err)
	}
	if err := ro.Truncate(0); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("truncate of a read-only file: %v", err)
	}
	// ReadAt: io.EOF when the read reaches past the end, with what was there.
	p := make([]byte, 8)
	if n, err := ro.ReadAt(p, 2); n != 3 || err != io.EOF || string(p[:n]) != "llo" {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}
	if n, err := ro.ReadAt(p[:5], 0); n != 5 || err != nil {
		t.Fatalf("ReadAt of the whole file = %d, %v", n, err)
	}
	if n, err := ro.ReadAt(p, 5); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v", n, err)
	}
	// O_APPEND writes at the end; without it, at the handle's offset; O_TRUNC empties.
	if _, err := fl.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	rw, err := f.OpenFile("/d/b", os.O_RDWR, 0)
	must(t, err)
	if _, err := rw.Write([]byte("J")); err != nil {
		t.Fatal(err)
	}
	if b, _ := read(t, f, "/d/b"); string(b) != "Jello world" {
		t.Fatalf("content %q", b)
	}
	must(t, rw.Truncate(4))
	if st, err := rw.Stat(); err != nil || st.Size() != 4 || st.Name() != "b" || st.IsDir() {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	must(t, rw.Truncate(6))
	if b, _ := read(t, f, "/d/b"); !bytes.Equal(b, []byte("Jell\x00\x00")) {
		t.Fatalf("content after truncates %q", b)
	}
	tr, err := f.OpenFile("/d/b", os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	must(t, tr.Close())
	if b, _ := read(t, f, "/d/b"); len(b) != 0 {
		t.Fatalf("O_TRUNC left %q", b)
	}
	if err := tr.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tr.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	// Names: sorted, with directories; rename replaces; remove.
	create(t, f, "/d/a", nil, false)
	create(t, f, "/d/c", []byte("c"), false)
	names, err := f.ReadDir("/d")
	must(t, err)
	if !slices.Equal(names, []string{"a", "b", "c", "sub"}) {
		t.Fatalf("ReadDir = %v", names)
	}
	must(t, f.Rename("/d/c", "/d/a"))
	if b, _ := read(t, f, "/d/a"); string(b) != "c" {
		t.Fatalf("renamed file holds %q", b)
	}
	if _, ok := read(t, f, "/d/c"); ok {
		t.Fatal("old name still there after rename")
	}
	must(t, f.Remove("/d/a"))
	if err := f.Remove("/d/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove: %v", err)
	}
	if err := f.Rename("/d/nope", "/d/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rename of a missing file: %v", err)
	}
	if st, err := f.Stat("/d/sub"); err != nil || !st.IsDir() {
		t.Fatalf("Stat of a dir = %v, %v", st, err)
	}
	if _, err := f.ReadDir("/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadDir of a missing dir: %v", err)
	}
	if err := f.SyncDir("/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing dir: %v", err)
	}
}

// TestSyncedSurvives: what File.Sync and SyncDir made durable is there after every power loss,
// byte for byte, and the old FS and its files fail from then on.
func TestSyncedSurvives(t *testing.T) {
	for seed := range uint64(200) {
		f := New()
		must(t, f.MkdirAll("/w", 0o700))
		durable := bytes.Repeat([]byte("0123456789abcdef"), 70) // 1120 bytes: not sector-aligned
		fl := create(t, f, "/w/seg", durable, true)
		must(t, f.SyncDir("/w"))
		if _, err := fl.Write(bytes.Repeat([]byte{0xee}, 3000)); err != nil {
			t.Fatal(err)
		}
		after := f.PowerLoss(rng(seed))
		b, ok := read(t, after, "/w/seg")
		if !ok || len(b) < len(durable) || !bytes.Equal(b[:len(durable)], durable) {
			t.Fatalf("seed %d: synced content not kept (%d bytes, present %v)", seed, len(b), ok)
		}
		for _, err := range []error{
			func() error { _, err := fl.Write([]byte("x")); return err }(),
			fl.Sync(),
			func() error { _, err := fl.ReadAt(make([]byte, 1), 0); return err }(),
			f.SyncDir("/w"),
			f.Remove("/w/seg"),
			func() error { _, err := f.ReadDir("/w"); return err }(),
			fl.Close(),
		} {
			if !errors.Is(err, ErrPowerLost) {
				t.Fatalf("operation on the lost FS: %v, want ErrPowerLost", err)
			}
		}
		// The FS after the reboot works, and everything in it is durable.
		fl2, err := after.OpenFile("/w/seg", os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		if _, err := fl2.Write([]byte("more")); err != nil {
			t.Fatal(err)
		}
		again := after.PowerLoss(rng(seed + 1000))
		if b2, _ := read(t, again, "/w/seg"); !bytes.HasPrefix(b2, b) {
			t.Fatalf("seed %d: a second power loss changed the content found after the first", seed)
		}
	}
}

// TestUnsyncedSectors: across seeds, unsynced writes come back in every shape the model
// promises: all kept, all lost, the first sector zeroed with a later one kept, a torn sector.
func TestUnsyncedSectors(t *testing.T) {
	const sectors = 4
	newData := make([]byte, sectors*SectorSize)
	for i := range newData {
		newData[i] = byte(1 + i%251) // never zero
	}
	seen := map[string]bool{}
	for seed := range uint64(500) {
		f := New()
		fl := create(t, f, "/seg", nil, true)
		must(t, f.SyncDir("/"))
		if _, err := fl.Write(newData); err != nil {
			t.Fatal(err)
		}
		b, _ := read(t, f.PowerLoss(rng(seed)), "/seg")
		if len(b) > len(newData) {
			t.Fatalf("file grew to %d bytes", len(b))
		}
		kinds := make([]string, 0, sectors)
		for s := 0; s < len(b); s += SectorSize {
			got, want := b[s:min(s+SectorSize, len(b))], newData[s:min(s+SectorSize, len(b))]
			switch {
			case bytes.Equal(got, want):
				kinds = append(kinds, "kept")
			case allZero(got):
				kinds = append(kinds, "zero")
			default:
				k := 0
				for k < len(got) && got[k] == want[k] {
					k++
				}
				if !allZero(got[k:]) {
					t.Fatalf("seed %d: sector at %d is neither kept, zero nor torn", seed, s)
				}
				kinds = append(kinds, "torn")
			}
		}
		switch {
		case len(b) == 0:
			seen["empty"] = true
		case len(b) == len(newData) && !slices.Contains(kinds, "zero") && !slices.Contains(kinds, "torn"):
			seen["all kept"] = true
		}
		if len(kinds) > 1 && kinds[0] == "zero" && slices.Contains(kinds[1:], "kept") {
			seen["first zeroed, later kept"] = true
		}
		if slices.Contains(kinds, "torn") {
			seen["torn"] = true
		}
		if len(b)%SectorSize != 0 {
			seen["odd size"] = true
		}
	}
	for _, want := range []string{"empty", "all kept", "first zeroed, later kept", "torn", "odd size"} {
		if !seen[want] {
			t.Errorf("no outcome %q in 500 power losses", want)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestDirectoryPrefix: unsynced creates, renames and removes survive as a prefix in order; a
// rename in one directory is atomic; SyncDir makes them all durable.
func TestDirectoryPrefix(t *testing.T) {
	valid := map[string]bool{ // every prefix of: create a, create b, rename a->c, remove b
		"":    true,
		"a":   true,
		"ab":  true,
		"bc":  true,
		"c":   true,
		"abc": false, // would mean the rename was split
	}
	seen := map[string]bool{}
	for seed := range uint64(300) {
		f := New()
		must(t, f.MkdirAll("/d", 0o700))
		create(t, f, "/d/a", []byte("A"), true)
		create(t, f, "/d/b", []byte("B"), true)
		must(t, f.Rename("/d/a", "/d/c"))
		must(t, f.Remove("/d/b"))
		after := f.PowerLoss(rng(seed))
		names, err := after.ReadDir("/d")
		must(t, err)
		key := ""
		for _, n := range names {
			key += n
		}
		if !valid[key] {
			t.Fatalf("seed %d: names %v after power loss are not a prefix of the operations", seed, names)
		}
		if b, ok := read(t, after, "/d/c"); ok && string(b) != "A" {
			t.Fatalf("renamed file holds %q", b)
		}
		seen[key] = true
	}
	if len(seen) != 5 {
		t.Fatalf("outcomes %v, want all 5 prefixes", seen)
	}
	f := New()
	create(t, f, "/x", []byte("x"), true)
	must(t, f.SyncDir("/"))
	must(t, f.Rename("/x", "/y"))
	must(t, f.SyncDir("/"))
	for seed := range uint64(20) {
		names, _ := f.PowerLoss(rng(seed)).ReadDir("/")
		if !slices.Equal(names, []string{"y"}) {
			t.Fatalf("after SyncDir: %v", names)
		}
	}
}

// TestLoseAt: the power fails at the start of the chosen mutating operation.
func TestLoseAt(t *testing.T) {
	f := New()
	fl := create(t, f, "/a", []byte("one"), true) // ops: create, write, sync
	base := f.Ops()
	ch := f.LoseAt(base+2, rng(1))
	if _, err := fl.Write([]byte("two")); err != nil {
		t.Fatalf("operation before the crash point: %v", err)
	}
	if err := fl.Sync(); !errors.Is(err, ErrPowerLost) {
		t.Fatalf("operation at the crash point: %v", err)
	}
	after := <-ch
	if b, _ := read(t, after, "/a"); !bytes.HasPrefix(b, []byte("one")) {
		t.Fatalf("after the crash: %q", b)
	}
}

// TestConcurrent: writers, syncs and a power loss from other goroutines, for -race.
func TestConcurrent(t *testing.T) {
	f := New()
	must(t, f.MkdirAll("/d", 0o700))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("/d/%d", g)
			fl, err := f.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return
			}
			for i := range 200 {
				if _, err := fl.Write([]byte("0123456789")); err != nil {
					return
				}
				if i%10 == 0 && (fl.Sync() != nil || f.SyncDir("/d") != nil) {
					return
				}
				if _, err := fl.ReadAt(make([]byte, 4), 0); err != nil {
					return
				}
			}
		})
	}
	after := f.PowerLoss(rng(3))
	wg.Wait()
	names, err := after.ReadDir("/d")
	must(t, err)
	for _, n := range names {
		if _, ok := read(t, after, "/d/"+n); !ok {
			t.Fatalf("listed %s is missing", n)
		}
	}
}
