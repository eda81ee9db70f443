package provider

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// The state-safety tests: a provider pointed at something that is not the relay's admin API
// (a wrong base path, another HTTP server, a relay that is down) must fail plan, refresh and
// destroy -refresh=false with a diagnostic naming the address, and never take a 404 for
// "the endpoint was deleted": that would empty the state (the next apply duplicates every
// endpoint with new secrets) or "destroy" endpoints that keep delivering.

// notFoundJSON answers every request 404 with a JSON error body of the given code, as an API
// server (or an old relay) would.
func notFoundJSON(code string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":%q,"message":"not here"}}`, code)
	})
}

// httpServer starts a server on 127.0.0.1 for the test.
func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// prefixProxy forwards every request to the shared relay with prefix added to its path: the
// relay seen through a wrong base path (endpoint = <relay>/api), as a reverse proxy that
// mounts it elsewhere shows it. The answers are the real relay's.
func prefixProxy(t *testing.T, prefix string) string {
	t.Helper()
	target, err := url.Parse(relayURL() + prefix)
	if err != nil {
		t.Fatal(err)
	}
	return httpServer(t, httputil.NewSingleHostReverseProxy(target))
}

// infoOnlyProxy forwards GET /api/info to the shared relay as it is, and every other path
// under a wrong prefix.
func infoOnlyProxy(t *testing.T) string {
	t.Helper()
	target, err := url.Parse(relayURL())
	if err != nil {
		t.Fatal(err)
	}
	p := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		if r.In.URL.Path != "/api/info" {
			r.Out.URL.Path = "/wrong" + r.Out.URL.Path
			r.Out.URL.RawPath = ""
		}
	}}
	return httpServer(t, p)
}

func TestAccStateSafety(t *testing.T) {
	if testRelay == nil {
		// resource.Test skips without TF_ACC; the servers below need the relay's URL.
		t.Skip("acceptance test: set TF_ACC=1")
	}
	tests := []struct {
		name     string
		endpoint func(t *testing.T) string
		want     func(endpoint string) string // ExpectError pattern
	}{
		{
			name:     "wrong base path",
			endpoint: func(*testing.T) string { return relayURL() + "/api" },
			want: func(string) string {
				return `Invalid BlameTrail relay endpoint.*must be the relay's base URL.*no path`
			},
		},
		{
			name:     "wrong base path behind a proxy",
			endpoint: func(t *testing.T) string { return prefixProxy(t, "/api") },
			want:     notRelay(`HTTP 404 \(route_not_found\)`),
		},
		{
			// The second guard: even from a confirmed relay, only endpoint_not_found removes
			// an endpoint; this proxy passes GET /api/info through but sends the rest astray.
			name:     "confirmed relay answering route_not_found",
			endpoint: func(t *testing.T) string { return infoOnlyProxy(t) },
			want: func(endpoint string) string {
				return `The BlameTrail relay at ` + regexp.QuoteMeta(endpoint) +
					`: (GET|DELETE) /api/webhooks/endpoints/ep_\w+ answered HTTP 404 \(route_not_found\)`
			},
		},
		{
			name:     "plain HTTP server",
			endpoint: func(t *testing.T) string { return httpServer(t, http.NotFoundHandler()) },
			want:     notRelay(`HTTP 404, text/plain; charset=utf-8: "404 page not found`),
		},
		{
			name:     "JSON 404 at the root",
			endpoint: func(t *testing.T) string { return httpServer(t, notFoundJSON("not_found")) },
			want:     notRelay(`HTTP 404 \(not_found\)`),
		},
		{
			// A server that says endpoint_not_found to everything is still not a relay: the
			// code counts only from a server that GET /api/info confirmed.
			name:     "server answering endpoint_not_found to everything",
			endpoint: func(t *testing.T) string { return httpServer(t, notFoundJSON(api.CodeEndpointNotFound)) },
			want:     notRelay(`HTTP 404 \(endpoint_not_found\)`),
		},
		{
			name:     "relay down",
			endpoint: func(t *testing.T) string { return "http://" + closedPort(t) },
			want: func(endpoint string) string {
				return `Could not reach the BlameTrail relay at ` + regexp.QuoteMeta(endpoint) + `.*connection refused`
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.endpoint(t)
			want := expectError(tt.want(bad))
			t.Run("plan and refresh", func(t *testing.T) { testStateKeptOnRefresh(t, bad, want) })
			t.Run("destroy -refresh=false", func(t *testing.T) { testStateKeptOnDestroy(t, bad, want) })
		})
	}
}

// notRelay is the pattern of the diagnostic for a server that is not a relay.
func notRelay(answered string) func(string) string {
	return func(endpoint string) string {
		return `The server at ` + regexp.QuoteMeta(endpoint) + ` is not a BlameTrail relay.*GET /api/info answered ` +
			answered + `.*stays in state`
	}
}

// stateSafetyConfig is one endpoint managed through the provider at the given address.
func stateSafetyConfig(endpoint string) string {
	return fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = %q
}

resource "blametrail_webhook_endpoint" "test" {
  url  = "https://hooks.example.com/state-safety"
  name = "State safety"
}
`, endpoint, relayToken())
}

// keptSteps are the last steps of both tests: back on the relay, the endpoint is still in
// state (an empty plan, the same id) and still on the relay.
func keptSteps(id *string, sameID statecheck.StateCheck) resource.TestStep {
	return resource.TestStep{
		Config: stateSafetyConfig(relayURL()),
		ConfigPlanChecks: resource.ConfigPlanChecks{
			PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
		},
		ConfigStateChecks: []statecheck.StateCheck{sameID},
		Check:             checkRelay(id, func(api.Endpoint) error { return nil }),
	}
}

// testStateKeptOnRefresh: plan and refresh against bad fail, and the state keeps the endpoint.
func testStateKeptOnRefresh(t *testing.T, bad string, want *regexp.Regexp) {
	var id string
	same := statecheck.CompareValue(compare.ValuesSame())
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{
				Config:            stateSafetyConfig(relayURL()),
				Check:             captureID(endpointAddr, &id),
				ConfigStateChecks: []statecheck.StateCheck{same.AddStateValue(endpointAddr, at("id"))},
			},
			{Config: stateSafetyConfig(bad), PlanOnly: true, ExpectError: want},
			// terraform refresh writes the state it refreshed: the step that emptied it.
			{RefreshState: true, ExpectError: want},
			keptSteps(&id, same.AddStateValue(endpointAddr, at("id"))),
		},
	})
}

// testStateKeptOnDestroy: destroy -refresh=false against bad fails instead of reporting the
// endpoint destroyed, and the endpoint stays in state and on the relay.
func testStateKeptOnDestroy(t *testing.T, bad string, want *regexp.Regexp) {
	var id string
	same := statecheck.CompareValue(compare.ValuesSame())
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		AdditionalCLIOptions:     &resource.AdditionalCLIOptions{Plan: resource.PlanOptions{NoRefresh: true}},
		Steps: []resource.TestStep{
			{
				Config:            stateSafetyConfig(relayURL()),
				Check:             captureID(endpointAddr, &id),
				ConfigStateChecks: []statecheck.StateCheck{same.AddStateValue(endpointAddr, at("id"))},
			},
			{Config: stateSafetyConfig(bad), Destroy: true, ExpectError: want},
			keptSteps(&id, same.AddStateValue(endpointAddr, at("id"))),
		},
	})
}
