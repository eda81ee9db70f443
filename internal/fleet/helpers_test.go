package fleet

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newDSN is a fresh database on the package's shared cluster.
func newDSN(t *testing.T) string {
	t.Helper()
	return pgtest.Shared(t).CreateDB(t, "")
}

func open(t *testing.T, dsn string, opts Options) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// newDB opens a fresh database of the shared cluster.
func newDB(t *testing.T, opts Options) (*DB, string) {
	t.Helper()
	dsn := newDSN(t)
	return open(t, dsn, opts), dsn
}

// raw is a plain connection, for what manual SQL would do.
func raw(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func sqlExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func sqlInt(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

var epSeq atomic.Int64

// sample is a new endpoint with a fresh id.
func sample() Endpoint {
	n := epSeq.Add(1)
	return Endpoint{
		ID:          fmt.Sprintf("ep_%06d", n),
		URL:         fmt.Sprintf("https://example.com/hook/%d", n),
		Name:        fmt.Sprintf("endpoint %d", n),
		Description: "a test endpoint",
		EventTypes:  []string{"incident.opened"},
		Active:      true,
		Secret:      fmt.Sprintf("whsec_c2VjcmV0LW51bWJlci0lMDZkLXBhZGRpbmctcGFk%06d", n),
	}
}

func create(t *testing.T, db *DB, ep Endpoint) Endpoint {
	t.Helper()
	out, err := db.Create(t.Context(), ep)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func get(t *testing.T, db *DB, id string) Endpoint {
	t.Helper()
	e, err := db.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
