package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

var (
	_ resource.ResourceWithConfigure   = (*webhookEndpointResource)(nil)
	_ resource.ResourceWithImportState = (*webhookEndpointResource)(nil)
)

// NewWebhookEndpointResource is the factory of blametrail_webhook_endpoint.
func NewWebhookEndpointResource() resource.Resource { return &webhookEndpointResource{} }

type webhookEndpointResource struct {
	client *apiclient.Client
}

type webhookEndpointModel struct {
	ID             types.String `tfsdk:"id"`
	URL            types.String `tfsdk:"url"`
	Name           types.String `tfsdk:"name"`
	Description    types.String `tfsdk:"description"`
	EventTypes     types.Set    `tfsdk:"event_types"`
	Active         types.Bool   `tfsdk:"active"`
	SigningSecret  types.String `tfsdk:"signing_secret"`
	DisabledReason types.String `tfsdk:"disabled_reason"`
	CreatedAt      types.String `tfsdk:"created_at"`
	secretModel                 // webhook_endpoint_secret.go
}

func (r *webhookEndpointResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_webhook_endpoint"
}

func (r *webhookEndpointResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A webhook endpoint of the relay: a URL that receives signed deliveries of the " +
			"event types it subscribes to. Every attribute is updated in place; the endpoint (and its " +
			"signing secret) is never replaced.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Endpoint id (`ep_…`), assigned by the relay. Use it to import the endpoint.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"url": schema.StringAttribute{
				Required: true,
				// Webhook URLs often carry a token or credentials; plans and logs show the name.
				Sensitive: true,
				MarkdownDescription: "Absolute `https://` URL deliveries are POSTed to, stored exactly as written. " +
					"Sensitive, because webhook URLs often carry a token: plans show `name` to tell endpoints apart. " +
					"`http://` URLs and private or loopback destinations are accepted only by a relay started with " +
					"`--allow-http` or `--allow-private-networks`.",
				Validators: []validator.String{urlValidator{}},
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: fmt.Sprintf("Display name, 1 to %d characters.", api.MaxNameLen),
				Validators:          []validator.String{nameValidator},
			},
			"description": schema.StringAttribute{
				Optional: true,
				Computed: true,
				// The relay has no "no description": it stores "". Defaulting to "" makes an omitted
				// description, an explicit "" and an imported endpoint without one all the same value.
				Default:             stringdefault.StaticString(""),
				MarkdownDescription: fmt.Sprintf("Free text, up to %d characters; may span lines. Defaults to `\"\"`.", api.MaxDescriptionLen),
				Validators:          []validator.String{descriptionValidator},
			},
			"event_types": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				// Omitted and [] both mean "all event types" to the relay, which returns [] for
				// both; defaulting to the empty set keeps state and configuration equal either way.
				Default: setdefault.StaticValue(types.SetValueMust(types.StringType, []attr.Value{})),
				MarkdownDescription: "Event types delivered to this endpoint: any of `" +
					strings.Join(subscribableEventTypes(), "`, `") + "`. Omitted or empty means all of them " +
					"(including types added in later relay versions). `test.ping` cannot be subscribed to: " +
					"the relay sends it to any endpoint on request.",
				Validators: []validator.Set{eventTypesValidator{}},
			},
			"active": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
				MarkdownDescription: "Whether the relay delivers to this endpoint. Defaults to `true`. When the relay " +
					"disables an endpoint by itself (after consecutive failures, or on `410 Gone`), the next plan " +
					"shows `active` changing back to `true`, and apply re-enables it.",
			},
			"signing_secret": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				MarkdownDescription: "Secret (`whsec_…`) the relay signs deliveries with; give it to the receiver " +
					"to verify signatures. Generated by the relay on create, kept across updates, changed by " +
					"`rotate_secret_on`, and read back on import. Null when you bring the secret with `signing_secret_wo`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), secretPlanModifier{}},
			},
			"disabled_reason": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Why the endpoint is inactive: `manual`, `consecutive_failures` or `gone`; null " +
					"while it is active.",
				PlanModifiers: []planmodifier.String{disabledReasonModifier{}},
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the endpoint was created (RFC 3339, UTC).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
	maps.Copy(resp.Schema.Attributes, secretAttributes())
}

