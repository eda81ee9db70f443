package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// metricTypes is every series the operations guide documents, with its type.
var metricTypes = map[string]dto.MetricType{
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
	"process_cpu_seconds_total":                dto.MetricType_COUNTER,
}

type families map[string]*dto.MetricFamily

// checkTypes asserts that every series of metricTypes but those in except is in fams, with
// its type.
func checkTypes(t *testing.T, fams families, except ...string) {
	t.Helper()
	for name, typ := range metricTypes {
		if slices.Contains(except, name) {
			continue
		}
		if fam, ok := fams[name]; !ok {
			t.Errorf("series %s missing", name)
		} else if fam.GetType() != typ {
			t.Errorf("%s is a %s, want %s", name, fam.GetType(), typ)
		}
	}
}

// scrapeMetrics GETs url (with token when not empty) and parses the text exposition.
func scrapeMetrics(t *testing.T, url, token string) families {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: Content-Type %q, want the text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// get returns the value of name's sample with exactly these labels (a histogram's count), or
// -1 when there is none.
func (f families) get(name string, labels ...string) float64 {
	fam, ok := f[name]
	if !ok {
		return -1
	}
	for _, m := range fam.Metric {
		if len(m.Label)*2 != len(labels) {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}
			match = match && found
		}
		if !match {
			continue
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
	return -1
}

// metricsAddr is the address the relay logged for --metrics-listen.
func metricsAddr(t *testing.T, r *relaytest.Relay) string {
	t.Helper()
	var addr string
	relaytest.Eventually(t, waitLong, "the metrics listener's address in the log", func() bool {
		for _, line := range strings.Split(r.Logs(), "\n") {
			var m struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "metrics listening" {
				addr = m.Addr
				return true
			}
		}
		return false
	})
	return addr
}

// TestMetrics scrapes the real relay: /metrics needs the token on the main listener, is open
// on --metrics-listen, has every documented series with its type, and its values follow real
// traffic: accepted and refused events, attempts, finished deliveries, an auto-disable.
func TestMetrics(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Args: []string{
		"--retry-schedule", "20ms,40ms", "--disable-after", "1", "--max-body-size", "1024",
		"--metrics-listen", "127.0.0.1:0",
	}})
	mainURL := r.URL + "/metrics"
	openURL := "http://" + metricsAddr(t, r) + "/metrics"

	// The main listener's /metrics is the admin API's: the token or 401.
	for _, token := range []string{"", "wrong-token-wrong-token"} {
		status, body, h := r.Do("GET", "/metrics", "", token, nil)
		checkErrorBody(t, status, body, http.StatusUnauthorized, "unauthorized")
		if h.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
	if status, _, _ := r.Do("POST", "/metrics", "", r.Token, nil); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", status)
	}
	// Before any traffic every series but queue_depth (one sample per endpoint, and there is
	// none yet) is there.
	checkTypes(t, scrapeMetrics(t, mainURL, r.Token), "blametrail_queue_depth")

	ok := relaytest.NewReceiver(t, nil)
	bad := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	good := createEndpoint(t, r, apiclient.EndpointCreate{URL: ok.URL, EventTypes: []string{api.TypeIncidentOpened}})
	failing := createEndpoint(t, r, apiclient.EndpointCreate{URL: bad.URL, EventTypes: []string{api.TypeIncidentResolved}})
	for i := range 3 {
		ingest(t, r, api.TypeIncidentOpened, map[string]int{"n": i})
	}
	ingest(t, r, api.TypeIncidentResolved, map[string]int{"n": 3})
	waitFinished(t, r, good.ID, 3)
	waitFinished(t, r, failing.ID, 1)
	waitEndpoint(t, r, failing.ID, "the failing endpoint to be disabled", func(ep api.Endpoint) bool { return !ep.Active })

	// Refused ingests: no token, malformed JSON, an unknown type, a body over the limit.
	status, _, _ := r.Do("POST", "/api/events", "application/json", "", []byte(`{"type":"incident.opened","data":{}}`))
	if status != http.StatusUnauthorized {
		t.Fatalf("ingest without token = %d", status)
	}
	if status, _, _ = r.Do("POST", "/api/events", "application/json", r.Token, []byte(`{"type":`)); status != http.StatusBadRequest {
		t.Fatalf("malformed ingest = %d", status)
	}
	if status, _, _ = r.Do("POST", "/api/events", "application/json", r.Token, []byte(`{"type":"no.such.type","data":{}}`)); status != http.StatusUnprocessableEntity {
		t.Fatalf("ingest of an unknown type = %d", status)
	}
	big := append(append([]byte(`{"type":"incident.opened","data":{"x":"`), bytes.Repeat([]byte("x"), 4096)...), `"}}`...)
	if status, _, _ = rawDo(t, r, "POST", "/api/events", "application/json", r.Token, big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized ingest = %d", status)
	}

	// The attempts' outcomes are recorded just after the deliveries show as finished.
	var f families
	relaytest.Eventually(t, waitLong, "the attempt counters", func() bool {
		f = scrapeMetrics(t, mainURL, r.Token)
		return f.get("blametrail_delivery_attempts_total", "result", "http_error") == 3 &&
			f.get("blametrail_deliveries_finished_total", "status", "succeeded") == 3
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"blametrail_events_ingested_total", []string{"type", api.TypeIncidentOpened}, 3},
		{"blametrail_events_ingested_total", []string{"type", api.TypeIncidentResolved}, 1},
		{"blametrail_delivery_attempts_total", []string{"result", "success"}, 3},
		{"blametrail_delivery_attempts_total", []string{"result", "http_error"}, 3}, // 1 attempt + 2 retries
		{"blametrail_delivery_attempts_total", []string{"result", "timeout"}, 0},
		{"blametrail_delivery_attempts_total", []string{"result", "network"}, 0},
		{"blametrail_delivery_attempts_total", []string{"result", "refused"}, 0},
		{"blametrail_deliveries_finished_total", []string{"status", "succeeded"}, 3},
		{"blametrail_deliveries_finished_total", []string{"status", "failed"}, 1},
		{"blametrail_endpoints_auto_disabled_total", []string{"reason", "consecutive_failures"}, 1},
		{"blametrail_endpoints_auto_disabled_total", []string{"reason", "gone"}, 0},
		{"blametrail_endpoints", []string{"state", "active"}, 1},
		{"blametrail_endpoints", []string{"state", "disabled"}, 1},
		{"blametrail_queue_depth", []string{"endpoint_id", good.ID}, 0},
		{"blametrail_queue_depth", []string{"endpoint_id", failing.ID}, 0},
		{"blametrail_delivery_latency_seconds", nil, 3},
		{"blametrail_attempt_duration_seconds", nil, 6},
		{"blametrail_ingest_rejected_total", []string{"reason", "unauthorized"}, 1},
		{"blametrail_ingest_rejected_total", []string{"reason", "malformed_json"}, 1},
		{"blametrail_ingest_rejected_total", []string{"reason", "validation"}, 1},
		{"blametrail_ingest_rejected_total", []string{"reason", "too_large"}, 1},
		{"blametrail_ingest_rejected_total", []string{"reason", "idempotency_key_reused"}, 0},
		{"blametrail_payload_read_errors_total", nil, 0},
	} {
		if got := f.get(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	checkTypes(t, f)
	if got := f.get("blametrail_wal_bytes"); got <= 0 {
		t.Errorf("blametrail_wal_bytes = %v, want > 0", got)
	}
	if got := f.get("blametrail_wal_fsync_duration_seconds"); got < 4 {
		t.Errorf("blametrail_wal_fsync_duration_seconds count = %v, want at least one per acknowledged event", got)
	}

	// Disabled by hand counts as disabled too; events accepted with no endpoint to go to
	// still count as ingested.
	off := false
	patchEndpoint(t, r, good.ID, apiclient.EndpointPatch{Active: &off})
	ingest(t, r, api.TypeIncidentOpened, map[string]int{"n": 4})
	ingest(t, r, api.TypeIncidentOpened, map[string]int{"n": 5})
	f = scrapeMetrics(t, mainURL, r.Token)
	if got := f.get("blametrail_endpoints", "state", "disabled"); got != 2 {
		t.Errorf("endpoints{disabled} = %v after disabling the other endpoint, want 2", got)
	}

	// --metrics-listen answers without a token, with the same series; the main listener
	// still wants it.
	open := scrapeMetrics(t, openURL, "")
	checkTypes(t, open)
	if got := open.get("blametrail_events_ingested_total", "type", api.TypeIncidentOpened); got != 5 {
		t.Errorf("events_ingested_total{incident.opened} on --metrics-listen = %v, want 5", got)
	}
	if status, _, _ := r.Do("GET", "/metrics", "", "", nil); status != http.StatusUnauthorized {
		t.Errorf("main /metrics without token while --metrics-listen is set = %d, want 401", status)
	}
	resp, err := http.Get("http://" + metricsAddr(t, r) + "/api/webhooks/endpoints")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics listener serves %s: %d, want 404 (only /metrics)", "/api/webhooks/endpoints", resp.StatusCode)
	}
	checkAlive(t, r)
}

// TestMetricsListenerErrors: --metrics-listen serves /metrics and nothing else, and answers the
// rest as every other listener does: a JSON error body, 404 route_not_found for another path
// (never a redirect to a cleaned one), 405 with Allow for another method, 431 for headers over
// 8 KiB.
func TestMetricsListenerErrors(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--metrics-listen", "127.0.0.1:0"}})
	base := "http://" + metricsAddr(t, r)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := []struct {
		name, method, path string
		header             string // X-Pad of this many bytes when not empty
		status             int
		code               string // "" = not a JSON error
		allow              string
	}{
		{name: "metrics", method: "GET", path: "/metrics", status: http.StatusOK},
		{name: "metrics head", method: "HEAD", path: "/metrics", status: http.StatusOK},
		{name: "unknown path", method: "GET", path: "/api/webhooks/endpoints", status: http.StatusNotFound, code: api.CodeRouteNotFound},
		{name: "root", method: "GET", path: "/", status: http.StatusNotFound, code: api.CodeRouteNotFound},
		{name: "healthz is not served here", method: "GET", path: "/healthz", status: http.StatusNotFound, code: api.CodeRouteNotFound},
		{name: "dot segments", method: "GET", path: "/metrics/../api/info", status: http.StatusNotFound, code: api.CodeRouteNotFound},
		{name: "trailing slash", method: "GET", path: "/metrics/", status: http.StatusNotFound, code: api.CodeRouteNotFound},
		{name: "post", method: "POST", path: "/metrics", status: http.StatusMethodNotAllowed, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "delete", method: "DELETE", path: "/metrics", status: http.StatusMethodNotAllowed, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "headers over 8 KiB", method: "GET", path: "/metrics", header: strings.Repeat("a", 16<<10), status: http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The request line carries the path exactly as written.
			req.URL.Opaque = tt.path
			if tt.header != "" {
				req.Header.Set("X-Pad", tt.header)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			if tt.code == "" {
				if resp.StatusCode != tt.status {
					t.Fatalf("%s %s = %d, want %d; body %.200s", tt.method, tt.path, resp.StatusCode, tt.status, body)
				}
				return
			}
			checkErrorBody(t, resp.StatusCode, body.Bytes(), tt.status, tt.code)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestMetricsQueueDepth: deliveries not yet finished, in flight included, count in their
// endpoint's queue depth until they finish.
func TestMetricsQueueDepth(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	release := make(chan struct{})
	var once sync.Once
	rc := relaytest.NewReceiver(t, blockUntil(release, waitLong, http.StatusOK))
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the receiver closes
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	for i := range 4 {
		ingest(t, r, api.TypeIncidentOpened, map[string]int{"n": i})
	}
	waitCount(t, rc, 4)
	depth := func() float64 {
		return scrapeMetrics(t, r.URL+"/metrics", r.Token).get("blametrail_queue_depth", "endpoint_id", ep.ID)
	}
	if got := depth(); got != 4 {
		t.Errorf("queue_depth with 4 deliveries in flight = %v, want 4", got)
	}
	once.Do(func() { close(release) })
	waitFinished(t, r, ep.ID, 4)
	relaytest.Eventually(t, waitLong, "the queue depth to drop to 0", func() bool { return depth() == 0 })
}
