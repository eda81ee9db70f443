package fleet

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
)

// recorder is a relay's copy of the endpoints as Watch keeps it.
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	copy    map[string]Endpoint
	resyncs int
	changes []Change
	errs    []error
	signal  chan struct{}
}

// watch runs Watch with a recorder until the test ends, and checks that it then returns.
func watch(t *testing.T, db *DB, o WatchOptions) *recorder {
	t.Helper()
	r := &recorder{t: t, copy: map[string]Endpoint{}, signal: make(chan struct{}, 1)}
	o.OnResync = func(all []Endpoint) {
		r.mu.Lock()
		defer r.mu.Unlock()
		clear(r.copy)
		for _, e := range all {
			r.copy[e.ID] = e
		}
		r.resyncs++
		r.poke()
	}
	o.OnChange = func(c Change) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if old, ok := r.copy[c.ID]; ok && !c.Deleted && c.Endpoint.Version <= old.Version {
			t.Errorf("change of %s with version %d after version %d", c.ID, c.Endpoint.Version, old.Version)
		}
		r.changes = append(r.changes, c)
		if c.Deleted {
			delete(r.copy, c.ID)
		} else {
			r.copy[c.ID] = c.Endpoint
		}
		r.poke()
	}
	o.OnError = func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.errs = append(r.errs, err)
		r.poke()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- db.Watch(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Watch still running 5s after its context ended")
		}
	})
	return r
}

func (r *recorder) poke() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// wait waits until cond holds on the copy, or fails the test after within.
func (r *recorder) wait(within time.Duration, what string, cond func(r *recorder) bool) {
	r.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.signal:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			r.t.Fatalf("not within %s: %s (resyncs %d, errors %v)", within, what, r.resyncs, r.errs)
		}
	}
}

// has waits until the copy holds endpoint id satisfying cond.
func (r *recorder) has(within time.Duration, id, what string, cond func(Endpoint) bool) {
	r.t.Helper()
	r.wait(within, id+": "+what, func(r *recorder) bool {
		e, ok := r.copy[id]
		return ok && cond(e)
	})
}

func (r *recorder) lacks(within time.Duration, id string) {
	r.t.Helper()
	r.wait(within, id+" deleted", func(r *recorder) bool { _, ok := r.copy[id]; return !ok })
}

// TestWatchSeesEveryWriter: a relay's copy follows, within 1 s each, the writes of another
// relay (another pool) and of manual SQL, after a first resync with what existed before.
func TestWatchSeesEveryWriter(t *testing.T) {
	t.Parallel()
	dsn := newDSN(t)
	a, b := open(t, dsn, Options{}), open(t, dsn, Options{})
	ctx := t.Context()
	pre := create(t, b, sample())
	r := watch(t, a, WatchOptions{})
	r.has(5*time.Second, pre.ID, "in the first resync", func(Endpoint) bool { return true })

	const within = time.Second
	ep := create(t, b, sample())
	r.has(within, ep.ID, "created", func(e Endpoint) bool { return e.Secret == ep.Secret })
	if _, err := b.Update(ctx, ep.ID, api.EndpointInput{URL: ptr("https://example.net/moved")}); err != nil {
		t.Fatal(err)
	}
	r.has(within, ep.ID, "URL changed", func(e Endpoint) bool { return e.URL == "https://example.net/moved" })
	if _, err := b.RotateSecret(ctx, ep.ID, secretC, time.Hour); err != nil {
		t.Fatal(err)
	}
	r.has(within, ep.ID, "secret rotated", func(e Endpoint) bool { return e.Secret == secretC && e.PrevSecret == ep.Secret })
	if _, err := b.RecordFailure(ctx, ep.ID, "d1", 1); err != nil {
		t.Fatal(err)
	}
	r.has(within, ep.ID, "auto-disabled", func(e Endpoint) bool { return !e.Active && e.DisabledReason == api.DisabledConsecutiveFailures })
	if err := b.Delete(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	r.lacks(within, ep.ID)

	conn := raw(t, dsn)
	sqlExec(t, conn, `INSERT INTO blametrail_endpoints (id, url, name, secret) VALUES ('ep_bysql', 'https://sql.example', 'by hand', $1)`, secretA)
	r.has(within, "ep_bysql", "inserted by SQL", func(e Endpoint) bool { return e.Active && e.Secret == secretA })
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET active = false WHERE id = 'ep_bysql'`)
	r.has(within, "ep_bysql", "disabled by SQL", func(e Endpoint) bool { return !e.Active && e.DisabledReason == api.DisabledManual })
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET id = 'ep_renamed' WHERE id = 'ep_bysql'`)
	r.has(within, "ep_renamed", "id changed by SQL", func(Endpoint) bool { return true })
	r.lacks(within, "ep_bysql")
	sqlExec(t, conn, `DELETE FROM blametrail_endpoints WHERE id = 'ep_renamed'`)
	r.lacks(within, "ep_renamed")

	// A notification for an endpoint that did not change delivers nothing: the version says
	// the copy is current. The next write is the barrier that shows it was processed.
	r.mu.Lock()
	before := len(r.changes)
	r.mu.Unlock()
	sqlExec(t, conn, `SELECT pg_notify($1, $2)`, NotifyChannel, pre.ID)
	barrier := create(t, b, sample())
	r.has(within, barrier.ID, "created", func(Endpoint) bool { return true })
	r.mu.Lock()
	for _, c := range r.changes[before:] {
		if c.ID == pre.ID {
			t.Errorf("an unchanged endpoint was delivered again: %+v", c)
		}
	}
	r.mu.Unlock()
}

