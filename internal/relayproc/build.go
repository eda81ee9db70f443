package relayproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Package is the import path of the relay binary.
const Package = "github.com/blametrail/terraform-provider-blametrail/relay/cmd/blametrail-relay"

// BuildOptions says how to build the relay binary.
type BuildOptions struct {
	// Dir receives the binary, named blametrail-relay. It must exist.
	Dir string
	// Race builds with the race detector.
	Race bool
	// Version is stamped in with -ldflags "-X main.version=…"; empty leaves the default.
	Version string
}

// Build compiles the relay into opts.Dir and returns the binary's path. It runs the go
// command in the current directory, which must be inside the module; ctx bounds it.
func Build(ctx context.Context, opts BuildOptions) (string, error) {
	bin := filepath.Join(opts.Dir, "blametrail-relay")
	args := []string{"build", "-o", bin}
	if opts.Race {
		args = append(args, "-race")
	}
	if opts.Version != "" {
		args = append(args, "-ldflags", "-X main.version="+opts.Version)
	}
	args = append(args, Package)
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build relay: %v\n%s", err, out)
	}
	return bin, nil
}

// Builder builds the relay once, on first use, into a new temporary directory, and hands
// every later caller the same path (or the same error). The directory is left for the
// system's temporary-file cleanup: the binary is in use until the process ends.
type Builder struct {
	Race    bool
	Version string

	once sync.Once
	path string
	err  error
}

// Binary returns the binary's path, building it on the first call.
func (b *Builder) Binary() (string, error) {
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "blametrail-relay-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path, b.err = Build(context.Background(), BuildOptions{Dir: dir, Race: b.Race, Version: b.Version})
	})
	return b.path, b.err
}
