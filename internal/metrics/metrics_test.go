package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/delivery"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

type fakeState struct {
	stats    []store.EndpointStat
	walBytes int64
	payload  int64
}

func (f *fakeState) EndpointStats(dst []store.EndpointStat) []store.EndpointStat {
	return append(dst, f.stats...)
}
func (f *fakeState) WALBytes() int64          { return f.walBytes }
func (f *fakeState) PayloadReadErrors() int64 { return f.payload }

// scrape fetches the handler's text exposition and parses it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of the sample of fam whose labels include want (counter, gauge, or
// a histogram's count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("no series %s", name)
	}
next:
	for _, m := range fam.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, want)
	return 0
}

// TestSeries: every series exists with its type once the relay is running, and moves with
// what it is told.
func TestSeries(t *testing.T) {
	m := New()
	st := &fakeState{
		stats:    []store.EndpointStat{{ID: "ep_a", Queued: 7, Active: true}, {ID: "ep_b", Queued: 0, Active: false}, {ID: "ep_c", Queued: 2, Active: true}},
		walBytes: 12345,
		payload:  3,
	}
	m.SetState(st)
	m.Ingested(api.TypeIncidentOpened)
	m.Ingested(api.TypeIncidentOpened)
	m.Ingested("custom.type")
	m.Rejected(401)
	m.Rejected(422)
	m.Rejected(422)
	m.Attempt(delivery.ResultSuccess, 20*time.Millisecond)
	m.Attempt(delivery.ResultHTTPError, 30*time.Millisecond)
	m.Attempt(delivery.ResultRefused, time.Millisecond)
	m.Finished(true, 1500*time.Millisecond)
	m.Finished(false, 0)
	m.Disabled(api.DisabledConsecutiveFailures)
	m.Disabled(api.DisabledGone)
	m.Disabled(api.DisabledGone)
	m.WALFsync(2 * time.Millisecond)
	m.Snapshot(40 * time.Millisecond)

	fams := scrape(t, m)
	types := map[string]dto.MetricType{
		"blametrail_events_ingested_total":         dto.MetricType_COUNTER,
		"blametrail_ingest_rejected_total":         dto.MetricType_COUNTER,
		"blametrail_delivery_attempts_total":       dto.MetricType_COUNTER,
		"blametrail_deliveries_finished_total":     dto.MetricType_COUNTER,
		"blametrail_delivery_latency_seconds":      dto.MetricType_HISTOGRAM,
		"blametrail_attempt_duration_seconds":      dto.MetricType_HISTOGRAM,
		"blametrail_queue_depth":                   dto.MetricType_GAUGE,
		"blametrail_endpoints":                     dto.MetricType_GAUGE,
		"blametrail_endpoints_auto_disabled_total": dto.MetricType_COUNTER,
		"blametrail_wal_fsync_duration_seconds":    dto.MetricType_HISTOGRAM,
		"blametrail_wal_bytes":                     dto.MetricType_GAUGE,
		"blametrail_snapshot_duration_seconds":     dto.MetricType_HISTOGRAM,
		"blametrail_payload_read_errors_total":     dto.MetricType_COUNTER,
		"go_goroutines":                            dto.MetricType_GAUGE,
		"process_resident_memory_bytes":            dto.MetricType_GAUGE,
	}
	for name, typ := range types {
		fam, ok := fams[name]
		if !ok {
			if name == "process_resident_memory_bytes" && !processMetricsSupported() {
				continue
			}
			t.Errorf("series %s missing", name)
			continue
		}
		if fam.GetType() != typ {
			t.Errorf("%s is a %s, want %s", name, fam.GetType(), typ)
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"blametrail_events_ingested_total", map[string]string{"type": api.TypeIncidentOpened}, 2},
		{"blametrail_events_ingested_total", map[string]string{"type": api.TypeIncidentResolved}, 0},
		{"blametrail_events_ingested_total", map[string]string{"type": "custom.type"}, 1},
		{"blametrail_ingest_rejected_total", map[string]string{"reason": "unauthorized"}, 1},
		{"blametrail_ingest_rejected_total", map[string]string{"reason": "validation"}, 2},
		{"blametrail_ingest_rejected_total", map[string]string{"reason": "too_large"}, 0},
		{"blametrail_delivery_attempts_total", map[string]string{"result": "success"}, 1},
		{"blametrail_delivery_attempts_total", map[string]string{"result": "http_error"}, 1},
		{"blametrail_delivery_attempts_total", map[string]string{"result": "refused"}, 1},
		{"blametrail_delivery_attempts_total", map[string]string{"result": "timeout"}, 0},
		{"blametrail_delivery_attempts_total", map[string]string{"result": "network"}, 0},
		{"blametrail_deliveries_finished_total", map[string]string{"status": "succeeded"}, 1},
		{"blametrail_deliveries_finished_total", map[string]string{"status": "failed"}, 1},
		{"blametrail_delivery_latency_seconds", nil, 1},
		{"blametrail_attempt_duration_seconds", nil, 3},
		{"blametrail_queue_depth", map[string]string{"endpoint_id": "ep_a"}, 7},
		{"blametrail_queue_depth", map[string]string{"endpoint_id": "ep_b"}, 0},
		{"blametrail_queue_depth", map[string]string{"endpoint_id": "ep_c"}, 2},
		{"blametrail_endpoints", map[string]string{"state": "active"}, 2},
		{"blametrail_endpoints", map[string]string{"state": "disabled"}, 1},
		{"blametrail_endpoints_auto_disabled_total", map[string]string{"reason": "consecutive_failures"}, 1},
		{"blametrail_endpoints_auto_disabled_total", map[string]string{"reason": "gone"}, 2},
		{"blametrail_wal_fsync_duration_seconds", nil, 1},
		{"blametrail_wal_bytes", nil, 12345},
		{"blametrail_snapshot_duration_seconds", nil, 1},
		{"blametrail_payload_read_errors_total", nil, 3},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := fams["blametrail_delivery_latency_seconds"].Metric[0].GetHistogram()
	if got := h.GetSampleSum(); got != 1.5 {
		t.Errorf("latency sum = %v, want 1.5", got)
	}
}

// TestStateSeriesAbsentUntilSet: before the store is open there is nothing to read, and the
// scrape still answers (Go and process series).
func TestStateSeriesAbsentUntilSet(t *testing.T) {
	fams := scrape(t, New())
	for _, name := range []string{"blametrail_queue_depth", "blametrail_endpoints", "blametrail_wal_bytes"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s present before SetState", name)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("go_goroutines missing")
	}
}

func TestRejectReason(t *testing.T) {
	for status, want := range map[int]string{
		400: "malformed_json", 401: "unauthorized", 405: "method_not_allowed", 408: "timeout",
		409: "idempotency_key_reused", 413: "too_large", 415: "unsupported_media_type", 422: "validation",
		431: "headers_too_large", 503: "unavailable", 504: "unavailable", 500: "other", 418: "other",
	} {
		if got := RejectReason(status); got != want {
			t.Errorf("RejectReason(%d) = %q, want %q", status, got, want)
		}
		if _, ok := New().rejected[RejectReason(status)]; !ok {
			t.Errorf("reason %q of %d is not pre-resolved", RejectReason(status), status)
		}
	}
}

// TestHotPathsDoNotAllocate: what the engine, the WAL and ingest call per event costs no
// allocation.
func TestHotPathsDoNotAllocate(t *testing.T) {
	m := New()
	n := testing.AllocsPerRun(1000, func() {
		m.Ingested(api.TypeIncidentOpened)
		m.Attempt(delivery.ResultSuccess, time.Millisecond)
		m.Attempt(delivery.ResultTimeout, time.Millisecond)
		m.Finished(true, time.Second)
		m.Finished(false, 0)
		m.WALFsync(time.Millisecond)
		m.Rejected(422)
	})
	if n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func BenchmarkAttempt(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Attempt(delivery.ResultSuccess, 30*time.Millisecond)
			m.Finished(true, 250*time.Millisecond)
		}
	})
}
