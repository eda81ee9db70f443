package crashfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// file is an open file. Its offset (for writes without O_APPEND) is its own.
type file struct {
	fs     *FS
	ino    *inode
	name   string
	flag   int
	off    int64
	closed bool
}

func (fl *file) check(op string, mutating bool) error {
	if err := fl.fs.begin(mutating); err != nil {
		return pathErr(op, fl.name, err)
	}
	if fl.closed {
		fl.fs.mu.Unlock()
		return pathErr(op, fl.name, os.ErrClosed)
	}
	return nil
}

func (fl *file) writable() bool { return fl.flag&(os.O_WRONLY|os.O_RDWR) != 0 }

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if err := fl.check("read", false); err != nil {
		return 0, err
	}
	defer fl.fs.mu.Unlock()
	if fl.flag&os.O_WRONLY != 0 {
		return 0, pathErr("read", fl.name, fs.ErrPermission)
	}
	if off < 0 {
		return 0, pathErr("read", fl.name, fs.ErrInvalid)
	}
	if off >= int64(len(fl.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, fl.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *file) Write(p []byte) (int, error) {
	if err := fl.check("write", true); err != nil {
		return 0, err
	}
	defer fl.fs.mu.Unlock()
	if !fl.writable() {
		return 0, pathErr("write", fl.name, fs.ErrPermission)
	}
	ino := fl.ino
	off := fl.off
	if fl.flag&os.O_APPEND != 0 {
		off = int64(len(ino.data))
	}
	if end := int(off) + len(p); end > len(ino.data) {
		ino.data = slices.Grow(ino.data, end-len(ino.data))
		ino.data = ino.data[:end]
	}
	copy(ino.data[off:], p)
	ino.dirty(int(off))
	ino.mtime = time.Now()
	fl.off = off + int64(len(p))
	return len(p), nil
}

// Sync makes the file's content durable.
func (fl *file) Sync() error {
	if err := fl.check("sync", true); err != nil {
		return err
	}
	defer fl.fs.mu.Unlock()
	ino := fl.ino
	ino.durable = append(ino.durable[:min(ino.dirtyFrom, len(ino.durable))], ino.data[ino.dirtyFrom:]...)
	ino.dirtyFrom = len(ino.data)
	return nil
}

func (fl *file) Truncate(size int64) error {
	if err := fl.check("truncate", true); err != nil {
		return err
	}
	defer fl.fs.mu.Unlock()
	if !fl.writable() {
		return pathErr("truncate", fl.name, fs.ErrPermission)
	}
	if size < 0 {
		return pathErr("truncate", fl.name, fs.ErrInvalid)
	}
	ino := fl.ino
	if n := int(size); n <= len(ino.data) {
		ino.data = ino.data[:n]
		ino.dirty(n)
	} else {
		ino.dirty(len(ino.data))
		ino.data = append(ino.data, make([]byte, n-len(ino.data))...)
	}
	ino.mtime = time.Now()
	return nil
}

func (fl *file) Close() error {
	fl.fs.mu.Lock()
	defer fl.fs.mu.Unlock()
	if fl.closed {
		return pathErr("close", fl.name, os.ErrClosed)
	}
	fl.closed = true
	if fl.fs.lost {
		return pathErr("close", fl.name, ErrPowerLost)
	}
	return nil
}

func (fl *file) Stat() (fs.FileInfo, error) {
	if err := fl.check("stat", false); err != nil {
		return nil, err
	}
	defer fl.fs.mu.Unlock()
	return fileInfo{name: filepath.Base(fl.name), size: int64(len(fl.ino.data)), mtime: fl.ino.mtime}, nil
}

type fileInfo struct {
	name  string
	size  int64
	mtime time.Time
	dir   bool
}

func (i fileInfo) Name() string { return i.name }
func (i fileInfo) Size() int64  { return i.size }
func (i fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o700
	}
	return 0o600
}
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return i.dir }
func (i fileInfo) Sys() any           { return nil }

// String is for test failure messages: every file with its size and synced size.
func (f *FS) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, p := range sortedKeys(f.dirs) {
		d := f.dirs[p]
		for _, name := range sortedKeys(d.names) {
			ino := d.names[name]
			fmt.Fprintf(&b, "%s %d bytes (%d synced)\n", filepath.Join(p, name), len(ino.data), len(ino.durable))
		}
	}
	return b.String()
}