func (r *webhookEndpointResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *webhookEndpointResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan webhookEndpointModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	const summary = "Could not create webhook endpoint"
	if resp.Diagnostics.HasError() || !confirmRelay(ctx, r.client, &resp.Diagnostics, summary) {
		return
	}
	ep, err := r.client.CreateEndpoint(ctx, apiclient.EndpointCreate{
		URL:         plan.URL.ValueString(),
		Name:        plan.Name.ValueString(),
		Description: plan.Description.ValueString(),
		EventTypes:  setStrings(plan.EventTypes),
		Active:      plan.Active.ValueBoolPointer(),
		Secret:      configSecretWO(ctx, req.Config, &resp.Diagnostics),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, r.client, summary, err)
		return
	}
	state := endpointModel(ep)
	state.keepSecretSettings(plan.secretModel, types.StringValue(ep.Secret))
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *webhookEndpointResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state webhookEndpointModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	summary := "Could not read webhook endpoint " + id
	if !confirmRelay(ctx, r.client, &resp.Diagnostics, summary) {
		return
	}
	ep, err := r.client.Endpoint(ctx, id)
	var secret string
	if err == nil {
		// Read every time rather than trusting state, so a secret rotated on the relay shows
		// up, and so import brings it.
		secret, err = r.client.Secret(ctx, id)
	}
	if errors.Is(err, apiclient.ErrEndpointNotFound) {
		// Deleted outside Terraform, says a confirmed relay: forgetting it makes the next plan
		// create it again. Any other 404 (a route the relay does not serve) is an error below.
		tflog.Warn(ctx, "webhook endpoint no longer exists on the relay; removing it from state", map[string]any{"id": id})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, r.client, summary, err)
		return
	}
	next := endpointModel(ep)
	next.keepSecretSettings(state.secretModel, types.StringValue(secret))
	resp.Diagnostics.Append(resp.State.Set(ctx, &next)...)
}

// Update sends only the attributes that changed. Sending all of them would not be idempotent:
// active=true, even unchanged, resets the relay's consecutive-failure counter.
func (r *webhookEndpointResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state webhookEndpointModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	summary := "Could not update webhook endpoint " + id
	if !confirmRelay(ctx, r.client, &resp.Diagnostics, summary) {
		return
	}
	var ep api.Endpoint
	var err error
	if p, changed := endpointPatch(plan, state); changed {
		ep, err = r.client.UpdateEndpoint(ctx, id, p)
	} else {
		ep, err = r.client.Endpoint(ctx, id)
	}
	// The endpoint may have changed on the relay since the plan was made: disabled by the relay
	// after failed deliveries, or edited in the UI. The plan promised its values, so send the
	// ones that still differ (Terraform rejects a result that breaks the plan), once.
	if err == nil {
		if p, changed := endpointPatch(plan, endpointModel(ep)); changed {
			tflog.Info(ctx, "webhook endpoint changed on the relay since the plan; applying the plan to it", map[string]any{"id": id})
			ep, err = r.client.UpdateEndpoint(ctx, id, p)
		}
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, r.client, summary, err)
		return
	}
	next := endpointModel(ep)
	// The PATCH answer does not carry the secret; it changes only by a rotation.
	if !r.updateSecret(ctx, req.Config, plan, state, &next, &resp.Diagnostics) {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &next)...)
}

