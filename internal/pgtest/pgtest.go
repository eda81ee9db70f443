// Package pgtest owns throwaway PostgreSQL clusters for tests: it finds Debian's PostgreSQL
// binaries (/usr/lib/postgresql/<newest>/bin), creates a cluster with initdb in a fresh
// temporary directory (data and unix socket both in it, no TCP listener, so no fixed port and
// nothing shared with another run), runs its postmaster as a child of the test process, hands
// out connection strings and fresh databases, and stops, restarts or crashes it on request.
//
// As root it runs initdb and postgres as the OS user "postgres" (initdb refuses root), which
// the Debian package creates. When PostgreSQL or that user is missing, tests skip with a
// message saying so, or fail when CI=true (scripts/ensure-postgres.sh installs it).
//
// A cluster is stopped and its directory removed by the test's cleanup, failed test or not.
// If the test binary dies without cleaning up (SIGKILL, a -timeout panic), the kernel kills
// the postmaster with it (the parent-death signal, Linux), and the next run removes the
// directories whose owning process is gone.
//
// It must never touch a system cluster, listen on TCP, or leave a postmaster running after the
// test process ends. Its settings trade durability against OS crashes for speed (see
// serverArgs); they are for tests only.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrUnavailable says PostgreSQL cannot run here (no binaries, or no "postgres" user to run
// them as root). Start skips on it, or fails when CI=true.
var ErrUnavailable = errors.New("pgtest: PostgreSQL unavailable")

const (
	// Port only names the socket file (.s.PGSQL.5432): with no TCP listener and a socket
	// directory per cluster, every cluster can use the default.
	Port = 5432
	// startTimeout bounds the wait for a postmaster to accept connections. It is generous:
	// crash recovery after Kill on a loaded 2-core machine takes seconds.
	startTimeout = 90 * time.Second
	// stopTimeout bounds each step of Stop before the next, harsher signal.
	stopTimeout = 30 * time.Second
)

// Cluster is one throwaway PostgreSQL cluster. Its methods are safe for concurrent use.
type Cluster struct {
	env     *env
	dir     string // everything below is in it; removed by Close
	data    string
	sock    string
	logPath string

	mu     sync.Mutex
	proc   *os.Process // the running postmaster, nil when stopped
	exited chan struct{}
	dbs    int // names fresh databases
	closed bool
}

// Start starts a cluster for t and stops and removes it at t's cleanup. It skips t when
// PostgreSQL is unavailable (fails it when CI=true).
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := New()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: server log of %s:\n%s", c.dir, c.LogTail(16<<10))
		}
		if err := c.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// unavailable skips t on ErrUnavailable outside CI and fails it otherwise.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
		t.Skipf("%v (install it with: bash scripts/ensure-postgres.sh; a failure when CI=true)", err)
	}
	t.Fatal(err)
}

