package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

var _ datasource.DataSourceWithConfigure = (*eventTypesDataSource)(nil)

// NewEventTypesDataSource is the factory of the blametrail_event_types data source.
func NewEventTypesDataSource() datasource.DataSource { return &eventTypesDataSource{} }

type eventTypesDataSource struct {
	client *apiclient.Client
}

type eventTypesModel struct {
	EventTypes   []types.String `tfsdk:"event_types"`
	Subscribable []types.String `tfsdk:"subscribable_event_types"`
}

func (d *eventTypesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_event_types"
}

func (d *eventTypesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The event types the relay knows (`GET /api/event-types`).",
		Attributes: map[string]schema.Attribute{
			"event_types": schema.ListAttribute{
				ElementType:         types.StringType,
				Computed:            true,
				MarkdownDescription: "Every event type the relay knows, `test.ping` included, in the relay's display order.",
			},
			// test.ping is in the relay's catalogue but refused as a subscription, so this list
			// is what can go straight into a webhook endpoint's event_types.
			"subscribable_event_types": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				MarkdownDescription: "The event types an endpoint may subscribe to: `event_types` without " +
					"`test.ping`, which the relay only sends on request.",
			},
		},
	}
}

func (d *eventTypesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *eventTypesDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	const summary = "Could not list event types"
	if !confirmRelay(ctx, d.client, &resp.Diagnostics, summary) {
		return
	}
	list, err := d.client.EventTypes(ctx)
	if err != nil {
		addAPIError(&resp.Diagnostics, d.client, summary, err)
		return
	}
	out := eventTypesModel{EventTypes: []types.String{}, Subscribable: []types.String{}}
	for _, t := range list {
		out.EventTypes = append(out.EventTypes, types.StringValue(t))
		if t != api.TypeTestPing {
			out.Subscribable = append(out.Subscribable, types.StringValue(t))
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}
