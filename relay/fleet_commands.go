package relay

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// Resend and recover through any relay of a fleet. A delivery lives in the WAL of the relay that
// accepted its event, so a relay asked about a delivery it does not hold asks the others
// (fleet.SendCommand): each runs the command on its own deliveries and writes its result, and
// the asking relay answers with what came back within commandWait.

// How long a relay waits for the others' results: a resend ends as soon as the relay holding
// the delivery answers; a recover hears from every relay that answers in time.
const (
	commandWait = 3 * time.Second
	recoverWait = 2 * time.Second
)

// commandResult is one relay's result of a command.
type commandResult struct {
	// Status is the HTTP status the relay would answer itself: 202, or an error's.
	Status   int                `json:"status"`
	Code     string             `json:"code,omitempty"`
	Message  string             `json:"message,omitempty"`
	Delivery *api.Delivery      `json:"delivery,omitempty"`
	Recover  *api.RecoverResult `json:"recover,omitempty"`
}

// listenCommands runs the others' commands on this relay's deliveries.
func (f *fleetLink) listenCommands(ctx context.Context, db *fleet.DB) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				tctx, cancel := context.WithTimeout(ctx, fleetTimeout)
				_ = db.TrimCommands(tctx, 10*time.Minute)
				cancel()
			}
		}
	}()
	_ = db.ListenCommands(ctx, f.relayID, func(c fleet.Command) {
		res := f.runCommand(c)
		pctx, cancel := context.WithTimeout(ctx, fleetTimeout)
		defer cancel()
		if err := db.PutResult(pctx, c.ID, f.relayID, res); err != nil && ctx.Err() == nil {
			f.log.Warn("fleet: store a command's result", "command", c.ID, "err", err)
		}
	})
}

func (f *fleetLink) runCommand(c fleet.Command) commandResult {
	switch c.Kind {
	case "resend":
		v, err := f.st.Resend(c.EndpointID, c.DeliveryID)
		if err != nil {
			return resultOf(err)
		}
		f.log.Info("delivery resent (asked through another relay)", "endpoint_id", c.EndpointID, "delivery_id", c.DeliveryID)
		return commandResult{Status: fasthttp.StatusAccepted, Delivery: &v}
	case "recover":
		r, err := f.st.Recover(c.EndpointID, c.Since)
		if err != nil {
			return resultOf(err)
		}
		return commandResult{Status: fasthttp.StatusAccepted, Recover: &r}
	}
	return commandResult{Status: fasthttp.StatusBadRequest, Code: "unknown_command"}
}

// resultOf is what a relay would answer for a resend/recover error, as a command result.
func resultOf(err error) commandResult {
	switch {
	case errors.Is(err, store.ErrDeliveryNotFound), errors.Is(err, store.ErrNotFound):
		return commandResult{Status: fasthttp.StatusNotFound, Code: api.CodeDeliveryNotFound}
	case errors.Is(err, store.ErrNotFinished):
		return commandResult{Status: fasthttp.StatusConflict, Code: api.CodeDeliveryNotFinished,
			Message: "the delivery is still pending or held: it will be attempted without a resend"}
	case errors.Is(err, store.ErrInactive):
		return commandResult{Status: fasthttp.StatusConflict, Code: api.CodeEndpointInactive,
			Message: "the endpoint is disabled: enable it before resending"}
	case errors.Is(err, store.ErrPayloadExpired):
		return commandResult{Status: fasthttp.StatusConflict, Code: api.CodePayloadExpired,
			Message: "the event of this delivery is no longer kept, so it cannot be resent"}
	}
	return commandResult{Status: fasthttp.StatusServiceUnavailable, Code: "unavailable",
		Message: "the relay holding this delivery could not store the change durably"}
}

// ask sends a command to the other relays and returns their results once want says it has
// what it needs, or when commandWait has passed.
func (f *fleetLink) ask(c fleet.Command, wait time.Duration, done func([]commandResult) bool) ([]commandResult, error) {
	db := f.db.Load()
	if db == nil {
		return nil, errStoreUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	c.FromRelay = f.relayID
	id, err := db.SendCommand(ctx, c)
	if err != nil {
		return nil, pgError(err, false)
	}
	var out []commandResult
	deadline := time.Now().Add(wait)
	for poll := 5 * time.Millisecond; ; poll = min(2*poll, 100*time.Millisecond) {
		rs, err := db.Results(ctx, id)
		if err != nil {
			return nil, pgError(err, false)
		}
		out = out[:0]
		for _, r := range rs {
			var cr commandResult
			if json.Unmarshal(r.Result, &cr) == nil {
				out = append(out, cr)
			}
		}
		if done(out) || time.Now().After(deadline) {
			return out, nil
		}
		time.Sleep(poll)
	}
}

// resendElsewhere asks the fleet to resend a delivery this relay does not hold.
func (s *Server) resendElsewhere(ctx *fasthttp.RequestCtx, id, dlv string) {
	found := func(rs []commandResult) bool {
		for _, r := range rs {
			if r.Status != fasthttp.StatusNotFound {
				return true
			}
		}
		return false
	}
	rs, err := s.fleet.ask(fleet.Command{Kind: "resend", EndpointID: id, DeliveryID: dlv}, commandWait, found)
	if err != nil {
		s.storeError(ctx, err, id)
		return
	}
	for _, r := range rs {
		switch {
		case r.Status == fasthttp.StatusAccepted && r.Delivery != nil:
			s.log.Info("delivery resent through another relay", "endpoint_id", id, "delivery_id", dlv)
			writeJSON(ctx, fasthttp.StatusAccepted, r.Delivery)
			return
		case r.Status != fasthttp.StatusNotFound:
			writeError(ctx, r.Status, r.Code, r.Message)
			return
		}
	}
	writeError(ctx, fasthttp.StatusNotFound, api.CodeDeliveryNotFound, "delivery "+truncate(dlv, 64)+" of endpoint "+id+
		" not found on any relay that answered (a relay that is down keeps its deliveries until it is back)")
}

// recoverFleet adds the other relays' recoveries to this relay's (res, err): each relay resends
// the failed deliveries it holds.
func (s *Server) recoverFleet(id string, since time.Time, res api.RecoverResult, err error) (api.RecoverResult, error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Not in this relay's copy yet (just created elsewhere?): the fleet decides.
		if _, err := s.admin.Get(id); err != nil {
			return res, err
		}
		res = api.RecoverResult{}
	case err != nil:
		return res, err
	default:
		res.Relays = 1
	}
	rs, err := s.fleet.ask(fleet.Command{Kind: "recover", EndpointID: id, Since: since}, recoverWait,
		func([]commandResult) bool { return false })
	if err != nil {
		return res, err
	}
	for _, r := range rs {
		if r.Recover != nil {
			res.Resent += r.Recover.Resent
			res.Expired += r.Recover.Expired
			res.More = res.More || r.Recover.More
			res.Relays++
		}
	}
	return res, nil
}
