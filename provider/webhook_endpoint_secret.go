package provider

// The attributes of blametrail_webhook_endpoint that manage its signing secret: rotation in
// place with an overlap (rotate_secret_on, previous_secret_ttl) and a secret brought by the
// user that never enters state (signing_secret_wo, signing_secret_wo_version).

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

const defaultPreviousSecretTTL = "24h"

// secretModel is embedded (by value) in webhookEndpointModel.
type secretModel struct {
	RotateSecretOn         types.String `tfsdk:"rotate_secret_on"`
	PreviousSecretTTL      types.String `tfsdk:"previous_secret_ttl"`
	SigningSecretWO        types.String `tfsdk:"signing_secret_wo"`
	SigningSecretWOVersion types.Int64  `tfsdk:"signing_secret_wo_version"`
}

// broughtSecret: the user gives the secret through signing_secret_wo, so the resource keeps
// signing_secret null in state.
func (m secretModel) broughtSecret() bool { return !m.SigningSecretWOVersion.IsNull() }

func secretAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"rotate_secret_on": schema.StringAttribute{
			Optional: true,
			MarkdownDescription: "Any string; changing it from one value to another rotates the signing secret in place " +
				"(the endpoint is not replaced): the relay generates a new secret, `signing_secret` shows it, and the " +
				"previous secret keeps signing deliveries, next to the new one, for `previous_secret_ttl`. Setting it " +
				"for the first time, or removing it, only records the value. A date (`\"2026-q3\"`) or the `id` of a " +
				"`time_rotating` resource works well. Conflicts with `signing_secret_wo`.",
			Validators: []validator.String{conflictsWithWO{}},
		},
		"previous_secret_ttl": schema.StringAttribute{
			Optional: true,
			Computed: true,
			Default:  stringdefault.StaticString(defaultPreviousSecretTTL),
			MarkdownDescription: "How long the previous secret keeps signing after a rotation made by this resource " +
				"(`rotate_secret_on` or `signing_secret_wo_version`), so receivers can switch without rejecting " +
				"deliveries: a Go duration from `\"0s\"` (at once) to `\"168h\"` (7 days). Defaults to `\"24h\"`.",
			Validators: []validator.String{overlapValidator{}},
		},
		"signing_secret_wo": schema.StringAttribute{
			Optional:  true,
			Sensitive: true,
			WriteOnly: true,
			MarkdownDescription: "A signing secret you bring (`whsec_` and the standard base64 of 24 to 64 bytes), for " +
				"secrets kept in Vault or another secret store. Write-only (Terraform 1.11 or later): it is sent to the " +
				"relay and never stored in the plan or state, so `signing_secret` stays null. Used on create; later, " +
				"change `signing_secret_wo_version` to rotate to a new value (with the `previous_secret_ttl` overlap). " +
				"Requires `signing_secret_wo_version`.",
			Validators: []validator.String{broughtSecretValidator{}},
		},
		"signing_secret_wo_version": schema.Int64Attribute{
			Optional: true,
			MarkdownDescription: "Version of `signing_secret_wo`. Terraform cannot see changes of a write-only value, " +
				"so change this number to make the relay rotate to the current `signing_secret_wo`. Requires " +
				"`signing_secret_wo`.",
			Validators: []validator.Int64{versionNeedsSecret{}},
		},
	}
}

// keepSecretSettings fills in the secret attributes of a state about to be saved: the
// settings as planned (or as they were, for Read), and the secret the relay signs with
// unless the user brought it.
func (m *webhookEndpointModel) keepSecretSettings(from secretModel, secret types.String) {
	m.secretModel = from
	m.SigningSecretWO = types.StringNull() // write-only: never in state
	if m.PreviousSecretTTL.IsNull() || m.PreviousSecretTTL.IsUnknown() {
		m.PreviousSecretTTL = types.StringValue(defaultPreviousSecretTTL) // imported
	}
	m.SigningSecret = secret
	if from.broughtSecret() {
		m.SigningSecret = types.StringNull()
	}
}

// configSecretWO reads signing_secret_wo from the configuration (write-only values are only
// there, never in the plan).
func configSecretWO(ctx context.Context, cfg tfsdk.Config, diags *diag.Diagnostics) string {
	var v types.String
	diags.Append(cfg.GetAttribute(ctx, path.Root("signing_secret_wo"), &v)...)
	return v.ValueString()
}

