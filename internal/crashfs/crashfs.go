// Package crashfs is an in-memory file system that can lose power, for tests of code that
// must survive it (the WAL, the store's snapshots). It implements wal.FS and wal.File.
//
// It owns a model of what a disk keeps: per file, the content made durable by File.Sync;
// per directory, the creates, renames and removes made durable by SyncDir. PowerLoss returns
// the disk as found after a reboot: the durable state, plus a random part of what was not yet
// synced. It must never be used for real data, and it never lets a durable byte or a durable
// name change at power loss.
//
// # Crash model
//
//   - File content: every 512-byte sector written since the last File.Sync is, independently
//     and in any order, kept, lost (its old content, zeros past the synced size), zeroed, or
//     torn (a prefix of the new bytes, the rest old). Bytes that were synced and not written
//     since are never touched, even in a sector that was partly rewritten. A file that grew
//     keeps a random size between its synced size and its current size (rounded to a sector
//     or exact); a file that shrank keeps its synced size or its new one.
//   - Names: creates, renames and removes in a directory since its last SyncDir survive as a
//     random prefix, in the order they were made. A rename within one directory is one step;
//     a rename between directories is a remove in one and a create in the other, each made
//     durable by its own directory's SyncDir.
//   - Directories made by MkdirAll are durable at once (journaling file systems commit them
//     with the next fsync; the code under test does not fsync parents).
//
// After PowerLoss, or when a crash point set by LoseAt is reached, every operation on the old
// FS and on files opened from it fails with ErrPowerLost. An FS is safe for concurrent use.
package crashfs

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// SectorSize is the unit in which unsynced writes survive or not.
const SectorSize = 512

// ErrPowerLost is returned by every operation after the power failed.
var ErrPowerLost = errors.New("crashfs: power lost")

// FS is an in-memory file system with a durable state. The zero value is not usable; call New.
type FS struct {
	mu   sync.Mutex
	lost bool
	dirs map[string]*dir
	ops  int64 // mutating operations so far

	loseAt  int64 // LoseAt's crash point (ops count), 0 if none
	loseRng *rand.Rand
	loseCh  chan *FS
}

type dir struct {
	names   map[string]*inode // as the running system sees it
	durable map[string]*inode // as of the last SyncDir
	pending []dirOp           // changes since the last SyncDir, oldest first
}

// dirOp is one atomic change of a directory: each name set to an inode, or removed (nil).
type dirOp []nameChange

type nameChange struct {
	name string
	ino  *inode
}

type inode struct {
	data    []byte
	durable []byte
	// data[:dirtyFrom] equals durable[:dirtyFrom]; the file is clean when dirtyFrom equals
	// both lengths.
	dirtyFrom int
	mtime     time.Time
}

func (ino *inode) dirty(from int) { ino.dirtyFrom = min(ino.dirtyFrom, from) }

func (ino *inode) clean() bool {
	return ino.dirtyFrom == len(ino.data) && len(ino.data) == len(ino.durable)
}

// New returns an empty file system with a root directory "/" and ".".
func New() *FS {
	f := &FS{dirs: map[string]*dir{}}
	f.mkdir("/")
	f.mkdir(".")
	return f
}

var _ wal.FS = (*FS)(nil)

func newDir() *dir { return &dir{names: map[string]*inode{}, durable: map[string]*inode{}} }

func (f *FS) mkdir(p string) {
	for {
		if _, ok := f.dirs[p]; ok {
			return
		}
		f.dirs[p] = newDir()
		parent := filepath.Dir(p)
		if parent == p {
			return
		}
		p = parent
	}
}

// begin takes the lock for an operation; mutating ones count toward LoseAt's crash point.
// It returns ErrPowerLost (with the lock released) once the power is gone.
func (f *FS) begin(mutating bool) error {
	f.mu.Lock()
	if f.lost {
		f.mu.Unlock()
		return ErrPowerLost
	}
	if mutating {
		f.ops++
		if f.loseAt != 0 && f.ops >= f.loseAt {
			f.loseCh <- f.powerLossLocked(f.loseRng)
			f.mu.Unlock()
			return ErrPowerLost
		}
	}
	return nil
}

