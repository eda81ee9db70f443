package relay

import (
	"errors"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// isSecretPath matches /api/webhooks/endpoints/{id}/secret and …/secret/rotate.
func isSecretPath(path string) bool {
	rest, ok := strings.CutPrefix(path, endpointsPath+"/")
	if !ok {
		return false
	}
	_, sub, _ := strings.Cut(rest, "/")
	return sub == "secret" || sub == "secret/rotate"
}

// secretRoutes serves GET …/{id}/secret and POST …/{id}/secret/rotate.
func (s *Server) secretRoutes(ctx *fasthttp.RequestCtx, path string) {
	id, sub, _ := strings.Cut(strings.TrimPrefix(path, endpointsPath+"/"), "/")
	method := "GET"
	if sub == "secret/rotate" {
		method = "POST"
	}
	if !s.allow(ctx, method) || !s.authorized(ctx) {
		return
	}
	if !store.ValidID("ep_", id) {
		endpointNotFound(ctx, id)
		return
	}
	if method == "GET" {
		info, err := s.admin.SecretInfo(id)
		if s.secretStoreError(ctx, err, id) {
			writeJSON(ctx, fasthttp.StatusOK, info)
		}
		return
	}
	s.rotateSecret(ctx, id)
}

// rotateSecret: {"expire_previous_in"?, "secret"?} → 200 {"secret", "previous_secret_expires_at"}.
// An empty body takes the defaults (a generated secret, 24 h of overlap).
func (s *Server) rotateSecret(ctx *fasthttp.RequestCtx, id string) {
	body := ctx.PostBody()
	if len(body) > 0 && !requireJSON(ctx) {
		return
	}
	in, err := api.ParseRotateSecret(body)
	if !inputError(ctx, err) {
		return
	}
	secret, err := s.endpointSecret(in.Secret)
	if err != nil {
		s.internalError(ctx, "generate secret", err)
		return
	}
	info, err := s.admin.Rotate(id, secret, in.ExpirePreviousIn)
	if !s.secretStoreError(ctx, err, id) {
		return
	}
	attrs := []any{"endpoint_id", id, "secret_brought", in.Secret != nil, "overlap", in.ExpirePreviousIn.String()}
	if info.PreviousSecretExpiresAt != nil {
		attrs = append(attrs, "previous_secret_expires_at", *info.PreviousSecretExpiresAt)
	}
	s.log.Info("endpoint secret rotated", attrs...)
	writeJSON(ctx, fasthttp.StatusOK, info)
}

// endpointSecret is the secret the caller brought (already validated by internal/api), or a
// new one.
func (s *Server) endpointSecret(brought *string) (string, error) {
	if brought != nil {
		return *brought, nil
	}
	return signature.GenerateSecret()
}

// secretStoreError is storeError with the codes of the secret routes: endpoint_not_found for
// an unknown endpoint, secret_in_use for a rotation to a secret that already signs.
func (s *Server) secretStoreError(ctx *fasthttp.RequestCtx, err error, id string) bool {
	switch {
	case errors.Is(err, store.ErrNotFound):
		endpointNotFound(ctx, id)
		return false
	case errors.Is(err, store.ErrSecretInUse):
		writeBody(ctx, fasthttp.StatusConflict, api.ErrorBody{Error: api.ErrorDetail{Code: "secret_in_use",
			Message: "this secret already signs this endpoint's deliveries (as its current or still-valid previous secret); rotate to a new one",
			Field:   "secret"}})
		return false
	}
	return s.storeError(ctx, err, id)
}

func endpointNotFound(ctx *fasthttp.RequestCtx, id string) {
	writeError(ctx, fasthttp.StatusNotFound, "endpoint_not_found", "endpoint "+truncate(id, 64)+" not found")
}
