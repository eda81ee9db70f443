package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Watch defaults.
const (
	DefaultResyncInterval = time.Minute
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	// watchQueryTimeout bounds each read Watch makes, so a connection that went silent (a
	// network partition, no RST) is found out and replaced.
	watchQueryTimeout = 30 * time.Second
)

// Change is one endpoint that changed: its state as read after the notification, or its
// deletion.
type Change struct {
	ID       string
	Deleted  bool
	Endpoint Endpoint // when !Deleted
}

// WatchOptions says what Watch calls and how often it resyncs.
type WatchOptions struct {
	// OnResync receives every endpoint, in id order, as of one snapshot: after every
	// (re)connect and every ResyncInterval. An endpoint the caller holds and the list lacks was
	// deleted. Required.
	OnResync func(all []Endpoint)
	// OnChange receives each endpoint notified since. Required.
	OnChange func(Change)
	// OnError, when set, hears why a connection or a read failed; Watch then reconnects.
	OnError func(error)
	// ResyncInterval: 0 means DefaultResyncInterval.
	ResyncInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a reconnection, which doubles from the
	// first to the second while attempts fail (with jitter, so a fleet does not reconnect in
	// step) and starts over after a successful resync. 0 means the defaults.
	MinBackoff, MaxBackoff time.Duration
}

// Watch keeps the caller's copy of the endpoints current until ctx ends, then returns nil. It
// holds its own connection, not one from the pool (LISTEN needs a session; transaction-mode
// poolers in front of PostgreSQL break it), on which it LISTENs on NotifyChannel, then reads
// every endpoint (OnResync), then for each notification reads the endpoints named (OnChange).
// When the connection fails it reports why (OnError), waits, reconnects and resyncs:
// notifications sent while it was away are lost, the resync makes up for them.
//
// Guarantees. The callbacks are called from one goroutine, one at a time, OnResync first; a
// slow callback delays the next read, never loses a change. Listening starts before the resync
// reads, so no committed write falls between the two. All reads of one connection see the
// database moving forward, so per endpoint the Versions delivered increase; a change read
// again with the Version already delivered is not delivered twice. A deletion may be delivered
// more than once. Across endpoints there is no order. A caller that also applies results of
// its own writes (Create, Update …) keeps, per endpoint, the copy with the greater Version.
// A row whose secret cannot be read (ErrSecretKey) fails the read, which is retried as a
// connection failure: the caller keeps its previous copy, and OnError says why.
func (db *DB) Watch(ctx context.Context, o WatchOptions) error {
	if o.OnResync == nil || o.OnChange == nil {
		return errors.New("fleet: watch: OnResync and OnChange are required")
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	backoff := o.MinBackoff
	for {
		synced, err := db.watchSession(ctx, o)
		if ctx.Err() != nil {
			return nil
		}
		if o.OnError != nil {
			o.OnError(err)
		}
		if synced {
			backoff = o.MinBackoff
		}
		// Full jitter over the upper half: between backoff/2 and backoff.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// watchSession runs one connection until it fails or ctx ends, and reports whether it
// completed a resync.
func (db *DB) watchSession(ctx context.Context, o WatchOptions) (synced bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, db.watchConf.Copy())
	if err != nil {
		return false, fmt.Errorf("fleet: watch: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	w := &watcher{db: db, conn: conn, o: o, seen: map[string]int64{}}
	if err := w.query(ctx, "listen", func(ctx context.Context) error {
		_, err := conn.Exec(ctx, "LISTEN "+NotifyChannel)
		return err
	}); err != nil {
		return false, err
	}
	if err := w.resync(ctx); err != nil {
		return false, err
	}
	next := time.Now().Add(o.ResyncInterval)
	for {
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, nil
		case err != nil && !time.Now().Before(next) && !conn.IsClosed():
			// Only the wait for the next resync ended; the connection is fine.
			if err := w.resync(ctx); err != nil {
				return true, err
			}
			next = time.Now().Add(o.ResyncInterval)
			continue
		case err != nil:
			return true, fmt.Errorf("fleet: watch: wait for notifications: %w", err)
		}
		// Notifications already received are taken with this one; a context that is already
		// done makes WaitForNotification return them without reading the connection.
		ids := []string{n.Payload}
		done, stop := context.WithCancel(ctx)
		stop()
		for {
			n, _ := conn.WaitForNotification(done)
			if n == nil {
				break
			}
			ids = append(ids, n.Payload)
		}
		if err := w.changes(ctx, ids); err != nil {
			return true, err
		}
	}
}

type watcher struct {
	db   *DB
	conn *pgx.Conn
	o    WatchOptions
	seen map[string]int64 // id → Version last delivered
}

// query runs one read on the watch connection under watchQueryTimeout.
func (w *watcher) query(ctx context.Context, what string, f func(context.Context) error) error {
	qctx, cancel := context.WithTimeout(ctx, watchQueryTimeout)
	defer cancel()
	if err := f(qctx); err != nil {
		return fmt.Errorf("fleet: watch: %s: %w", what, err)
	}
	return nil
}

func (w *watcher) resync(ctx context.Context) error {
	var all []Endpoint
	err := w.query(ctx, "resync", func(ctx context.Context) error {
		rows, err := w.conn.Query(ctx, `SELECT `+columns+` FROM blametrail_endpoints ORDER BY id`)
		if err != nil {
			return err
		}
		all, err = w.db.collect(rows)
		return err
	})
	if err != nil {
		return err
	}
	clear(w.seen)
	for _, e := range all {
		w.seen[e.ID] = e.Version
	}
	w.o.OnResync(all)
	return nil
}

// changes reads the endpoints named by notifications and delivers what is new.
func (w *watcher) changes(ctx context.Context, ids []string) error {
	var got []Endpoint
	err := w.query(ctx, "read changed endpoints", func(ctx context.Context) error {
		rows, err := w.conn.Query(ctx, `SELECT `+columns+` FROM blametrail_endpoints WHERE id = ANY($1) ORDER BY id`, ids)
		if err != nil {
			return err
		}
		got, err = w.db.collect(rows)
		return err
	})
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(got))
	for _, e := range got {
		present[e.ID] = true
		if v, ok := w.seen[e.ID]; ok && e.Version <= v {
			continue // already delivered (by the resync, or an earlier notification of it)
		}
		w.seen[e.ID] = e.Version
		w.o.OnChange(Change{ID: e.ID, Endpoint: e})
	}
	for _, id := range ids {
		if !present[id] {
			present[id] = true // a notification repeated within the batch
			delete(w.seen, id)
			w.o.OnChange(Change{ID: id, Deleted: true})
		}
	}
	return nil
}
