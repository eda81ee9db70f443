package relay

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

const endpointsPath = "/api/webhooks/endpoints"

// handle serves one request on a listener of the given role (listeners.go).
func (s *Server) handle(ctx *fasthttp.RequestCtx, role listenerRole) {
	h := &ctx.Response.Header
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	path := string(ctx.Path())
	if !role.serves(path) {
		// Before readiness and tokens, and the same 404 as a path the relay serves nowhere: the
		// ingest listener does not even reveal that an admin API exists.
		routeNotFound(ctx)
		return
	}
	if path == ingestPath {
		defer s.countIngest(ctx)
	}
	switch {
	case path == "/healthz":
		s.health(ctx)
	case path == "/readyz":
		s.readiness(ctx)
	case path == metricsPath:
		s.serveMetrics(ctx)
	case strings.HasPrefix(path, "/api/") && !s.ready.Load():
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "starting", "the relay is recovering its state; retry shortly")
	case path == ingestPath:
		if s.allow(ctx, "POST") && s.authorizedFor(ctx, rightIngest) {
			s.ingest(ctx)
		}
	case path == "/api/info":
		// Authenticated like the rest of /api: a client that confirms what it talks to has
		// the token anyway, and a confirmed relay is then also one that accepts it.
		if s.allow(ctx, "GET") && s.authorized(ctx) {
			writeJSON(ctx, fasthttp.StatusOK, api.Info{Name: api.RelayName, APIVersion: api.APIVersion, Version: s.cfg.Version})
		}
	case path == "/api/event-types":
		if s.allow(ctx, "GET") && s.authorized(ctx) {
			writeJSON(ctx, fasthttp.StatusOK, api.EventTypeList{Data: api.EventTypes})
		}
	case path == endpointsPath:
		if s.allow(ctx, "GET", "POST") && s.authorized(ctx) {
			if ctx.IsGet() {
				s.listEndpoints(ctx)
			} else {
				s.createEndpoint(ctx)
			}
		}
	case isSecretPath(path):
		s.secretRoutes(ctx, path)
	case strings.HasPrefix(path, endpointsPath+"/"):
		s.endpointRoutes(ctx, strings.TrimPrefix(path, endpointsPath+"/"))
	case isUIPath(path):
		s.serveUI(ctx)
	default:
		routeNotFound(ctx)
	}
}

// endpointRoutes serves /api/webhooks/endpoints/{id}[/test|/deliveries|/recover] and
// …/deliveries/{delivery_id}/resend (the secret routes are in handlers_secret.go).
func (s *Server) endpointRoutes(ctx *fasthttp.RequestCtx, rest string) {
	id, sub, slash := strings.Cut(rest, "/")
	if id == "" || slash && sub == "" {
		// "/api/webhooks/endpoints/" names no endpoint, not a missing one: endpoint_not_found
		// would tell a client (the provider drops it from state) that some endpoint is gone.
		// "…/{id}/" is no route either, as "…/{id}/test/" is not.
		routeNotFound(ctx)
		return
	}
	var ok bool
	var dlv string
	if d, ok := strings.CutPrefix(sub, "deliveries/"); ok {
		if dlv, ok = strings.CutSuffix(d, "/resend"); !ok || dlv == "" || strings.Contains(dlv, "/") {
			routeNotFound(ctx)
			return
		}
		sub = "resend"
	}
	switch sub {
	case "":
		ok = s.allow(ctx, "GET", "PATCH", "DELETE")
	case "deliveries":
		ok = s.allow(ctx, "GET")
	case "test", "resend", "recover":
		ok = s.allow(ctx, "POST")
	default:
		routeNotFound(ctx)
		return
	}
	if !ok || !s.authorized(ctx) {
		return
	}
	if !store.ValidID("ep_", id) {
		// No endpoint can have this id: it is as missing as a well-formed one that is not there.
		writeError(ctx, fasthttp.StatusNotFound, api.CodeEndpointNotFound, "endpoint "+truncate(id, 64)+" not found")
		return
	}
	switch {
	case sub == "deliveries":
		s.listDeliveries(ctx, id)
	case sub == "resend":
		s.resendDelivery(ctx, id, dlv)
	case sub == "recover":
		s.recoverDeliveries(ctx, id)
	case sub == "test":
		dlv, err := s.store.SendTest(id)
		if s.storeError(ctx, err, id) {
			s.log.Info("test ping queued", "endpoint_id", id, "delivery_id", dlv)
			writeJSON(ctx, fasthttp.StatusAccepted, api.TestResult{DeliveryID: dlv})
		}
	case ctx.IsGet():
		ep, err := s.admin.Get(id)
		if s.storeError(ctx, err, id) {
			writeJSON(ctx, fasthttp.StatusOK, ep)
		}
	case ctx.IsDelete():
		if s.storeError(ctx, s.admin.Delete(id), id) {
			s.log.Info("endpoint deleted", "endpoint_id", id)
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		}
	default:
		s.patchEndpoint(ctx, id)
	}
}

