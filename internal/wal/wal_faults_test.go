package wal

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// op is a file-system operation faultFS counts and can fail.
type op int

const (
	opWrite op = iota
	opSync     // File.Sync of any file
	opRename
	opOpenFile
	opSyncDir
	numOps
)

var errInjected = errors.New("injected fault")

// faultFS wraps a real FS, counts calls and fails the Nth call of an operation from when it was
// armed. beforeSync, if set, runs before every File.Sync (tests block the flusher in it).
type faultFS struct {
	FS
	mu         sync.Mutex
	calls      [numOps]int
	segSyncs   int         // File.Sync calls on segment files (*.wal)
	failAt     [numOps]int // fail when calls reaches this; 0 never
	beforeSync func(name string)
}

func newFaultFS() *faultFS { return &faultFS{FS: OSFS{}} }

// arm makes the nth call of o from now fail (n >= 1).
func (f *faultFS) arm(o op, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAt[o] = f.calls[o] + n
}

// hit counts a call of o and says whether it is the one to fail.
func (f *faultFS) hit(o op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[o]++
	if f.failAt[o] != 0 && f.calls[o] == f.failAt[o] {
		return errInjected
	}
	return nil
}

func (f *faultFS) segmentSyncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.segSyncs
}

func (f *faultFS) count(o op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[o]
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if err := f.hit(opOpenFile); err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.hit(opRename); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return f.FS.Rename(oldpath, newpath)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.hit(opSyncDir); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.hit(opWrite); err != nil {
		// A failed write may still have put part of p in the file.
		n, _ := f.File.Write(p[:len(p)/2])
		return n, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	hook := f.fs.beforeSync
	if strings.HasSuffix(f.name, ".wal") {
		f.fs.segSyncs++
	}
	f.fs.mu.Unlock()
	if hook != nil {
		hook(f.name)
	}
	if err := f.fs.hit(opSync); err != nil {
		return err
	}
	return f.File.Sync()
}

// TestFailureIsSticky: after a failed write or fsync the waiting Append gets ErrFailed, Err
// reports it, and every later Append fails at once; nothing hangs, and what was acknowledged
// before the failure is still there after a reopen.
func TestFailureIsSticky(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncBatch, SyncAlways} {
		for _, o := range []op{opWrite, opSync} {
			name := map[op]string{opWrite: "write", opSync: "fsync"}[o]
			t.Run(name+"/"+map[SyncPolicy]string{SyncBatch: "batch", SyncAlways: "always"}[policy], func(t *testing.T) {
				dir := t.TempDir()
				ffs := newFaultFS()
				logger, logs := newLogger()
				o2 := opts(dir)
				o2.FS, o2.Sync, o2.Logger = ffs, policy, logger
				w, _ := openT(t, o2, Position{})
				acked := appendT(t, w, payload(1, 100), payload(2, 200))
				if err := w.Err(); err != nil {
					t.Fatalf("Err before the fault: %v", err)
				}

				ffs.arm(o, 1)
				_, wait := w.Append(payload(3, 300))
				err := waitT(t, wait)
				if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), errInjected.Error()) {
					t.Fatalf("Append over a failed %s: %v, want ErrFailed naming the cause", name, err)
				}
				if err := w.Err(); !errors.Is(err, ErrFailed) {
					t.Fatalf("Err after the fault: %v, want ErrFailed", err)
				}
				if !strings.Contains(logs.String(), "wal failed") {
					t.Fatalf("no log line about the failure:\n%s", logs)
				}
				for i := range 3 {
					start := time.Now()
					pos, wait := w.Append(payload(4, 10+i))
					if err := waitT(t, wait); !errors.Is(err, ErrFailed) || pos != (Position{}) {
						t.Fatalf("Append after the failure: %+v, %v; want ErrFailed", pos, err)
					}
					if d := time.Since(start); d > time.Second {
						t.Fatalf("Append after the failure took %v", d)
					}
				}
				before := ffs.count(opWrite)
				if r := w.Rotate(); r.Segment != 1 {
					t.Fatalf("Rotate on a failed log cut a segment: %+v", r)
				}
				closeWithin(t, w)
				if ffs.count(opWrite) != before {
					t.Fatal("the failed log wrote after the failure")
				}

				w, got := openT(t, opts(dir), Position{})
				defer closeT(t, w)
				if len(got) < len(acked) {
					t.Fatalf("after reopen %d records, want at least the %d acknowledged", len(got), len(acked))
				}
				sameRecs(t, got[:len(acked)], acked)
			})
		}
	}
}

func closeWithin(t *testing.T, w *WAL) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
}

// TestRotationFailure: a failure while sealing the old segment or creating the next one fails
// the log.
func TestRotationFailure(t *testing.T) {
	tests := []struct {
		name string
		o    op
		n    int
	}{
		{"create", opOpenFile, 1},
		{"header write", opWrite, 1},
		{"seal fsync", opSync, 1},
		{"new segment fsync", opSync, 2},
		{"dir fsync", opSyncDir, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := newFaultFS()
			o := opts(dir)
			o.FS, o.SegmentSize = ffs, 4096
			w, _ := openT(t, o, Position{})
			acked := appendT(t, w, payload(1, 3000))
			ffs.arm(tt.o, tt.n)
			// 16+3008+24 bytes used, 1112+24 more do not fit in 4096: this record opens segment 2.
			pos, wait := w.Append(payload(2, 1100))
			if pos.Segment != 2 {
				t.Fatalf("record meant for a new segment at %+v", pos)
			}
			if err := waitT(t, wait); !errors.Is(err, ErrFailed) {
				t.Fatalf("Append across a failed rotation: %v, want ErrFailed", err)
			}
			if _, wait := w.Append([]byte("x")); !errors.Is(waitT(t, wait), ErrFailed) {
				t.Fatal("log still accepts appends after a failed rotation")
			}
			closeWithin(t, w)
			w, got := openT(t, opts(dir), Position{})
			defer closeT(t, w)
			if len(got) < 1 {
				t.Fatal("the acknowledged record is gone")
			}
			sameRecs(t, got[:1], acked)
			appendT(t, w, []byte("after"))
		})
	}
}