// Ops is how many mutating operations (writes, syncs, truncates, creates, renames, removes,
// directory syncs) the FS has seen.
func (f *FS) Ops() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// LoseAt makes the power fail at the start of mutating operation number n (counted as Ops
// counts, from New): that operation and every later one fails with ErrPowerLost, and the disk
// as found after the reboot (see PowerLoss) is sent on the returned channel. A crash point
// already passed fails the next mutating operation.
func (f *FS) LoseAt(n int64, rng *rand.Rand) <-chan *FS {
	ch := make(chan *FS, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseAt, f.loseRng, f.loseCh = max(n, 1), rng, ch
	return ch
}

// PowerLoss cuts the power now and returns the disk as found after a reboot: the durable
// state plus a random part of what was not synced (see the package doc). From then on every
// operation on f fails with ErrPowerLost. Calling it again on a lost FS returns another
// possible outcome of the same crash.
func (f *FS) PowerLoss(rng *rand.Rand) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.powerLossLocked(rng)
}

func (f *FS) powerLossLocked(rng *rand.Rand) *FS {
	f.lost = true
	after := &FS{dirs: make(map[string]*dir, len(f.dirs))}
	reborn := map[*inode]*inode{}
	for _, p := range sortedKeys(f.dirs) {
		d := f.dirs[p]
		names := maps(d.durable)
		for _, op := range d.pending[:rng.IntN(len(d.pending)+1)] {
			for _, c := range op {
				if c.ino == nil {
					delete(names, c.name)
				} else {
					names[c.name] = c.ino
				}
			}
		}
		nd := newDir()
		for _, name := range sortedKeys(names) {
			ino := names[name]
			n, ok := reborn[ino]
			if !ok {
				data := ino.crash(rng)
				n = &inode{data: data, durable: slices.Clone(data), dirtyFrom: len(data), mtime: ino.mtime}
				reborn[ino] = n
			}
			nd.names[name], nd.durable[name] = n, n
		}
		after.dirs[p] = nd
	}
	return after
}

