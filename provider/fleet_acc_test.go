package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// fleetEndpointConfig is one endpoint managed through relay r, a member of a fleet.
func fleetEndpointConfig(r *relaytest.Relay, name string) string {
	return fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = %q
}

resource "blametrail_webhook_endpoint" "test" {
  url         = "https://hooks.example.com/fleet?team=ops"
  name        = %q
  description = "managed through any relay of the fleet"
  event_types = ["incident.opened", "incident.resolved"]
}
`, r.AdminURL, r.Token, name)
}

// TestAccFleet_applyThroughAPlanThroughB: two relays in fleet mode on one PostgreSQL, each
// with its own admin listener, as a Service in front of them would reach either. Applied
// through relay A, the endpoint reads back through relay B at once; a plan through B shows no
// changes, and an import through B equals the state A's apply wrote, signing secret included.
// The other way too: an update applied through B, then a plan through A shows no changes. The
// destroy (through A) is confirmed by B.
func TestAccFleet_applyThroughAPlanThroughB(t *testing.T) {
	if os.Getenv(resource.EnvTfAcc) == "" {
		t.Skip("acceptance test: set TF_ACC=1")
	}
	t.Parallel()
	dsn := pgtest.Start(t).CreateDB(t, "tf_fleet")
	// One API token for the fleet, as one Kubernetes Secret would give every relay.
	token := "fleet_acceptance_token_0123456789"
	opts := relaytest.Options{AdminListen: true, Token: token, Args: []string{"--store", dsn}}
	a := relaytest.Start(t, opts)
	b := relaytest.Start(t, opts)

	var id string
	sameID := statecheck.CompareValue(compare.ValuesSame())
	sameSecret := statecheck.CompareValue(compare.ValuesSame())
	sameCreated := statecheck.CompareValue(compare.ValuesSame())
	same := func(extra ...statecheck.StateCheck) []statecheck.StateCheck {
		return append([]statecheck.StateCheck{
			sameID.AddStateValue(endpointAddr, at("id")),
			sameSecret.AddStateValue(endpointAddr, at("signing_secret")),
			sameCreated.AddStateValue(endpointAddr, at("created_at")),
		}, extra...)
	}
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             fleetCheckDestroyed(b),
		Steps: []resource.TestStep{
			{ // Apply through A.
				Config: fleetEndpointConfig(a, "fleet"),
				ConfigStateChecks: same(
					statecheck.ExpectKnownValue(endpointAddr, at("id"), knownvalue.StringRegexp(regexp.MustCompile(`^ep_`))),
					statecheck.ExpectKnownValue(endpointAddr, at("signing_secret"), knownvalue.StringRegexp(regexp.MustCompile(`^whsec_`))),
				),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(
					captureID(endpointAddr, &id),
					fleetCheckReads(b, &id, "fleet"), // B answers for A's write at once: never a 404
				),
			},
			{ // Plan through B: no changes, before and after a refresh that reads through B.
				Config:   fleetEndpointConfig(b, "fleet"),
				PlanOnly: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{ // Import through B: every attribute, the secret included, equals what A's apply stored.
				Config:            fleetEndpointConfig(b, "fleet"),
				ResourceName:      endpointAddr,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{ // The other way: an update applied through B, in place ...
				Config: fleetEndpointConfig(b, "fleet, renamed through B"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: same(),
				Check:             fleetCheckReads(a, &id, "fleet, renamed through B"),
			},
			{ // ... then a plan through A: no changes.
				Config:   fleetEndpointConfig(a, "fleet, renamed through B"),
				PlanOnly: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// fleetCheckReads asks relay r's admin API for the endpoint: r answers for a write made
// through another relay of the fleet.
func fleetCheckReads(r *relaytest.Relay, id *string, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ep, err := r.Client.Endpoint(c, *id)
		if err != nil {
			return fmt.Errorf("read %s through relay %s: %w", *id, r.AdminURL, err)
		}
		if ep.Name != name {
			return fmt.Errorf("relay %s reads name %q, want %q", r.AdminURL, ep.Name, name)
		}
		return nil
	}
}

// fleetCheckDestroyed is CheckDestroy through relay r: every endpoint that was in state is
// gone from the fleet.
func fleetCheckDestroyed(r *relaytest.Relay) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, rs := range s.RootModule().Resources {
			if rs.Type != "blametrail_webhook_endpoint" {
				continue
			}
			_, err := r.Client.Endpoint(c, rs.Primary.ID)
			switch {
			case errors.Is(err, apiclient.ErrEndpointNotFound):
			case err != nil:
				return fmt.Errorf("checking %s through relay %s: %w", rs.Primary.ID, r.AdminURL, err)
			default:
				return fmt.Errorf("webhook endpoint %s still exists after destroy (read through relay %s)", rs.Primary.ID, r.AdminURL)
			}
		}
		return nil
	}
}
