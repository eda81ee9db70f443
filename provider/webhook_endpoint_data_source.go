package provider

import (
	"context"
	"errors"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

var _ datasource.DataSourceWithConfigure = (*webhookEndpointDataSource)(nil)

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

// endpointDataAttributes describes endpointData; the id is an input of the single-endpoint
// data source and an output of the list.
func endpointDataAttributes(idRequired bool) map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"id": schema.StringAttribute{
			Required:            idRequired,
			Computed:            !idRequired,
			MarkdownDescription: "Endpoint id (`ep_…`).",
		},
		"url":         schema.StringAttribute{Computed: true, MarkdownDescription: "URL deliveries are POSTed to."},
		"name":        schema.StringAttribute{Computed: true, MarkdownDescription: "Display name."},
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
		MarkdownDescription: "Reads one webhook endpoint of the relay by id, signing secret included.",
		Attributes:          attrs,
	}
}

func (d *webhookEndpointDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *webhookEndpointDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg webhookEndpointDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := cfg.ID.ValueString()
	summary := "Could not read webhook endpoint " + id
	if !confirmRelay(ctx, d.client, &resp.Diagnostics, summary) {
		return
	}
	ep, err := d.client.Endpoint(ctx, id)
	var secret string
	if err == nil {
		secret, err = d.client.Secret(ctx, id)
	}
	if errors.Is(err, apiclient.ErrEndpointNotFound) {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Webhook endpoint not found",
			"The relay has no endpoint with id "+id+".")
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, d.client, summary, err)
		return
	}
	out := webhookEndpointDataSourceModel{endpointData: endpointDataFrom(ep), SigningSecret: types.StringValue(secret)}
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}
