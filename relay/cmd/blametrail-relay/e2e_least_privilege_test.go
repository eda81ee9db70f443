package main_test

// Least privilege: the ingest token (--ingest-token) can only post events, and the admin
// listener (--admin-listen) keeps the admin API, UI and metrics off the ingest listener.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

const testIngestToken = "ingest_least_privilege_0123456789"

// doAt sends one request to base+path; unlike relaytest.Relay.Do it fails the t it is given,
// so it is safe in subtests.
func doAt(t *testing.T, base, method, path, token string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// adminRoutes is one request per authenticated route other than ingest, for an endpoint id.
func adminRoutes(id string) []struct{ method, path, body string } {
	ep := "/api/webhooks/endpoints/" + id
	return []struct{ method, path, body string }{
		{"GET", "/api/webhooks/endpoints", ""},
		{"POST", "/api/webhooks/endpoints", `{"url":"http://127.0.0.1:1/stolen","name":"attacker"}`},
		{"GET", ep, ""},
		{"PATCH", ep, `{"url":"http://127.0.0.1:1/redirected"}`},
		{"DELETE", ep, ""},
		{"GET", ep + "/secret", ""},
		{"POST", ep + "/secret/rotate", `{}`},
		{"POST", ep + "/test", ""},
		{"GET", ep + "/deliveries", ""},
		{"GET", "/api/info", ""},
		{"GET", "/api/event-types", ""},
		{"GET", "/metrics", ""},
	}
}

// TestIngestTokenOnlyPostsEvents: on a single listener, the ingest token posts an event that
// is delivered, and every other authenticated route answers it 403 forbidden without doing
// anything: it cannot list, read secrets, create, change, delete, test or scrape. The admin
// token keeps every right, ingest included. Neither token is ever logged.
func TestIngestTokenOnlyPostsEvents(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{IngestToken: testIngestToken})
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	secret, err := r.Client.SecretInfo(testCtx(t), ep.ID)
	if err != nil {
		t.Fatal(err)
	}

	res, err := r.IngestClient.Ingest(testCtx(t), apiclient.Event{Type: api.TypeIncidentOpened, Data: map[string]any{"by": "ingest token"}})
	if err != nil {
		t.Fatalf("ingest with the ingest token: %v", err)
	}
	if res.Deliveries != 1 {
		t.Errorf("deliveries = %d, want 1", res.Deliveries)
	}
	reqs := waitCount(t, rc, 1)
	if !bytes.Contains(reqs[0].Body, []byte(`"by":"ingest token"`)) {
		t.Errorf("delivered body %s lacks the event's data", reqs[0].Body)
	}

	for _, rt := range adminRoutes(ep.ID) {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			var body []byte
			if rt.body != "" {
				body = []byte(rt.body)
			}
			status, got, h := doAt(t, r.URL, rt.method, rt.path, testIngestToken, body)
			checkErrorBody(t, status, got, http.StatusForbidden, "forbidden")
			if !strings.Contains(h.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Errorf("WWW-Authenticate %q, want insufficient_scope", h.Get("WWW-Authenticate"))
			}
			if bytes.Contains(got, []byte(secret.Secret)) || bytes.Contains(got, []byte(testIngestToken)) {
				t.Errorf("the 403 holds the secret or the token: %s", got)
			}
		})
	}
	// Nothing the ingest token tried happened.
	eps, err := r.Client.ListEndpoints(testCtx(t), "", api.MaxPageLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps.Data) != 1 || eps.Data[0].URL != rc.URL || !eps.Data[0].Active {
		t.Errorf("endpoints after the ingest token's attempts: %+v, want the one, unchanged", eps.Data)
	}
	if after, err := r.Client.SecretInfo(testCtx(t), ep.ID); err != nil || after.Secret != secret.Secret {
		t.Errorf("secret after the ingest token's attempts: %v, changed %v", err, after.Secret != secret.Secret)
	}
	if n := len(allDeliveries(t, r, ep.ID)); n != 1 {
		t.Errorf("%d deliveries, want 1 (no test ping)", n)
	}

	// A wrong token is still a 401, on ingest and elsewhere; the UI's files need no token.
	status, got, _ := doAt(t, r.URL, "POST", "/api/events", "ingest_not_the_token_0123456789", []byte(`{"type":"incident.opened","data":{}}`))
	checkErrorBody(t, status, got, http.StatusUnauthorized, "unauthorized")
	status, got, _ = doAt(t, r.URL, "GET", "/api/webhooks/endpoints", "ingest_not_the_token_0123456789", nil)
	checkErrorBody(t, status, got, http.StatusUnauthorized, "unauthorized")
	if status, _, _ := doAt(t, r.URL, "GET", "/", "", nil); status != http.StatusOK {
		t.Errorf("GET / = %d, want 200", status)
	}
	// The admin token keeps every right, ingest included.
	if _, err := r.Client.Ingest(testCtx(t), apiclient.Event{Type: api.TypeIncidentOpened, Data: map[string]any{}}); err != nil {
		t.Errorf("ingest with the admin token: %v", err)
	}
	waitCount(t, rc, 2)

	checkAlive(t, r)
	logs := r.Logs()
	if strings.Contains(logs, testIngestToken) || strings.Contains(logs, r.Token) {
		t.Errorf("the log holds a token:\n%s", logs)
	}
	if !strings.Contains(logs, `"ingest_token_set":true`) {
		t.Errorf("the listen line does not say an ingest token is set:\n%s", logs)
	}
}

