// Package provider is the BlameTrail Terraform provider: the provider configuration, the
// blametrail_webhook_endpoint resource and the data sources. It reaches the relay only through
// internal/apiclient and keeps no state of its own between calls, except that its client
// remembers having confirmed the relay (GET /api/info). It must never log the API token, a
// signing secret or a webhook URL, never replace an endpoint to change it (replacing would
// rotate the signing secret that receivers verify with), and never drop an endpoint from
// state on anything but endpoint_not_found from a confirmed relay.
package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

// Environment variables read when the provider block leaves a setting out.
const (
	EnvEndpoint = "BLAMETRAIL_ENDPOINT"
	EnvAPIToken = "BLAMETRAIL_API_TOKEN"
)

// DefaultEndpoint is the relay's own default --listen address: the sidecar case.
const DefaultEndpoint = "http://127.0.0.1:8080"

var _ provider.Provider = (*blametrailProvider)(nil)

type blametrailProvider struct {
	version string
}

// New returns the provider factory; version is the release (set by -ldflags in main).
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &blametrailProvider{version: version} }
}

type providerModel struct {
	Endpoint       types.String `tfsdk:"endpoint"`
	APIToken       types.String `tfsdk:"api_token"`
	RequestTimeout types.String `tfsdk:"request_timeout"`
	MaxRetries     types.Int64  `tfsdk:"max_retries"`
	CACertFile     types.String `tfsdk:"ca_cert_file"`
}

func (p *blametrailProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "blametrail"
	resp.Version = p.version
}

func (p *blametrailProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages webhook endpoints of a BlameTrail relay through its admin API.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Base URL of the relay's admin API, such as `https://relay.internal:8443`: scheme, host and " +
					"port only, without `/api` or any other path, query or fragment (the provider adds the API paths). " +
					"For a relay started with `--admin-listen`, that listener's address, not `--listen`'s. Defaults to the `" + EnvEndpoint + "` environment variable, else to `" + DefaultEndpoint + "`.",
				Validators: []validator.String{endpointValidator{}},
			},
			"api_token": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "Bearer token of the relay's admin API (the relay's `--api-token`, or the token " +
					"it generated into `<data-dir>/api-token`; not its `--ingest-token`, which can only post events). Defaults to the `" + EnvAPIToken + "` environment variable.",
			},
			"request_timeout": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Time limit of one request to the relay, such as `30s` or `2m`. Defaults to the `" +
					EnvRequestTimeout + "` environment variable, else to `" + DefaultRequestTimeout.String() + "`.",
				Validators: []validator.String{durationValidator{}},
			},
			"max_retries": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("How many times a request is retried when the relay is busy or "+
					"unavailable (429, 503; 502 and 504 except for creates, which are never sent twice) or refuses the "+
					"connection, waiting as `Retry-After` asks, from 0 to %d. Defaults to the `%s` environment "+
					"variable, else to %d.", maxMaxRetries, EnvMaxRetries, DefaultMaxRetries),
				Validators: []validator.Int64{retriesValidator{}},
			},
			"ca_cert_file": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Path of a PEM file of CA certificates to trust, besides the system's, for a relay " +
					"served over `https://` with a private CA. Defaults to the `" + EnvCACertFile + "` environment variable.",
			},
		},
	}
}

