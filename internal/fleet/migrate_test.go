package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMigrateOnceConcurrently: relays opening a fresh database at once migrate it once (a
// migration applied twice would fail: they are plain CREATEs), and opening again changes
// nothing.
func TestMigrateOnceConcurrently(t *testing.T) {
	t.Parallel()
	dsn := newDSN(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			db, err := Open(t.Context(), dsn, Options{})
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
		}
	}
	open(t, dsn, Options{}) // and once more, alone
	conn := raw(t, dsn)
	if got := sqlInt(t, conn, "SELECT count(*) FROM blametrail_schema"); got != int64(len(migrations)) {
		t.Errorf("%d schema rows, want %d", got, len(migrations))
	}
	if got := sqlInt(t, conn, "SELECT max(version) FROM blametrail_schema"); got != int64(SchemaVersion) {
		t.Errorf("schema version %d, want %d", got, SchemaVersion)
	}
	// The migration created what the rest relies on.
	for _, rel := range []string{"blametrail_endpoints", "blametrail_failures", "blametrail_endpoint_version", "blametrail_deliveries"} {
		if sqlInt(t, conn, "SELECT count(*) FROM pg_class WHERE relname = $1", rel) != 1 {
			t.Errorf("no %s", rel)
		}
	}
}

// TestSchemaTooNew: a relay older than the database's schema refuses it, saying which
// versions, and writes nothing.
func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	_, dsn := newDB(t, Options{})
	conn := raw(t, dsn)
	sqlExec(t, conn, "INSERT INTO blametrail_schema (version) VALUES ($1)", SchemaVersion+7)
	db, err := Open(t.Context(), dsn, Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded on a newer schema")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("err = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", SchemaVersion+7), fmt.Sprintf("up to %d", SchemaVersion)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestOpenErrors: a malformed DSN, a missing server and a server that never answers are
// errors with context, each within the connect timeout, not hangs.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	// A TCP listener that accepts (the kernel's backlog does) and never speaks.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, tc := range []struct{ name, dsn, want string }{
		{"malformed", "postgres://u:hunter2@host:notaport/db", "parse the store DSN"},
		{"no server", "host=" + t.TempDir() + " dbname=x user=postgres sslmode=disable", "fleet: connect"},
		{"silent server", "host=" + host + " port=" + port + " dbname=x user=postgres sslmode=disable", "fleet: connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			db, err := Open(context.Background(), tc.dsn, Options{ConnectTimeout: 500 * time.Millisecond})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open took %s", d)
			}
		})
	}
	if _, err := Open(context.Background(), "host=/nonexistent", Options{SecretKey: make([]byte, 16)}); err == nil ||
		!strings.Contains(err.Error(), "16 bytes, want 32") {
		t.Errorf("16-byte key: %v", err)
	}
}

// TestPing: Ping answers while the server runs.
func TestPing(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	if err := db.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromV1: a database a relay of schema version 1 made, with an endpoint in it, is
// brought to SchemaVersion: the endpoint stays, and its deliveries can be written.
func TestMigrateFromV1(t *testing.T) {
	t.Parallel()
	dsn := newDSN(t)
	conn := raw(t, dsn)
	sqlExec(t, conn, `CREATE TABLE blametrail_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
	sqlExec(t, conn, schemaV1)
	sqlExec(t, conn, "INSERT INTO blametrail_schema (version) VALUES (1)")
	sqlExec(t, conn, "INSERT INTO blametrail_endpoints (id, url, name, secret) VALUES ('ep_old', 'https://example.com/h', 'old', 'whsec_x')")
	db := open(t, dsn, Options{})
	if got := sqlInt(t, conn, "SELECT max(version) FROM blametrail_schema"); got != int64(SchemaVersion) {
		t.Fatalf("schema version %d, want %d", got, SchemaVersion)
	}
	if e := get(t, db, "ep_old"); e.Name != "old" {
		t.Fatalf("endpoint after the migration: %+v", e)
	}
	if n := upsert(t, db, "r", row("ep_old", "succeeded", 1, 4)); n != 1 {
		t.Fatalf("wrote %d deliveries", n)
	}
}

// TestIdentity: a database keeps its identity across connections; another database has its own.
func TestIdentity(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{})
	id, err := db.Identity(t.Context())
	if err != nil || id == "" {
		t.Fatalf("Identity: %q, %v", id, err)
	}
	if again, _ := open(t, dsn, Options{}).Identity(t.Context()); again != id {
		t.Errorf("reopened: %q, want %q", again, id)
	}
	other, _ := newDB(t, Options{})
	if oid, _ := other.Identity(t.Context()); oid == id {
		t.Errorf("two databases share the identity %q", id)
	}
}