// TestAdminListenSplitsRoutes: with --admin-listen, --listen serves ingest and health only, and
// answers every other path 404 route_not_found whatever the token, as for a path served nowhere;
// the admin listener serves the admin API, /api/info, the UI and /metrics, but not ingest.
// --metrics-listen keeps working, and the startup log says which listener serves what.
func TestAdminListenSplitsRoutes(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{IngestToken: testIngestToken, AdminListen: true,
		Args: []string{"--metrics-listen", "127.0.0.1:0"}})
	if r.AdminURL == r.URL {
		t.Fatalf("AdminURL = URL = %s: the relay did not report its admin listener", r.URL)
	}
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL}) // on the admin listener
	if info, err := r.Client.Confirm(testCtx(t)); err != nil || info.Name != api.RelayName {
		t.Errorf("Confirm on the admin listener: %+v, %v", info, err)
	}
	ingest(t, r, api.TypeIncidentOpened, map[string]any{"n": 1}) // ingest token, --listen
	waitCount(t, rc, 1)
	adminOnIngest, err := apiclient.New(r.URL, r.Token, apiclient.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adminOnIngest.Ingest(testCtx(t), apiclient.Event{Type: api.TypeIncidentOpened, Data: map[string]any{"n": 2}}); err != nil {
		t.Errorf("ingest with the admin token on --listen: %v", err)
	}
	waitCount(t, rc, 2)

	t.Run("ingest listener hides admin", func(t *testing.T) {
		paths := []string{"/", "/ui/app.js", "/ui/", "/api/events/../webhooks/endpoints", "//api/webhooks/endpoints"}
		for _, rt := range adminRoutes(ep.ID) {
			paths = append(paths, rt.path)
		}
		for _, p := range paths {
			for _, tok := range []string{"", r.Token, testIngestToken} {
				status, got, h := doAt(t, r.URL, "GET", p, tok, nil)
				if status != http.StatusNotFound {
					t.Errorf("GET %s on --listen = %d %s, want 404", p, status, got)
				}
				checkErrorBody(t, status, got, http.StatusNotFound, api.CodeRouteNotFound)
				if h.Get("WWW-Authenticate") != "" || h.Get("Content-Security-Policy") != "" {
					t.Errorf("GET %s on --listen: headers %v give away an admin route", p, h)
				}
			}
		}
		// The same answer as a path the relay serves nowhere, but for the path it names.
		_, admin, _ := doAt(t, r.URL, "GET", "/api/webhooks/endpoints", r.Token, nil)
		_, nowhere, _ := doAt(t, r.URL, "GET", "/api/webhooks/nothing", r.Token, nil)
		if string(admin) != strings.Replace(string(nowhere), "/api/webhooks/nothing", "/api/webhooks/endpoints", 1) {
			t.Errorf("an admin path on --listen answers %s, a path served nowhere %s", admin, nowhere)
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			if status, got, _ := doAt(t, r.URL, "GET", p, "", nil); status != http.StatusOK {
				t.Errorf("GET %s on --listen = %d %s", p, status, got)
			}
		}
	})

	t.Run("admin listener serves no ingest", func(t *testing.T) {
		for _, tok := range []string{"", r.Token, testIngestToken} {
			status, got, _ := doAt(t, r.AdminURL, "POST", "/api/events", tok, []byte(`{"type":"incident.opened","data":{}}`))
			checkErrorBody(t, status, got, http.StatusNotFound, api.CodeRouteNotFound)
		}
		for _, p := range []string{"/healthz", "/readyz", "/", "/ui/app.js"} {
			if status, got, _ := doAt(t, r.AdminURL, "GET", p, "", nil); status != http.StatusOK {
				t.Errorf("GET %s on --admin-listen = %d %s", p, status, got)
			}
		}
		if status, got, _ := doAt(t, r.AdminURL, "GET", "/metrics", r.Token, nil); status != http.StatusOK ||
			!bytes.Contains(got, []byte(`blametrail_events_ingested_total{type="incident.opened"} 2`)) {
			t.Errorf("GET /metrics on --admin-listen = %d, want 200 with the two events:\n%s", status, got)
		}
		status, got, _ := doAt(t, r.AdminURL, "GET", "/metrics", "", nil)
		checkErrorBody(t, status, got, http.StatusUnauthorized, "unauthorized")
		// The ingest token has no admin rights on the admin listener either.
		status, got, _ = doAt(t, r.AdminURL, "GET", "/api/webhooks/endpoints/"+ep.ID+"/secret", testIngestToken, nil)
		checkErrorBody(t, status, got, http.StatusForbidden, "forbidden")
	})

	t.Run("metrics listener", func(t *testing.T) {
		status, got, _ := doAt(t, "http://"+metricsAddr(t, r), "GET", "/metrics", "", nil)
		if status != http.StatusOK || !bytes.Contains(got, []byte("blametrail_events_ingested_total")) {
			t.Errorf("GET /metrics on --metrics-listen = %d\n%s", status, got)
		}
	})

	var line struct {
		Addr           string `json:"addr"`
		Serves         string `json:"serves"`
		AdminAddr      string `json:"admin_addr"`
		AdminServes    string `json:"admin_serves"`
		IngestTokenSet bool   `json:"ingest_token_set"`
	}
	for _, l := range strings.Split(r.Logs(), "\n") {
		if strings.Contains(l, `"msg":"relay listening"`) {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	if line.Addr != r.Addr || line.Serves != "ingest, health" || line.AdminAddr != r.AdminAddr ||
		line.AdminServes != "admin API, UI, metrics, health" || !line.IngestTokenSet {
		t.Errorf("listen line = %+v", line)
	}
	checkAlive(t, r)
}

// TestAdminListenHardening: the admin listener refuses what --listen refuses: a body over
// --max-body-size (413), headers over the buffer (431), and a client that never finishes its
// request (cut off at the read timeout, tested on --listen by TestSlowlorisCutOff: both
// listeners are made by one function).
func TestAdminListenHardening(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{AdminListen: true, Args: []string{"--max-body-size", "1024"}})
	big := `{"url":"http://127.0.0.1:1/x","name":"` + strings.Repeat("n", 2048) + `"}`
	status, got, _ := doAt(t, r.AdminURL, "POST", "/api/webhooks/endpoints", r.Token, []byte(big))
	checkErrorBody(t, status, got, http.StatusRequestEntityTooLarge, "payload_too_large")
	req := "GET /api/webhooks/endpoints HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + r.Token +
		"\r\nX-Pad: " + strings.Repeat("p", 9<<10) + "\r\n\r\n"
	status, got, _ = rawExchange(t, r.AdminAddr, req)
	checkErrorBody(t, status, got, http.StatusRequestHeaderFieldsTooLarge, "request_header_too_large")
	checkAlive(t, r)
}

// TestAdminListenPortTaken: a port already in use for --admin-listen (or --listen) stops the
// relay with exit code 1 and a message naming the flag, before it serves anything.
func TestAdminListenPortTaken(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	addr := taken.Addr().String()
	for _, tt := range []struct{ flag, args string }{
		{"--admin-listen", "--admin-listen " + addr},
		{"--listen", "--listen " + addr + " --admin-listen 127.0.0.1:0"},
	} {
		res := relaytest.RunToExit(t, relaytest.Options{Args: strings.Fields(tt.args)}, 30*time.Second)
		if !res.Exited() || res.Code != 1 {
			t.Errorf("%s on a taken port: exited %v, code %d, want 1\n%s", tt.flag, res.Exited(), res.Code, res.Output)
			continue
		}
		if !strings.Contains(res.Output, `"flag":"`+tt.flag+`"`) || !strings.Contains(res.Output, "address already in use") {
			t.Errorf("%s on a taken port: the output does not name the flag and the cause:\n%s", tt.flag, res.Output)
		}
		if strings.Contains(res.Output, "state recovered") {
			t.Errorf("%s on a taken port: the relay recovered its state before failing:\n%s", tt.flag, res.Output)
		}
	}
}

// TestIngestTokenEqualsGeneratedToken: an ingest token equal to the API token in the data dir
// (no --api-token) stops the relay with a message naming --ingest-token and not the token.
func TestIngestTokenEqualsGeneratedToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const tok = "btk_the_same_token_for_both_0123456789"
	if err := os.WriteFile(filepath.Join(dir, "api-token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(relaytest.Context(t, 30*time.Second), relaytest.Binary(t),
		"--listen", "127.0.0.1:0", "--data-dir", dir, "--ingest-token", tok)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want code 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "--ingest-token equals the API token in") || strings.Contains(string(out), tok) {
		t.Errorf("output does not name --ingest-token, or prints the token:\n%s", out)
	}
	if strings.Contains(string(out), "relay listening") {
		t.Errorf("the relay listened:\n%s", out)
	}
}

// TestAdminListenGracefulShutdown: SIGTERM stops both listeners and the relay exits 0.
func TestAdminListenGracefulShutdown(t *testing.T) {
	t.Parallel()
	rr := startRaw(t, "--data-dir", t.TempDir(), "--admin-listen", "127.0.0.1:0", "--api-token", "shutdown_admin_token_0123")
	adminAddr := rr.proc.AdminAddr()
	if adminAddr == "" {
		t.Fatalf("no admin address in the log\n%s", rr.logs)
	}
	for _, a := range []string{rr.proc.Addr(), adminAddr} {
		if status, _, _ := doAt(t, "http://"+a, "GET", "/readyz", "", nil); status != http.StatusOK {
			t.Fatalf("readyz on %s = %d", a, status)
		}
	}
	if code, _ := rr.terminate(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, rr.logs)
	}
	for _, a := range []string{rr.proc.Addr(), adminAddr} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after exit", a)
		}
	}
	if !strings.Contains(rr.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no \"stopped\" line:\n%s", rr.logs)
	}
}
