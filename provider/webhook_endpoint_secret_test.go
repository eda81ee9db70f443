package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

var secretPattern = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)

// testSecret is a secret "from Vault".
func testSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// checkRelaySecret asks the relay for the endpoint's secret: want is the secret (or, when
// empty, the state's signing_secret), and overlap whether a previous secret still signs and
// for about how long.
func checkRelaySecret(want string, overlap time.Duration) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[endpointAddr]
		if !ok {
			return fmt.Errorf("%s not in state", endpointAddr)
		}
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := testRelay.Client.SecretInfo(c, rs.Primary.ID)
		if err != nil {
			return err
		}
		if want == "" {
			want = rs.Primary.Attributes["signing_secret"]
		}
		if info.Secret != want {
			return fmt.Errorf("the relay signs with another secret than expected")
		}
		exp := info.PreviousSecretExpiresAt
		switch {
		case overlap == 0 && exp != nil:
			return fmt.Errorf("previous_secret_expires_at = %s, want none", exp)
		case overlap > 0 && exp == nil:
			return fmt.Errorf("no previous secret signs, want one for %s", overlap)
		case overlap > 0 && (time.Until(*exp) > overlap || time.Until(*exp) < overlap-time.Minute):
			return fmt.Errorf("previous_secret_expires_at = %s, want about %s from now", exp, overlap)
		}
		return nil
	}
}

// TestAccWebhookEndpoint_rotateSecretOn: changing rotate_secret_on rotates the secret in
// place, the previous one signing for previous_secret_ttl; setting or removing it does not.
func TestAccWebhookEndpoint_rotateSecretOn(t *testing.T) {
	const url = "https://hooks.example.com/rotate"
	sameID := statecheck.CompareValue(compare.ValuesSame())
	secrets := statecheck.CompareValue(compare.ValuesDiffer())
	sameSecret := statecheck.CompareValue(compare.ValuesSame())
	update := func(extra ...plancheck.PlanCheck) resource.ConfigPlanChecks {
		return resource.ConfigPlanChecks{
			PreApply:             append([]plancheck.PlanCheck{plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionUpdate)}, extra...),
			PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{ // Set from the start: nothing to rotate.
				Config: endpointConfig(url, "Rotate", `rotate_secret_on = "2026-q1"`, `previous_secret_ttl = "2h"`),
				ConfigStateChecks: []statecheck.StateCheck{
					sameID.AddStateValue(endpointAddr, at("id")),
					secrets.AddStateValue(endpointAddr, at("signing_secret")),
					statecheck.ExpectKnownValue(endpointAddr, at("signing_secret"), knownvalue.StringRegexp(secretPattern)),
					statecheck.ExpectKnownValue(endpointAddr, at("rotate_secret_on"), knownvalue.StringExact("2026-q1")),
					statecheck.ExpectKnownValue(endpointAddr, at("previous_secret_ttl"), knownvalue.StringExact("2h")),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            checkRelaySecret("", 0),
			},
			{ // Changed: rotated in place, the new secret known only after apply.
				Config:           endpointConfig(url, "Rotate", `rotate_secret_on = "2026-q2"`, `previous_secret_ttl = "2h"`),
				ConfigPlanChecks: update(plancheck.ExpectUnknownValue(endpointAddr, at("signing_secret"))),
				ConfigStateChecks: []statecheck.StateCheck{
					sameID.AddStateValue(endpointAddr, at("id")),
					secrets.AddStateValue(endpointAddr, at("signing_secret")),
					statecheck.ExpectKnownValue(endpointAddr, at("signing_secret"), knownvalue.StringRegexp(secretPattern)),
					statecheck.ExpectSensitiveValue(endpointAddr, at("signing_secret")),
				},
				Check: checkRelaySecret("", 2*time.Hour),
			},
			{ // The default overlap, and another rotation.
				Config:           endpointConfig(url, "Rotate", `rotate_secret_on = "2026-q3"`),
				ConfigPlanChecks: update(plancheck.ExpectUnknownValue(endpointAddr, at("signing_secret"))),
				ConfigStateChecks: []statecheck.StateCheck{
					secrets.AddStateValue(endpointAddr, at("signing_secret")),
					sameSecret.AddStateValue(endpointAddr, at("signing_secret")),
					statecheck.ExpectKnownValue(endpointAddr, at("previous_secret_ttl"), knownvalue.StringExact("24h")),
				},
				Check: checkRelaySecret("", 24*time.Hour),
			},
			{ // Removed: recorded, no rotation.
				Config:           endpointConfig(url, "Rotate"),
				ConfigPlanChecks: update(plancheck.ExpectKnownValue(endpointAddr, at("rotate_secret_on"), knownvalue.Null())),
				ConfigStateChecks: []statecheck.StateCheck{
					sameID.AddStateValue(endpointAddr, at("id")),
					sameSecret.AddStateValue(endpointAddr, at("signing_secret")),
				},
			},
			{ // Import: the secret settings take their defaults, so the plan stays empty.
				ResourceName:      endpointAddr,
				ImportState:       true,
				ImportStateVerify: true,
			},
		},
	})
}

