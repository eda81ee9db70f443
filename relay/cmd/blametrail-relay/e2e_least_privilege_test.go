package main_test

// Least privilege: the ingest token (--ingest-token) can only post events.

import (
	"bytes"
	"errors"
	"io"
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
