// Package metrics owns the relay's Prometheus series: their names, labels and buckets, the
// registry they live in (its own, never the global default), and the exposition handler.
//
// The packages that do the work (wal, store, delivery) never import Prometheus: they expose
// small hooks (wal.Options.OnFsync, store.Options.OnSnapshot and OnIngest, delivery.Observer)
// that the relay points at a *Metrics. Figures that describe state rather than events (queue
// depth, endpoints, WAL size, payload read errors) are read at scrape time through State.
//
// Hot paths only touch counters and histograms resolved once in New: recording an attempt is
// an array index and an atomic add, with no map lookup, lock or allocation. Label values are
// bounded: event types from the catalogue, fixed reason and result lists, and endpoint ids
// (as many as there are endpoints).
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/delivery"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

const namespace = "blametrail"

// Reasons an ingest request is refused: the label values of blametrail_ingest_rejected_total.
const (
	ReasonMalformed       = "malformed_json"
	ReasonUnauthorized    = "unauthorized"
	ReasonMethod          = "method_not_allowed"
	ReasonTimeout         = "timeout"
	ReasonIdempotency     = "idempotency_key_reused"
	ReasonTooLarge        = "too_large"
	ReasonMediaType       = "unsupported_media_type"
	ReasonValidation      = "validation"
	ReasonHeadersTooLarge = "headers_too_large"
	ReasonUnavailable     = "unavailable"
	ReasonOther           = "other"
)

var rejectReasons = []string{ReasonMalformed, ReasonUnauthorized, ReasonMethod, ReasonTimeout, ReasonIdempotency,
	ReasonTooLarge, ReasonMediaType, ReasonValidation, ReasonHeadersTooLarge, ReasonUnavailable, ReasonOther}

// RejectReason maps the status an ingest request was refused with to its reason. It goes by
// status, not error code, so that new codes fall under the reason of their status.
func RejectReason(status int) string {
	switch status {
	case http.StatusBadRequest:
		return ReasonMalformed
	case http.StatusUnauthorized:
		return ReasonUnauthorized
	case http.StatusMethodNotAllowed:
		return ReasonMethod
	case http.StatusRequestTimeout:
		return ReasonTimeout
	case http.StatusConflict:
		return ReasonIdempotency
	case http.StatusRequestEntityTooLarge:
		return ReasonTooLarge
	case http.StatusUnsupportedMediaType:
		return ReasonMediaType
	case http.StatusUnprocessableEntity:
		return ReasonValidation
	case http.StatusRequestHeaderFieldsTooLarge:
		return ReasonHeadersTooLarge
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ReasonUnavailable
	}
	return ReasonOther
}

// State is what the scrape-time series are read from; *store.Store implements it.
type State interface {
	EndpointStats(dst []store.EndpointStat) []store.EndpointStat
	WALBytes() int64
	PayloadReadErrors() int64
}

// Metrics holds the relay's series. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	ingestedVec *prometheus.CounterVec
	ingested    map[string]prometheus.Counter // by event type; read-only after New
	rejected    map[string]prometheus.Counter // by reason; read-only after New
	attempts    [delivery.NumResults]prometheus.Counter
	succeeded   prometheus.Counter
	failed      prometheus.Counter
	disabledVec *prometheus.CounterVec
	disabled    map[string]prometheus.Counter
	latency     prometheus.Histogram
	attemptDur  prometheus.Histogram
	fsync       prometheus.Histogram
	snapshot    prometheus.Histogram

	state atomic.Pointer[stateRef]
}

type stateRef struct{ State }

// Buckets, in seconds.
var (
	// From acceptance to the receiver's 2xx: milliseconds on the first attempt, up to about a
	// day through the default retry schedule.
	latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}
	// One attempt: bounded by --delivery-timeout (default 10 s).
	attemptBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// etcd's wal_fsync_duration_seconds buckets: 1 ms to 8 s.
	fsyncBuckets = prometheus.ExponentialBuckets(.001, 2, 14)
	// A snapshot: milliseconds for a small state, tens of seconds for a million deliveries.
	snapshotBuckets = prometheus.ExponentialBuckets(.01, 2, 14)
)

