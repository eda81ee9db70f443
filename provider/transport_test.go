package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

func TestUserAgentAppend(t *testing.T) {
	t.Setenv(EnvAppendUserAgent, "  ci-pipeline/42 ")
	got := userAgent("1.11.4", "0.3.0")
	if want := "Terraform/1.11.4 terraform-provider-blametrail/0.3.0 ci-pipeline/42"; got != want {
		t.Errorf("userAgent = %q, want %q", got, want)
	}
}

func TestParseTransportSettings(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, " 2m ": 2 * time.Minute, "1.5s": 1500 * time.Millisecond,
		"0s": 0, "-1s": 0, "30": 0, "soon": 0, "": 0} {
		got, err := parseRequestTimeout(in)
		if got != want || (err == nil) != (want > 0) {
			t.Errorf("parseRequestTimeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]int{"0": 0, "4": 4, "20": 20, "21": -1, "-1": -1, "x": -1, "": -1} {
		got, err := parseMaxRetries(in)
		if (err != nil) != (want < 0) || (err == nil && got != want) {
			t.Errorf("parseMaxRetries(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// relayInfo answers GET /api/info as a relay does.
func relayInfo(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"name":"blametrail-relay","api_version":1,"version":"tls"}`)
}

// writeCertPEM writes the TLS test server's certificate as PEM.
func writeCertPEM(t *testing.T, s *httptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestHTTPClientCACert: ca_cert_file makes a relay behind TLS with a private CA trusted;
// without it the same server is refused; a file without a certificate is an error.
func TestHTTPClientCACert(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(relayInfo))
	t.Cleanup(s.Close)
	caFile := writeCertPEM(t, s)

	confirm := func(caFile string) error {
		hc, err := httpClient(5*time.Second, caFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := apiclient.New(s.URL, "token-of-the-test", apiclient.WithHTTPClient(hc), apiclient.WithRetries(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Confirm(context.Background())
		return err
	}
	if err := confirm(caFile); err != nil {
		t.Errorf("with the CA: %v", err)
	}
	if err := confirm(""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := httpClient(time.Second, garbage); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("garbage file: %v", err)
	}
	if _, err := httpClient(time.Second, filepath.Join(t.TempDir(), "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	hc, _ := httpClient(7*time.Second, "")
	if hc.Timeout != 7*time.Second {
		t.Errorf("timeout %v", hc.Timeout)
	}
}

// TestLogRequest: TF_LOG=DEBUG shows one line per request with method, path, status and
// duration, through tflog; never the token or the URL.
func TestLogRequest(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/info" {
			relayInfo(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"endpoint_not_found","message":"x"}}`)
	}))
	t.Cleanup(s.Close)
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	const token = "token-that-must-not-be-logged"
	c, err := apiclient.New(s.URL, token, apiclient.WithRequestLog(logRequest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Confirm(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Endpoint(ctx, "ep_01jd5x2m7q8r9s0t1v2w3x4y5z")

	lines, err := tflogtest.MultilineJSONDecode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %v", len(lines), lines)
	}
	want := []struct {
		path   string
		status float64
	}{{"/api/info", 200}, {"/api/webhooks/endpoints/ep_01jd5x2m7q8r9s0t1v2w3x4y5z", 404}}
	for i, l := range lines {
		if l["@level"] != "debug" || l["method"] != "GET" || l["path"] != want[i].path || l["status"] != want[i].status {
			t.Errorf("line %d = %v", i, l)
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("line %d has no duration_ms: %v", i, l)
		}
	}
	b, _ := json.Marshal(lines)
	if strings.Contains(string(b), token) || strings.Contains(string(b), s.URL) {
		t.Errorf("the log holds the token or the URL: %s", b)
	}
}

// TestAccProvider_transportSettings: ca_cert_file trusts a relay behind TLS (here the shared
// relay behind a TLS proxy with its own CA); request_timeout and max_retries bound a relay
// that does not answer; invalid values are diagnostics on their attribute.
func TestAccProvider_transportSettings(t *testing.T) {
	if testRelay == nil {
		t.Skip("acceptance test: set TF_ACC=1")
	}
	target, err := url.Parse(relayURL())
	if err != nil {
		t.Fatal(err)
	}
	tlsProxy := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(tlsProxy.Close)
	caFile := writeCertPEM(t, tlsProxy)

	// The hanging server notes how long the provider held each request before it gave up:
	// measured there, not around the test, which also waits for a parallel slot.
	release := make(chan struct{})
	var heldMu sync.Mutex
	var held time.Duration
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		heldMu.Lock()
		held = max(held, time.Since(began))
		heldMu.Unlock()
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })

	cfg := func(endpoint string, lines ...string) string {
		return fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = %q
  %s
}
data "blametrail_event_types" "all" {}
`, endpoint, relayToken(), strings.Join(lines, "\n  "))
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg(tlsProxy.URL, fmt.Sprintf("ca_cert_file = %q", caFile)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.blametrail_event_types.all", at("event_types"), knownvalue.NotNull()),
				},
			},
			{
				Config:      cfg(tlsProxy.URL),
				ExpectError: expectError(`Could not reach the BlameTrail relay at ` + tlsProxy.URL + `.*certificate`),
			},
			{
				Config:      cfg(hang.URL, `request_timeout = "1s"`, `max_retries = 0`),
				ExpectError: expectError(`Could not reach the BlameTrail relay at ` + hang.URL + `.*Timeout exceeded`),
			},
			{
				Config:      cfg(relayURL(), `request_timeout = "0s"`),
				PlanOnly:    true,
				ExpectError: expectError(`Invalid request timeout.*"0s" is not a duration above zero`),
			},
			{
				Config:      cfg(relayURL(), `max_retries = 21`),
				PlanOnly:    true,
				ExpectError: expectError(`Invalid max retries.*from 0 to 20`),
			},
			{
				Config:      cfg(relayURL(), fmt.Sprintf("ca_cert_file = %q", filepath.Join(t.TempDir(), "missing.pem"))),
				ExpectError: expectError(`Invalid CA certificate file.*no such file`),
			},
			// The post-test destroy runs the last configuration: a valid one.
			{Config: cfg(relayURL())},
		},
	})
	heldMu.Lock()
	defer heldMu.Unlock()
	if held == 0 || held > 20*time.Second { // the default request_timeout is 30s
		t.Errorf("the hanging server held a request %s: request_timeout = \"1s\" did not bound it", held)
	}
}

// TestAccProvider_transportEnvironment: the settings come from their environment variables,
// and an invalid one says where it came from.
func TestAccProvider_transportEnvironment(t *testing.T) {
	t.Setenv(EnvRequestTimeout, "soon")
	t.Setenv(EnvMaxRetries, "2")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      providerConfig() + `data "blametrail_event_types" "all" {}`,
			ExpectError: expectError(`Invalid request timeout.*from ` + EnvRequestTimeout + `\).*"soon"`),
		}},
	})
}