// TestWriteFileAtomicFaults: a failure at any step returns an error, and until the rename the
// old content stays and the temp file is removed; a failed dir fsync comes after the rename,
// so the file holds one whole version, the new one.
func TestWriteFileAtomicFaults(t *testing.T) {
	writers := map[string]func(FS, string, []byte) error{
		"WriteFileAtomic": WriteFileAtomic,
		"WriteFileAtomicFunc": func(fsys FS, path string, data []byte) error {
			return WriteFileAtomicFunc(fsys, path, func(w io.Writer) error { _, err := w.Write(data); return err })
		},
	}
	tests := []struct {
		name   string
		o      op
		newOK  bool // the new content is in place despite the error
		noFail bool
	}{
		{"ok", opWrite, true, true},
		{"create", opOpenFile, false, false},
		{"write", opWrite, false, false},
		{"fsync", opSync, false, false},
		{"rename", opRename, false, false},
		{"dir fsync", opSyncDir, true, false},
	}
	for wname, write := range writers {
		for _, tt := range tests {
			t.Run(wname+"/"+tt.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "snapshot")
				old, neu := []byte("old content"), bytes.Repeat([]byte("new content "), 1000)
				ffs := newFaultFS()
				if err := write(ffs, path, old); err != nil {
					t.Fatal(err)
				}
				if !tt.noFail {
					ffs.arm(tt.o, 1)
				}
				err := write(ffs, path, neu)
				if tt.noFail != (err == nil) {
					t.Fatalf("err = %v", err)
				}
				if err != nil && !errors.Is(err, errInjected) {
					t.Fatalf("error does not wrap the cause: %v", err)
				}
				got, rerr := ReadFile(ffs, path)
				if rerr != nil {
					t.Fatal(rerr)
				}
				want := old
				if tt.newOK {
					want = neu
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("file holds %q…, want %q…", got[:min(len(got), 20)], want[:min(len(want), 20)])
				}
				if _, err := ffs.OpenFile(path+".tmp", os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("the temp file is left behind: %v", err)
				}
			})
		}
	}
}

// TestReadFileMissing: ReadFile reports a missing file as fs.ErrNotExist.
func TestReadFileMissing(t *testing.T) {
	if _, err := ReadFile(OSFS{}, filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile of a missing file: %v", err)
	}
}

// TestRepairInterrupted: a repair that fails part way (as a crash would stop it) must leave the
// damage where the next Open finds it, never a clean-looking log with a hole; a later repair
// then completes.
func TestRepairInterrupted(t *testing.T) {
	tests := []struct {
		name string
		o    op
		n    int
	}{
		// Renames: 1 is the copy of the damaged segment, then later segments newest first.
		{"moving segment 3 aside", opRename, 2},
		{"moving segment 2 aside", opRename, 3},
		{"dir fsync after the moves", opSyncDir, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, recs := buildCorruptible(t)
			seg := segPath(dir, 1)
			b := readFileT(t, seg)
			b[recs[10].pos.Offset+20] ^= 1
			writeFileT(t, seg, b)

			ffs := newFaultFS()
			ffs.arm(tt.o, tt.n)
			o := opts(dir)
			o.SegmentSize, o.Repair, o.FS = 4096, true, ffs
			if _, _, err := openCollect(o, Position{}); !errors.Is(err, errInjected) {
				t.Fatalf("interrupted repair: %v", err)
			}
			o.FS, o.Repair = nil, false
			if _, _, err := openCollect(o, Position{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open after an interrupted repair: %v, want ErrCorrupt", err)
			}
			o.Repair = true
			w, got := openT(t, o, Position{})
			defer closeT(t, w)
			sameRecs(t, got, recs[:10])
		})
	}
}

// TestBarrier: a barrier taken while a record's fsync is held back does not return until that
// fsync does, and reports a failed fsync; a barrier on an idle log returns at once.
func TestBarrier(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "ok", true: "fsync fails"}[fail], func(t *testing.T) {
			ffs := newFaultFS()
			gate, entered := make(chan struct{}), make(chan struct{}, 16)
			o := opts(t.TempDir())
			o.FS = ffs
			w, _ := openT(t, o, Position{})
			defer w.Close()
			if err := waitT(t, w.Barrier()); err != nil {
				t.Fatalf("barrier on an idle log: %v", err)
			}
			ffs.mu.Lock()
			ffs.beforeSync = func(string) { entered <- struct{}{}; <-gate }
			ffs.mu.Unlock()
			if fail {
				ffs.arm(opSync, 1)
			}
			_, wait := w.Append([]byte("record"))
			<-entered // the flusher holds the batch in its fsync
			barrier := w.Barrier()
			done := make(chan error, 1)
			go func() { done <- barrier() }()
			select {
			case err := <-done:
				t.Fatalf("barrier returned (%v) before the fsync did", err)
			default:
			}
			close(gate)
			berr, aerr := waitT(t, func() error { return <-done }), waitT(t, wait)
			if fail != (berr != nil) || fail != (aerr != nil) {
				t.Fatalf("barrier error %v, append error %v; want both failed=%v", berr, aerr, fail)
			}
			if fail && !errors.Is(berr, ErrFailed) {
				t.Fatalf("barrier error %v is not ErrFailed", berr)
			}
		})
	}
}