// New returns the series, registered in a registry of their own with the Go and process
// collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{m.reg}

	m.ingestedVec = f.counterVec("events_ingested_total", "Events accepted by POST /api/events (a repeated idempotency key is not counted again).", "type")
	m.ingested = make(map[string]prometheus.Counter, len(api.EventTypes))
	for _, t := range api.EventTypes {
		m.ingested[t] = m.ingestedVec.WithLabelValues(t)
	}
	rejected := f.counterVec("ingest_rejected_total", "Requests to POST /api/events that were refused, by reason.", "reason")
	m.rejected = make(map[string]prometheus.Counter, len(rejectReasons))
	for _, r := range rejectReasons {
		m.rejected[r] = rejected.WithLabelValues(r)
	}
	attempts := f.counterVec("delivery_attempts_total", "Delivery attempts, by result: success (2xx), http_error (any other status), "+
		"timeout, network (connection, DNS, TLS), refused (by the network policy), local (not sent: payload or secret unusable).", "result")
	for r := range delivery.NumResults {
		m.attempts[r] = attempts.WithLabelValues(r.String())
	}
	finished := f.counterVec("deliveries_finished_total", "Deliveries that ended, by status (succeeded, failed).", "status")
	m.succeeded = finished.WithLabelValues(api.StatusSucceeded)
	m.failed = finished.WithLabelValues(api.StatusFailed)
	m.disabledVec = f.counterVec("endpoints_auto_disabled_total", "Endpoints the relay disabled, by reason (consecutive_failures, gone).", "reason")
	m.disabled = map[string]prometheus.Counter{
		api.DisabledConsecutiveFailures: m.disabledVec.WithLabelValues(api.DisabledConsecutiveFailures),
		api.DisabledGone:                m.disabledVec.WithLabelValues(api.DisabledGone),
	}
	m.latency = f.histogram("delivery_latency_seconds", "From an event's acceptance to the receiver's 2xx, retries included.", latencyBuckets)
	m.attemptDur = f.histogram("attempt_duration_seconds", "Duration of one delivery attempt, whatever its result.", attemptBuckets)
	m.fsync = f.histogram("wal_fsync_duration_seconds", "Duration of each fsync of a WAL segment.", fsyncBuckets)
	m.snapshot = f.histogram("snapshot_duration_seconds", "Duration of each snapshot that succeeded, from capture to the rename.", snapshotBuckets)
	m.reg.MustRegister(&stateCollector{m: m})
	return m
}

type factory struct{ reg *prometheus.Registry }

func (f factory) counterVec(name, help string, label string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{label})
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

// Registry is the registry the series live in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the series in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// SetState names where the scrape-time series are read from; until then they are absent.
func (m *Metrics) SetState(s State) { m.state.Store(&stateRef{s}) }

// Ingested counts an accepted event (store.Options.OnIngest).
func (m *Metrics) Ingested(eventType string) {
	if c, ok := m.ingested[eventType]; ok {
		c.Inc()
		return
	}
	m.ingestedVec.WithLabelValues(eventType).Inc() // not in the catalogue: validation refuses these
}

// Rejected counts an ingest request refused with status.
func (m *Metrics) Rejected(status int) { m.rejected[RejectReason(status)].Inc() }

// Attempt implements delivery.Observer.
func (m *Metrics) Attempt(r delivery.Result, took time.Duration) {
	if r < delivery.NumResults {
		m.attempts[r].Inc()
	}
	m.attemptDur.Observe(took.Seconds())
}

// Finished implements delivery.Observer.
func (m *Metrics) Finished(succeeded bool, latency time.Duration) {
	if !succeeded {
		m.failed.Inc()
		return
	}
	m.succeeded.Inc()
	if latency >= 0 {
		m.latency.Observe(latency.Seconds())
	}
}

// Disabled implements delivery.Observer.
func (m *Metrics) Disabled(reason string) {
	if c, ok := m.disabled[reason]; ok {
		c.Inc()
		return
	}
	m.disabledVec.WithLabelValues(reason).Inc()
}

// WALFsync records one fsync of a WAL segment (wal.Options.OnFsync).
func (m *Metrics) WALFsync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// Snapshot records one snapshot (store.Options.OnSnapshot).
func (m *Metrics) Snapshot(d time.Duration) { m.snapshot.Observe(d.Seconds()) }

var _ delivery.Observer = (*Metrics)(nil)

// stateCollector reads the scrape-time series from State.
type stateCollector struct{ m *Metrics }

var (
	queueDepthDesc = prometheus.NewDesc(namespace+"_queue_depth",
		"Deliveries waiting per endpoint: pending (due or scheduled for a retry) and held (endpoint disabled).", []string{"endpoint_id"}, nil)
	endpointsDesc = prometheus.NewDesc(namespace+"_endpoints",
		"Endpoints by state (active, disabled).", []string{"state"}, nil)
	walBytesDesc = prometheus.NewDesc(namespace+"_wal_bytes",
		"Bytes of the WAL's segment files on disk.", nil, nil)
	payloadErrorsDesc = prometheus.NewDesc(namespace+"_payload_read_errors_total",
		"Attempts whose event body could not be read back from the WAL (disk damage): they fail without being sent.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- endpointsDesc
	ch <- walBytesDesc
	ch <- payloadErrorsDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ref := c.m.state.Load()
	if ref == nil {
		return
	}
	active, disabled := 0, 0
	for _, st := range ref.EndpointStats(nil) {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Queued), st.ID)
		if st.Active {
			active++
		} else {
			disabled++
		}
	}
	ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(disabled), "disabled")
	ch <- prometheus.MustNewConstMetric(walBytesDesc, prometheus.GaugeValue, float64(ref.WALBytes()))
	ch <- prometheus.MustNewConstMetric(payloadErrorsDesc, prometheus.CounterValue, float64(ref.PayloadReadErrors()))
}
