package main_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// autoDisableArgs make each delivery to a failing receiver end after two quick attempts.
var autoDisableArgs = []string{"--disable-after", "10", "--retry-schedule", "10ms"}

func TestAutoDisableAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	r := relaytest.Start(t, relaytest.Options{Args: autoDisableArgs})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	for i := range 10 {
		if res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"i": i}); res.Deliveries != 1 {
			t.Fatalf("ingest %d = %+v", i, res)
		}
	}
	got := waitEndpoint(t, r, ep.ID, "auto-disable", func(e api.Endpoint) bool { return !e.Active })
	if got.DisabledReason == nil || *got.DisabledReason != api.DisabledConsecutiveFailures || got.ConsecutiveFailures != 10 {
		t.Errorf("endpoint = %+v, want disabled_reason consecutive_failures and consecutive_failures 10", got)
	}
	for _, d := range waitFinished(t, r, ep.ID, 10) {
		if d.Status != api.StatusFailed || len(d.Attempts) != 2 {
			t.Errorf("delivery %s: %s after %d attempts, want failed after 2", d.ID, d.Status, len(d.Attempts))
		}
	}
	// While disabled: no deliveries for new events, and no test pings.
	before := rc.Count()
	if res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"late": true}); res.Deliveries != 0 {
		t.Errorf("ingest while disabled = %+v, want deliveries 0", res)
	}
	status, body, _ := r.Do("POST", "/api/webhooks/endpoints/"+ep.ID+"/test", "", r.Token, nil)
	checkErrorBody(t, status, body, http.StatusConflict, "")
	// Nothing was created to deliver (deliveries 0, the ping refused): no waiting needed.
	if before != 20 {
		t.Errorf("receiver got %d requests, want 20 (10 deliveries × 2 attempts)", before)
	}
	if ds := allDeliveries(t, r, ep.ID); len(ds) != 10 {
		t.Errorf("%d deliveries, want 10", len(ds))
	}
}

func TestSuccessResetsFailureCount(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	r := relaytest.Start(t, relaytest.Options{Args: autoDisableArgs})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	post := func(n int) {
		for i := range n {
			ingest(t, r, api.TypeDeployIngested, map[string]any{"i": i})
		}
	}
	post(9)
	waitFinished(t, r, ep.ID, 9)
	if got := getEndpoint(t, r, ep.ID); got.ConsecutiveFailures != 9 || !got.Active {
		t.Fatalf("after 9 failures: %+v", got)
	}
	rc.SetHandler(nil) // 200
	post(1)
	waitFinished(t, r, ep.ID, 10)
	if got := getEndpoint(t, r, ep.ID); got.ConsecutiveFailures != 0 || !got.Active {
		t.Fatalf("after a success: %+v, want consecutive_failures 0", got)
	}
	rc.SetHandler(relaytest.Status(http.StatusInternalServerError))
	post(9)
	waitFinished(t, r, ep.ID, 19)
	if got := getEndpoint(t, r, ep.ID); got.ConsecutiveFailures != 9 || !got.Active || got.DisabledReason != nil {
		t.Errorf("9 failures, 1 success, 9 failures: %+v, want active with consecutive_failures 9", got)
	}
}

// TestHeldAndResumed: disabling an endpoint holds its queued deliveries; enabling it resumes them.
// TestHeldAndResumed: disabling an endpoint holds its queued delivery (no next attempt), and
// re-enabling resumes it at once. The retry is an hour away, so nothing but the re-enable can
// make the second attempt happen during the test (a 1 s retry raced the PATCH on 2 cores).
func TestHeldAndResumed(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "1h,1h,1h,1h,1h"}})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"held": true})
	waitDeliveries(t, r, ep.ID, "first failed attempt", func(ds []api.Delivery) bool {
		return len(ds) == 1 && len(ds[0].Attempts) == 1 && ds[0].Status == api.StatusPending
	})
	off, on := false, true
	patchEndpoint(t, r, ep.ID, apiclient.EndpointPatch{Active: &off})
	d := allDeliveries(t, r, ep.ID)[0]
	if d.Status != api.StatusHeld || d.NextAttemptAt != nil {
		t.Errorf("after disabling: %+v, want held with next_attempt_at null", d)
	}
	if res2 := ingest(t, r, api.TypeIncidentOpened, map[string]any{}); res2.Deliveries != 0 {
		t.Errorf("ingest while disabled = %+v, want deliveries 0", res2)
	}
	if n := rc.Count(); n != 1 {
		t.Errorf("a held delivery was attempted: receiver has %d requests", n)
	}
	if d := allDeliveries(t, r, ep.ID); len(d) != 1 || d[0].Status != api.StatusHeld {
		t.Errorf("deliveries while disabled = %+v", d)
	}

	rc.SetHandler(nil)
	got := patchEndpoint(t, r, ep.ID, apiclient.EndpointPatch{Active: &on})
	if !got.Active || got.DisabledReason != nil {
		t.Errorf("re-enabled = %+v", got)
	}
	d = waitFinished(t, r, ep.ID, 1)[0]
	if d.Status != api.StatusSucceeded || len(d.Attempts) != 2 || *d.Attempts[1].StatusCode != 200 {
		t.Errorf("after re-enabling: %+v, want succeeded on the second attempt", d)
	}
	reqs := rc.Requests()
	if len(reqs) != 2 || reqs[1].Header.Get("X-BlameTrail-Delivery") != d.ID {
		t.Errorf("receiver got %d requests; want the held delivery %s once more", len(reqs), d.ID)
	}
	checkDeliveryRequest(t, reqs[1], ep.Secret, api.TypeIncidentOpened, res.ID, []byte(`{"held":true}`))
}

