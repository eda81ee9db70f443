package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
)

// The validators below turn the relay's input rules into plan-time diagnostics, so a typo
// fails `terraform plan` instead of half-way through an apply. Each one reuses the rule the
// relay itself applies (internal/api, internal/netpolicy), so the two cannot drift apart.

// urlValidator accepts what the relay would store: an absolute http(s) URL with a host, no
// fragment, no whitespace. It applies the most permissive network policy, because whether
// http:// or a private address is allowed is the relay operator's choice (--allow-http,
// --allow-private-networks), which only the relay knows; it reports that at apply time.
type urlValidator struct{}

func (urlValidator) Description(context.Context) string {
	return "must be an absolute http:// or https:// URL"
}

func (v urlValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (urlValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	permissive := netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}
	if err := permissive.CheckURL(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid webhook URL",
			fmt.Sprintf("%q is not a webhook URL the relay accepts: %s. Use an absolute http(s) URL such as "+
				"https://ops.example.com/blametrail-webhook.", req.ConfigValue.ValueString(), err))
	}
}

// textValidator applies one of the relay's own text rules (api.ValidateName,
// api.ValidateDescription), so plan-time checks and the relay cannot disagree.
type textValidator struct {
	desc  string
	check func(string) error
}

var (
	nameValidator        = textValidator{fmt.Sprintf("not blank, at most %d characters, no control characters", api.MaxNameLen), api.ValidateName}
	descriptionValidator = textValidator{fmt.Sprintf("at most %d characters, no control characters but newlines", api.MaxDescriptionLen), api.ValidateDescription}
)

func (v textValidator) Description(context.Context) string { return v.desc }

func (v textValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v textValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid attribute value", err.Error()+".")
	}
}

// eventTypesValidator accepts the event types an endpoint may subscribe to. test.ping is
// known but refused: the relay sends it to any endpoint on request, never by subscription.
type eventTypesValidator struct{}

func (eventTypesValidator) Description(context.Context) string {
	return "each element must be one of " + strings.Join(subscribableEventTypes(), ", ")
}

func (v eventTypesValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (eventTypesValidator) ValidateSet(_ context.Context, req validator.SetRequest, resp *validator.SetResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for _, elem := range req.ConfigValue.Elements() {
		s, ok := elem.(types.String)
		if !ok || s.IsNull() || s.IsUnknown() {
			continue
		}
		if msg := checkEventType(s.ValueString()); msg != "" {
			resp.Diagnostics.AddAttributeError(req.Path.AtSetValue(elem), "Invalid event type", msg)
		}
	}
}

// checkEventType returns what is wrong with t as a subscription, or "".
func checkEventType(t string) string {
	switch {
	case t == api.TypeTestPing:
		return fmt.Sprintf("%q cannot be subscribed to: the relay sends it to any endpoint when asked "+
			"(POST /api/webhooks/endpoints/{id}/test). Subscribe to some of: %s.",
			t, strings.Join(subscribableEventTypes(), ", "))
	case !api.IngestibleType(t):
		return fmt.Sprintf("Unknown event type %q. Known event types: %s. Omit event_types to receive all of them.",
			t, strings.Join(subscribableEventTypes(), ", "))
	}
	return ""
}

// subscribableEventTypes is the catalogue minus test.ping, in display order.
func subscribableEventTypes() []string {
	out := make([]string, 0, len(api.EventTypes))
	for _, t := range api.EventTypes {
		if api.IngestibleType(t) {
			out = append(out, t)
		}
	}
	return out
}

// endpointValidator checks the provider's endpoint at plan time: the relay's base URL, with
// nothing but scheme, host and port. A path would put every request beside the API (the
// common mistake is ending it with /api); credentials are never needed (the relay takes
// api_token) and would show up in messages.
type endpointValidator struct{}

func (endpointValidator) Description(context.Context) string {
	return "must be an http:// or https:// base URL with no path, query, fragment or credentials"
}

func (v endpointValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (endpointValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := checkEndpoint(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid BlameTrail relay endpoint",
			fmt.Sprintf("The relay endpoint %s.", err))
	}
}

// checkEndpoint says what is wrong with a relay base URL, as the end of a sentence that
// begins "The relay endpoint"; nil when it is fine. Its messages never quote credentials.
func checkEndpoint(raw string) error {
	const example = "such as " + DefaultEndpoint
	u, err := url.Parse(raw)
	var ue *url.Error
	switch {
	case errors.As(err, &ue):
		return fmt.Errorf("must be an absolute http(s) URL, %s (it does not parse: %v)", example, ue.Err)
	case err != nil:
		return fmt.Errorf("must be an absolute http(s) URL, %s", example)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("must be an absolute http(s) URL, %s", example)
	case u.User != nil:
		return errors.New("must not contain credentials (user:password@): the relay authenticates with api_token")
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("must be the relay's base URL, %s, with no path (found %q): the provider adds the /api/… paths itself",
			example, u.EscapedPath())
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("must be the relay's base URL, %s, with no query (?…)", example)
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return fmt.Errorf("must be the relay's base URL, %s, with no fragment (#…)", example)
	}
	return nil
}
