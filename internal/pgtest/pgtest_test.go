package pgtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec1(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestStartCreateDB: a cluster serves two separate fresh databases on its unix socket only,
// run by the "postgres" user when we are root.
func TestStartCreateDB(t *testing.T) {
	t.Parallel()
	c := Start(t)
	a, b := c.CreateDB(t, "alpha"), c.CreateDB(t, "alpha")
	if a == b {
		t.Fatalf("CreateDB gave the same DSN twice: %s", a)
	}
	ca, cb := connect(t, a), connect(t, b)
	exec1(t, ca, "CREATE TABLE t (v int)")
	exec1(t, ca, "INSERT INTO t VALUES (1)")
	if n := count(t, ca, "SELECT count(*) FROM t"); n != 1 {
		t.Errorf("rows in alpha's t: %d", n)
	}
	if n := count(t, cb, "SELECT count(*) FROM pg_class WHERE relname = 't'"); n != 0 {
		t.Errorf("the second database sees the first one's table")
	}
	var la string
	if err := ca.QueryRow(t.Context(), "SHOW listen_addresses").Scan(&la); err != nil || la != "" {
		t.Errorf("listen_addresses = %q, %v; want no TCP listener", la, err)
	}
	if !strings.HasPrefix(c.SocketDir(), tempRoot()) {
		t.Errorf("socket dir %s not under %s", c.SocketDir(), tempRoot())
	}
	if os.Geteuid() == 0 {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.PID()))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fieldOf(string(st), "Uid:"); uid == "0" {
			t.Errorf("postmaster runs as root")
		}
	}
}

func fieldOf(status, key string) string {
	for _, l := range strings.Split(status, "\n") {
		if f, ok := strings.CutPrefix(l, key); ok {
			return strings.Fields(f)[0]
		}
	}
	return ""
}

// TestRestartKeepsData: Restart ends sessions and keeps data on the same DSN; so does a crash
// (Kill) and the crash recovery of the next start.
func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	c := Start(t)
	dsn := c.CreateDB(t, "")
	old := connect(t, dsn)
	exec1(t, old, "CREATE TABLE t (v int)")
	exec1(t, old, "INSERT INTO t VALUES (1)")
	pid := c.PID()
	c.Restart(t)
	if c.PID() == pid || c.PID() == 0 {
		t.Errorf("postmaster pid %d after restart, %d before", c.PID(), pid)
	}
	if _, err := old.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Errorf("a session survived the restart")
	}
	conn := connect(t, dsn)
	exec1(t, conn, "INSERT INTO t VALUES (2)")
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.PID() != 0 {
		t.Errorf("PID = %d after Kill", c.PID())
	}
	c.Restart(t)
	if n := count(t, connect(t, dsn), "SELECT count(*) FROM t"); n != 2 {
		t.Errorf("%d rows after restart and crash, want 2", n)
	}
}

// TestStopEndsProcess: Stop ends the postmaster and its socket; Close removes the directory.
func TestStopEndsProcess(t *testing.T) {
	t.Parallel()
	c, err := New()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	dsn := c.DSN("postgres")
	connect(t, dsn)
	pid := c.PID()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if procID(pid) != "" {
		t.Errorf("postmaster %d still runs after Stop", pid)
	}
	if _, err := os.Stat(filepath.Join(c.SocketDir(), ".s.PGSQL.5432")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Errorf("connected to a stopped cluster")
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory after Close: %v", err)
	}
}

// TestShared: Shared hands every test the same running cluster.
func TestShared(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	if Shared(t) != c || c.PID() == 0 {
		t.Fatalf("Shared: %p, pid %d", c, c.PID())
	}
	connect(t, c.CreateDB(t, ""))
}

// TestOrphanDies: a test binary that is SIGKILLed, so runs no cleanup, takes its postmaster
// with it, and the next sweep removes the directory it left. The victim is this binary run
// again as TestHelperOrphan.
func TestOrphanDies(t *testing.T) {
	t.Parallel()
	Shared(t) // skips here, not in the helper, when PostgreSQL is missing
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOrphan$", "-test.v")
	cmd.Env = append(os.Environ(), "PGTEST_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid, dir := 0, ""
	var seen bytes.Buffer
	sc := bufio.NewScanner(out)
	for pid == 0 && sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if s, ok := strings.CutPrefix(sc.Text(), "postmaster "); ok {
			f := strings.Fields(s)
			pid, _ = strconv.Atoi(f[0])
			dir = f[1]
		}
	}
	if pid == 0 {
		t.Fatalf("the helper did not report its postmaster:\n%s", seen.String())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for procID(pid) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still runs 10s after its test binary was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the helper's directory: %v", err)
	}
	sweep(filepath.Dir(dir))
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sweep left the dead helper's directory %s: %v", dir, err)
	}
}

// TestHelperOrphan is TestOrphanDies's victim: it starts a cluster, says where, and waits to
// be killed. It does nothing in a normal run.
func TestHelperOrphan(t *testing.T) {
	if os.Getenv("PGTEST_HELPER") == "" {
		t.Skip("run by TestOrphanDies")
	}
	c := Start(t)
	fmt.Printf("postmaster %d %s\n", c.PID(), c.dir)
	time.Sleep(2 * time.Minute)
	t.Fatal("not killed")
}

// TestSweepKeepsLive: sweep removes only directories whose owner is gone, and leaves one with
// no owner file yet (being made) alone while it is recent.
func TestSweepKeepsLive(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name, owner string) string {
		d := filepath.Join(root, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	live := mk("pgtest-live", selfID())
	reused := mk("pgtest-reused", fmt.Sprintf("%d 1", os.Getpid())) // our pid, another start time
	gone := mk("pgtest-gone", fmt.Sprintf("%d 12345", dead.Process.Pid))
	making := mk("pgtest-making", "")
	other := mk("other-dir", fmt.Sprintf("%d 12345", dead.Process.Pid))
	sweep(root)
	for d, want := range map[string]bool{live: true, reused: false, gone: false, making: true, other: true} {
		_, err := os.Stat(d)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(d), got, want)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"TestFoo/sub_case-1":    "testfoo_sub_case_1",
		"9lives":                "db_9lives",
		"":                      "db_",
		strings.Repeat("a", 80): strings.Repeat("a", 48),
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"/tmp/x": "/tmp/x", "a b": `'a b'`, `it's`: `'it\'s'`, "": "''"} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