func maps(m map[string]*inode) map[string]*inode {
	out := make(map[string]*inode, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func clean(name string) (dirPath, base string) {
	name = filepath.Clean(name)
	return filepath.Dir(name), filepath.Base(name)
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// MkdirAll creates a directory and its parents; they are durable at once.
func (f *FS) MkdirAll(path string, _ fs.FileMode) error {
	if err := f.begin(false); err != nil {
		return pathErr("mkdir", path, err)
	}
	defer f.mu.Unlock()
	path = filepath.Clean(path)
	for p := path; ; p = filepath.Dir(p) {
		parent, base := filepath.Dir(p), filepath.Base(p)
		if d, ok := f.dirs[parent]; ok && parent != p {
			if _, ok := d.names[base]; ok {
				return pathErr("mkdir", path, errors.New("not a directory"))
			}
		}
		if parent == p {
			break
		}
	}
	f.mkdir(path)
	return nil
}

// ReadDir returns the names of the files and directories in dir, sorted.
func (f *FS) ReadDir(name string) ([]string, error) {
	if err := f.begin(false); err != nil {
		return nil, pathErr("readdir", name, err)
	}
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	d, ok := f.dirs[name]
	if !ok {
		return nil, pathErr("readdir", name, fs.ErrNotExist)
	}
	out := sortedKeys(d.names)
	for p := range f.dirs {
		if p != name && filepath.Dir(p) == name {
			out = append(out, filepath.Base(p))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Stat describes a file or directory.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if err := f.begin(false); err != nil {
		return nil, pathErr("stat", name, err)
	}
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	if _, ok := f.dirs[name]; ok {
		return fileInfo{name: filepath.Base(name), dir: true}, nil
	}
	dp, base := clean(name)
	d, ok := f.dirs[dp]
	if !ok || d.names[base] == nil {
		return nil, pathErr("stat", name, fs.ErrNotExist)
	}
	ino := d.names[base]
	return fileInfo{name: base, size: int64(len(ino.data)), mtime: ino.mtime}, nil
}

// OpenFile opens a file with os.O_RDONLY, O_WRONLY or O_RDWR, and O_CREATE, O_EXCL, O_TRUNC,
// O_APPEND; other flags are refused.
func (f *FS) OpenFile(name string, flag int, _ fs.FileMode) (wal.File, error) {
	const known = os.O_RDONLY | os.O_WRONLY | os.O_RDWR | os.O_CREATE | os.O_EXCL | os.O_TRUNC | os.O_APPEND
	if flag&^known != 0 || flag&(os.O_WRONLY|os.O_RDWR) == os.O_WRONLY|os.O_RDWR {
		return nil, pathErr("open", name, fs.ErrInvalid)
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	mutating := flag&os.O_CREATE != 0 || (flag&os.O_TRUNC != 0 && writable)
	if err := f.begin(mutating); err != nil {
		return nil, pathErr("open", name, err)
	}
	defer f.mu.Unlock()
	dp, base := clean(name)
	if _, ok := f.dirs[filepath.Clean(name)]; ok {
		if writable {
			return nil, pathErr("open", name, errors.New("is a directory"))
		}
	}
	d, ok := f.dirs[dp]
	if !ok {
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	ino := d.names[base]
	switch {
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case ino != nil && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, pathErr("open", name, fs.ErrExist)
	case ino == nil:
		ino = &inode{mtime: time.Now()}
		d.names[base] = ino
		d.pending = append(d.pending, dirOp{{base, ino}})
	}
	if flag&os.O_TRUNC != 0 && writable && len(ino.data) > 0 {
		ino.data = ino.data[:0]
		ino.dirty(0)
		ino.mtime = time.Now()
	}
	return &file{fs: f, ino: ino, name: name, flag: flag}, nil
}

// Rename moves a file, replacing newpath if it exists.
func (f *FS) Rename(oldpath, newpath string) error {
	if err := f.begin(true); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	defer f.mu.Unlock()
	od, ob := clean(oldpath)
	nd, nb := clean(newpath)
	src, dst := f.dirs[od], f.dirs[nd]
	if src == nil || dst == nil || src.names[ob] == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	if _, ok := f.dirs[filepath.Clean(newpath)]; ok {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errors.New("is a directory")}
	}
	ino := src.names[ob]
	if od == nd && ob == nb {
		return nil
	}
	delete(src.names, ob)
	dst.names[nb] = ino
	if src == dst {
		src.pending = append(src.pending, dirOp{{nb, ino}, {ob, nil}})
	} else {
		src.pending = append(src.pending, dirOp{{ob, nil}})
		dst.pending = append(dst.pending, dirOp{{nb, ino}})
	}
	return nil
}

// Remove deletes a file (directories are not removed).
func (f *FS) Remove(name string) error {
	if err := f.begin(true); err != nil {
		return pathErr("remove", name, err)
	}
	defer f.mu.Unlock()
	dp, base := clean(name)
	d := f.dirs[dp]
	if d == nil || d.names[base] == nil {
		if _, ok := f.dirs[filepath.Clean(name)]; ok {
			return pathErr("remove", name, errors.New("is a directory"))
		}
		return pathErr("remove", name, fs.ErrNotExist)
	}
	delete(d.names, base)
	d.pending = append(d.pending, dirOp{{base, nil}})
	return nil
}

// SyncDir makes every create, rename and remove in dir so far durable.
func (f *FS) SyncDir(name string) error {
	if err := f.begin(true); err != nil {
		return pathErr("sync", name, err)
	}
	defer f.mu.Unlock()
	d := f.dirs[filepath.Clean(name)]
	if d == nil {
		return pathErr("sync", name, fs.ErrNotExist)
	}
	d.durable = maps(d.names)
	d.pending = nil
	return nil
}
