package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

var (
	_ datasource.DataSourceWithConfigure      = (*webhookEndpointDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*webhookEndpointDataSource)(nil)
)

// NewWebhookEndpointDataSource is the factory of the blametrail_webhook_endpoint data source.
func NewWebhookEndpointDataSource() datasource.DataSource { return &webhookEndpointDataSource{} }

type webhookEndpointDataSource struct {
	client *apiclient.Client
}

// endpointData is an endpoint as both data sources show it.
type endpointData struct {
	ID                  types.String `tfsdk:"id"`
	URL                 types.String `tfsdk:"url"`
	Name                types.String `tfsdk:"name"`
	Description         types.String `tfsdk:"description"`
	EventTypes          types.Set    `tfsdk:"event_types"`
	Active              types.Bool   `tfsdk:"active"`
	DisabledReason      types.String `tfsdk:"disabled_reason"`
	ConsecutiveFailures types.Int64  `tfsdk:"consecutive_failures"`
	CreatedAt           types.String `tfsdk:"created_at"`
	UpdatedAt           types.String `tfsdk:"updated_at"`
}

type webhookEndpointDataSourceModel struct {
	endpointData
	SigningSecret types.String `tfsdk:"signing_secret"`
}

func endpointDataFrom(ep api.Endpoint) endpointData {
	return endpointData{
		ID:                  types.StringValue(ep.ID),
		URL:                 types.StringValue(ep.URL),
		Name:                types.StringValue(ep.Name),
		Description:         types.StringValue(ep.Description),
		EventTypes:          stringSet(ep.EventTypes),
		Active:              types.BoolValue(ep.Active),
		DisabledReason:      types.StringPointerValue(ep.DisabledReason),
		ConsecutiveFailures: types.Int64Value(int64(ep.ConsecutiveFailures)),
		CreatedAt:           types.StringValue(formatTime(ep.CreatedAt)),
		UpdatedAt:           types.StringValue(formatTime(ep.UpdatedAt)),
	}
}

// endpointDataAttributes describes endpointData. With lookup (the single-endpoint data
// source) id and name are inputs, exactly one of them set; in the list they are outputs.
func endpointDataAttributes(lookup bool) map[string]schema.Attribute {
	attrs := map[string]schema.Attribute{
		"id": schema.StringAttribute{
			Computed:            true,
			MarkdownDescription: "Endpoint id (`ep_…`).",
		},
		"name": schema.StringAttribute{Computed: true, MarkdownDescription: "Display name."},
		"url": schema.StringAttribute{
			Computed:            true,
			Sensitive:           true,
			MarkdownDescription: "URL deliveries are POSTed to. Sensitive, as the resource's `url` is.",
		},
		"description": schema.StringAttribute{Computed: true, MarkdownDescription: "Free text; `\"\"` when none."},
		"event_types": schema.SetAttribute{
			ElementType:         types.StringType,
			Computed:            true,
			MarkdownDescription: "Subscribed event types; empty means all.",
		},
		"active": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the relay delivers to the endpoint."},
		"disabled_reason": schema.StringAttribute{
			Computed:            true,
			MarkdownDescription: "`manual`, `consecutive_failures` or `gone` while inactive; null while active.",
		},
		"consecutive_failures": schema.Int64Attribute{
			Computed:            true,
			MarkdownDescription: "Failed deliveries in a row since the last success; the relay disables the endpoint when this reaches its `--disable-after`.",
		},
		"created_at": schema.StringAttribute{Computed: true, MarkdownDescription: "Creation time (RFC 3339, UTC)."},
		"updated_at": schema.StringAttribute{Computed: true, MarkdownDescription: "Time of the last change (RFC 3339, UTC)."},
	}
	if lookup {
		attrs["id"] = schema.StringAttribute{
			Optional:            true,
			Computed:            true,
			MarkdownDescription: "Endpoint id (`" + endpointIDExample + "`). Set either `id` or `name`.",
			Validators:          []validator.String{endpointIDValidator{}},
		}
		attrs["name"] = schema.StringAttribute{
			Optional: true,
			Computed: true,
			MarkdownDescription: "Display name. Set either `id` or `name`; by name, exactly one endpoint of the " +
				"relay must have it (names are not unique: an error lists the ids when several do).",
		}
	}
	return attrs
}

