package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

// withEcho adds the echo provider, which copies an ephemeral value into the state of its
// echo resource: the only way a test can look at it.
func withEcho() map[string]func() (tfprotov6.ProviderServer, error) {
	f := map[string]func() (tfprotov6.ProviderServer, error){"echo": echoprovider.NewProviderServer()}
	for k, v := range testAccProtoV6ProviderFactories {
		f[k] = v
	}
	return f
}

// TestAccWebhookSecretEphemeral: the ephemeral resource reads the endpoint's current secret
// (and the overlap of a rotation) without storing it in blametrail's state.
func TestAccWebhookSecretEphemeral(t *testing.T) {
	const url = "https://hooks.example.com/ephemeral"
	withSecret := endpointConfig(url, "Ephemeral") + `
ephemeral "blametrail_webhook_secret" "s" {
  endpoint_id = blametrail_webhook_endpoint.test.id
}

provider "echo" {
  data = ephemeral.blametrail_webhook_secret.s
}

resource "echo" "s" {}
`
	echoData := func(attr string) tfjsonpath.Path { return tfjsonpath.New("data").AtMapKey(attr) }
	var id string
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_10_0)},
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: withEcho(),
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{ // The endpoint first, so its id is known when the ephemeral resource is opened.
				Config: endpointConfig(url, "Ephemeral"),
				Check: func(s *terraform.State) error {
					id = s.RootModule().Resources[endpointAddr].Primary.ID
					return nil
				},
			},
			{
				Config: withSecret,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs(endpointAddr, at("signing_secret"), "echo.s", echoData("secret"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("echo.s", echoData("endpoint_id"), knownvalue.StringRegexp(regexp.MustCompile(`^ep_`))),
					statecheck.ExpectKnownValue("echo.s", echoData("previous_secret_expires_at"), knownvalue.Null()),
				},
			},
			{ // Rotated outside Terraform: a fresh echo shows the new secret and the overlap.
				PreConfig: func() {
					c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if _, err := testRelay.Client.RotateSecret(c, id, apiclient.SecretRotation{ExpirePreviousIn: "1h"}); err != nil {
						t.Fatalf("rotate: %v", err)
					}
				},
				Config: withSecret + `
resource "echo" "after_rotation" {}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs(endpointAddr, at("signing_secret"), "echo.after_rotation", echoData("secret"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("echo.after_rotation", echoData("previous_secret_expires_at"), knownvalue.StringFunc(func(v string) error {
						exp, err := time.Parse(time.RFC3339, v)
						if err == nil && time.Until(exp) > time.Hour {
							err = fmt.Errorf("expires %s, more than 1 h from now", v)
						}
						return err
					})),
				},
			},
		},
	})
}
