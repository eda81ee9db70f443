package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

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
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, rm.m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String(), "path", metricsPath)
	return func(ctx context.Context) { _ = srv.Shutdown(ctx) }, nil
}