func TestEventFilter(t *testing.T) {
	t.Parallel()
	rcOnly := relaytest.NewReceiver(t, nil)
	rcAll := relaytest.NewReceiver(t, nil)
	r := relaytest.Start(t, relaytest.Options{})
	only := createEndpoint(t, r, apiclient.EndpointCreate{URL: rcOnly.URL, EventTypes: []string{api.TypeIncidentOpened}})
	all := createEndpoint(t, r, apiclient.EndpointCreate{URL: rcAll.URL})
	ingestible := []string{api.TypeIncidentOpened, api.TypeIncidentAcknowledged, api.TypeIncidentResolved, api.TypeDeployIngested}
	for _, typ := range ingestible {
		want := 1
		if typ == api.TypeIncidentOpened {
			want = 2
		}
		if res := ingest(t, r, typ, map[string]any{"type": typ}); res.Deliveries != want {
			t.Errorf("ingest %s = %+v, want %d deliveries", typ, res, want)
		}
	}
	types := func(rc *relaytest.Receiver, n int) []string {
		var out []string
		for _, req := range waitCount(t, rc, n) {
			out = append(out, req.Header.Get("X-BlameTrail-Event"))
		}
		slices.Sort(out)
		return out
	}
	if got := types(rcAll, 4); !slices.Equal(got, sorted(ingestible)) {
		t.Errorf("endpoint with no filter got %v, want all four ingestible types", got)
	}
	if got := types(rcOnly, 1); !slices.Equal(got, []string{api.TypeIncidentOpened}) {
		t.Errorf("endpoint filtered to incident.opened got %v", got)
	}
	if n := len(allDeliveries(t, r, only.ID)); n != 1 {
		t.Errorf("filtered endpoint has %d deliveries, want 1", n)
	}
	// A filter narrowed later applies to later events; test pings ignore filters.
	patchEndpoint(t, r, all.ID, apiclient.EndpointPatch{EventTypes: &[]string{api.TypeDeployIngested}})
	if res := ingest(t, r, api.TypeIncidentResolved, map[string]any{}); res.Deliveries != 0 {
		t.Errorf("ingest after narrowing = %+v, want 0 deliveries", res)
	}
	if _, err := r.Client.SendTest(testCtx(t), only.ID); err != nil {
		t.Fatal(err)
	}
	if got := types(rcOnly, 2); !slices.Equal(got, []string{api.TypeIncidentOpened, api.TypeTestPing}) {
		t.Errorf("filtered endpoint after a test ping got %v", got)
	}
	if n := rcAll.Count(); n != 4 {
		t.Errorf("unfiltered endpoint got %d requests, want 4 (no test.ping unless asked)", n)
	}
}

