//go:build !unix

package dirlock

// Lock is a no-op where flock does not exist; the relay ships for Linux and macOS only.
type Lock struct{}

// Acquire takes no lock on this platform.
func Acquire(dir string) (*Lock, error) { return &Lock{}, nil }

// Release does nothing.
func (l *Lock) Release() error { return nil }
