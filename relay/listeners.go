package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Listeners are the sockets the relay serves. The caller binds them all before Run, so a
// port that is taken stops the relay before it serves anything on the other.
type Listeners struct {
	// Main is --listen: everything, or only ingest and health when Admin is set.
	Main net.Listener
	// Admin is --admin-listen: the admin API, /api/info, the UI, /metrics and health. Nil
	// when the flag is unset.
	Admin net.Listener
}

// listenerRole is what one listener serves.
type listenerRole int

const (
	serveAll    listenerRole = iota // --listen when --admin-listen is unset
	serveIngest                     // --listen when --admin-listen is set
	serveAdmin                      // --admin-listen
)

const ingestPath = "/api/events"

// serves reports whether a listener of this role serves path. Health is served everywhere:
// a probe may reach only one of the listeners (in a pod, the application's ingest listener
// is often bound to 127.0.0.1, which the kubelet cannot reach).
func (r listenerRole) serves(path string) bool {
	switch {
	case r == serveAll, path == "/healthz", path == "/readyz":
		return true
	case path == ingestPath:
		return r == serveIngest
	default:
		return r == serveAdmin
	}
}

// String is what the startup log says the listener serves.
func (r listenerRole) String() string {
	switch r {
	case serveIngest:
		return "ingest, health"
	case serveAdmin:
		return "admin API, UI, metrics, health"
	default:
		return "ingest, admin API, UI, metrics, health"
	}
}

// listener is one socket and the server on it.
type listener struct {
	flag string // the flag that set its address, for messages
	ln   net.Listener
	role listenerRole
	srv  *fasthttp.Server
}

// newListeners pairs each socket with a server of its role, all with the same hardening.
func (s *Server) newListeners(lns Listeners) []*listener {
	if lns.Admin == nil {
		return []*listener{{flag: "--listen", ln: lns.Main, role: serveAll, srv: s.newHTTPServer(serveAll)}}
	}
	return []*listener{
		{flag: "--listen", ln: lns.Main, role: serveIngest, srv: s.newHTTPServer(serveIngest)},
		{flag: "--admin-listen", ln: lns.Admin, role: serveAdmin, srv: s.newHTTPServer(serveAdmin)},
	}
}

// newHTTPServer is the fasthttp server of one listener. The limits apply per listener: a flood
// of connections on the ingest listener does not lock Terraform and the UI out of the admin
// listener, nor the other way round.
func (s *Server) newHTTPServer(role listenerRole) *fasthttp.Server {
	cfg := s.cfg
	return &fasthttp.Server{
		Handler:                      func(ctx *fasthttp.RequestCtx) { s.handle(ctx, role) },
		ErrorHandler:                 func(ctx *fasthttp.RequestCtx, err error) { s.handleTransportError(ctx, err, role) },
		Name:                         "blametrail-relay",
		ReadTimeout:                  transferTimeout(cfg.MaxBodySize),
		WriteTimeout:                 transferTimeout(cfg.MaxBodySize),
		IdleTimeout:                  60 * time.Second,
		MaxRequestBodySize:           cfg.MaxBodySize,
		ReadBufferSize:               readBufferSize,
		Concurrency:                  cfg.MaxConnections,
		MaxConnsPerIP:                cfg.MaxConnsPerIP,
		NoDefaultDate:                false,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		Logger:                       fasthttpLogger{s.log},
		// Keeps the raw header block out of fasthttp's parse errors; what it still quotes
		// (a refused header value) is redacted by handleTransportError and fasthttpLogger.
		SecureErrorLogMessage: true,
	}
}

// serve starts every listener's server. Any of them ending (before shutdown) sends its error.
func serve(ls []*listener) <-chan error {
	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			err := l.srv.Serve(l.ln)
			if err == nil {
				err = errors.New("stopped serving")
			}
			errs <- fmt.Errorf("%s %s: %w", l.flag, l.ln.Addr(), err)
		}()
	}
	return errs
}

// shutdown stops every listener at once (none keeps accepting while another drains), then
// waits for their requests to finish, within ctx.
func shutdown(ctx context.Context, ls []*listener) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.srv.ShutdownWithContext(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", l.flag, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// listenAttrs are the startup log's account of what each listener serves.
func listenAttrs(ls []*listener) []any {
	attrs := []any{"addr", ls[0].ln.Addr().String(), "serves", ls[0].role.String()}
	if len(ls) > 1 {
		attrs = append(attrs, "admin_addr", ls[1].ln.Addr().String(), "admin_serves", ls[1].role.String())
	}
	return attrs
}
