package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// readOrCreate returns the trimmed contents of a small file in the data dir, or, when there is
// none yet, writes the value gen makes (fsynced, 0600) and returns that. O_EXCL: two processes
// started on one data dir must not each write their own (the data dir lock comes later).
func readOrCreate(path string, gen func() (string, error)) (value string, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		return strings.TrimSpace(string(b)), false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("create data dir: %w", err)
	}
	v, err := gen()
	if err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString(v + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	return v, true, nil
}