// updateSecret rotates the secret when the plan asks for it and sets next's secret
// attributes. It reports false (with diagnostics) when the rotation failed.
func (r *webhookEndpointResource) updateSecret(ctx context.Context, cfg tfsdk.Config, plan, state webhookEndpointModel,
	next *webhookEndpointModel, diags *diag.Diagnostics) bool {
	id := state.ID.ValueString()
	rot := apiclient.SecretRotation{ExpirePreviousIn: plan.PreviousSecretTTL.ValueString()}
	switch {
	case plan.broughtSecret() && !plan.SigningSecretWOVersion.Equal(state.SigningSecretWOVersion):
		if rot.Secret = configSecretWO(ctx, cfg, diags); diags.HasError() {
			return false
		}
		if rot.Secret == "" {
			diags.AddAttributeError(path.Root("signing_secret_wo"), "Missing signing_secret_wo",
				"signing_secret_wo_version changed, which rotates to signing_secret_wo, but signing_secret_wo is not set.")
			return false
		}
	case rotationRequested(plan.RotateSecretOn, state.RotateSecretOn):
	default:
		secret := state.SigningSecret
		if state.broughtSecret() && !plan.broughtSecret() {
			// The user stopped bringing the secret: show the one the relay signs with again.
			info, err := r.client.SecretInfo(ctx, id)
			if err != nil {
				addAPIError(diags, r.client, "Could not read the signing secret of webhook endpoint "+id, err)
				return false
			}
			secret = types.StringValue(info.Secret)
		}
		next.keepSecretSettings(plan.secretModel, secret)
		return true
	}
	info, err := r.client.RotateSecret(ctx, id, rot)
	if err != nil {
		addAPIError(diags, r.client, "Could not rotate the signing secret of webhook endpoint "+id, err)
		return false
	}
	expires := "null"
	if info.PreviousSecretExpiresAt != nil {
		expires = formatTime(*info.PreviousSecretExpiresAt)
	}
	tflog.Info(ctx, "rotated webhook endpoint signing secret", map[string]any{"id": id, "previous_secret_expires_at": expires})
	next.keepSecretSettings(plan.secretModel, types.StringValue(info.Secret))
	return true
}

// rotationRequested: rotate_secret_on changed from one value to another.
func rotationRequested(plan, state types.String) bool {
	return !plan.IsNull() && !plan.IsUnknown() && !state.IsNull() && !plan.Equal(state)
}

// secretPlanModifier plans signing_secret: null while the user brings the secret, unknown
// when this apply rotates it or stops bringing it, else what UseStateForUnknown left.
type secretPlanModifier struct{}

func (secretPlanModifier) Description(context.Context) string {
	return "null with signing_secret_wo; unknown when the plan rotates the secret"
}

func (m secretPlanModifier) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (secretPlanModifier) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		return
	}
	var plan secretModel
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("signing_secret_wo_version"), &plan.SigningSecretWOVersion)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("rotate_secret_on"), &plan.RotateSecretOn)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.broughtSecret() {
		resp.PlanValue = types.StringNull()
		return
	}
	if req.State.Raw.IsNull() { // create: the relay generates it
		return
	}
	var state secretModel
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("signing_secret_wo_version"), &state.SigningSecretWOVersion)...)
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("rotate_secret_on"), &state.RotateSecretOn)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.RotateSecretOn.IsUnknown() && !state.RotateSecretOn.IsNull() || rotationRequested(plan.RotateSecretOn, state.RotateSecretOn) ||
		state.broughtSecret() {
		resp.PlanValue = types.StringUnknown()
	}
}

type overlapValidator struct{}

func (overlapValidator) Description(context.Context) string {
	return "a Go duration from 0s to 168h"
}

func (v overlapValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (overlapValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := api.ParseOverlap(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid previous_secret_ttl",
			fmt.Sprintf("previous_secret_ttl must be a Go duration from \"0s\" to \"168h\" (7 days), such as \"24h\" or \"90m\"; got %q.",
				req.ConfigValue.ValueString()))
	}
}

// broughtSecretValidator checks the secret's form at plan time (never quoting it) and that
// signing_secret_wo_version comes with it.
type broughtSecretValidator struct{}

func (broughtSecretValidator) Description(context.Context) string {
	return "whsec_ and the standard base64 of 24 to 64 bytes; requires signing_secret_wo_version"
}

func (v broughtSecretValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (broughtSecretValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := api.ValidateSecret(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid signing_secret_wo", err.Error()+".")
	}
	var version types.Int64
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("signing_secret_wo_version"), &version)...)
	if version.IsNull() {
		resp.Diagnostics.AddAttributeError(req.Path, "Missing signing_secret_wo_version",
			"signing_secret_wo needs signing_secret_wo_version: Terraform does not keep write-only values, so only a "+
				"change of the version tells the provider to rotate to a new signing_secret_wo. Start with 1.")
	}
}

// conflictsWithWO: rotate_secret_on makes the relay generate a secret, which would replace
// the one the user brings.
type conflictsWithWO struct{}

func (conflictsWithWO) Description(context.Context) string {
	return "conflicts with signing_secret_wo"
}

func (v conflictsWithWO) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (conflictsWithWO) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() {
		return
	}
	var version types.Int64
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("signing_secret_wo_version"), &version)...)
	if !version.IsNull() {
		resp.Diagnostics.AddAttributeError(req.Path, "Conflicting secret settings",
			"rotate_secret_on makes the relay generate the new secret, and signing_secret_wo brings your own: use one "+
				"of them. With signing_secret_wo, rotate by changing signing_secret_wo_version.")
	}
}

// versionNeedsSecret: signing_secret_wo_version without signing_secret_wo would make the
// relay generate a secret that the state then hides.
type versionNeedsSecret struct{}

func (versionNeedsSecret) Description(context.Context) string { return "requires signing_secret_wo" }

func (v versionNeedsSecret) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (versionNeedsSecret) ValidateInt64(ctx context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() {
		return
	}
	var wo types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("signing_secret_wo"), &wo)...)
	if wo.IsNull() {
		resp.Diagnostics.AddAttributeError(req.Path, "Missing signing_secret_wo",
			"signing_secret_wo_version is the version of signing_secret_wo; set signing_secret_wo too, or remove both "+
				"to let the relay generate the secret.")
	}
}