func (d *webhookEndpointDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_webhook_endpoint"
}

func (d *webhookEndpointDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := endpointDataAttributes(true)
	// The secret is here so a configuration that does not manage the endpoint (the receiver's
	// deployment, say) can still hand the receiver its verification key.
	attrs["signing_secret"] = schema.StringAttribute{
		Computed:            true,
		Sensitive:           true,
		MarkdownDescription: "Secret (`whsec_…`) the relay signs deliveries to this endpoint with.",
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads one webhook endpoint of the relay, signing secret included, by `id` or by `name`.",
		Attributes:          attrs,
	}
}

func (d *webhookEndpointDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig requires exactly one of id and name, at plan time. A value not known yet
// (from a resource created in the same apply) counts as set.
func (d *webhookEndpointDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var cfg webhookEndpointDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	switch {
	case cfg.ID.IsNull() && cfg.Name.IsNull():
		resp.Diagnostics.AddError("Missing webhook endpoint id or name",
			"Set id (such as "+endpointIDExample+") or name to say which endpoint to read.")
	case !cfg.ID.IsNull() && !cfg.Name.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Conflicting webhook endpoint id and name",
			"Set id or name, not both: the endpoint is looked up by one of them.")
	}
}

func (d *webhookEndpointDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg webhookEndpointDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	what := "webhook endpoint " + cfg.ID.ValueString()
	if cfg.ID.IsNull() {
		what = fmt.Sprintf("webhook endpoint named %q", cfg.Name.ValueString())
	}
	summary := "Could not read " + what
	if !confirmRelay(ctx, d.client, &resp.Diagnostics, summary) {
		return
	}
	var ep api.Endpoint
	var err error
	if cfg.ID.IsNull() {
		var ok bool
		if ep, ok = d.byName(ctx, cfg.Name.ValueString(), summary, &resp.Diagnostics); !ok {
			return
		}
	} else {
		ep, err = d.client.Endpoint(ctx, cfg.ID.ValueString())
	}
	var secret string
	if err == nil {
		secret, err = d.client.Secret(ctx, ep.ID)
	}
	if errors.Is(err, apiclient.ErrEndpointNotFound) {
		if cfg.ID.IsNull() { // deleted between the list and the secret
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Webhook endpoint not found",
				fmt.Sprintf("The endpoint named %q (%s) was deleted while it was being read.", ep.Name, ep.ID))
			return
		}
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Webhook endpoint not found",
			"The relay has no endpoint with id "+cfg.ID.ValueString()+".")
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, d.client, summary, err)
		return
	}
	out := webhookEndpointDataSourceModel{endpointData: endpointDataFrom(ep), SigningSecret: types.StringValue(secret)}
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}

// byName finds the one endpoint with this exact name; anything but one is a diagnostic on name.
func (d *webhookEndpointDataSource) byName(ctx context.Context, name, summary string, diags *diag.Diagnostics) (api.Endpoint, bool) {
	all, err := d.client.AllEndpoints(ctx)
	if err != nil {
		addAPIError(diags, d.client, summary, err)
		return api.Endpoint{}, false
	}
	var found []api.Endpoint
	for _, ep := range all {
		if ep.Name == name {
			found = append(found, ep)
		}
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		diags.AddAttributeError(path.Root("name"), "Webhook endpoint not found",
			fmt.Sprintf("The relay has no endpoint named %q (names are compared exactly, case included).", name))
	default:
		ids := make([]string, len(found))
		for i, ep := range found {
			ids[i] = ep.ID
		}
		diags.AddAttributeError(path.Root("name"), "Several webhook endpoints have this name",
			fmt.Sprintf("%d endpoints are named %q: %s. Look the endpoint up by id instead.",
				len(found), name, strings.Join(ids, ", ")))
	}
	return api.Endpoint{}, false
}
