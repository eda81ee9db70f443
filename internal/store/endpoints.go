package store

import (
	"errors"
	"slices"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// ErrBadCursor is a pagination cursor this store did not hand out.
var ErrBadCursor = errors.New("store: invalid cursor")

// CreateEndpoint adds an endpoint with the given signing secret and returns it, secret included.
func (s *Store) CreateEndpoint(in api.EndpointInput, secret string) (api.Endpoint, error) {
	s.mu.Lock()
	now := s.now()
	ep := &endpoint{
		ID:         s.ids.next("ep_", now),
		URL:        *in.URL,
		Name:       *in.Name,
		EventTypes: []string{},
		Active:     true,
		Secret:     secret,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if in.Description != nil {
		ep.Description = *in.Description
	}
	if in.EventTypes != nil {
		ep.EventTypes = *in.EventTypes
	}
	if in.Active != nil && !*in.Active {
		ep.Active = false
		ep.DisabledReason = api.DisabledManual
	}
	_, wait, err := s.commit(&Record{Kind: KindEndpointPut, Endpoint: ep})
	var view api.Endpoint
	if err == nil {
		view = s.endpoints[ep.ID].view()
		view.Secret = secret
	}
	s.mu.Unlock()
	if err != nil {
		return api.Endpoint{}, err
	}
	return view, wait()
}

// UpdateEndpoint applies the fields present in in. Setting Active to true clears the disabled
// reason and the failure counter and resumes held deliveries.
func (s *Store) UpdateEndpoint(id string, in api.EndpointInput) (api.Endpoint, error) {
	s.mu.Lock()
	cur, ok := s.endpoints[id]
	if !ok {
		wait := s.barrier()
		s.mu.Unlock()
		return api.Endpoint{}, notFound(wait)
	}
	ep := *cur
	ep.deliveries, ep.removed, ep.history, ep.histHead, ep.histLive = nil, 0, nil, 0, 0
	if in.URL != nil {
		ep.URL = *in.URL
	}
	if in.Name != nil {
		ep.Name = *in.Name
	}
	if in.Description != nil {
		ep.Description = *in.Description
	}
	if in.EventTypes != nil {
		ep.EventTypes = *in.EventTypes
	}
	if in.Active != nil {
		switch {
		case *in.Active:
			ep.Active, ep.DisabledReason, ep.ConsecutiveFailures = true, "", 0
		case ep.Active:
			// An endpoint the relay already disabled keeps the reason it was disabled for.
			ep.Active, ep.DisabledReason = false, api.DisabledManual
		}
	}
	ep.UpdatedAt = s.now()
	stopping := cur.Active && !ep.Active
	ready, wait, err := s.commit(&Record{Kind: KindEndpointPut, Endpoint: &ep})
	var view api.Endpoint
	if err == nil {
		view = s.endpoints[id].view()
	}
	s.mu.Unlock()
	if err != nil {
		return api.Endpoint{}, err
	}
	if err := wait(); err != nil {
		return api.Endpoint{}, err
	}
	if stopping {
		s.stopped(id)
	}
	s.notify(ready)
	return view, nil
}

// DeleteEndpoint removes an endpoint, its queued deliveries and its history.
func (s *Store) DeleteEndpoint(id string) error {
	s.mu.Lock()
	if _, ok := s.endpoints[id]; !ok {
		wait := s.barrier()
		s.mu.Unlock()
		return notFound(wait)
	}
	_, wait, err := s.commit(&Record{Kind: KindEndpointDelete, EndpointID: id})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := wait(); err != nil {
		return err
	}
	s.stopped(id)
	return nil
}

// notFound is ErrNotFound once the state that said so is durable (a delete whose record then
// failed must not have been reported done).
func notFound(wait func() error) error {
	if err := wait(); err != nil {
		return err
	}
	return ErrNotFound
}

// Endpoint returns one endpoint without its secret.
func (s *Store) Endpoint(id string) (v api.Endpoint, err error) {
	err = ErrNotFound
	if rerr := s.read(func() {
		if ep, ok := s.endpoints[id]; ok {
			v, err = ep.view(), nil
		}
	}); rerr != nil {
		return api.Endpoint{}, rerr
	}
	return v, err
}

// Secret returns an endpoint's signing secret.
func (s *Store) Secret(id string) (secret string, err error) {
	err = ErrNotFound
	if rerr := s.read(func() {
		if ep, ok := s.endpoints[id]; ok {
			secret, err = ep.Secret, nil
		}
	}); rerr != nil {
		return "", rerr
	}
	return secret, err
}

// Endpoints returns up to limit endpoints created after the one named by cursor ("" = from
// the first), oldest first, and the cursor of the next page ("" when there is none).
func (s *Store) Endpoints(cursor string, limit int) (out []api.Endpoint, next string, err error) {
	if cursor != "" && !ValidID("ep_", cursor) {
		return nil, "", ErrBadCursor
	}
	if err := s.read(func() { out, next = s.endpointPage(cursor, limit) }); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// endpointPage is a page of Endpoints. Callers hold s.mu.
func (s *Store) endpointPage(cursor string, limit int) ([]api.Endpoint, string) {
	start := 0
	if cursor != "" {
		i, found := slices.BinarySearch(s.order, cursor)
		if found {
			i++
		}
		start = i
	}
	out := make([]api.Endpoint, 0, min(limit, len(s.order)-start))
	for _, id := range s.order[start:] {
		if len(out) == limit {
			return out, out[len(out)-1].ID
		}
		out = append(out, s.endpoints[id].view())
	}
	return out, ""
}

func (ep *endpoint) view() api.Endpoint {
	v := api.Endpoint{
		ID:                  ep.ID,
		URL:                 ep.URL,
		Name:                ep.Name,
		Description:         ep.Description,
		EventTypes:          slices.Clone(ep.EventTypes),
		Active:              ep.Active,
		ConsecutiveFailures: ep.ConsecutiveFailures,
		CreatedAt:           ep.CreatedAt,
		UpdatedAt:           ep.UpdatedAt,
	}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if ep.DisabledReason != "" {
		r := ep.DisabledReason
		v.DisabledReason = &r
	}
	return v
}
