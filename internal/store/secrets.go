package store

import (
	"errors"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// ErrSecretInUse refuses a rotation to the secret that already signs (the current one, or the
// previous one while it is still valid): the overlap would then retire nothing.
var ErrSecretInUse = errors.New("store: secret already in use by this endpoint")

// RotateSecret makes secret the endpoint's signing secret. With overlap > 0 the current
// secret keeps signing next to it until now+overlap; with 0 it stops at once. A previous
// secret still in its own overlap is dropped: at most two secrets sign. The expiry is fixed in
// the record here, before it is logged, so a replay restores the same overlap.
func (s *Store) RotateSecret(id, secret string, overlap time.Duration) (api.SecretInfo, error) {
	s.mu.Lock()
	cur, ok := s.endpoints[id]
	if !ok {
		wait := s.barrier()
		s.mu.Unlock()
		return api.SecretInfo{}, notFound(wait)
	}
	now := s.now()
	if secret == cur.Secret || secret == cur.PrevSecret && now.Before(cur.PrevSecretExpires) {
		// Judged on state that must be durable before it is reported.
		wait := s.barrier()
		s.mu.Unlock()
		if err := wait(); err != nil {
			return api.SecretInfo{}, err
		}
		return api.SecretInfo{}, ErrSecretInUse
	}
	ep := *cur
	ep.deliveries, ep.removed, ep.history, ep.histHead, ep.histLive = nil, 0, nil, 0, 0
	ep.PrevSecret, ep.PrevSecretExpires = "", time.Time{}
	if overlap > 0 {
		ep.PrevSecret, ep.PrevSecretExpires = cur.Secret, now.Add(overlap)
	}
	ep.Secret = secret
	ep.UpdatedAt = now
	_, wait, err := s.commit(&Record{Kind: KindEndpointPut, Endpoint: &ep})
	var info api.SecretInfo
	if err == nil {
		info = s.endpoints[id].secretInfo(now)
	}
	s.mu.Unlock()
	if err != nil {
		return api.SecretInfo{}, err
	}
	if err := wait(); err != nil {
		return api.SecretInfo{}, err
	}
	return info, nil
}

// SecretInfo returns an endpoint's signing secret and, while the previous secret still signs,
// when it stops.
func (s *Store) SecretInfo(id string) (info api.SecretInfo, err error) {
	err = ErrNotFound
	if rerr := s.read(func() {
		if ep, ok := s.endpoints[id]; ok {
			info, err = ep.secretInfo(s.now()), nil
		}
	}); rerr != nil {
		return api.SecretInfo{}, rerr
	}
	return info, err
}

func (ep *endpoint) secretInfo(now time.Time) api.SecretInfo {
	info := api.SecretInfo{Secret: ep.Secret}
	if ep.PrevSecret != "" && now.Before(ep.PrevSecretExpires) {
		t := ep.PrevSecretExpires
		info.PreviousSecretExpiresAt = &t
	}
	return info
}
