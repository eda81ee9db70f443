package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// TestAccEventTypesDataSource: the data source lists the relay's catalogue, and its
// subscribable list can be used as an endpoint's event_types as it is.
func TestAccEventTypesDataSource(t *testing.T) {
	const ds = "data.blametrail_event_types.all"
	var all, subscribable []knownvalue.Check
	for _, et := range api.EventTypes {
		all = append(all, knownvalue.StringExact(et))
		if et != api.TypeTestPing {
			subscribable = append(subscribable, knownvalue.StringExact(et))
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{{
			Config: providerConfig() + `
data "blametrail_event_types" "all" {}

resource "blametrail_webhook_endpoint" "everything" {
  url         = "https://hooks.example.com/every-type"
  name        = "Every type, listed"
  event_types = data.blametrail_event_types.all.subscribable_event_types
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(ds, tfjsonpath.New("event_types"), knownvalue.ListExact(all)),
				statecheck.ExpectKnownValue(ds, tfjsonpath.New("subscribable_event_types"), knownvalue.ListExact(subscribable)),
				statecheck.ExpectKnownValue("blametrail_webhook_endpoint.everything", at("event_types"), knownvalue.SetExact(subscribable)),
			},
		}},
	})
}