// TestAccWebhookEndpoint_signingSecretWO: a secret brought through the write-only attribute
// signs, never reaches state, and a new version rotates to the new value with the overlap.
func TestAccWebhookEndpoint_signingSecretWO(t *testing.T) {
	const url = "https://hooks.example.com/byo"
	s1, s2, s3 := testSecret(t), testSecret(t), testSecret(t)
	woConfig := func(secret string, version int, lines ...string) string {
		return endpointConfig(url, "Bring your own", append([]string{
			fmt.Sprintf("signing_secret_wo = %q", secret), fmt.Sprintf("signing_secret_wo_version = %d", version)}, lines...)...)
	}
	notInState := []statecheck.StateCheck{
		statecheck.ExpectKnownValue(endpointAddr, at("signing_secret"), knownvalue.Null()),
		statecheck.ExpectKnownValue(endpointAddr, at("signing_secret_wo"), knownvalue.Null()),
	}
	sameID := statecheck.CompareValue(compare.ValuesSame())
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckEndpointsDestroyed,
		Steps: []resource.TestStep{
			{
				Config:            woConfig(s1, 1),
				ConfigStateChecks: append(notInState, sameID.AddStateValue(endpointAddr, at("id"))),
				ConfigPlanChecks:  resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:             resource.ComposeTestCheckFunc(checkRelaySecret(s1, 0), checkNotInState(s1)),
			},
			{ // A new value under the same version is not seen: nothing to do.
				Config:   woConfig(s3, 1),
				PlanOnly: true,
			},
			{ // A new version rotates to the new value, in place, with the overlap.
				Config: woConfig(s2, 2, `previous_secret_ttl = "3h"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(endpointAddr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: append(notInState, sameID.AddStateValue(endpointAddr, at("id")),
					statecheck.ExpectKnownValue(endpointAddr, at("signing_secret_wo_version"), knownvalue.Int64Exact(2))),
				Check: resource.ComposeTestCheckFunc(checkRelaySecret(s2, 3*time.Hour), checkNotInState(s1), checkNotInState(s2)),
			},
			{ // Stop bringing it: signing_secret shows the relay's secret again, no rotation.
				Config: endpointConfig(url, "Bring your own"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectUnknownValue(endpointAddr, at("signing_secret"))},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(endpointAddr, at("signing_secret"), knownvalue.StringExact(s2)),
					sameID.AddStateValue(endpointAddr, at("id")),
				},
				Check: checkRelaySecret(s2, 3*time.Hour),
			},
		},
	})
}

// checkNotInState: a brought secret appears nowhere in state.
func checkNotInState(secret string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		for addr, rs := range s.RootModule().Resources {
			for k, v := range rs.Primary.Attributes {
				if v == secret {
					return fmt.Errorf("%s.%s holds the write-only secret", addr, k)
				}
			}
		}
		return nil
	}
}

// TestAccWebhookEndpoint_secretValidation: the secret settings are checked at plan time.
func TestAccWebhookEndpoint_secretValidation(t *testing.T) {
	const url = "https://hooks.example.com/secret-validation"
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: endpointConfig(url, "v", `previous_secret_ttl = "8d"`), PlanOnly: true, ExpectError: expectError(`Invalid previous_secret_ttl`)},
			{Config: endpointConfig(url, "v", `previous_secret_ttl = "169h"`), PlanOnly: true, ExpectError: expectError(`from "0s" to "168h"`)},
			{Config: endpointConfig(url, "v", `previous_secret_ttl = "-1s"`), PlanOnly: true, ExpectError: expectError(`Invalid previous_secret_ttl`)},
		},
	})
}

// TestAccWebhookEndpoint_secretWOValidation needs write-only attributes (Terraform 1.11).
func TestAccWebhookEndpoint_secretWOValidation(t *testing.T) {
	const url = "https://hooks.example.com/secret-validation"
	good := testSecret(t)
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: endpointConfig(url, "v", `signing_secret_wo = "whsec_c2hvcnQ="`, `signing_secret_wo_version = 1`),
				PlanOnly: true, ExpectError: expectError(`Invalid signing_secret_wo.*24 to 64 bytes`)},
			{Config: endpointConfig(url, "v", fmt.Sprintf(`signing_secret_wo = %q`, good)),
				PlanOnly: true, ExpectError: expectError(`Missing signing_secret_wo_version`)},
			{Config: endpointConfig(url, "v", `signing_secret_wo_version = 1`),
				PlanOnly: true, ExpectError: expectError(`Missing signing_secret_wo`)},
			{Config: endpointConfig(url, "v", fmt.Sprintf(`signing_secret_wo = %q`, good), `signing_secret_wo_version = 1`, `rotate_secret_on = "x"`),
				PlanOnly: true, ExpectError: expectError(`Conflicting secret settings`)},
		},
	})
}