func (s *Server) createEndpoint(ctx *fasthttp.RequestCtx) {
	if !requireJSON(ctx) {
		return
	}
	in, err := api.ParseCreateEndpoint(ctx.PostBody(), s.policy)
	if !inputError(ctx, err) {
		return
	}
	secret, err := s.endpointSecret(in.Secret)
	if err != nil {
		s.internalError(ctx, "generate secret", err)
		return
	}
	ep, err := s.admin.Create(in, secret)
	if !s.storeError(ctx, err, "") {
		return
	}
	s.log.Info("endpoint created", "endpoint_id", ep.ID, "url", logURL(ep.URL), "event_types", ep.EventTypes, "active", ep.Active)
	writeJSON(ctx, fasthttp.StatusCreated, ep)
}

func (s *Server) patchEndpoint(ctx *fasthttp.RequestCtx, id string) {
	if !requireJSON(ctx) {
		return
	}
	in, err := api.ParsePatchEndpoint(ctx.PostBody(), s.policy)
	if !inputError(ctx, err) {
		return
	}
	ep, err := s.admin.Update(id, in)
	if !s.storeError(ctx, err, id) {
		return
	}
	s.log.Info("endpoint updated", "endpoint_id", id, "url", logURL(ep.URL), "event_types", ep.EventTypes,
		"active", ep.Active, "disabled_reason", logOptional(ep.DisabledReason))
	writeJSON(ctx, fasthttp.StatusOK, ep)
}

func (s *Server) listEndpoints(ctx *fasthttp.RequestCtx) {
	limit, cursor, ok := pageArgs(ctx)
	if !ok {
		return
	}
	eps, next, err := s.admin.List(cursor, limit)
	if s.storeError(ctx, err, "") {
		writeJSON(ctx, fasthttp.StatusOK, api.EndpointList{Data: eps, NextCursor: optional(next)})
	}
}

func (s *Server) listDeliveries(ctx *fasthttp.RequestCtx, id string) {
	limit, cursor, ok := pageArgs(ctx)
	if !ok {
		return
	}
	ds, next, err := s.admin.Deliveries(id, cursor, limit)
	if s.storeError(ctx, err, id) {
		writeJSON(ctx, fasthttp.StatusOK, api.DeliveryList{Data: ds, NextCursor: optional(next)})
	}
}

func (s *Server) ingest(ctx *fasthttp.RequestCtx) {
	if !requireJSON(ctx) {
		return
	}
	in, err := api.ParseIngest(ctx.PostBody())
	if !inputError(ctx, err) {
		return
	}
	if s.fleet != nil && !s.store.Synced() {
		// Fanning out now would find no endpoint: the event would be accepted and go nowhere.
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "not_synced",
			"this relay has not yet read the fleet's endpoints from PostgreSQL; retry shortly")
		return
	}
	res, err := s.store.Ingest(in)
	if !s.storeError(ctx, err, "") {
		return
	}
	writeJSON(ctx, fasthttp.StatusAccepted, api.IngestResult{ID: res.EventID, Deliveries: res.Deliveries})
}

// health is 503 once the WAL has failed: the relay then acknowledges nothing, and an
// orchestrator should restart it.
func (s *Server) health(ctx *fasthttp.RequestCtx) {
	if !s.allow(ctx, "GET", "HEAD") {
		return
	}
	if s.ready.Load() && s.storageFailed() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, healthFailed)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
}

// readiness is 503 until the WAL is replayed, and after it failed.
func (s *Server) readiness(ctx *fasthttp.RequestCtx) {
	if !s.allow(ctx, "GET", "HEAD") {
		return
	}
	if !s.ready.Load() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "starting"})
		return
	}
	if s.storageFailed() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, healthFailed)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
}

// healthFailed is what the unauthenticated probes say about a failed WAL: a reason, never
// the error, which names paths and system calls.
var healthFailed = map[string]string{"status": "failed", "reason": "storage"}

// storageFailed reports whether the WAL has failed. The first probe that sees it logs the
// error, so the details are in the log even if the failure was logged long before.
func (s *Server) storageFailed() bool {
	err := s.store.Err()
	if err != nil && s.healthLogged.CompareAndSwap(false, true) {
		s.log.Error("health: storage failed; the relay acknowledges nothing until restarted", "err", err)
	}
	return err != nil
}

// allow answers 405 with an Allow header unless the method is one of methods.
func (s *Server) allow(ctx *fasthttp.RequestCtx, methods ...string) bool {
	m := string(ctx.Method())
	for _, want := range methods {
		if m == want {
			return true
		}
	}
	ctx.Response.Header.Set("Allow", strings.Join(methods, ", "))
	writeError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed",
		"method "+truncate(m, 16)+" not allowed; use "+strings.Join(methods, " or "))
	return false
}

