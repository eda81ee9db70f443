package provider

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

// TestAccWebhookEndpointsDataSource: the list holds what the resources made, oldest first,
// and follows the API's cursor past the first page (the relay pages at most
// api.MaxPageLimit endpoints, so the test adds more than that through the API first).
func TestAccWebhookEndpointsDataSource(t *testing.T) {
	fillers := api.MaxPageLimit + 1
	config := providerConfig() + `
resource "blametrail_webhook_endpoint" "a" {
  url  = "https://hooks.example.com/list/a"
  name = "List A"
}

resource "blametrail_webhook_endpoint" "b" {
  url         = "https://hooks.example.com/list/b"
  name        = "List B"
  event_types = ["incident.resolved"]
  active      = false
  # Created after a, so it is listed after a.
  depends_on = [blametrail_webhook_endpoint.a]
}

data "blametrail_webhook_endpoints" "all" {
  depends_on = [blametrail_webhook_endpoint.a, blametrail_webhook_endpoint.b]
}

locals {
  ours = [blametrail_webhook_endpoint.a.id, blametrail_webhook_endpoint.b.id]
}

output "ours" {
  value     = [for e in data.blametrail_webhook_endpoints.all.endpoints : e if contains(local.ours, e.id)]
  sensitive = true # url is
}
`
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{{
			PreConfig: func() { createFillers(t, fillers) },
			Config:    config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectSensitiveValue("data.blametrail_webhook_endpoints.all",
					tfjsonpath.New("endpoints").AtSliceIndex(0).AtMapKey("url")),
				statecheck.ExpectKnownOutputValue("ours", knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"url":         knownvalue.StringExact("https://hooks.example.com/list/a"),
						"name":        knownvalue.StringExact("List A"),
						"event_types": knownvalue.SetSizeExact(0),
						"active":      knownvalue.Bool(true),
					}),
					knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"name":            knownvalue.StringExact("List B"),
						"event_types":     knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("incident.resolved")}),
						"active":          knownvalue.Bool(false),
						"disabled_reason": knownvalue.StringExact(api.DisabledManual),
					}),
				})),
			},
			// Not an output: other tests add and remove endpoints on the shared relay meanwhile,
			// so the count is only bounded below, and an output would change between plans.
			Check: resource.TestCheckResourceAttrWith("data.blametrail_webhook_endpoints.all", "endpoints.#", func(v string) error {
				if n, err := strconv.Atoi(v); err != nil || n < fillers+2 {
					return fmt.Errorf("listed %s endpoints, want at least %d: the cursor was not followed", v, fillers+2)
				}
				return nil
			}),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
		}},
	})
}

// createFillers adds n endpoints through the API and deletes them when the test ends.
func createFillers(t *testing.T, n int) {
	t.Helper()
	c := context.Background()
	for i := range n {
		ep, err := testRelay.Client.CreateEndpoint(c, apiclient.EndpointCreate{
			URL:  fmt.Sprintf("https://hooks.example.com/filler/%d", i),
			Name: fmt.Sprintf("filler %d", i),
		})
		if err != nil {
			t.Fatalf("create filler %d: %v", i, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(c, 10*time.Second)
			defer cancel()
			if err := testRelay.Client.DeleteEndpoint(ctx, ep.ID); err != nil {
				t.Errorf("delete filler %s: %v", ep.ID, err)
			}
		})
	}
}