// TestIdempotentIngest: the same id and body again answers the first result and delivers
// nothing more; the same id with another type or data answers 409 idempotency_key_reused (as
// Stripe does), never the first result, and both hold after a SIGKILL and a restart.
func TestIdempotentIngest(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, nil)
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	first := `{"type":"incident.opened","data":{"n":1},"id":"source-42"}`
	reused := []string{
		`{"type":"incident.resolved","data":{"n":1},"id":"source-42"}`, // other type
		`{"type":"incident.opened","data":{"n":2},"id":"source-42"}`,   // other data
	}
	post := func(body string) (int, []byte) {
		status, b, _ := r.Do("POST", "/api/events", "application/json", r.Token, []byte(body))
		return status, b
	}
	var want api.IngestResult
	check := func(when string) {
		t.Helper()
		for i := range 2 {
			status, b := post(first)
			var res api.IngestResult
			_ = json.Unmarshal(b, &res)
			if status != http.StatusAccepted || (want.ID != "" && res != want) {
				t.Fatalf("%s: the same request (%d) = %d %s, want 202 %+v", when, i, status, b, want)
			}
			want = res
		}
		for _, body := range reused {
			status, b := post(body)
			checkErrorBody(t, status, b, http.StatusConflict, "idempotency_key_reused")
		}
	}
	check("live")
	if want.Deliveries != 1 {
		t.Fatalf("first answer %+v, want 1 delivery", want)
	}
	reqs := waitCount(t, rc, 1)
	checkDeliveryRequest(t, reqs[0], ep.Secret, api.TypeIncidentOpened, want.ID, []byte(`{"n":1}`))
	r.Kill()
	r.Restart()
	check("after SIGKILL and restart")
	// Another key is another event.
	status, b := post(`{"type":"incident.opened","data":{},"id":"source-43"}`)
	var other api.IngestResult
	_ = json.Unmarshal(b, &other)
	if status != http.StatusAccepted || other.ID == want.ID || other.Deliveries != 1 {
		t.Errorf("a new key = %d %s", status, b)
	}
	// An attempt cut short by the SIGKILL may come again: count delivery ids, not requests.
	ids := func() map[string]bool {
		seen := map[string]bool{}
		for _, req := range rc.Requests() {
			seen[req.Header.Get("webhook-id")] = true
		}
		return seen
	}
	relaytest.Eventually(t, waitLong, "a delivery for each key", func() bool { return len(ids()) >= 2 })
	if n := len(ids()); n != 2 {
		t.Errorf("receiver got %d delivery ids, want 2 (one per key)", n)
	}
	if ds := allDeliveries(t, r, ep.ID); len(ds) != 2 {
		t.Errorf("%d deliveries, want 2 (one per key)", len(ds))
	}
}