// requireJSON answers 415 unless the body is declared as uncompressed UTF-8 JSON. A body the
// relay would read as something it is not gets a clear refusal instead: gzip bytes would be a
// confusing 400 malformed_json, and latin-1 text that happens to be valid UTF-8 would be stored
// and delivered with another meaning.
func requireJSON(ctx *fasthttp.RequestCtx) bool {
	if ce := strings.TrimSpace(string(ctx.Request.Header.ContentEncoding())); ce != "" && !strings.EqualFold(ce, "identity") {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type",
			"Content-Encoding "+quoteOrNone(ce)+" is not supported; send the body uncompressed")
		return false
	}
	ct := string(ctx.Request.Header.ContentType())
	mt, params, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != "application/json" && (!strings.HasPrefix(mt, "application/") || !strings.HasSuffix(mt, "+json")) {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type",
			"Content-Type must be application/json, got "+quoteOrNone(ct))
		return false
	}
	if cs, ok := charsetParam(params); ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type",
			"charset "+quoteOrNone(cs)+" is not supported; JSON bodies are UTF-8 (RFC 8259)")
		return false
	}
	return true
}

// charsetParam finds the charset parameter among a Content-Type's parameters ("; a=b; ...").
func charsetParam(params string) (string, bool) {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "charset") {
			return strings.Trim(strings.TrimSpace(v), `"`), true
		}
	}
	return "", false
}

func pageArgs(ctx *fasthttp.RequestCtx) (limit int, cursor string, ok bool) {
	args := ctx.QueryArgs()
	limit, err := api.ParseLimit(string(args.Peek("limit")))
	if !inputError(ctx, err) {
		return 0, "", false
	}
	return limit, string(args.Peek("cursor")), true
}

// inputError writes the response for a parse error and reports whether there was none.
func inputError(ctx *fasthttp.RequestCtx, err error) bool {
	var ve *api.ValidationError
	switch {
	case err == nil:
		return true
	case errors.As(err, &ve):
		writeBody(ctx, fasthttp.StatusUnprocessableEntity, api.ErrorBody{Error: api.ErrorDetail{Code: ve.Code, Message: ve.Message, Field: ve.Field}})
	case errors.Is(err, api.ErrMalformed):
		writeError(ctx, fasthttp.StatusBadRequest, "malformed_json", err.Error())
	default:
		writeError(ctx, fasthttp.StatusBadRequest, "bad_request", err.Error())
	}
	return false
}

// storeError writes the response for a store error and reports whether there was none.
func (s *Server) storeError(ctx *fasthttp.RequestCtx, err error, id string) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		// Every store lookup behind the admin API is by endpoint id; a delivery route would
		// answer api.CodeDeliveryNotFound for its delivery id.
		writeError(ctx, fasthttp.StatusNotFound, api.CodeEndpointNotFound, "endpoint "+id+" not found")
	case errors.Is(err, store.ErrInactive):
		writeError(ctx, fasthttp.StatusConflict, "endpoint_disabled", "endpoint "+id+" is disabled: enable it before sending a test")
	case errors.Is(err, store.ErrBadCursor):
		writeBody(ctx, fasthttp.StatusUnprocessableEntity, api.ErrorBody{Error: api.ErrorDetail{Code: "invalid_cursor", Message: "cursor is not one this relay handed out", Field: "cursor"}})
	case errors.Is(err, store.ErrIdempotencyKeyReused):
		writeBody(ctx, fasthttp.StatusConflict, api.ErrorBody{Error: api.ErrorDetail{Code: "idempotency_key_reused",
			Message: "this id was already used for an event with a different type or data; use a new id for a new event", Field: "id"}})
	case errors.Is(err, errStoreUnavailable):
		s.log.Warn("admin request: the fleet's PostgreSQL is unavailable", "err", err)
		ctx.Response.Header.Set("Retry-After", "2")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "store_unavailable",
			"the fleet's PostgreSQL is unavailable; nothing was changed; retry later")
	case errors.Is(err, errStoreUnknown):
		s.log.Error("admin request: the fleet's PostgreSQL did not answer a write", "err", err)
		writeError(ctx, fasthttp.StatusGatewayTimeout, "store_unknown",
			"the fleet's PostgreSQL did not confirm the change: it may or may not have been made; read it back before retrying")
	case errors.Is(err, store.ErrTooLarge):
		// Possible only for an event fanned out to very many endpoints: the body itself is
		// capped below the WAL's record size by --max-body-size.
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "payload_too_large", "the event and its fan-out do not fit in one log record; send a smaller body")
	default:
		s.log.Error("state change not durable", "err", err)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "unavailable", "the relay could not store this change durably; retry later")
	}
	return false
}

// routeNotFound answers a path the relay does not serve. Its code differs from
// endpoint_not_found so a client sent to a wrong base URL never concludes an endpoint is gone.
func routeNotFound(ctx *fasthttp.RequestCtx) {
	writeError(ctx, fasthttp.StatusNotFound, api.CodeRouteNotFound, "no route "+truncate(string(ctx.Path()), 100))
}

func (s *Server) internalError(ctx *fasthttp.RequestCtx, what string, err error) {
	s.log.Error(what, "err", err)
	writeError(ctx, fasthttp.StatusInternalServerError, "internal", what+" failed")
}

func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	writeBody(ctx, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) { writeBody(ctx, status, v) }

func writeBody(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("encode response", "err", err)
		status, b = fasthttp.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode response failed"}}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return `"` + truncate(s, 64) + `"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