// Configure builds the API client. It does no I/O, so `terraform validate` and plans that
// need no API call work without a reachable relay.
func (p *blametrailProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// An unknown value (one computed during apply) cannot build a client; say so precisely,
	// instead of failing later with an empty endpoint.
	for _, u := range []struct {
		unknown    bool
		attr, name string
		env        string
	}{
		{cfg.Endpoint.IsUnknown(), "endpoint", "BlameTrail relay endpoint", EnvEndpoint},
		{cfg.APIToken.IsUnknown(), "api_token", "BlameTrail API token", EnvAPIToken},
		{cfg.RequestTimeout.IsUnknown(), "request_timeout", "request timeout", EnvRequestTimeout},
		{cfg.MaxRetries.IsUnknown(), "max_retries", "max retries", EnvMaxRetries},
		{cfg.CACertFile.IsUnknown(), "ca_cert_file", "CA certificate file", EnvCACertFile},
	} {
		if u.unknown {
			resp.Diagnostics.AddAttributeError(path.Root(u.attr), "Unknown "+u.name,
				"The provider cannot call the relay because "+u.attr+" is not known until apply (it depends on a "+
					"value computed during apply). Use a value known at plan time, such as a literal or a variable, "+
					"or remove it and set "+u.env+".")
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}

	endpoint, endpointFrom := setting(cfg.Endpoint, "endpoint", EnvEndpoint, DefaultEndpoint)
	token, tokenFrom := os.Getenv(EnvAPIToken), EnvAPIToken
	if !cfg.APIToken.IsNull() {
		token, tokenFrom = cfg.APIToken.ValueString(), "api_token"
	}
	// The relay trims surrounding whitespace from its token, and writes <data-dir>/api-token
	// with a final newline: api_token = file(".../api-token") must work. A line break left in
	// would make every request fail before it is sent (an invalid Authorization header).
	token = strings.TrimSpace(token)
	if err := checkEndpoint(endpoint); err != nil {
		// The validator reported a configured value already; this catches the environment's.
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid BlameTrail relay endpoint",
			fmt.Sprintf("The relay endpoint (from %s) %s.", endpointFrom, err))
	}
	if token == "" && tokenFrom == "api_token" && strings.TrimSpace(os.Getenv(EnvAPIToken)) != "" {
		// The block wins over the environment, as for every setting: say so, or the usual
		// message would tell the user to set a variable that is set.
		resp.Diagnostics.AddAttributeError(path.Root("api_token"), "Empty BlameTrail API token",
			"api_token is set to an empty string in the provider block (a variable that defaults to \"\", perhaps), "+
				"and the provider block takes precedence over the "+EnvAPIToken+" environment variable, which is set. "+
				"Remove api_token from the provider block to use the environment variable, or set it to the relay's API token.")
	} else if token == "" {
		resp.Diagnostics.AddAttributeError(path.Root("api_token"), "Missing BlameTrail API token",
			"Set api_token in the provider block, or the "+EnvAPIToken+" environment variable, to the relay's API "+
				"token: the value of its --api-token flag, or the token it generated on first start into "+
				"<data-dir>/api-token (the relay logs that path).")
	} else if strings.IndexFunc(token, unicode.IsControl) >= 0 {
		// Never quote the token.
		resp.Diagnostics.AddAttributeError(path.Root("api_token"), "Invalid BlameTrail API token",
			"The API token (from "+tokenFrom+") contains a control character, such as a line break, inside it: "+
				"it cannot be sent in an HTTP header. Set it to the relay's API token alone (the content of "+
				"<data-dir>/api-token, or the relay's --api-token).")
	}
	timeoutText, timeoutFrom := setting(cfg.RequestTimeout, "request_timeout", EnvRequestTimeout, DefaultRequestTimeout.String())
	timeout, err := parseRequestTimeout(timeoutText)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("request_timeout"), "Invalid request timeout",
			fmt.Sprintf("The request timeout (from %s) %s.", timeoutFrom, err))
	}
	retriesCfg := types.StringNull()
	if !cfg.MaxRetries.IsNull() {
		retriesCfg = types.StringValue(strconv.FormatInt(cfg.MaxRetries.ValueInt64(), 10))
	}
	retriesText, retriesFrom := setting(retriesCfg, "max_retries", EnvMaxRetries, strconv.Itoa(DefaultMaxRetries))
	retries, err := parseMaxRetries(retriesText)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("max_retries"), "Invalid max retries",
			fmt.Sprintf("The max retries (from %s) %s.", retriesFrom, err))
	}
	caFile, caFrom := setting(cfg.CACertFile, "ca_cert_file", EnvCACertFile, "")
	if resp.Diagnostics.HasError() {
		return
	}
	hc, err := httpClient(timeout, caFile)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("ca_cert_file"), "Invalid CA certificate file",
			fmt.Sprintf("The CA certificate file (from %s): %s.", caFrom, err))
		return
	}

	client, err := apiclient.New(endpoint, token,
		apiclient.WithUserAgent(userAgent(req.TerraformVersion, p.version)),
		apiclient.WithHTTPClient(hc),
		// The longest single wait between tries stays the client's 30 s.
		apiclient.WithRetries(retries, 30*time.Second),
		apiclient.WithRequestLog(logRequest))
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid BlameTrail relay endpoint", err.Error())
		return
	}
	resp.DataSourceData = client
	resp.ResourceData = client
	resp.EphemeralResourceData = client
}

func (p *blametrailProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewWebhookEndpointResource}
}

func (p *blametrailProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewWebhookEndpointDataSource,
		NewWebhookEndpointsDataSource,
		NewEventTypesDataSource,
	}
}

