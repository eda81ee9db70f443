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
			{ // Checked at plan time, before any request.
				Config: providerConfig() + `
data "blametrail_webhook_endpoint" "bad" {
  id = "Dashboard"
}
`,
				PlanOnly:    true,
				ExpectError: expectError(`Invalid webhook endpoint id.*"Dashboard" is not a webhook endpoint id.*ep_01jd`),
			},
			{
				Config:      providerConfig() + `data "blametrail_webhook_endpoint" "none" {}`,
				PlanOnly:    true,
				ExpectError: expectError(`Missing webhook endpoint id or name`),
			},
			{
				Config: providerConfig() + `
data "blametrail_webhook_endpoint" "both" {
  id   = "ep_00000000000000000000000000"
  name = "x"
}
`,
				PlanOnly:    true,
				ExpectError: expectError(`Conflicting webhook endpoint id and name`),
			},
			{
				Config: providerConfig() + `
data "blametrail_webhook_endpoint" "nobody" {
  name = "No endpoint has this name"
}
`,
				ExpectError: expectError(`Webhook endpoint not found.*no endpoint named "No endpoint has this name"`),
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
					statecheck.ExpectSensitiveValue(read, at("url")),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// TestAccWebhookEndpointDataSource_byName: one endpoint with the name is found, secret and
// all; two with the same name are an error that lists both ids.
func TestAccWebhookEndpointDataSource_byName(t *testing.T) {
	const src, read = "blametrail_webhook_endpoint.src", "data.blametrail_webhook_endpoint.read"
	same := func(name string) statecheck.StateCheck {
		return statecheck.CompareValuePairs(src, at(name), read, at(name), compare.ValuesSame())
	}
	one := providerConfig() + `
resource "blametrail_webhook_endpoint" "src" {
  url  = "https://hooks.example.com/by-name"
  name = "Data source by name"
}

data "blametrail_webhook_endpoint" "read" {
  name       = "Data source by name"
  depends_on = [blametrail_webhook_endpoint.src]
}
`
	two := one + `
resource "blametrail_webhook_endpoint" "twin" {
  url  = "https://hooks.example.com/by-name/twin"
  name = "Data source by name"
}
`
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{
				Config: one,
				ConfigStateChecks: []statecheck.StateCheck{
					same("id"), same("url"), same("name"), same("signing_secret"), same("created_at"),
					statecheck.ExpectSensitiveValue(read, at("url")),
				},
			},
			{
				Config:      two,
				ExpectError: expectError(`Several webhook endpoints have this name.*2 endpoints are named "Data source by name": ep_\w+, ep_\w+.*by id`),
			},
		},
	})
}
