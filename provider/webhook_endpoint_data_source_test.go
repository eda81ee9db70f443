package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
)

// TestAccWebhookEndpointDataSource: the data source reads back what the resource made, the
// signing secret included, and an unknown id is a clear error.
func TestAccWebhookEndpointDataSource(t *testing.T) {
	const src, read = "blametrail_webhook_endpoint.src", "data.blametrail_webhook_endpoint.read"
	same := func(name string) statecheck.StateCheck {
		return statecheck.CompareValuePairs(src, at(name), read, at(name), compare.ValuesSame())
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{
				Config: providerConfig() + `
data "blametrail_webhook_endpoint" "missing" {
  id = "ep_00000000000000000000000000"
}
`,
				ExpectError: expectError(`Webhook endpoint not found.*ep_00000000000000000000000000`),
			},
			{
				Config: providerConfig() + `
resource "blametrail_webhook_endpoint" "src" {
  url         = "https://hooks.example.com/data-source"
  name        = "Data source"
  description = "read back by id"
  event_types = ["deploy.ingested", "incident.opened"]
}

data "blametrail_webhook_endpoint" "read" {
  id = blametrail_webhook_endpoint.src.id
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					same("id"), same("url"), same("name"), same("description"), same("event_types"),
					same("active"), same("disabled_reason"), same("created_at"), same("signing_secret"),
					statecheck.ExpectKnownValue(read, at("consecutive_failures"), knownvalue.Int64Exact(0)),
					statecheck.ExpectKnownValue(read, at("updated_at"), knownvalue.NotNull()),
					statecheck.ExpectSensitiveValue(read, at("signing_secret")),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}