// New starts a cluster the caller must Close, for TestMain or a harness. Tests use Start or
// Shared.
func New() (*Cluster, error) {
	e, err := getEnv()
	if err != nil {
		return nil, err
	}
	dir, err := e.newDir("pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{env: e, dir: dir, data: filepath.Join(dir, "data"), sock: filepath.Join(dir, "sock"),
		logPath: filepath.Join(dir, "postgres.log")}
	if err := c.create(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := c.start(); err != nil {
		err = fmt.Errorf("%w\n%s", err, c.LogTail(8<<10))
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// create makes the data directory (a copy of this process's initdb template) and the socket
// directory, both owned by the user the server runs as.
func (c *Cluster) create() error {
	tmpl, err := c.env.template()
	if err != nil {
		return err
	}
	if err := c.env.run("cp", "-a", tmpl, c.data); err != nil {
		return fmt.Errorf("pgtest: copy the initdb template: %w", err)
	}
	if err := c.env.run("mkdir", "-m", "0700", c.sock); err != nil {
		return fmt.Errorf("pgtest: socket directory: %w", err)
	}
	return nil
}

// serverArgs are the postmaster's settings. fsync=off and full_page_writes=off lose data only
// when the OS crashes, which a test never survives anyway; they make every commit and
// checkpoint cheap. synchronous_commit stays on: a postmaster killed by Kill must keep every
// commit it acknowledged, as a real one does, or crash tests would see losses production cannot
// have. wal_level=minimal skips WAL for bulk loads (no replication here).
func (c *Cluster) serverArgs() []string {
	return []string{
		"-D", c.data, "-k", c.sock, "-p", fmt.Sprint(Port),
		"-c", "listen_addresses=",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "wal_level=minimal",
		"-c", "max_wal_senders=0",
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=200",
		"-c", "log_min_messages=warning",
	}
}

// start runs the postmaster and waits until it accepts connections.
func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("pgtest: cluster closed")
	}
	if c.proc != nil {
		return nil
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: server log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	// The postmaster runs as our child rather than through `pg_ctl start`, which detaches it
	// (fork + setsid): only a direct child can be tied to this process's life.
	cmd := c.env.command(filepath.Join(c.env.bin, "postgres"), c.serverArgs()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitReady(c.data, cmd.Process.Pid, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return err
	}
	c.proc, c.exited = cmd.Process, exited
	return nil
}

// waitReady polls postmaster.pid until the postmaster says "ready" in it, as pg_ctl -w does:
// from then on it accepts connections.
func waitReady(data string, pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
		if err == nil {
			lines := strings.Split(string(b), "\n")
			// Line 1 is the pid, line 8 the status (PostgreSQL 10 and later).
			if len(lines) >= 8 && strings.TrimSpace(lines[0]) == fmt.Sprint(pid) && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("pgtest: postgres exited while starting")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready within %s", startTimeout)
		}
	}
}

// Stop shuts the server down as `pg_ctl stop -m fast` does (SIGINT: sessions are ended,
// a checkpoint is written), escalating to an immediate shutdown and then SIGKILL if it does not
// end in time. Stopping a stopped cluster does nothing.
func (c *Cluster) Stop() error { return c.stop(syscall.SIGINT) }

// Kill crashes the server as `pg_ctl stop -m immediate` does (SIGQUIT: no checkpoint; the next
// start runs crash recovery). Every acknowledged commit survives it.
func (c *Cluster) Kill() error { return c.stop(syscall.SIGQUIT) }

func (c *Cluster) stop(first syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return nil
	}
	defer func() { c.proc, c.exited = nil, nil }()
	sigs := []syscall.Signal{first, syscall.SIGQUIT, syscall.SIGKILL}
	if first == syscall.SIGQUIT {
		sigs = sigs[1:]
	}
	for _, sig := range sigs {
		_ = c.proc.Signal(sig)
		select {
		case <-c.exited:
			if sig != first {
				return fmt.Errorf("pgtest: postgres ignored %v for %s", first, stopTimeout)
			}
			return nil
		case <-time.After(stopTimeout):
		}
	}
	return errors.New("pgtest: postgres survived SIGKILL")
}

// Restart stops the server (fast, if it runs) and starts it again on the same data directory,
// socket and port: a client sees its sessions end, then the same DSN work again.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: restart: %v\n%s", err, c.LogTail(8<<10))
	}
}

// Close stops the server at once (immediate shutdown: nothing is kept) and removes its
// directory. It is what Start's cleanup calls; later calls do nothing.
func (c *Cluster) Close() error {
	err := c.Kill()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return err
	}
	c.closed = true
	if rerr := os.RemoveAll(c.dir); rerr != nil && err == nil {
		err = fmt.Errorf("pgtest: remove %s: %w", c.dir, rerr)
	}
	return err
}

// PID is the postmaster's process id, 0 while stopped.
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid
}

// SocketDir is the directory of the server's unix socket (the DSN's host).
func (c *Cluster) SocketDir() string { return c.sock }

// DSN is a keyword/value connection string for database db as the superuser "postgres".
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", quote(c.sock), Port, quote(db))
}

// quote quotes a connection string value as libpq reads it.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// CreateDB creates a fresh, empty database named after name (t's name when empty, made unique
// in this cluster) and returns its DSN. It is dropped at t's cleanup if the server still runs.
// Tests that share a cluster (Shared) each get their own database this way.
func (c *Cluster) CreateDB(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = t.Name()
	}
	c.mu.Lock()
	c.dbs++
	db := fmt.Sprintf("%s_%d", sanitize(name), c.dbs)
	c.mu.Unlock()
	if err := c.exec(pgx.Identifier{db}.Sanitize(), "CREATE DATABASE %s"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		if c.PID() == 0 {
			return
		}
		if err := c.exec(pgx.Identifier{db}.Sanitize(), "DROP DATABASE IF EXISTS %s WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", db, err)
		}
	})
	return c.DSN(db)
}

// exec runs one administrative statement on the "postgres" database.
func (c *Cluster) exec(ident, format string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, fmt.Sprintf(format, ident))
	return err
}

// sanitize makes a database name from a test name: lower-case letters, digits and '_', short
// enough to leave room for the suffix within PostgreSQL's 63 bytes.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() == 48 {
			break
		}
	}
	s := b.String()
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "db_" + s
	}
	return s
}

// LogTail is the end of the server's log, at most n bytes.
func (c *Cluster) LogTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// run runs a command as the server's user and returns its output in the error.
func (e *env) run(name string, args ...string) error {
	cmd := e.command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}

// command prepares a command run as the server's user, killed if this process dies, with no
// PG* variables of ours (they would redirect initdb or the server).
func (e *env) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = "/" // the server's user may not be able to enter the test's directory
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	cmd.SysProcAttr = sysProcAttr(e.cred)
	return cmd
}
