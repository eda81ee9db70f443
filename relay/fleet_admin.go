package relay

import (
	"context"
	"errors"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// endpointAdmin is what the admin API does to endpoints: the local store's methods on a
// single relay, PostgreSQL (then the local copy) in fleet mode. Errors are the store's
// sentinels, plus errStoreUnavailable and errStoreUnknown in fleet mode.
type endpointAdmin interface {
	Create(in api.EndpointInput, secret string) (api.Endpoint, error)
	Get(id string) (api.Endpoint, error)
	List(cursor string, limit int) ([]api.Endpoint, string, error)
	Update(id string, in api.EndpointInput) (api.Endpoint, error)
	Delete(id string) error
	SecretInfo(id string) (api.SecretInfo, error)
	Rotate(id, secret string, overlap time.Duration) (api.SecretInfo, error)
	// Deliveries lists an endpoint's deliveries: this relay's, or the fleet's (fleet_history.go).
	Deliveries(id, cursor string, limit int) ([]api.Delivery, string, error)
}

type localAdmin struct{ st *store.Store }

func (a localAdmin) Create(in api.EndpointInput, secret string) (api.Endpoint, error) {
	return a.st.CreateEndpoint(in, secret)
}
func (a localAdmin) Get(id string) (api.Endpoint, error) { return a.st.Endpoint(id) }
func (a localAdmin) List(cursor string, limit int) ([]api.Endpoint, string, error) {
	return a.st.Endpoints(cursor, limit)
}
func (a localAdmin) Update(id string, in api.EndpointInput) (api.Endpoint, error) {
	return a.st.UpdateEndpoint(id, in)
}
func (a localAdmin) Delete(id string) error                       { return a.st.DeleteEndpoint(id) }
func (a localAdmin) SecretInfo(id string) (api.SecretInfo, error) { return a.st.SecretInfo(id) }
func (a localAdmin) Rotate(id, secret string, overlap time.Duration) (api.SecretInfo, error) {
	return a.st.RotateSecret(id, secret, overlap)
}
func (a localAdmin) Deliveries(id, cursor string, limit int) ([]api.Delivery, string, error) {
	return a.st.Deliveries(id, cursor, limit)
}

// fleetAdmin reads and writes PostgreSQL, so every relay answers for the fleet (Terraform sees
// its own writes through any relay), and applies its own writes to the local copy at once, so
// this relay delivers with them without waiting for the notification.
type fleetAdmin struct{ f *fleetLink }

func (a fleetAdmin) db() (*fleet.DB, context.Context, context.CancelFunc, error) {
	db := a.f.db.Load()
	if db == nil {
		return nil, nil, nil, errStoreUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	return db, ctx, cancel, nil
}

func (a fleetAdmin) Create(in api.EndpointInput, secret string) (api.Endpoint, error) {
	db, ctx, cancel, err := a.db()
	if err != nil {
		return api.Endpoint{}, err
	}
	defer cancel()
	ep := fleet.Endpoint{ID: a.f.st.NewEndpointID(), URL: *in.URL, Name: *in.Name, EventTypes: []string{},
		Active: true, Secret: secret}
	if in.Description != nil {
		ep.Description = *in.Description
	}
	if in.EventTypes != nil {
		ep.EventTypes = *in.EventTypes
	}
	if in.Active != nil && !*in.Active {
		ep.Active, ep.DisabledReason = false, api.DisabledManual
	}
	out, err := db.Create(ctx, ep)
	if err != nil {
		return api.Endpoint{}, adminError(err, true)
	}
	a.f.apply(out)
	v := out.View()
	v.Secret = out.Secret
	return v, nil
}

func (a fleetAdmin) Get(id string) (api.Endpoint, error) {
	db, ctx, cancel, err := a.db()
	if err != nil {
		return api.Endpoint{}, err
	}
	defer cancel()
	e, err := db.Get(ctx, id)
	if err != nil {
		return api.Endpoint{}, adminError(err, false)
	}
	return e.View(), nil
}

func (a fleetAdmin) List(cursor string, limit int) ([]api.Endpoint, string, error) {
	if cursor != "" && !store.ValidID("ep_", cursor) {
		return nil, "", store.ErrBadCursor
	}
	db, ctx, cancel, err := a.db()
	if err != nil {
		return nil, "", err
	}
	defer cancel()
	eps, next, err := db.List(ctx, cursor, limit)
	if err != nil {
		return nil, "", adminError(err, false)
	}
	out := make([]api.Endpoint, len(eps))
	for i, e := range eps {
		out[i] = e.View()
	}
	return out, next, nil
}

func (a fleetAdmin) Update(id string, in api.EndpointInput) (api.Endpoint, error) {
	db, ctx, cancel, err := a.db()
	if err != nil {
		return api.Endpoint{}, err
	}
	defer cancel()
	e, err := db.Update(ctx, id, in)
	if err != nil {
		return api.Endpoint{}, adminError(err, true)
	}
	a.f.apply(e)
	return e.View(), nil
}

func (a fleetAdmin) Delete(id string) error {
	db, ctx, cancel, err := a.db()
	if err != nil {
		return err
	}
	defer cancel()
	if err := db.Delete(ctx, id); err != nil {
		return adminError(err, true)
	}
	if err := a.f.st.SyncDelete(id); err != nil {
		a.f.log.Error("fleet: apply own deletion locally", "endpoint_id", id, "err", err)
	}
	return nil
}

func (a fleetAdmin) SecretInfo(id string) (api.SecretInfo, error) {
	db, ctx, cancel, err := a.db()
	if err != nil {
		return api.SecretInfo{}, err
	}
	defer cancel()
	info, err := db.SecretInfo(ctx, id)
	return info, adminError(err, false)
}

func (a fleetAdmin) Rotate(id, secret string, overlap time.Duration) (api.SecretInfo, error) {
	db, ctx, cancel, err := a.db()
	if err != nil {
		return api.SecretInfo{}, err
	}
	defer cancel()
	info, err := db.RotateSecret(ctx, id, secret, overlap)
	if err != nil {
		return api.SecretInfo{}, adminError(err, true)
	}
	// Sign with the new secret here at once; the notification brings it to the others.
	if e, err := db.Get(ctx, id); err == nil {
		a.f.apply(e)
	}
	return info, nil
}

// adminError maps the fleet's errors to the store's sentinels the handlers know, and
// connection failures to errStoreUnavailable or errStoreUnknown.
func adminError(err error, write bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fleet.ErrNotFound):
		return store.ErrNotFound
	case errors.Is(err, fleet.ErrSecretInUse):
		return store.ErrSecretInUse
	}
	return pgError(err, write)
}
