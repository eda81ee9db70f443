package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binGlob is where Debian (and Ubuntu) install each PostgreSQL major version's binaries.
const binGlob = "/usr/lib/postgresql/*/bin/initdb"

// env is what every cluster of this process shares: the binaries, the user the server runs
// as, and one initdb result that each new cluster copies (initdb costs seconds of CPU; a copy
// of its 40 MB result a fraction of that).
type env struct {
	bin  string
	cred *syscall.Credential // nil: run as ourselves (not root)

	tmplOnce sync.Once
	tmplDir  string
	tmpl     string
	tmplErr  error
}

var (
	envOnce sync.Once
	theEnv  *env
	envErr  error
)

func getEnv() (*env, error) {
	envOnce.Do(func() {
		theEnv, envErr = newEnv()
		if envErr == nil {
			sweep(tempRoot())
		}
	})
	return theEnv, envErr
}

func newEnv() (*env, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	e := &env{bin: bin}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root needs the OS user \"postgres\" to run the server as "+
				"(Debian's postgresql package creates it): %v", ErrUnavailable, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		e.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return e, nil
}

// findBin returns the bin directory of the newest PostgreSQL installed.
func findBin() (string, error) {
	matches, _ := filepath.Glob(binGlob)
	var best string
	var bestV []int
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
			continue
		}
		v := parseVersion(filepath.Base(filepath.Dir(dir)))
		if best == "" || slices.Compare(v, bestV) > 0 {
			best, bestV = dir, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w: no %s", ErrUnavailable, binGlob)
	}
	return best, nil
}

// parseVersion reads "15" or "9.6" as numbers, so that 10 sorts after 9.6.
func parseVersion(s string) []int {
	var v []int
	for _, f := range strings.Split(s, ".") {
		n, _ := strconv.Atoi(f)
		v = append(v, n)
	}
	return v
}

// tempRoot is where cluster directories go: the system's temporary directory, unless its path
// is so long that a socket in it would not fit in a unix socket address (108 bytes).
func tempRoot() string {
	if d := os.TempDir(); len(d) <= 60 {
		return d
	}
	return "/tmp"
}

// ownerFile names the process that made a directory, so that a later run can tell a directory
// left by a dead process from one in use.
const ownerFile = "pgtest-owner"

// newDir makes a fresh directory owned by the server's user, marked as ours.
func (e *env) newDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(tempRoot(), prefix)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(selfID()), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if e.cred != nil {
		if err := os.Chown(dir, int(e.cred.Uid), int(e.cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("pgtest: %w", err)
		}
	}
	return dir, nil
}

// template returns the data directory initdb made for this process, making it on first use.
func (e *env) template() (string, error) {
	e.tmplOnce.Do(func() {
		dir, err := e.newDir("pgtest-template-")
		if err != nil {
			e.tmplErr = err
			return
		}
		data := filepath.Join(dir, "data")
		// trust on the unix socket only (there is no other listener); --no-sync: see serverArgs.
		err = e.run(filepath.Join(e.bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
			"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
		if err != nil {
			_ = os.RemoveAll(dir)
			e.tmplErr = fmt.Errorf("pgtest: initdb: %w", err)
			return
		}
		e.tmplDir, e.tmpl = dir, data
	})
	return e.tmpl, e.tmplErr
}

// sweep removes the directories under root that a dead process left (a test binary killed
// before its cleanup). A directory with no owner yet may be one another process is making:
// only an old one is removed.
func sweep(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "pgtest-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		switch {
		case err == nil:
			if !alive(string(b)) {
				_ = os.RemoveAll(dir)
			}
		case errors.Is(err, os.ErrNotExist):
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(dir)
			}
		}
	}
}

// selfID identifies this process for the owner file: pid and start time, so a reused pid is
// not mistaken for the owner.
func selfID() string { return procID(os.Getpid()) }

// alive reports whether the process an owner file names still runs. Without /proc (not
// Linux) it cannot tell, and says yes: nothing is removed.
func alive(id string) bool {
	pid, err := strconv.Atoi(strings.Fields(id + " x")[0])
	if err != nil {
		return true
	}
	cur := procID(pid)
	return cur == id || cur == unknownID
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// Shared returns one cluster for every test of this process that asks, starting it on first
// use; each test takes its own database with CreateDB. It skips t as Start does. Tests that
// stop or restart a cluster must Start their own. The package's TestMain calls Main, which
// closes it; without that, the kernel kills it when the process ends and a later run removes
// its directory.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = New() })
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared
}

// Main is a TestMain for packages that use pgtest: it runs the tests, then closes the shared
// cluster and removes the initdb template, and exits.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if theEnv != nil && theEnv.tmplDir != "" {
		_ = os.RemoveAll(theEnv.tmplDir)
	}
	os.Exit(code)
}
