package provider

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

func TestURLValidator(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the error; "" = valid
	}{
		{"https://ops.example.com/blametrail-webhook", ""},
		{"http://127.0.0.1:9000/hook", ""}, // the relay's policy decides, at apply
		{"https://Hooks.Example.com:443/x?team=ops", ""},
		{"http://localhost/x", ""},
		{"https://[::1]:8443/x", ""},
		{"", "url is empty"},
		{"hooks.example.com/x", "must be absolute"},
		{"/relative/path", "must be absolute"},
		{"ftp://hooks.example.com/x", `scheme "ftp" is not supported`},
		{"mailto:ops@example.com", `scheme "mailto" is not supported`},
		{"https://hooks.example.com/x#frag", "fragment"},
		{"https:///no-host", "must have a host"},
		{"https://hooks.example.com/a b", "whitespace"},
		{"https://hooks.example.com:99999/x", "outside 1-65535"},
		{"https://" + strings.Repeat("a", 2050), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			req := validator.StringRequest{Path: path.Root("url"), ConfigValue: types.StringValue(tt.in)}
			var resp validator.StringResponse
			urlValidator{}.ValidateString(context.Background(), req, &resp)
			checkDiags(t, resp.Diagnostics.Errors(), tt.want)
		})
	}
}

func TestURLValidatorSkipsUnknownAndNull(t *testing.T) {
	for _, v := range []types.String{types.StringNull(), types.StringUnknown()} {
		var resp validator.StringResponse
		urlValidator{}.ValidateString(context.Background(), validator.StringRequest{ConfigValue: v}, &resp)
		if resp.Diagnostics.HasError() {
			t.Errorf("%v: %v", v, resp.Diagnostics)
		}
	}
}

func TestTextValidator(t *testing.T) {
	name, desc := nameValidator, descriptionValidator
	tests := []struct {
		v    textValidator
		in   string
		want string
	}{
		{name, "Internal Dashboard", ""},
		{name, "x", ""},
		{name, strings.Repeat("é", api.MaxNameLen), ""}, // characters, not bytes
		{name, strings.Repeat("n", api.MaxNameLen+1), "at most 200 characters (got 201)"},
		{name, "", "must not be empty"},
		{name, " \t ", "must not be empty"},
		{name, "tab\tok", ""},
		{name, "two\nlines", "control characters (found U+000A)"},
		{name, "bell\a", "U+0007"},
		{name, "del\x7f", "U+007F"},
		{desc, "", ""},
		{desc, "first\nsecond", ""},
		{desc, "crlf\r\n", "U+000D"},
		{desc, strings.Repeat("d", api.MaxDescriptionLen+1), "at most 1024 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			req := validator.StringRequest{Path: path.Root("name"), ConfigValue: types.StringValue(tt.in)}
			var resp validator.StringResponse
			tt.v.ValidateString(context.Background(), req, &resp)
			checkDiags(t, resp.Diagnostics.Errors(), tt.want)
		})
	}
}

func TestEventTypesValidator(t *testing.T) {
	tests := []struct {
		name string
		in   types.Set
		want []string // one error substring per expected diagnostic
	}{
		{"all subscribable", stringSet(subscribableEventTypes()), nil},
		{"empty means all", stringSet(nil), nil},
		{"null", types.SetNull(types.StringType), nil},
		{"unknown set", types.SetUnknown(types.StringType), nil},
		{"unknown element", types.SetValueMust(types.StringType, []attr.Value{types.StringUnknown()}), nil},
		{"unknown type", stringSet([]string{"incident.opened", "incident.exploded"}), []string{`Unknown event type "incident.exploded"`}},
		{"test.ping", stringSet([]string{api.TypeTestPing}), []string{`"test.ping" cannot be subscribed to`}},
		{"case matters", stringSet([]string{"Incident.Opened"}), []string{"Unknown event type"}},
		{"two bad", stringSet([]string{"a", "b"}), []string{"Unknown event type", "Unknown event type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validator.SetRequest{Path: path.Root("event_types"), ConfigValue: tt.in}
			var resp validator.SetResponse
			eventTypesValidator{}.ValidateSet(context.Background(), req, &resp)
			errs := resp.Diagnostics.Errors()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tt.want))
			}
			for i, want := range tt.want {
				if !strings.Contains(errs[i].Detail(), want) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Detail(), want)
				}
				// The diagnostic points at the element, so Terraform underlines the bad type.
				if d, ok := errs[i].(interface{ Path() path.Path }); !ok || !strings.Contains(d.Path().String(), "event_types[Value(") {
					t.Errorf("error %d is not attached to the set element: %v", i, errs[i])
				}
			}
		})
	}
}

func TestSubscribableEventTypes(t *testing.T) {
	got := strings.Join(subscribableEventTypes(), ",")
	if want := "incident.opened,incident.acknowledged,incident.resolved,deploy.ingested"; got != want {
		t.Errorf("subscribableEventTypes = %s, want %s", got, want)
	}
}

func checkDiags(t *testing.T, errs diag.Diagnostics, want string) {
	t.Helper()
	if want == "" {
		if len(errs) > 0 {
			t.Fatalf("unexpected error: %s", errs[0].Detail())
		}
		return
	}
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1 containing %q", len(errs), want)
	}
	if !strings.Contains(errs[0].Detail(), want) {
		t.Errorf("error %q does not contain %q", errs[0].Detail(), want)
	}
}

func TestCheckEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the error; "" = valid
	}{
		{"http://127.0.0.1:8080", ""},
		{"http://127.0.0.1:8080/", ""},
		{"https://relay.internal:8443", ""},
		{"https://[::1]:8443/", ""},
		{"http://127.0.0.1:8080/api", `with no path (found "/api")`},
		{"http://127.0.0.1:8080/api/", `with no path (found "/api/")`},
		{"https://relay.internal/blametrail", "with no path"},
		{"http://127.0.0.1:8080?x=1", "with no query"},
		{"http://127.0.0.1:8080/?", "with no query"},
		{"http://127.0.0.1:8080#top", "with no fragment"},
		{"http://127.0.0.1:8080/#", "with no fragment"},
		{"http://admin:hunter2@127.0.0.1:8080", "must not contain credentials"},
		{"127.0.0.1:8080", "must be an absolute http(s) URL"},
		{"relay.internal", "must be an absolute http(s) URL"},
		{"ftp://relay.internal", "must be an absolute http(s) URL"},
		{"http://", "must be an absolute http(s) URL"},
		{"http://127.0.0.1:8080/a b", "with no path"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			req := validator.StringRequest{Path: path.Root("endpoint"), ConfigValue: types.StringValue(tt.in)}
			var resp validator.StringResponse
			endpointValidator{}.ValidateString(context.Background(), req, &resp)
			checkDiags(t, resp.Diagnostics.Errors(), tt.want)
			for _, d := range resp.Diagnostics.Errors() {
				if d.Summary() != "Invalid BlameTrail relay endpoint" || strings.Contains(d.Detail(), "hunter2") {
					t.Errorf("diagnostic %q: %q", d.Summary(), d.Detail())
				}
			}
		})
	}
}

func TestSetting(t *testing.T) {
	t.Setenv("BLAMETRAIL_TEST_SETTING", "from-env")
	for _, tt := range []struct {
		v          types.String
		env        string
		want, from string
	}{
		{types.StringValue("from-config"), "BLAMETRAIL_TEST_SETTING", "from-config", "attr"},
		{types.StringNull(), "BLAMETRAIL_TEST_SETTING", "from-env", "BLAMETRAIL_TEST_SETTING"},
		{types.StringNull(), "BLAMETRAIL_TEST_UNSET", "def", "the default"},
	} {
		got, from := setting(tt.v, "attr", tt.env, "def")
		if got != tt.want || from != tt.from {
			t.Errorf("setting(%v, %s) = %q from %q, want %q from %q", tt.v, tt.env, got, from, tt.want, tt.from)
		}
	}
}

// TestURLValidatorNeverQuotesTheURL: url is sensitive, so its diagnostics must not repeat
// it, and each gives one hint.
func TestURLValidatorNeverQuotesTheURL(t *testing.T) {
	for _, in := range []string{
		"https://user:s3cr3t-token@hooks.example.com/x#frag",
		"https://hooks.example.com/x?token=s3cr3t-token#frag",
		"https://hooks.example.com:s3cr3t-token/x",
		"https://user:s3cr3t-token@[::1/x",
		"hooks.example.com/x?token=s3cr3t-token",
		"ftp://hooks.example.com/s3cr3t-token",
	} {
		msg := checkWebhookURL(in)
		if msg == "" {
			t.Errorf("%q accepted", in)
			continue
		}
		if strings.Contains(msg, "s3cr3t-token") {
			t.Errorf("diagnostic quotes the URL: %s", msg)
		}
		hints := strings.Count(msg, "e.g.") + strings.Count(msg, "such as") + strings.Count(msg, ": use ")
		if hints != 1 && !strings.Contains(msg, "are never sent") {
			t.Errorf("diagnostic gives %d hints: %s", hints, msg)
		}
	}
}

func TestTextValidatorSummaries(t *testing.T) {
	for v, want := range map[*textValidator]string{&nameValidator: "Invalid webhook name", &descriptionValidator: "Invalid webhook description"} {
		var resp validator.StringResponse
		v.ValidateString(context.Background(), validator.StringRequest{Path: path.Root("x"), ConfigValue: types.StringValue("a\x00")}, &resp)
		if errs := resp.Diagnostics.Errors(); len(errs) != 1 || errs[0].Summary() != want {
			t.Errorf("diagnostics %v, want one with summary %q", errs, want)
		}
	}
}

// TestEndpointIDPattern: the provider's plan-time id check accepts exactly what the relay's
// store.ValidID does, and its example is a valid id.
func TestEndpointIDPattern(t *testing.T) {
	if !store.ValidID("ep_", endpointIDExample) || checkEndpointID(endpointIDExample) != "" {
		t.Fatalf("the example %s is not a valid id", endpointIDExample)
	}
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCILOU_-"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200000 {
		b := []byte("ep_" + endpointIDExample[3:])
		// Change one to three characters; sometimes the length or the prefix.
		for range 1 + rng.IntN(3) {
			b[3+rng.IntN(26)] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		switch i % 50 {
		case 0:
			s = s[:len(s)-1]
		case 1:
			s += "0"
		case 2:
			s = "EP_" + s[3:]
		}
		if got, want := checkEndpointID(s) == "", store.ValidID("ep_", s); got != want {
			t.Fatalf("%q: provider accepts %v, relay %v", s, got, want)
		}
	}
	msg := checkEndpointID("ep_01JD5X2M7Q8R9S0T1V2W3X4Y5Z")
	if !strings.Contains(msg, "ids look like ep_01jd") {
		t.Errorf("message %q does not give a lower-case example", msg)
	}
}
