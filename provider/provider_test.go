package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// testAccProtoV6ProviderFactories runs the provider in the test process, so Terraform talks
// to the code under test (with -race) rather than to a released binary.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"blametrail": providerserver.NewProtocol6WithError(New("test")()),
}

// testRelay is the one relay every acceptance test in this package talks to: the real binary,
// on 127.0.0.1 with ports the kernel picked. Tests share it, so each works only with the
// endpoints it created (by id) and never assumes the relay is empty. It runs as the examples
// deploy it, least privilege: the admin API on its own listener (--admin-listen), which is
// what the provider talks to, and an ingest token for the application.
var testRelay *relaytest.Relay

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// Without TF_ACC the acceptance tests skip themselves; don't build and start a relay
	// only for the unit tests.
	if os.Getenv(resource.EnvTfAcc) == "" {
		return m.Run()
	}
	// Checkpoint is Terraform's version check over the network; tests must not depend on it.
	os.Setenv("CHECKPOINT_DISABLE", "1")
	r, stop, err := relaytest.StartMain(relaytest.Options{AdminListen: true, IngestToken: "provider_tests_ingest_token_0123"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "provider tests: start relay:", err)
		return 1
	}
	testRelay = r
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "provider tests:", err)
		code = max(code, 1)
	}
	return code
}

// testAccPreCheck runs before each acceptance test (only when TF_ACC is set).
func testAccPreCheck(t *testing.T) {
	t.Helper()
	if testRelay == nil {
		t.Fatal("the shared test relay is not running (TestMain starts it when TF_ACC is set)")
	}
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Log("TF_ACC_TERRAFORM_PATH is unset: terraform-plugin-testing looks for terraform on PATH " +
			"and may try to download one; `make test` sets it from scripts/ensure-terraform.sh")
	}
}

// relayURL (its admin listener) and relayToken are the shared relay's; empty when TF_ACC is
// unset, where the acceptance tests build their configurations and then skip.
func relayURL() string {
	if testRelay == nil {
		return ""
	}
	return testRelay.AdminURL
}

func relayToken() string {
	if testRelay == nil {
		return ""
	}
	return testRelay.Token
}

// providerConfig is the provider block for the shared relay.
func providerConfig() string {
	return fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = %q
}
`, relayURL(), relayToken())
}

// testAccCheckEndpointsDestroyed is every resource test's CheckDestroy: after destroy, the
// relay must answer 404 for each endpoint that was in state.
func testAccCheckEndpointsDestroyed(s *terraform.State) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, rs := range s.RootModule().Resources {
		if rs.Type != "blametrail_webhook_endpoint" {
			continue
		}
		_, err := testRelay.Client.Endpoint(ctx, rs.Primary.ID)
		switch {
		case errors.Is(err, apiclient.ErrEndpointNotFound):
		case err != nil:
			return fmt.Errorf("checking %s: %w", rs.Primary.ID, err)
		default:
			return fmt.Errorf("webhook endpoint %s still exists after destroy", rs.Primary.ID)
		}
	}
	return nil
}

// closedPort returns a 127.0.0.1 address nothing listens on: a relay that is down.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// expectError compiles an ExpectError pattern in which each space matches any run of
// whitespace: Terraform wraps diagnostics at a width that differs between versions.
func expectError(pattern string) *regexp.Regexp {
	return regexp.MustCompile("(?s)" + strings.ReplaceAll(pattern, " ", `\s+`))
}

func TestUserAgent(t *testing.T) {
	got := userAgent("1.11.4", "0.3.0")
	if want := "Terraform/1.11.4 terraform-provider-blametrail/0.3.0"; got != want {
		t.Errorf("userAgent = %q, want %q", got, want)
	}
}

// TestAccProvider_missingToken: a configuration without a token fails at plan with a message
// that names both ways to give one.
func TestAccProvider_missingToken(t *testing.T) {
	t.Setenv(EnvAPIToken, "")
	t.Setenv(EnvEndpoint, "")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "blametrail" {
  endpoint = %q
}
data "blametrail_event_types" "all" {}
`, relayURL()),
			ExpectError: expectError(`Missing BlameTrail API token.*` + EnvAPIToken),
		}},
	})
}

// TestAccProvider_wrongToken: a token the relay refuses is reported as such, not as a
// generic failure.
func TestAccProvider_wrongToken(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = "not-the-token"
}
data "blametrail_event_types" "all" {}
`, relayURL()),
			ExpectError: expectError(`refused the API token \(HTTP 401\)`),
		}},
	})
}

// TestAccProvider_ingestToken: the relay's ingest token, given to the provider by mistake, is
// reported as such (a 403 from the relay), not as a wrong token or another server.
func TestAccProvider_ingestToken(t *testing.T) {
	ingestToken := ""
	if testRelay != nil {
		ingestToken = testRelay.IngestToken
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = %q
}
data "blametrail_event_types" "all" {}
`, relayURL(), ingestToken),
			ExpectError: expectError(`may not use the admin API \(HTTP 403\).*ingest token`),
		}},
	})
}