// endpointPatch is the PATCH that takes an endpoint from cur to plan, and whether it changes
// anything.
func endpointPatch(plan, cur webhookEndpointModel) (apiclient.EndpointPatch, bool) {
	var p apiclient.EndpointPatch
	changed := false
	if !plan.URL.Equal(cur.URL) {
		p.URL, changed = plan.URL.ValueStringPointer(), true
	}
	if !plan.Name.Equal(cur.Name) {
		p.Name, changed = plan.Name.ValueStringPointer(), true
	}
	if !plan.Description.Equal(cur.Description) {
		p.Description, changed = plan.Description.ValueStringPointer(), true
	}
	if !plan.EventTypes.Equal(cur.EventTypes) {
		list := setStrings(plan.EventTypes)
		if list == nil {
			list = []string{} // non-nil: "set to all", not "leave alone"
		}
		p.EventTypes, changed = &list, true
	}
	if !plan.Active.Equal(cur.Active) {
		p.Active, changed = plan.Active.ValueBoolPointer(), true
	}
	return p, changed
}

func (r *webhookEndpointResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state webhookEndpointModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	summary := "Could not delete webhook endpoint " + id
	if !confirmRelay(ctx, r.client, &resp.Diagnostics, summary) {
		return
	}
	// Already gone, says a confirmed relay, is what was asked. Any other error keeps the
	// endpoint in state: a destroy that reported it gone while it still delivers would be worse.
	if err := r.client.DeleteEndpoint(ctx, id); err != nil && !errors.Is(err, apiclient.ErrEndpointNotFound) {
		addAPIError(&resp.Diagnostics, r.client, summary, err)
	}
}

// ImportState takes the endpoint id; Read then fills in everything, the secret included.
func (r *webhookEndpointResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if msg := checkEndpointID(req.ID); msg != "" {
		resp.Diagnostics.AddError("Invalid import ID", "Import a webhook endpoint by its id. "+msg)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// endpointModel converts the relay's view; the secret is left null for the caller.
func endpointModel(ep api.Endpoint) webhookEndpointModel {
	return webhookEndpointModel{
		ID:             types.StringValue(ep.ID),
		URL:            types.StringValue(ep.URL),
		Name:           types.StringValue(ep.Name),
		Description:    types.StringValue(ep.Description),
		EventTypes:     stringSet(ep.EventTypes),
		Active:         types.BoolValue(ep.Active),
		SigningSecret:  types.StringNull(),
		DisabledReason: types.StringPointerValue(ep.DisabledReason),
		CreatedAt:      types.StringValue(formatTime(ep.CreatedAt)),
	}
}

// disabledReasonModifier predicts disabled_reason from the planned active, so an update does
// not show it as "(known after apply)". It mirrors the relay: enabling clears the reason,
// disabling an active endpoint sets "manual", and an endpoint that is already inactive keeps
// the reason it was disabled for.
type disabledReasonModifier struct{}

func (disabledReasonModifier) Description(context.Context) string {
	return "null when active; manual when Terraform disables the endpoint; otherwise unchanged"
}

func (m disabledReasonModifier) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (disabledReasonModifier) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		return
	}
	var active types.Bool
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("active"), &active)...)
	if resp.Diagnostics.HasError() || active.IsUnknown() || active.IsNull() {
		return
	}
	if active.ValueBool() {
		resp.PlanValue = types.StringNull()
		return
	}
	wasActive := types.BoolValue(true) // a new endpoint counts as active before the create
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("active"), &wasActive)...)
	}
	if wasActive.ValueBool() {
		resp.PlanValue = types.StringValue(api.DisabledManual)
		return
	}
	resp.PlanValue = req.StateValue
}

func stringSet(list []string) types.Set {
	elems := make([]attr.Value, len(list))
	for i, s := range list {
		elems[i] = types.StringValue(s)
	}
	return types.SetValueMust(types.StringType, elems)
}

// setStrings lists a known set of strings; nil for a null, unknown or empty set.
func setStrings(s types.Set) []string {
	if s.IsNull() || s.IsUnknown() {
		return nil
	}
	var out []string
	for _, e := range s.Elements() {
		if v, ok := e.(types.String); ok && !v.IsNull() && !v.IsUnknown() {
			out = append(out, v.ValueString())
		}
	}
	return out
}

// formatTime renders a relay timestamp the way the relay wrote it (RFC 3339, UTC, with as
// many fraction digits as it carries), so state holds the API's text.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
