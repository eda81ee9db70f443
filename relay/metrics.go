package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/metrics"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// metricsPath is where the Prometheus series are served: on the main listener (the admin
// listener when --admin-listen is set) behind the API token, and without auth on
// --metrics-listen when it is set.
const metricsPath = "/metrics"

// relayMetrics is the relay's side of internal/metrics: the series, and their handler
// adapted to fasthttp once.
type relayMetrics struct {
	m       *metrics.Metrics
	handler fasthttp.RequestHandler
}

func newRelayMetrics() *relayMetrics {
	m := metrics.New()
	return &relayMetrics{m: m, handler: fasthttpadaptor.NewFastHTTPHandler(m.Handler())}
}

// instrument points the store's and the WAL's hooks at the series.
func (rm *relayMetrics) instrument(o *store.Options) {
	o.OnIngest = rm.m.Ingested
	o.OnSnapshot = rm.m.Snapshot
	o.WAL.OnFsync = rm.m.WALFsync
}

// serveMetrics answers GET /metrics on the main or admin listener, behind the API token.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) {
	if s.allow(ctx, "GET") && s.authorized(ctx) {
		s.metrics.handler(ctx)
	}
}

// countIngest counts a refused POST /api/events by the status it was answered with;
// accepted events are counted by the store once durable (store.Options.OnIngest).
func (s *Server) countIngest(ctx *fasthttp.RequestCtx) {
	if status := ctx.Response.StatusCode(); status >= 400 {
		s.metrics.m.Rejected(status)
	}
}

// countTransportError counts ingest requests fasthttp refused before the handler (a body
// over the limit above all), on a listener that serves ingest.
func (s *Server) countTransportError(ctx *fasthttp.RequestCtx, role listenerRole) {
	if path := string(ctx.Path()); path == ingestPath && role.serves(path) {
		s.countIngest(ctx)
	}
}

// listenMetrics serves /metrics without auth on addr (--metrics-listen), for a Prometheus
// inside the trust boundary, and returns a function that shuts it down. Only /metrics is
// served there.
func listenMetrics(addr string, rm *relayMetrics, log *slog.Logger) (func(context.Context), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("relay: --metrics-listen: %w", err)
	}
	srv := &http.Server{Handler: metricsOnly(rm.m.Handler()), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: readBufferSize}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String(), "path", metricsPath)
	return func(ctx context.Context) { _ = srv.Shutdown(ctx) }, nil
}

// metricsOnly serves h at metricsPath (GET and HEAD) and answers everything else as the other
// listeners do: a JSON error body, route_not_found for any other path (no redirect to a cleaned
// one) and method_not_allowed with Allow.
func metricsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != metricsPath:
			writeHTTPError(w, http.StatusNotFound, api.CodeRouteNotFound, "no route "+truncate(r.URL.Path, 100))
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			writeHTTPError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				"method "+truncate(r.Method, 16)+" not allowed; use GET or HEAD")
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
