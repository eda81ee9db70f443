package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
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
	if msg := checkWebhookURL(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid webhook URL", msg)
	}
}

// urlExample is the hint of a URL error whose own message gives none.
const urlExample = "https://ops.example.com/blametrail-webhook"

// checkWebhookURL says what the relay would refuse in raw, with one hint, or "". The message
// never quotes the URL: url is sensitive (it may carry a token), so it must not reach a
// diagnostic or a CI log that way either.
func checkWebhookURL(raw string) string {
	if _, err := url.Parse(raw); err != nil {
		// url.Parse quotes the whole URL in its error; keep only the reason.
		reason := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			reason = ue.Err.Error()
		}
		// Its reasons quote the part they refuse (`invalid port ":tok" after host`): drop that.
		reason = strings.Join(strings.Fields(quoted.ReplaceAllString(reason, "")), " ")
		return "The URL does not parse (" + reason + "). Use an absolute URL such as " + urlExample + "."
	}
	permissive := netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}
	err := permissive.CheckURL(raw)
	if err == nil {
		return ""
	}
	msg := "The relay would refuse it: " + err.Error()
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	if !hasHint(msg) {
		msg += " Use an absolute URL such as " + urlExample + "."
	}
	return msg
}

var quoted = regexp.MustCompile(`"[^"]*"`)

// hasHint reports whether a netpolicy message already says what to write instead, so the
// diagnostic does not give two hints that may disagree.
func hasHint(msg string) bool {
	for _, h := range []string{"e.g.", ": use ", "must have the form", "use its ASCII", "start the relay with", "are never sent"} {
		if strings.Contains(msg, h) {
			return true
		}
	}
	return false
}

// textValidator applies one of the relay's own text rules (api.ValidateName,
// api.ValidateDescription), so plan-time checks and the relay cannot disagree.
type textValidator struct {
	summary string
	desc    string
	check   func(string) error
}

var (
	nameValidator = textValidator{"Invalid webhook name",
		fmt.Sprintf("not blank, at most %d characters, no control characters", api.MaxNameLen), api.ValidateName}
	descriptionValidator = textValidator{"Invalid webhook description",
		fmt.Sprintf("at most %d characters, no control characters but newlines", api.MaxDescriptionLen), api.ValidateDescription}
)

func (v textValidator) Description(context.Context) string { return v.desc }

func (v textValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v textValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, err.Error()+".")
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

// endpointIDPattern is the shape of the relay's endpoint ids (store.ValidID with "ep_"):
// 26 lower-case Crockford base32 digits, the first at most 7 (128 bits).
var endpointIDPattern = regexp.MustCompile(`^ep_[0-7][0-9a-hjkmnp-tv-z]{25}$`)

// endpointIDExample is an id as the relay writes them, for messages.
const endpointIDExample = "ep_01jd5x2m7q8r9s0t1v2w3x4y5z"

// checkEndpointID says what is wrong with an endpoint id, or "".
func checkEndpointID(id string) string {
	if endpointIDPattern.MatchString(id) {
		return ""
	}
	return fmt.Sprintf("%q is not a webhook endpoint id: ids look like %s (ep_ and 26 lower-case letters and "+
		"digits). The blametrail_webhook_endpoints data source and GET /api/webhooks/endpoints list them.", id, endpointIDExample)
}

// endpointIDValidator checks an endpoint id at plan time.
type endpointIDValidator struct{}

func (endpointIDValidator) Description(context.Context) string {
	return "must be an endpoint id such as " + endpointIDExample
}

func (v endpointIDValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (endpointIDValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if msg := checkEndpointID(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid webhook endpoint id", msg)
	}
}
