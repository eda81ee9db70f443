package wal

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// rec is a record as replay or Append saw it.
type rec struct {
	pos  Position
	data []byte
}

// logBuf is a slog destination that tests can read while the flusher writes to it.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// payload is deterministic test data of n bytes, different for every (seed, n).
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// opts is Options for dir with a quiet logger; tweak the copy as needed.
func opts(dir string) Options {
	return Options{Dir: dir, Logger: discardLogger()}
}

// openT opens the log and collects what replay yields.
func openT(t testing.TB, o Options, from Position) (*WAL, []rec) {
	t.Helper()
	w, got, err := openCollect(o, from)
	if err != nil {
		t.Fatalf("Open(%s, from %+v): %v", o.Dir, from, err)
	}
	return w, got
}

func openCollect(o Options, from Position) (*WAL, []rec, error) {
	var got []rec
	w, err := Open(o, from, func(pos Position, data []byte) error {
		got = append(got, rec{pos, bytes.Clone(data)})
		return nil
	})
	return w, got, err
}

// waitT runs a wait func from Append and fails the test if it does not return in time.
func waitT(t testing.TB, wait func() error) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- wait() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Append's wait did not return within 10s")
		return nil
	}
}

// appendT appends and waits for each record, failing the test on any error.
func appendT(t testing.TB, w *WAL, datas ...[]byte) []rec {
	t.Helper()
	out := make([]rec, 0, len(datas))
	for _, d := range datas {
		pos, wait := w.Append(d)
		if err := waitT(t, wait); err != nil {
			t.Fatalf("Append(%d bytes): %v", len(d), err)
		}
		out = append(out, rec{pos, d})
	}
	return out
}

func closeT(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// sameRecs compares replayed records with expected ones, positions and bytes.
func sameRecs(t testing.TB, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos {
			t.Fatalf("record %d at %+v, want %+v", i, got[i].pos, want[i].pos)
		}
		if !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("record %d at %+v: data differs (%d vs %d bytes)", i, got[i].pos, len(got[i].data), len(want[i].data))
		}
	}
}

func segPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x.wal", seq))
}

func fileSize(t testing.TB, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func readFileT(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFileT(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files of src into a fresh temp dir.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		writeFileT(t, filepath.Join(dst, e.Name()), readFileT(t, filepath.Join(src, e.Name())))
	}
	return dst
}

// damagedCopies lists the names in dir with a ".damaged-" suffix.
func damagedCopies(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".damaged-") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}