func TestTestPing(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, nil)
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, EventTypes: []string{api.TypeIncidentResolved}})
	status, body, _ := r.Do("POST", "/api/webhooks/endpoints/"+ep.ID+"/test", "", r.Token, nil)
	if status != http.StatusAccepted {
		t.Fatalf("test = %d %s", status, body)
	}
	if keys := jsonKeys(t, body); !slices.Equal(keys, []string{"delivery_id"}) {
		t.Errorf("test answer keys = %v", keys)
	}
	var tr api.TestResult
	_ = json.Unmarshal(body, &tr)
	if len(tr.DeliveryID) != len("dlv_")+26 || tr.DeliveryID[:4] != "dlv_" {
		t.Errorf("delivery_id = %q", tr.DeliveryID)
	}
	req := waitCount(t, rc, 1)[0]
	checkDeliveryRequest(t, req, ep.Secret, api.TypeTestPing, "", nil)
	if err := signature.VerifyHeaders(ep.Secret, req.Header, req.Body); err != nil {
		t.Errorf("test ping signature: %v", err)
	}
	if got := req.Header.Get("X-BlameTrail-Delivery"); got != tr.DeliveryID {
		t.Errorf("delivery header %q, want %q", got, tr.DeliveryID)
	}
	var env struct {
		Data struct {
			EndpointID string `json:"endpoint_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(req.Body, &env); err != nil || env.Data.EndpointID != ep.ID {
		t.Errorf("test ping data = %s, want endpoint_id %s", req.Body, ep.ID)
	}
	d := waitFinished(t, r, ep.ID, 1)[0]
	if d.ID != tr.DeliveryID || d.EventType != api.TypeTestPing || d.Status != api.StatusSucceeded {
		t.Errorf("test delivery = %+v", d)
	}

	off := false
	patchEndpoint(t, r, ep.ID, apiclient.EndpointPatch{Active: &off})
	status, body, _ = r.Do("POST", "/api/webhooks/endpoints/"+ep.ID+"/test", "", r.Token, nil)
	checkErrorBody(t, status, body, http.StatusConflict, "endpoint_disabled")
}

// TestDeleteStopsDeliveries: no attempt reaches a receiver after its endpoint is deleted,
// whether the delete comes while a retry is scheduled or while an attempt is in flight.
// TestDeleteStopsDeliveries: deleting an endpoint stops its queued retry and the retry an
// in-flight attempt would have asked for. "Nothing happened" is judged by order, not by a
// sleep: a sentinel endpoint, failing too, gets an event after both deletions; once its second
// retry has arrived, retries the deleted endpoints would have had (due earlier, on the same
// schedule) would have arrived as well.
func TestDeleteStopsDeliveries(t *testing.T) {
	t.Parallel()
	// pending: fails fast; deleted while its retry is scheduled.
	pending := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	// inFlight: its first attempt is held open until the endpoint is deleted, then fails.
	inFlightStarted := make(chan struct{}, 1)
	deleted := make(chan struct{})
	inFlight := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		select {
		case inFlightStarted <- struct{}{}:
		default:
		}
		select {
		case <-deleted:
		case <-time.After(waitLong):
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	sentinel := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "300ms,300ms,300ms,300ms,300ms"}})
	var once sync.Once
	release := func() { once.Do(func() { close(deleted) }) }
	t.Cleanup(release)
	epPending := createEndpoint(t, r, apiclient.EndpointCreate{URL: pending.URL, EventTypes: []string{api.TypeIncidentOpened}})
	epInFlight := createEndpoint(t, r, apiclient.EndpointCreate{URL: inFlight.URL, EventTypes: []string{api.TypeIncidentOpened}})
	epSentinel := createEndpoint(t, r, apiclient.EndpointCreate{URL: sentinel.URL, EventTypes: []string{api.TypeDeployIngested}})
	if res := ingest(t, r, api.TypeIncidentOpened, map[string]any{}); res.Deliveries != 2 {
		t.Fatalf("ingest = %+v", res)
	}

	waitDeliveries(t, r, epPending.ID, "a failed first attempt with a retry scheduled", func(ds []api.Delivery) bool {
		return len(ds) == 1 && len(ds[0].Attempts) == 1 && ds[0].NextAttemptAt != nil
	})
	if err := r.Client.DeleteEndpoint(testCtx(t), epPending.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlightStarted:
	case <-time.After(waitLong):
		t.Fatal("the in-flight attempt never started")
	}
	if err := r.Client.DeleteEndpoint(testCtx(t), epInFlight.ID); err != nil {
		t.Fatal(err)
	}
	release() // the in-flight attempt now ends with a 500, which would call for a retry
	if res := ingest(t, r, api.TypeDeployIngested, map[string]any{}); res.Deliveries != 1 {
		t.Fatalf("sentinel ingest = %+v", res)
	}
	waitDeliveries(t, r, epSentinel.ID, "the sentinel's second retry", func(ds []api.Delivery) bool {
		return len(ds) == 1 && len(ds[0].Attempts) >= 3
	})
	if n := pending.Count(); n != 1 {
		t.Errorf("receiver of the endpoint deleted while a retry was scheduled got %d requests, want 1", n)
	}
	if n := inFlight.Count(); n != 1 {
		t.Errorf("receiver of the endpoint deleted during an attempt got %d requests, want 1", n)
	}
	for _, id := range []string{epPending.ID, epInFlight.ID} {
		status, body, _ := r.Do("GET", "/api/webhooks/endpoints/"+id+"/deliveries", "", r.Token, nil)
		checkErrorBody(t, status, body, http.StatusNotFound, "endpoint_not_found")
	}
	checkAlive(t, r)
}

// TestSlowEndpointDoesNotDelayOthers: a receiver that does not answer at all until the test
// lets it must not hold up deliveries to a healthy one. The assertion is structural: the fast
// receiver has every event while the slow one has answered none.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	const events = 40
	var inFlight, maxInFlight, answered atomic.Int32
	var gateOnce sync.Once
	gate := make(chan struct{})
	openGate := func() { gateOnce.Do(func() { close(gate) }) }
	slow := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		cur := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		select {
		case <-gate:
		case <-time.After(waitLong):
		}
		inFlight.Add(-1)
		answered.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	fast := relaytest.NewReceiver(t, nil)
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--delivery-timeout", "60s"}})
	t.Cleanup(openGate) // first of the cleanups: before the relay waits for its attempts
	slowEp := createEndpoint(t, r, apiclient.EndpointCreate{URL: slow.URL})
	fastEp := createEndpoint(t, r, apiclient.EndpointCreate{URL: fast.URL})
	for i := range events {
		if res := ingest(t, r, api.TypeIncidentOpened, map[string]any{"i": i}); res.Deliveries != 2 {
			t.Fatalf("ingest = %+v", res)
		}
	}
	waitCount(t, fast, events)
	if a := answered.Load(); a != 0 {
		t.Errorf("slow receiver answered %d before the gate opened", a)
	}
	if m := maxInFlight.Load(); m < 1 || m > 16 {
		t.Errorf("slow receiver had %d requests in flight at once, want 1..16 (the per-endpoint bound)", m)
	}
	waitFinished(t, r, fastEp.ID, events)
	openGate()
	for _, d := range waitFinished(t, r, slowEp.ID, events) {
		if d.Status != api.StatusSucceeded || len(d.Attempts) != 1 {
			t.Errorf("slow delivery %+v, want succeeded on its first attempt", d)
		}
	}
}
