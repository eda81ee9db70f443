package relay

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// resendDelivery: POST …/{id}/deliveries/{delivery_id}/resend → 202 with the delivery, now
// pending. Any body is ignored: there is nothing to choose.
func (s *Server) resendDelivery(ctx *fasthttp.RequestCtx, id, dlv string) {
	v, err := s.store.Resend(id, dlv)
	if s.fleet != nil && (errors.Is(err, store.ErrDeliveryNotFound) || errors.Is(err, store.ErrNotFound)) {
		// Another relay of the fleet may hold it; the endpoint must exist in the fleet.
		if _, err := s.admin.Get(id); err != nil {
			s.storeError(ctx, err, id)
			return
		}
		s.resendElsewhere(ctx, id, dlv)
		return
	}
	if !s.resendError(ctx, err, id, dlv) {
		return
	}
	s.log.Info("delivery resent", "endpoint_id", id, "delivery_id", dlv)
	writeJSON(ctx, fasthttp.StatusAccepted, v)
}

// recoverDeliveries: POST …/{id}/recover {"since"} → 202 {"resent","expired","more"}.
func (s *Server) recoverDeliveries(ctx *fasthttp.RequestCtx, id string) {
	body := ctx.PostBody()
	if len(body) > 0 && !requireJSON(ctx) {
		return
	}
	in, err := api.ParseRecover(body)
	if !inputError(ctx, err) {
		return
	}
	res, err := s.store.Recover(id, in.Since)
	if s.fleet != nil {
		res, err = s.recoverFleet(id, in.Since, res, err)
	}
	if !s.resendError(ctx, err, id, "") {
		return
	}
	s.log.Info("failed deliveries recovered", "endpoint_id", id, "since", in.Since, "resent", res.Resent,
		"expired", res.Expired, "more", res.More)
	writeJSON(ctx, fasthttp.StatusAccepted, res)
}

// resendError answers the refusals particular to resend and recover, and leaves the rest to
// storeError. It reports whether err was nil.
func (s *Server) resendError(ctx *fasthttp.RequestCtx, err error, id, dlv string) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrDeliveryNotFound):
		writeError(ctx, fasthttp.StatusNotFound, api.CodeDeliveryNotFound,
			"delivery "+truncate(dlv, 64)+" of endpoint "+id+" not found (deliveries leave the history past --history-limit)")
	case errors.Is(err, store.ErrNotFinished):
		writeError(ctx, fasthttp.StatusConflict, api.CodeDeliveryNotFinished,
			"delivery "+dlv+" is still pending or held: it will be attempted without a resend")
	case errors.Is(err, store.ErrInactive):
		writeError(ctx, fasthttp.StatusConflict, api.CodeEndpointInactive,
			"endpoint "+id+" is disabled: enable it before resending")
	case errors.Is(err, store.ErrPayloadExpired):
		writeError(ctx, fasthttp.StatusConflict, api.CodePayloadExpired,
			"the event of delivery "+dlv+" is no longer kept (past --history-payload-bytes), so it cannot be resent")
	default:
		return s.storeError(ctx, err, id)
	}
	return false
}
