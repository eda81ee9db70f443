package store

import (
	"slices"
	"time"
)

// Fleet mode: PostgreSQL is the source of truth for endpoints, and each relay applies what it
// learns from it (a notification, a resync, or its own write) as ordinary endpoint records in
// its WAL, so a relay restarted while PostgreSQL is down still knows the endpoints it last saw.
// These methods are that door; nothing here talks to PostgreSQL.

// KindSynced records that the store has seen the fleet's endpoints at least once: until then a
// relay in fleet mode refuses ingest rather than fan events out to nothing.
const KindSynced = 6

// EndpointState is an endpoint as the fleet holds it, secrets included.
type EndpointState struct {
	ID, URL, Name, Description string
	EventTypes                 []string
	Active                     bool
	DisabledReason             string
	ConsecutiveFailures        int
	Secret, PrevSecret         string
	PrevSecretExpires          time.Time
	CreatedAt, UpdatedAt       time.Time
	// Version orders the copies of one endpoint: a state is applied only when its Version is
	// greater than the one held (notifications can arrive late, or after a resync).
	Version int64
}

// SyncEndpoint applies an endpoint's state unless the store holds the same or a newer version.
// It returns once the change is durable and, when it disabled the endpoint, after OnStop.
func (s *Store) SyncEndpoint(st EndpointState) error {
	s.mu.Lock()
	cur, ok := s.endpoints[st.ID]
	if ok && cur.Version >= st.Version || !ValidID("ep_", st.ID) {
		s.mu.Unlock()
		return nil
	}
	ep := &endpoint{ID: st.ID, URL: st.URL, Name: st.Name, Description: st.Description,
		EventTypes: slices.Clone(st.EventTypes), Active: st.Active, DisabledReason: st.DisabledReason,
		ConsecutiveFailures: st.ConsecutiveFailures, Secret: st.Secret, PrevSecret: st.PrevSecret,
		PrevSecretExpires: st.PrevSecretExpires.UTC(), CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC(),
		Version: st.Version}
	if ep.EventTypes == nil {
		ep.EventTypes = []string{}
	}
	if ep.Active {
		ep.DisabledReason = ""
	}
	stopping := ok && cur.Active && !ep.Active
	ready, wait, err := s.commit(&Record{Kind: KindEndpointPut, Endpoint: ep})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := wait(); err != nil {
		return err
	}
	if stopping {
		s.stopped(st.ID)
	}
	s.notify(ready)
	return nil
}

// SyncDelete removes an endpoint the fleet deleted; one already gone is not an error.
func (s *Store) SyncDelete(id string) error {
	if err := s.DeleteEndpoint(id); err != nil && err != ErrNotFound {
		return err
	}
	return nil
}

// EndpointIDs lists the endpoints the store holds, for a resync to find those the fleet lacks.
func (s *Store) EndpointIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// MarkSynced records, once, that the fleet's endpoints were seen.
func (s *Store) MarkSynced() error {
	s.mu.Lock()
	if s.synced {
		s.mu.Unlock()
		return nil
	}
	_, wait, err := s.commit(&Record{Kind: KindSynced})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return wait()
}

// Synced reports whether the fleet's endpoints were ever seen (in this run or, through the WAL
// and snapshots, an earlier one).
func (s *Store) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// NewEndpointID makes an endpoint id, for an endpoint created in the fleet's PostgreSQL rather
// than here: ids from any relay sort by creation time, as the store's own do.
func (s *Store) NewEndpointID() string { return s.ids.next("ep_", s.now()) }

// EndpointStates returns every endpoint the store holds, secrets included, in id order (which
// is creation order): what `blametrail-relay store import` copies into the fleet. Version is
// the fleet's, 0 for an endpoint created on a single relay.
func (s *Store) EndpointStates() ([]EndpointState, error) {
	var out []EndpointState
	if err := s.read(func() {
		out = make([]EndpointState, 0, len(s.order))
		for _, id := range s.order {
			out = append(out, s.endpoints[id].state())
		}
	}); err != nil {
		return nil, err
	}
	return out, nil
}

func (ep *endpoint) state() EndpointState {
	st := EndpointState{ID: ep.ID, URL: ep.URL, Name: ep.Name, Description: ep.Description,
		EventTypes: slices.Clone(ep.EventTypes), Active: ep.Active, DisabledReason: ep.DisabledReason,
		ConsecutiveFailures: ep.ConsecutiveFailures, Secret: ep.Secret, PrevSecret: ep.PrevSecret,
		PrevSecretExpires: ep.PrevSecretExpires, CreatedAt: ep.CreatedAt, UpdatedAt: ep.UpdatedAt, Version: ep.Version}
	if st.EventTypes == nil {
		st.EventTypes = []string{}
	}
	return st
}