// TestAccProvider_ingestListener: pointed at the relay's --listen while its admin API is on
// --admin-listen, the provider finds no admin API there and says where to look; nothing on the
// ingest listener tells the relay's admin API apart from a path it serves nowhere.
func TestAccProvider_ingestListener(t *testing.T) {
	ingestURL := ""
	if testRelay != nil {
		ingestURL = testRelay.URL
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = %q
}
resource "blametrail_webhook_endpoint" "wrong_listener" {
  url  = "https://hooks.example.com/wrong-listener"
  name = "wrong listener"
}
`, ingestURL, relayToken()),
			ExpectError: expectError(`not a BlameTrail relay.*route_not_found.*--admin-listen`),
		}},
	})
}

// TestAccProvider_environment: endpoint and token come from BLAMETRAIL_ENDPOINT and
// BLAMETRAIL_API_TOKEN when the provider block is empty.
func TestAccProvider_environment(t *testing.T) {
	t.Setenv(EnvEndpoint, relayURL())
	t.Setenv(EnvAPIToken, relayToken())
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
provider "blametrail" {}
data "blametrail_event_types" "all" {}
`,
			Check: resource.TestCheckResourceAttr("data.blametrail_event_types.all", "event_types.0", "incident.opened"),
		}},
	})
}

// TestAccProvider_tokenWithLineBreak: the relay writes <data-dir>/api-token with a final
// newline and trims surrounding whitespace from its token, so api_token = file(...) and a
// variable read from such a file must work; a line break inside the token is a configuration
// error that names where the token came from, never a "could not reach the relay".
func TestAccProvider_tokenWithLineBreak(t *testing.T) {
	tokenFile := t.TempDir() + "/api-token"
	if err := os.WriteFile(tokenFile, []byte(relayToken()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvEndpoint, relayURL())
	t.Setenv(EnvAPIToken, " "+relayToken()+"\r\n")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
provider "blametrail" {
  api_token = "first-half\nsecond-half"
}
data "blametrail_event_types" "all" {}
`,
			ExpectError: expectError(`Invalid BlameTrail API token.*from api_token\) contains a control character`),
		}, {
			// An empty api_token still wins over the environment; the diagnostic says the
			// variable is set, instead of asking for it.
			Config: `
provider "blametrail" {
  api_token = ""
}
data "blametrail_event_types" "all" {}
`,
			ExpectError: expectError(`Empty BlameTrail API token.*takes precedence over the BLAMETRAIL_API_TOKEN`),
		}, {
			Config: fmt.Sprintf(`
provider "blametrail" {
  api_token = file(%q)
}
data "blametrail_event_types" "all" {}
`, tokenFile),
			Check: resource.TestCheckResourceAttr("data.blametrail_event_types.all", "event_types.0", "incident.opened"),
		}, {
			Config: `
provider "blametrail" {}
data "blametrail_event_types" "all" {}
`,
			Check: resource.TestCheckResourceAttr("data.blametrail_event_types.all", "event_types.0", "incident.opened"),
		}},
	})
}

// TestAccProvider_unknownEndpoint: an endpoint computed during apply cannot configure the
// provider at plan time; the diagnostic says so instead of failing on an empty URL.
func TestAccProvider_unknownEndpoint(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
resource "terraform_data" "relay" {}

provider "blametrail" {
  endpoint  = "http://${terraform_data.relay.id}"
  api_token = %q
}

data "blametrail_event_types" "all" {}
`, relayToken()),
			ExpectError: expectError(`Unknown BlameTrail relay endpoint`),
		}},
	})
}

// TestAccProvider_relayDown: a relay that is not running fails the apply within seconds (the
// client retries a refused connection only briefly) with an error that says what to check.
func TestAccProvider_relayDown(t *testing.T) {
	// No wall-clock check here: a parallel test waits for its slot, so its duration says
	// nothing. How many times a refused connection is tried is the apiclient's unit test.
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "blametrail" {
  endpoint  = "http://%s"
  api_token = "any"
}

resource "blametrail_webhook_endpoint" "down" {
  url  = "https://hooks.example.com/down"
  name = "relay is down"
}
`, closedPort(t)),
			ExpectError: expectError(`Could not create webhook endpoint.*connection refused.*Check that the relay is running`),
		}},
	})
}

// TestAccProvider_invalidEndpoint: an endpoint that is not an absolute http(s) URL is
// reported on the endpoint attribute before any request.
func TestAccProvider_invalidEndpoint(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
provider "blametrail" {
  endpoint  = "127.0.0.1:8080"
  api_token = "any"
}
data "blametrail_event_types" "all" {}
`,
			ExpectError: expectError(`Invalid BlameTrail relay endpoint.*absolute http\(s\) URL`),
		}, {
			// The relay's base URL with /api added: every request would miss the API.
			Config: fmt.Sprintf(`
provider "blametrail" {
  endpoint  = "%s/api"
  api_token = "any"
}
data "blametrail_event_types" "all" {}
`, relayURL()),
			ExpectError: expectError(`Invalid BlameTrail relay endpoint.*with no path \(found "/api"\)`),
		}},
	})
}

// TestAccProvider_invalidEndpointFromEnvironment: BLAMETRAIL_ENDPOINT is checked as the
// attribute is, and the diagnostic says where the value came from.
func TestAccProvider_invalidEndpointFromEnvironment(t *testing.T) {
	t.Setenv(EnvEndpoint, relayURL()+"/api/")
	t.Setenv(EnvAPIToken, relayToken())
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
provider "blametrail" {}
data "blametrail_event_types" "all" {}
`,
			ExpectError: expectError(`Invalid BlameTrail relay endpoint.*from ` + EnvEndpoint + `\).*with no path`),
		}},
	})
}
