package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

var _ datasource.DataSourceWithConfigure = (*webhookEndpointsDataSource)(nil)

// NewWebhookEndpointsDataSource is the factory of the blametrail_webhook_endpoints data source.
func NewWebhookEndpointsDataSource() datasource.DataSource { return &webhookEndpointsDataSource{} }

type webhookEndpointsDataSource struct {
	client *apiclient.Client
}

type webhookEndpointsModel struct {
	Endpoints []endpointData `tfsdk:"endpoints"`
}

func (d *webhookEndpointsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_webhook_endpoints"
}

func (d *webhookEndpointsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		// No secrets here: reading every endpoint's secret would cost a call per endpoint and put
		// all of them in state; the blametrail_webhook_endpoint data source reads one.
		MarkdownDescription: "Lists every webhook endpoint of the relay, oldest first, following the API's " +
			"pagination to the end. Signing secrets are not included; read one with the " +
			"`blametrail_webhook_endpoint` data source.",
		Attributes: map[string]schema.Attribute{
			"endpoints": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The endpoints, oldest first.",
				NestedObject:        schema.NestedAttributeObject{Attributes: endpointDataAttributes(false)},
			},
		},
	}
}

func (d *webhookEndpointsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *webhookEndpointsDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	const summary = "Could not list webhook endpoints"
	if !confirmRelay(ctx, d.client, &resp.Diagnostics, summary) {
		return
	}
	eps, err := d.client.AllEndpoints(ctx)
	if err != nil {
		addAPIError(&resp.Diagnostics, d.client, summary, err)
		return
	}
	out := webhookEndpointsModel{Endpoints: make([]endpointData, 0, len(eps))}
	for _, ep := range eps {
		out.Endpoints = append(out.Endpoints, endpointDataFrom(ep))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}