// silentUpdate changes an endpoint's name with the notify trigger off: only a resync can tell
// a relay. It checks that no notification slipped through.
func silentUpdate(t *testing.T, dsn string, r *recorder, id, name string) {
	t.Helper()
	before := resyncs(r)
	conn := raw(t, dsn)
	sqlExec(t, conn, `ALTER TABLE blametrail_endpoints DISABLE TRIGGER blametrail_endpoints_notify`)
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET name = $2 WHERE id = $1`, id, name)
	sqlExec(t, conn, `ALTER TABLE blametrail_endpoints ENABLE TRIGGER blametrail_endpoints_notify`)
	time.Sleep(300 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.copy[id].Name == name && r.resyncs == before {
		t.Fatalf("the silent update was seen without a resync")
	}
}

func resyncs(r *recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncs
}

// TestWatchResyncAfterTerminate: when its connection is terminated, Watch reconnects and
// resyncs, so a change whose notification it missed reaches the copy.
func TestWatchResyncAfterTerminate(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{})
	ep := create(t, db, sample())
	r := watch(t, db, WatchOptions{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	r.has(5*time.Second, ep.ID, "first resync", func(Endpoint) bool { return true })
	silentUpdate(t, dsn, r, ep.ID, "renamed unnoticed")
	n := sqlInt(t, raw(t, dsn), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, appName+" watch")
	if n != 1 {
		t.Fatalf("terminated %d watch connections, want 1", n)
	}
	r.has(5*time.Second, ep.ID, "resynced after the connection was terminated", func(e Endpoint) bool { return e.Name == "renamed unnoticed" })
	r.mu.Lock()
	if r.resyncs < 2 || len(r.errs) == 0 {
		t.Errorf("resyncs %d, errors %v", r.resyncs, r.errs)
	}
	r.mu.Unlock()
	// Notifications flow on the new connection.
	other := create(t, db, sample())
	r.has(time.Second, other.ID, "created after the reconnect", func(Endpoint) bool { return true })
}

// TestWatchResyncAfterRestart: PostgreSQL restarted under a watching relay: it reconnects once
// the server is back, resyncs, and follows writes again.
func TestWatchResyncAfterRestart(t *testing.T) {
	t.Parallel()
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "")
	db := open(t, dsn, Options{})
	ep := create(t, db, sample())
	r := watch(t, db, WatchOptions{MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	r.has(5*time.Second, ep.ID, "first resync", func(Endpoint) bool { return true })
	silentUpdate(t, dsn, r, ep.ID, "renamed unnoticed")
	before := resyncs(r)
	c.Restart(t)
	r.has(10*time.Second, ep.ID, "resynced after the restart", func(e Endpoint) bool { return e.Name == "renamed unnoticed" })
	if resyncs(r) <= before {
		t.Errorf("no new resync")
	}
	conn := raw(t, dsn)
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET url = 'https://after.example' WHERE id = $1`, ep.ID)
	r.has(time.Second, ep.ID, "updated after the restart", func(e Endpoint) bool { return e.URL == "https://after.example" })
}

// TestWatchPeriodicResync: with no reconnection at all, the periodic resync brings what no
// notification told.
func TestWatchPeriodicResync(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{})
	ep := create(t, db, sample())
	r := watch(t, db, WatchOptions{ResyncInterval: 500 * time.Millisecond})
	r.has(5*time.Second, ep.ID, "first resync", func(Endpoint) bool { return true })
	silentUpdate(t, dsn, r, ep.ID, "renamed unnoticed")
	r.has(5*time.Second, ep.ID, "periodic resync", func(e Endpoint) bool { return e.Name == "renamed unnoticed" })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) != 0 {
		t.Errorf("errors: %v", r.errs)
	}
}

// TestWatchUnreadableSecret: a row this relay cannot decrypt fails the resync (OnError says
// why, the copy is not touched) until it is fixed; then the copy catches up.
func TestWatchUnreadableSecret(t *testing.T) {
	t.Parallel()
	dsn := newDSN(t)
	keyed := open(t, dsn, Options{SecretKey: key(t)})
	plain := open(t, dsn, Options{})
	sealed := create(t, keyed, sample())
	r := watch(t, plain, WatchOptions{MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	r.wait(5*time.Second, "an error about the key", func(r *recorder) bool {
		for _, err := range r.errs {
			if errors.Is(err, ErrSecretKey) {
				return true
			}
		}
		return false
	})
	if resyncs(r) != 0 {
		t.Fatalf("resynced with an unreadable row")
	}
	if err := keyed.Delete(t.Context(), sealed.ID); err != nil {
		t.Fatal(err)
	}
	ok := create(t, plain, sample())
	r.has(5*time.Second, ok.ID, "resynced once the row is gone", func(Endpoint) bool { return true })
}