// setting is a provider setting's value and where it came from: the provider block (the
// attribute name), else the environment variable when set and not empty, else def
// ("the default").
func setting(v types.String, attr, env, def string) (value, from string) {
	if !v.IsNull() {
		return v.ValueString(), attr
	}
	if e := os.Getenv(env); e != "" {
		return e, env
	}
	return def, "the default"
}

// userAgent follows the convention of HashiCorp-maintained providers, so relay logs tell
// Terraform traffic (and which versions) from other API clients.
func userAgent(terraformVersion, providerVersion string) string {
	if terraformVersion == "" {
		terraformVersion = "unknown"
	}
	ua := fmt.Sprintf("Terraform/%s terraform-provider-blametrail/%s", terraformVersion, providerVersion)
	if add := strings.TrimSpace(os.Getenv(EnvAppendUserAgent)); add != "" {
		ua += " " + add
	}
	return ua
}

// clientFrom unpacks what Configure stored. It is nil before the provider is configured (as
// during validation), and resources and data sources then do nothing.
func clientFrom(data any, diags *diag.Diagnostics) *apiclient.Client {
	if data == nil {
		return nil
	}
	c, ok := data.(*apiclient.Client)
	if !ok {
		diags.AddError("Unexpected provider data",
			fmt.Sprintf("Expected *apiclient.Client, got %T. This is a bug in the provider; please report it.", data))
		return nil
	}
	return c
}

// endpointFields are the attributes whose names the relay uses as the "field" of a
// validation error, so its message can point at the line of configuration.
var endpointFields = map[string]bool{"url": true, "name": true, "description": true, "event_types": true, "active": true}

// confirmRelay makes sure the provider talks to a BlameTrail relay (GET /api/info, asked once
// per provider instance and then kept by the client) before anything depends on an answer:
// above all before an endpoint_not_found is taken to mean an endpoint is gone. It adds the
// diagnostic and returns false when it cannot.
func confirmRelay(ctx context.Context, c *apiclient.Client, diags *diag.Diagnostics, summary string) bool {
	if _, err := c.Confirm(ctx); err != nil {
		addAPIError(diags, c, summary, err)
		return false
	}
	return true
}

// addAPIError turns an API client error into a diagnostic that names the relay's address and
// what answered, and says what to do about it.
func addAPIError(diags *diag.Diagnostics, c *apiclient.Client, summary string, err error) {
	var ae *apiclient.Error
	base := c.BaseURL()
	switch {
	case errors.Is(err, apiclient.ErrNotRelay):
		hint := ""
		if errors.As(err, &ae) && ae.Code == api.CodeRouteNotFound {
			// A relay answered, but not with its admin API: the wrong path, or its ingest listener.
			hint = " A relay started with --admin-listen serves its admin API only there: point endpoint " +
				"at that address, not at --listen (which then serves only events and health)."
		}
		diags.AddError(summary, fmt.Sprintf("The server at %s is not a BlameTrail relay: %s.\n\n"+
			"Nothing was changed, and every resource stays in state. Check endpoint in the provider block (or "+
			"%s): it must be the relay's base URL, such as %s, with no path.%s",
			base, strings.TrimPrefix(err.Error(), apiclient.ErrNotRelay.Error()+": "), EnvEndpoint, DefaultEndpoint, hint))
	case errors.As(err, &ae) && errors.Is(err, apiclient.ErrValidation) && endpointFields[ae.Field]:
		diags.AddAttributeError(path.Root(ae.Field), summary, "The relay rejected "+ae.Field+": "+ae.Message)
	case errors.Is(err, apiclient.ErrForbidden):
		diags.AddError(summary, "The relay at "+base+" accepted the token but it may not use the admin API (HTTP 403): "+
			"it is the relay's ingest token (--ingest-token), which can only post events. Set api_token in the "+
			"provider block or "+EnvAPIToken+" to the relay's API token (--api-token or the content of "+
			"<data-dir>/api-token).")
	case errors.Is(err, apiclient.ErrUnauthorized):
		diags.AddError(summary, "The relay at "+base+" refused the API token (HTTP 401). Check api_token in the "+
			"provider block or "+EnvAPIToken+": it must equal the relay's --api-token or the content of "+
			"<data-dir>/api-token.")
	case errors.As(err, &ae):
		diags.AddError(summary, fmt.Sprintf("The BlameTrail relay at %s: %s.", base, ae))
	default:
		diags.AddError(summary, fmt.Sprintf("Could not reach the BlameTrail relay at %s: %s.\n\n"+
			"Check that the relay is running and that the provider's endpoint (or %s) points at it.",
			base, err, EnvEndpoint))
	}
}
