package provider

import (
	"context"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

var (
	_ provider.ProviderWithEphemeralResources  = (*blametrailProvider)(nil)
	_ ephemeral.EphemeralResourceWithConfigure = (*webhookSecretEphemeral)(nil)
)

func (p *blametrailProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{NewWebhookSecretEphemeralResource}
}

// NewWebhookSecretEphemeralResource is the factory of the blametrail_webhook_secret ephemeral
// resource.
func NewWebhookSecretEphemeralResource() ephemeral.EphemeralResource {
	return &webhookSecretEphemeral{}
}

type webhookSecretEphemeral struct {
	client *apiclient.Client
}

type webhookSecretModel struct {
	EndpointID              types.String `tfsdk:"endpoint_id"`
	Secret                  types.String `tfsdk:"secret"`
	PreviousSecretExpiresAt types.String `tfsdk:"previous_secret_expires_at"`
}

func (e *webhookSecretEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_webhook_secret"
}

func (e *webhookSecretEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The current signing secret of a webhook endpoint, read from the relay when Terraform " +
			"needs it and never stored in the plan or state (Terraform 1.10 or later). Use it to hand the secret to a " +
			"secret store or a receiver's configuration through another write-only or ephemeral attribute.",
		Attributes: map[string]schema.Attribute{
			"endpoint_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Id of the webhook endpoint (`ep_…`).",
			},
			"secret": schema.StringAttribute{
				Computed:            true,
				Sensitive:           true,
				MarkdownDescription: "The secret (`whsec_…`) the relay signs the endpoint's deliveries with.",
			},
			"previous_secret_expires_at": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "While the previous secret still signs deliveries after a rotation, when it stops " +
					"(RFC 3339, UTC); null otherwise. The previous secret itself is never shown.",
			},
		},
	}
}

func (e *webhookSecretEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (e *webhookSecretEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m webhookSecretModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := m.EndpointID.ValueString()
	if !strings.HasPrefix(id, "ep_") {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint_id"), "Invalid endpoint_id",
			"endpoint_id is the id of a webhook endpoint, such as ep_01JD…; got "+id+".")
		return
	}
	summary := "Could not read the signing secret of webhook endpoint " + id
	if !confirmRelay(ctx, e.client, &resp.Diagnostics, summary) {
		return
	}
	info, err := e.client.SecretInfo(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, e.client, summary, err)
		return
	}
	m.Secret = types.StringValue(info.Secret)
	m.PreviousSecretExpiresAt = types.StringNull()
	if info.PreviousSecretExpiresAt != nil {
		m.PreviousSecretExpiresAt = types.StringValue(formatTime(*info.PreviousSecretExpiresAt))
	}
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}
