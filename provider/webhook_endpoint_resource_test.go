package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

const endpointAddr = "blametrail_webhook_endpoint.test"

// endpointConfig is the shared provider block plus one endpoint with the given attribute lines.
func endpointConfig(url, name string, lines ...string) string {
	return providerConfig() + fmt.Sprintf(`
resource "blametrail_webhook_endpoint" "test" {
  url  = %q
  name = %q
  %s
}
`, url, name, strings.Join(lines, "\n  "))
}

func at(name string) tfjsonpath.Path { return tfjsonpath.New(name) }

func TestAccWebhookEndpoint_lifecycle(t *testing.T) {
	// Written with an upper-case host, the default port and a query: the relay must store it
	// as written, or Terraform would report an inconsistent result.
	const url1 = "https://Hooks.Example.com:443/lifecycle?team=ops"
	const url2 = "https://hooks.example.com/lifecycle/v2"
	var id string
	sameID := statecheck.CompareValue(compare.ValuesSame())
	sameSecret := statecheck.CompareValue(compare.ValuesSame())
	sameCreated := statecheck.CompareValue(compare.ValuesSame())
	recreated := statecheck.CompareValue(compare.ValuesDiffer())
	// inPlace is what every step until the out-of-band delete asserts: the same endpoint (id,
	// created_at) with the same signing secret. update adds that each change is planned as one.
	inPlace := func(extra ...statecheck.StateCheck) []statecheck.StateCheck {
		return append([]statecheck.StateCheck{
			sameID.AddStateValue(endpointAddr, at("id")),
			sameSecret.AddStateValue(endpointAddr, at("signing_secret")),
			sameCreated.AddStateValue(endpointAddr, at("created_at")),
		}, extra...)
	}
	update := resource.ConfigPlanChecks{
		PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionUpdate)},
		PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
	}
	final := endpointConfig(url2, "Lifecycle renamed", `event_types = ["incident.resolved"]`)

	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{ // Create with every attribute; a refresh and plan right after must show nothing.
				Config: endpointConfig(url1, "Lifecycle",
					`description = "made by the acceptance test\nsecond line"`,
					`event_types = ["incident.opened", "incident.resolved"]`,
					`active      = true`),
				ConfigStateChecks: inPlace(
					statecheck.ExpectKnownValue(endpointAddr, at("id"), knownvalue.StringRegexp(regexp.MustCompile(`^ep_`))),
					statecheck.ExpectKnownValue(endpointAddr, at("url"), knownvalue.StringExact(url1)),
					statecheck.ExpectSensitiveValue(endpointAddr, at("url")),
					statecheck.ExpectKnownValue(endpointAddr, at("name"), knownvalue.StringExact("Lifecycle")),
					statecheck.ExpectKnownValue(endpointAddr, at("description"), knownvalue.StringExact("made by the acceptance test\nsecond line")),
					statecheck.ExpectKnownValue(endpointAddr, at("event_types"), knownvalue.SetExact([]knownvalue.Check{
						knownvalue.StringExact("incident.opened"), knownvalue.StringExact("incident.resolved"),
					})),
					statecheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(endpointAddr, at("signing_secret"), knownvalue.StringRegexp(regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`))),
					statecheck.ExpectSensitiveValue(endpointAddr, at("signing_secret")),
					statecheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.Null()),
					statecheck.ExpectKnownValue(endpointAddr, at("created_at"), knownvalue.StringFunc(func(v string) error {
						_, err := time.Parse(time.RFC3339, v)
						return err
					})),
				),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(
					captureID(endpointAddr, &id),
					checkRelay(&id, func(ep api.Endpoint) error {
						if ep.URL != url1 || ep.Name != "Lifecycle" || !ep.Active {
							return fmt.Errorf("relay has url %q name %q active %v", ep.URL, ep.Name, ep.Active)
						}
						return nil
					}),
				),
			},
			{ // Each attribute in turn changes in place.
				Config: endpointConfig(url2, "Lifecycle",
					`description = "made by the acceptance test\nsecond line"`,
					`event_types = ["incident.opened", "incident.resolved"]`),
				ConfigPlanChecks:  update,
				ConfigStateChecks: inPlace(statecheck.ExpectKnownValue(endpointAddr, at("url"), knownvalue.StringExact(url2))),
			},
			{
				Config: endpointConfig(url2, "Lifecycle renamed",
					`description = "made by the acceptance test\nsecond line"`,
					`event_types = ["incident.opened", "incident.resolved"]`),
				ConfigPlanChecks:  update,
				ConfigStateChecks: inPlace(statecheck.ExpectKnownValue(endpointAddr, at("name"), knownvalue.StringExact("Lifecycle renamed"))),
			},
			{ // Removing the description clears it.
				Config:            endpointConfig(url2, "Lifecycle renamed", `event_types = ["incident.opened", "incident.resolved"]`),
				ConfigPlanChecks:  update,
				ConfigStateChecks: inPlace(statecheck.ExpectKnownValue(endpointAddr, at("description"), knownvalue.StringExact(""))),
			},
			{
				Config:           endpointConfig(url2, "Lifecycle renamed", `event_types = ["incident.acknowledged", "deploy.ingested", "incident.opened"]`),
				ConfigPlanChecks: update,
				ConfigStateChecks: inPlace(statecheck.ExpectKnownValue(endpointAddr, at("event_types"), knownvalue.SetExact([]knownvalue.Check{
					knownvalue.StringExact("deploy.ingested"), knownvalue.StringExact("incident.acknowledged"), knownvalue.StringExact("incident.opened"),
				}))),
			},
			{ // A set: the same types in another order are no change.
				Config:   endpointConfig(url2, "Lifecycle renamed", `event_types = ["incident.opened", "deploy.ingested", "incident.acknowledged"]`),
				PlanOnly: true,
			},
			{ // Omitting event_types subscribes to all, and is no diff against the relay's [].
				Config:            endpointConfig(url2, "Lifecycle renamed"),
				ConfigPlanChecks:  update,
				ConfigStateChecks: inPlace(statecheck.ExpectKnownValue(endpointAddr, at("event_types"), knownvalue.SetSizeExact(0))),
			},
			{ // An explicit empty set means the same.
				Config:   endpointConfig(url2, "Lifecycle renamed", `event_types = []`),
				PlanOnly: true,
			},
			{
				Config:           endpointConfig(url2, "Lifecycle renamed", `active = false`),
				ConfigPlanChecks: update,
				ConfigStateChecks: inPlace(
					statecheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.StringExact(api.DisabledManual)),
				),
				Check: checkRelay(&id, func(ep api.Endpoint) error {
					if ep.Active {
						return fmt.Errorf("relay still has the endpoint active")
					}
					return nil
				}),
			},
			{ // Omitting active means true again.
				Config:           final,
				ConfigPlanChecks: update,
				ConfigStateChecks: inPlace(
					statecheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.Null()),
					statecheck.ExpectKnownValue(endpointAddr, at("event_types"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("incident.resolved")})),
				),
			},
			{ // Disabled outside Terraform: the plan shows the drift and apply re-enables.
				PreConfig: func() {
					active := false
					_, err := testRelay.Client.UpdateEndpoint(ctx(t), id, apiclient.EndpointPatch{Active: &active})
					noErr(t, err)
				},
				Config: final,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						expectPrior(endpointAddr, "active", false),
						expectPrior(endpointAddr, "disabled_reason", api.DisabledManual),
						plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(true)),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: inPlace(
					statecheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.Null()),
					recreated.AddStateValue(endpointAddr, at("id")),
				),
				Check: checkRelay(&id, func(ep api.Endpoint) error {
					if !ep.Active || ep.DisabledReason != nil {
						return fmt.Errorf("relay has active=%v disabled_reason=%v after apply", ep.Active, ep.DisabledReason)
					}
					return nil
				}),
			},
			{ // Deleted outside Terraform: Read forgets it, so the plan creates it again.
				PreConfig: func() { noErr(t, testRelay.Client.DeleteEndpoint(ctx(t), id)) },
				Config:    final,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{recreated.AddStateValue(endpointAddr, at("id"))},
			},
			{ // terraform import: every attribute, the secret included, equals what apply stored.
				ResourceName:      endpointAddr,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{ // An import block (Terraform >= 1.5): the plan imports with no change at all.
				ResourceName:    endpointAddr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportPlanChecks: resource.ImportPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue(endpointAddr, at("signing_secret"), knownvalue.StringRegexp(regexp.MustCompile(`^whsec_`))),
					},
				},
			},
		},
	})
}

// TestAccWebhookEndpoint_disabledByRelay: the relay itself disables an endpoint that answers
// 410 Gone; Terraform shows that as drift and apply enables it again.
func TestAccWebhookEndpoint_disabledByRelay(t *testing.T) {
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusGone))
	var id string
	cfg := endpointConfig(rc.URL, "Gone receiver")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{Config: cfg, Check: captureID(endpointAddr, &id)},
			{
				PreConfig: func() {
					_, err := testRelay.Client.SendTest(ctx(t), id)
					noErr(t, err)
					relaytest.Eventually(t, 20*time.Second, "the relay to disable the endpoint", func() bool {
						ep, err := testRelay.Client.Endpoint(ctx(t), id)
						return err == nil && !ep.Active
					})
					rc.SetHandler(relaytest.Status(http.StatusNoContent))
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						expectPrior(endpointAddr, "active", false),
						expectPrior(endpointAddr, "disabled_reason", api.DisabledGone),
						plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.Null()),
				},
			},
		},
	})
}

// TestAccWebhookEndpoint_changedBetweenPlanAndApply: the relay disables the endpoint (410 Gone)
// and someone edits it in the UI after the plan was made and before apply sends its change (a
// saved plan waiting for approval). Apply must still deliver what the plan promised, not fail
// with "Provider produced inconsistent result after apply".
func TestAccWebhookEndpoint_changedBetweenPlanAndApply(t *testing.T) {
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusGone))
	// The provider reaches the relay through this proxy, which makes both changes just before
	// it forwards the first PATCH of the endpoint: after the plan, before the update.
	target, err := url.Parse(relayURL())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxyURL := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutPrefix(r.URL.Path, "/api/webhooks/endpoints/"); ok && r.Method == http.MethodPatch {
			once.Do(func() { changeOutOfBand(t, rc, id) })
		}
		proxy.ServeHTTP(w, r)
	}))
	config := func(name string) string {
		return fmt.Sprintf(`
provider "blametrail" {
  endpoint  = %q
  api_token = %q
}
resource "blametrail_webhook_endpoint" "test" {
  url         = %q
  name        = %q
  event_types = ["incident.opened"]
}
`, proxyURL, relayToken(), rc.URL, name)
	}
	var id string
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{Config: config("Changed between plan and apply"), Check: captureID(endpointAddr, &id)},
			{ // Only the name changes in the plan; active, description and event types stay.
				Config: config("Renamed"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(endpointAddr, at("name"), knownvalue.StringExact("Renamed")),
					statecheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.Null()),
					statecheck.ExpectKnownValue(endpointAddr, at("description"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(endpointAddr, at("event_types"), knownvalue.SetExact([]knownvalue.Check{
						knownvalue.StringExact("incident.opened"),
					})),
				},
				Check: checkRelay(&id, func(ep api.Endpoint) error {
					if ep.Name != "Renamed" || !ep.Active || ep.Description != "" || len(ep.EventTypes) != 1 {
						return fmt.Errorf("relay has name %q active %v description %q event types %v",
							ep.Name, ep.Active, ep.Description, ep.EventTypes)
					}
					return nil
				}),
			},
		},
	})
}

// changeOutOfBand has the relay disable endpoint id by itself (its receiver answers 410 Gone
// to a test delivery), then edits the endpoint's description and event types as a person in
// the UI would.
func changeOutOfBand(t *testing.T, rc *relaytest.Receiver, id string) {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := testRelay.Client.SendTest(c, id); err != nil {
		t.Errorf("send test: %v", err)
		return
	}
	for {
		ep, err := testRelay.Client.Endpoint(c, id)
		if err != nil {
			t.Errorf("read endpoint: %v", err)
			return
		}
		if !ep.Active {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.SetHandler(relaytest.Status(http.StatusNoContent))
	desc, types := "edited in the UI", []string{"deploy.ingested", "incident.resolved"}
	if _, err := testRelay.Client.UpdateEndpoint(c, id, apiclient.EndpointPatch{Description: &desc, EventTypes: &types}); err != nil {
		t.Errorf("edit endpoint: %v", err)
	}
}

// TestAccWebhookEndpoint_createInactive: an endpoint created with active = false is disabled
// for the reason "manual" from the start, and the plan said so.
func TestAccWebhookEndpoint_createInactive(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{{
			Config: endpointConfig("https://hooks.example.com/inactive", "Inactive", `active = false`),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.StringExact(api.DisabledManual)),
					plancheck.ExpectUnknownValue(endpointAddr, at("signing_secret")),
				},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(endpointAddr, at("active"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue(endpointAddr, at("disabled_reason"), knownvalue.StringExact(api.DisabledManual)),
				statecheck.ExpectKnownValue(endpointAddr, at("event_types"), knownvalue.SetSizeExact(0)),
				statecheck.ExpectKnownValue(endpointAddr, at("description"), knownvalue.StringExact("")),
			},
		}},
	})
}

// TestAccWebhookEndpoint_validation: malformed input is a plan-time diagnostic, before any
// API call.
func TestAccWebhookEndpoint_validation(t *testing.T) {
	step := func(expect string, url, name string, lines ...string) resource.TestStep {
		return resource.TestStep{
			Config:      endpointConfig(url, name, lines...),
			PlanOnly:    true,
			ExpectError: expectError(expect),
		}
	}
	const ok = "https://hooks.example.com/ok"
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			step(`Invalid webhook URL.*must be absolute`, "hooks.example.com/relative", "x"),
			step(`Invalid webhook URL.*scheme "ftp" is not supported`, "ftp://hooks.example.com/x", "x"),
			step(`Invalid webhook URL.*fragment`, "https://hooks.example.com/x#part", "x"),
			step(`Invalid webhook URL.*whitespace`, "https://hooks.example.com/a b", "x"),
			step(`Invalid event type.*Unknown event type "incident.exploded"`, ok, "x", `event_types = ["incident.opened", "incident.exploded"]`),
			step(`Invalid event type.*"test.ping" cannot be subscribed to`, ok, "x", `event_types = ["test.ping"]`),
			step(`Invalid webhook name.*name must not be empty`, ok, "   "),
			step(`Invalid webhook name.*name must be at most 200 characters \(got 201\)`, ok, strings.Repeat("n", 201)),
			step(`Invalid webhook name.*name must not contain control characters`, ok, "two\nlines"),
			step(`Invalid webhook description.*description must be at most 1024 characters`, ok, "x", fmt.Sprintf("description = %q", strings.Repeat("d", 1025))),
			// url is sensitive: the message names what is wrong, not the URL (unit-tested).
			step(`Invalid webhook URL.*The relay would refuse it: url must not contain a fragment`, "https://hooks.example.com/x?token=s3cr3t#part", "x"),
		},
	})
}

// TestAccWebhookEndpoint_importErrors: importing an id the relay does not have fails with
// Terraform's "non-existent" error, and a malformed id says what an id looks like.
func TestAccWebhookEndpoint_importErrors(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{Config: endpointConfig("https://hooks.example.com/import", "Import errors")},
			{
				ResourceName:  endpointAddr,
				ImportState:   true,
				ImportStateId: "ep_00000000000000000000000000",
				ExpectError:   expectError(`Cannot import non-existent remote object`),
			},
			{
				ResourceName:  endpointAddr,
				ImportState:   true,
				ImportStateId: "dashboard",
				ExpectError:   expectError(`Invalid import ID.*ids look like ep_01jd`),
			},
		},
	})
}

// captureID stores the resource's id for later PreConfig functions.
func captureID(addr string, id *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s not in state", addr)
		}
		*id = rs.Primary.ID
		return nil
	}
}

// checkRelay asks the relay itself, so a test does not only trust what the provider stored.
func checkRelay(id *string, check func(api.Endpoint) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ep, err := testRelay.Client.Endpoint(ctx, *id)
		if err != nil {
			return err
		}
		return check(ep)
	}
}

// expectPrior checks the refreshed state a plan starts from: that is where a change made
// outside Terraform shows.
func expectPrior(addr, attribute string, want any) plancheck.PlanCheck {
	return priorValueCheck{addr: addr, attr: attribute, want: want}
}

type priorValueCheck struct {
	addr, attr string
	want       any
}

func (c priorValueCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != c.addr || rc.Change == nil {
			continue
		}
		before, ok := rc.Change.Before.(map[string]any)
		if !ok {
			resp.Error = fmt.Errorf("%s: plan has no prior state", c.addr)
			return
		}
		if got := before[c.attr]; got != c.want {
			resp.Error = fmt.Errorf("%s: refreshed %s = %v, want %v", c.addr, c.attr, got, c.want)
		}
		return
	}
	resp.Error = fmt.Errorf("%s: not in the plan", c.addr)
}

func ctx(t *testing.T) context.Context { return relaytest.Context(t, 10*time.Second) }

// noErr fails the test on an admin API error in a PreConfig.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("admin API: %v", err)
	}
}

func TestDisabledReasonModifier(t *testing.T) {
	str := func(s string) types.String { return types.StringValue(s) }
	tests := []struct {
		name       string
		state      *bool        // prior active; nil = create
		stateValue types.String // prior disabled_reason
		planActive types.Bool   // planned active
		want       types.String // planned disabled_reason
	}{
		{"create active", nil, types.StringNull(), types.BoolValue(true), types.StringNull()},
		{"create inactive", nil, types.StringNull(), types.BoolValue(false), str("manual")},
		{"disable", ptr(true), types.StringNull(), types.BoolValue(false), str("manual")},
		{"re-enable after gone", ptr(false), str("gone"), types.BoolValue(true), types.StringNull()},
		{"stay disabled keeps reason", ptr(false), str("consecutive_failures"), types.BoolValue(false), str("consecutive_failures")},
		{"unknown active stays unknown", ptr(true), types.StringNull(), types.BoolUnknown(), types.StringUnknown()},
	}
	var sr fwresource.SchemaResponse
	NewWebhookEndpointResource().Schema(context.Background(), fwresource.SchemaRequest{}, &sr)
	s := sr.Schema
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := tfsdk.Plan{Schema: s, Raw: tftypes.NewValue(s.Type().TerraformType(context.Background()), nil)}
			setAttr(t, plan.SetAttribute, "active", tt.planActive)
			setAttr(t, plan.SetAttribute, "disabled_reason", types.StringUnknown())
			req := planmodifier.StringRequest{
				Path:       path.Root("disabled_reason"),
				Plan:       plan,
				State:      tfsdk.State{Schema: s, Raw: tftypes.NewValue(s.Type().TerraformType(context.Background()), nil)},
				StateValue: tt.stateValue,
				PlanValue:  types.StringUnknown(),
			}
			if tt.state != nil {
				setAttr(t, req.State.SetAttribute, "active", types.BoolValue(*tt.state))
				setAttr(t, req.State.SetAttribute, "disabled_reason", tt.stateValue)
			}
			resp := planmodifier.StringResponse{PlanValue: req.PlanValue}
			disabledReasonModifier{}.PlanModifyString(context.Background(), req, &resp)
			if resp.Diagnostics.HasError() {
				t.Fatal(resp.Diagnostics)
			}
			if !resp.PlanValue.Equal(tt.want) {
				t.Errorf("planned disabled_reason = %v, want %v", resp.PlanValue, tt.want)
			}
		})
	}
}

func setAttr(t *testing.T, set func(context.Context, path.Path, any) diag.Diagnostics, name string, v any) {
	t.Helper()
	if d := set(context.Background(), path.Root(name), v); d.HasError() {
		t.Fatal(d)
	}
}

func ptr[T any](v T) *T { return &v }
