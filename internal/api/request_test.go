package api_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
)

var (
	strict = netpolicy.Policy{}
	open   = netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}
)

// wantErr is "" for success, "400" for ErrMalformed, or the 422 code.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	var ve *api.ValidationError
	switch {
	case want == "":
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	case want == "400":
		if !errors.Is(err, api.ErrMalformed) {
			t.Fatalf("err = %v, want ErrMalformed", err)
		}
		if errors.As(err, &ve) {
			t.Fatalf("a malformed body is also a ValidationError: %v", err)
		}
	default:
		if !errors.As(err, &ve) {
			t.Fatalf("err = %v, want a ValidationError %q", err, want)
		}
		if ve.Code != want {
			t.Fatalf("code = %q (%s), want %q", ve.Code, ve.Message, want)
		}
		if ve.Message == "" || ve.Error() != ve.Message {
			t.Fatalf("validation error without a message: %+v", ve)
		}
		if errors.Is(err, api.ErrMalformed) {
			t.Fatalf("a validation error is also ErrMalformed: %v", err)
		}
	}
}

func TestParseCreateEndpoint(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		name   string
		policy netpolicy.Policy
		body   string
		want   string // "" ok, "400", or a 422 code
		field  string
		check  func(t *testing.T, in api.EndpointInput)
	}{
		{name: "minimal", body: `{"url":"https://a.example.com/h","name":"n"}`, check: func(t *testing.T, in api.EndpointInput) {
			if *in.URL != "https://a.example.com/h" || *in.Name != "n" || in.Description != nil || in.EventTypes != nil || in.Active != nil {
				t.Errorf("in = %+v", in)
			}
		}},
		{name: "all fields", body: `{"url":"https://a.example.com","name":"n","description":"d\nline","event_types":["incident.opened","deploy.ingested","incident.opened"],"active":false}`,
			check: func(t *testing.T, in api.EndpointInput) {
				if *in.Description != "d\nline" || !slices.Equal(*in.EventTypes, []string{"incident.opened", "deploy.ingested"}) || *in.Active {
					t.Errorf("in = %+v (event types %v)", in, *in.EventTypes)
				}
			}},
		{name: "event_types null = all", body: `{"url":"https://a.example.com","name":"n","event_types":null}`, check: func(t *testing.T, in api.EndpointInput) {
			if in.EventTypes == nil || len(*in.EventTypes) != 0 || *in.EventTypes == nil {
				t.Errorf("event types = %v, want empty non-nil", in.EventTypes)
			}
		}},
		{name: "description null", body: `{"url":"https://a.example.com","name":"n","description":null}`, check: func(t *testing.T, in api.EndpointInput) {
			if in.Description == nil || *in.Description != "" {
				t.Errorf("description = %v", in.Description)
			}
		}},
		{name: "200-char name", body: `{"url":"https://a.example.com","name":"` + long(200) + `"}`},
		{name: "1024-char description", body: `{"url":"https://a.example.com","name":"n","description":"` + long(1024) + `"}`},
		{name: "tab in name", body: `{"url":"https://a.example.com","name":"a\tb"}`},
		{name: "http allowed", policy: open, body: `{"url":"http://127.0.0.1:9/h","name":"n"}`},
		{name: "whitespace around body", body: " \n{\"url\":\"https://a.example.com\",\"name\":\"n\"}\n "},

		{name: "empty body", body: ``, want: "400"},
		{name: "whitespace body", body: "  \n", want: "400"},
		{name: "array", body: `[]`, want: "400"},
		{name: "string", body: `"x"`, want: "400"},
		{name: "null", body: `null`, want: "400"},
		{name: "truncated", body: `{"url":"https://a.example.com"`, want: "400"},
		{name: "trailing data", body: `{"url":"https://a.example.com","name":"n"}{}`, want: "400"},
		{name: "invalid utf-8 key", body: "{\"\xff\":1}", want: "invalid_utf8"},

		{name: "unknown field", body: `{"url":"https://a.example.com","name":"n","signing_secret":"x"}`, want: "unknown_field", field: "signing_secret"},
		{name: "secret not whsec", body: `{"url":"https://a.example.com","name":"n","secret":"x"}`, want: "invalid_secret", field: "secret"},
		{name: "field names are case-sensitive", body: `{"URL":"https://a.example.com","name":"n"}`, want: "unknown_field", field: "URL"},
		{name: "url missing", body: `{"name":"n"}`, want: "invalid_url", field: "url"},
		{name: "url null", body: `{"url":null,"name":"n"}`, want: "invalid_url"},
		{name: "url number", body: `{"url":5,"name":"n"}`, want: "invalid_url"},
		{name: "url empty", body: `{"url":"","name":"n"}`, want: "invalid_url"},
		{name: "url relative", body: `{"url":"/hook","name":"n"}`, want: "invalid_url"},
		{name: "url ftp", body: `{"url":"ftp://a.example.com/","name":"n"}`, want: "invalid_url"},
		{name: "url http strict", body: `{"url":"http://a.example.com/","name":"n"}`, want: "invalid_url"},
		{name: "url private strict", body: `{"url":"https://10.0.0.1/","name":"n"}`, want: "invalid_url"},
		{name: "url loopback strict", body: `{"url":"https://127.0.0.1/","name":"n"}`, want: "invalid_url"},
		{name: "url v6 loopback strict", body: `{"url":"https://[::1]/","name":"n"}`, want: "invalid_url"},
		{name: "url metadata strict", body: `{"url":"https://169.254.169.254/latest","name":"n"}`, want: "invalid_url"},
		{name: "url fragment", body: `{"url":"https://a.example.com/#f","name":"n"}`, want: "invalid_url"},
		{name: "name missing", body: `{"url":"https://a.example.com"}`, want: "invalid_name", field: "name"},
		{name: "name null", body: `{"url":"https://a.example.com","name":null}`, want: "invalid_name"},
		{name: "name number", body: `{"url":"https://a.example.com","name":1}`, want: "invalid_name"},
		{name: "name empty", body: `{"url":"https://a.example.com","name":""}`, want: "invalid_name"},
		{name: "name whitespace", body: `{"url":"https://a.example.com","name":"   "}`, want: "invalid_name"},
		{name: "name 201 chars", body: `{"url":"https://a.example.com","name":"` + long(201) + `"}`, want: "invalid_name"},
		{name: "name newline", body: `{"url":"https://a.example.com","name":"a\nb"}`, want: "invalid_name"},
		{name: "name control char", body: `{"url":"https://a.example.com","name":"a\u0007b"}`, want: "invalid_name"},
		{name: "name DEL", body: `{"url":"https://a.example.com","name":"a\u007fb"}`, want: "invalid_name"},
		{name: "description 1025 chars", body: `{"url":"https://a.example.com","name":"n","description":"` + long(1025) + `"}`, want: "invalid_description"},
		{name: "description number", body: `{"url":"https://a.example.com","name":"n","description":1}`, want: "invalid_description"},
		{name: "description control char", body: `{"url":"https://a.example.com","name":"n","description":"a\u0000"}`, want: "invalid_description"},
		{name: "event_types string", body: `{"url":"https://a.example.com","name":"n","event_types":"incident.opened"}`, want: "invalid_event_types"},
		{name: "event_types numbers", body: `{"url":"https://a.example.com","name":"n","event_types":[1]}`, want: "invalid_event_types"},
		{name: "event_types unknown", body: `{"url":"https://a.example.com","name":"n","event_types":["incident.opened","nope"]}`, want: "invalid_event_types", field: "event_types"},
		{name: "event_types test.ping", body: `{"url":"https://a.example.com","name":"n","event_types":["test.ping"]}`, want: "invalid_event_types"},
		{name: "event_types wrong case", body: `{"url":"https://a.example.com","name":"n","event_types":["Incident.Opened"]}`, want: "invalid_event_types"},
		{name: "active string", body: `{"url":"https://a.example.com","name":"n","active":"true"}`, want: "invalid_active", field: "active"},
		{name: "active null", body: `{"url":"https://a.example.com","name":"n","active":null}`, want: "invalid_active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := api.ParseCreateEndpoint([]byte(tt.body), tt.policy)
			checkErr(t, err, tt.want)
			var ve *api.ValidationError
			if tt.field != "" && errors.As(err, &ve) && ve.Field != tt.field {
				t.Errorf("field = %q, want %q", ve.Field, tt.field)
			}
			if tt.want == "" && (in.URL == nil || in.Name == nil) {
				t.Errorf("a valid create lacks url or name: %+v", in)
			}
			if tt.check != nil {
				tt.check(t, in)
			}
		})
	}
}

func TestParsePatchEndpoint(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
		set  []string // fields expected non-nil
	}{
		{"empty object", `{}`, "", nil},
		{"url only", `{"url":"https://b.example.com/"}`, "", []string{"url"}},
		{"name only", `{"name":"x"}`, "", []string{"name"}},
		{"description only", `{"description":""}`, "", []string{"description"}},
		{"event_types only", `{"event_types":[]}`, "", []string{"event_types"}},
		{"active only", `{"active":true}`, "", []string{"active"}},
		{"everything", `{"url":"https://b.example.com/","name":"x","description":"y","event_types":["incident.resolved"],"active":false}`, "",
			[]string{"url", "name", "description", "event_types", "active"}},
		{"malformed", `{"name":`, "400", nil},
		{"not an object", `["name"]`, "400", nil},
		{"unknown field", `{"id":"ep_x"}`, "unknown_field", nil},
		{"created_at is read-only", `{"created_at":"2026-01-01T00:00:00Z"}`, "unknown_field", nil},
		{"secret changes only by rotation", `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "unknown_field", nil},
		{"bad url", `{"url":"nope"}`, "invalid_url", nil},
		{"empty name", `{"name":""}`, "invalid_name", nil},
		{"name null", `{"name":null}`, "invalid_name", nil},
		{"url null", `{"url":null}`, "invalid_url", nil},
		{"bad event type", `{"event_types":["x"]}`, "invalid_event_types", nil},
		{"bad active", `{"active":1}`, "invalid_active", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := api.ParsePatchEndpoint([]byte(tt.body), strict)
			checkErr(t, err, tt.want)
			if tt.want != "" {
				return
			}
			got := map[string]bool{"url": in.URL != nil, "name": in.Name != nil, "description": in.Description != nil,
				"event_types": in.EventTypes != nil, "active": in.Active != nil}
			for f, isSet := range got {
				if isSet != slices.Contains(tt.set, f) {
					t.Errorf("field %s set = %v, want %v", f, isSet, !isSet)
				}
			}
		})
	}
}

func TestParseIngest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
		typ  string
		data string
		key  string
	}{
		{name: "minimal", body: `{"type":"incident.opened","data":{}}`, typ: "incident.opened", data: `{}`},
		{name: "data kept verbatim", body: `{"type":"deploy.ingested","data":{"b" : [1, 2.50],"a":"\u00e9"}}`, typ: "deploy.ingested", data: `{"b" : [1, 2.50],"a":"\u00e9"}`},
		{name: "with id", body: `{"id":"src-1","type":"incident.resolved","data":{"x":1}}`, typ: "incident.resolved", data: `{"x":1}`, key: "src-1"},
		{name: "id null", body: `{"id":null,"type":"incident.acknowledged","data":{}}`, typ: "incident.acknowledged", data: `{}`},
		{name: "whitespace before data", body: `{"type":"incident.opened","data":   {"a":1}}`, typ: "incident.opened", data: `{"a":1}`},
		{name: "200-char id", body: `{"type":"incident.opened","data":{},"id":"` + strings.Repeat("i", 200) + `"}`, typ: "incident.opened", data: `{}`, key: strings.Repeat("i", 200)},

		{name: "empty", body: ``, want: "400"},
		{name: "array", body: `[{"type":"incident.opened","data":{}}]`, want: "400"},
		{name: "truncated", body: `{"type":"incident.opened","data":{}`, want: "400"},
		{name: "invalid data JSON", body: `{"type":"incident.opened","data":{a:1}}`, want: "400"},
		{name: "type missing", body: `{"data":{}}`, want: "invalid_event_type"},
		{name: "type null", body: `{"type":null,"data":{}}`, want: "invalid_event_type"},
		{name: "type number", body: `{"type":1,"data":{}}`, want: "invalid_event_type"},
		{name: "type unknown", body: `{"type":"incident.exploded","data":{}}`, want: "invalid_event_type"},
		{name: "type test.ping", body: `{"type":"test.ping","data":{}}`, want: "invalid_event_type"},
		{name: "type empty", body: `{"type":"","data":{}}`, want: "invalid_event_type"},
		{name: "data missing", body: `{"type":"incident.opened"}`, want: "invalid_data"},
		{name: "data null", body: `{"type":"incident.opened","data":null}`, want: "invalid_data"},
		{name: "data array", body: `{"type":"incident.opened","data":[]}`, want: "invalid_data"},
		{name: "data string", body: `{"type":"incident.opened","data":"{}"}`, want: "invalid_data"},
		{name: "data number", body: `{"type":"incident.opened","data":0}`, want: "invalid_data"},
		{name: "data bool", body: `{"type":"incident.opened","data":true}`, want: "invalid_data"},
		{name: "unknown field", body: `{"type":"incident.opened","data":{},"extra":1}`, want: "unknown_field"},
		{name: "id empty", body: `{"type":"incident.opened","data":{},"id":""}`, want: "invalid_id"},
		{name: "id number", body: `{"type":"incident.opened","data":{},"id":1}`, want: "invalid_id"},
		{name: "id too long", body: `{"type":"incident.opened","data":{},"id":"` + strings.Repeat("i", 201) + `"}`, want: "invalid_id"},
		{name: "id control char", body: `{"type":"incident.opened","data":{},"id":"a\nb"}`, want: "invalid_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := api.ParseIngest([]byte(tt.body))
			checkErr(t, err, tt.want)
			if tt.want != "" {
				return
			}
			if in.Type != tt.typ || string(in.Data) != tt.data || in.IdempotencyKey != tt.key {
				t.Errorf("in = {%q %s %q}, want {%q %s %q}", in.Type, in.Data, in.IdempotencyKey, tt.typ, tt.data, tt.key)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"", api.DefaultPageLimit, true}, {"1", 1, true}, {"250", 250, true},
		{"0", 0, false}, {"-1", 0, false}, {"251", 0, false}, {"x", 0, false}, {"1.5", 0, false}, {" 3", 0, false},
	} {
		n, err := api.ParseLimit(tt.in)
		if tt.ok {
			checkErr(t, err, "")
		} else {
			checkErr(t, err, "invalid_limit")
		}
		if n != tt.want {
			t.Errorf("ParseLimit(%q) = %d, want %d", tt.in, n, tt.want)
		}
	}
}

func TestEventTypeCatalogue(t *testing.T) {
	for _, typ := range api.EventTypes {
		if !api.KnownType(typ) {
			t.Errorf("%s is listed but not known", typ)
		}
		if api.IngestibleType(typ) == (typ == api.TypeTestPing) {
			t.Errorf("IngestibleType(%s) = %v", typ, api.IngestibleType(typ))
		}
	}
	if api.KnownType("incident.exploded") || api.IngestibleType("") {
		t.Error("unknown types accepted")
	}
}

// TestParseUTF8AndNesting: every body parser refuses what is not UTF-8 JSON (RFC 8259) and
// values nested deeper than MaxNestingDepth, with the code, the top-level field and the byte
// offset of the first problem; valid UTF-8, raw or escaped as surrogate pairs, passes. In
// each body, @ marks the problem: it is removed, and where it stood is the offset expected.
func TestParseUTF8AndNesting(t *testing.T) {
	nest := func(open, close string, n int, inner string) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	ev := func(data string) string { return `{"type":"incident.opened","data":` + data + `}` }
	const url = `"url":"https://a.example.com/h"`
	tests := []struct {
		name  string
		parse string // "ingest" (default), "create", "patch"
		body  string
		want  string // "" ok, or a code: "invalid_utf8", "nesting_too_deep", "400"
		field string
	}{
		// invalid bytes, in data
		{name: "0xFF at start of string", body: ev(`{"k":"@` + "\xff" + `abc"}`), want: "invalid_utf8", field: "data"},
		{name: "0xFE in the middle", body: ev(`{"k":"ab@` + "\xfe" + `cd"}`), want: "invalid_utf8", field: "data"},
		{name: "lone continuation byte at end of string", body: ev(`{"k":"abc@` + "\x80" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "0xFF at end of body", body: `{"type":"incident.opened","data":{"k":"@` + "\xff", want: "invalid_utf8", field: "data"},
		{name: "truncated 2-byte sequence", body: ev(`{"k":"@` + "\xc3" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "truncated 3-byte sequence", body: ev(`{"k":"@` + "\xe2\x82" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "truncated 4-byte sequence", body: ev(`{"k":"x@` + "\xf0\x9f\x98" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "truncated 4-byte sequence at end of body", body: ev(`{"k":"x@` + "\xf0\x9f\x98"), want: "invalid_utf8", field: "data"},
		{name: "second byte not a continuation", body: ev(`{"k":"@` + "\xc3(" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "overlong 2-byte /", body: ev(`{"k":"@` + "\xc0\xaf" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "overlong 3-byte NUL", body: ev(`{"k":"@` + "\xe0\x80\x80" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "overlong 4-byte", body: ev(`{"k":"@` + "\xf0\x82\x82\xac" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "raw high surrogate ED A0 80", body: ev(`{"k":"@` + "\xed\xa0\x80" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "raw low surrogate ED B0 80", body: ev(`{"k":"a@` + "\xed\xb0\x80" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "raw surrogate pair (CESU-8)", body: ev(`{"k":"@` + "\xed\xa0\xbd\xed\xb8\x80" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "above U+10FFFF", body: ev(`{"k":"@` + "\xf4\x90\x80\x80" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "0xF8 five-byte lead", body: ev(`{"k":"@` + "\xf8\x88\x80\x80\x80" + `"}`), want: "invalid_utf8", field: "data"},
		{name: "in a key of data", body: ev(`{"ok":1,"@` + "\xff" + `":1}`), want: "invalid_utf8", field: "data"},
		{name: "in a nested array", body: ev(`{"a":[1,{"b":["@` + "\x80" + `"]}]}`), want: "invalid_utf8", field: "data"},
		{name: "first problem wins", body: ev(`{"k":"@` + "\xff" + `\ud800"}`), want: "invalid_utf8", field: "data"},
		// escaped surrogates, in data
		{name: "lone high surrogate", body: ev(`{"k":"@\ud800"}`), want: "invalid_utf8", field: "data"},
		{name: "lone low surrogate", body: ev(`{"k":"x@\udc00y"}`), want: "invalid_utf8", field: "data"},
		{name: "lone high, upper case", body: ev(`{"k":"@\uDBFF"}`), want: "invalid_utf8", field: "data"},
		{name: "high then BMP escape", body: ev(`{"k":"@\ud83d\u0041"}`), want: "invalid_utf8", field: "data"},
		{name: "high then raw character", body: ev(`{"k":"@\ud83dA"}`), want: "invalid_utf8", field: "data"},
		{name: "high then other escape", body: ev(`{"k":"@\ud83d\n"}`), want: "invalid_utf8", field: "data"},
		{name: "high at end of string", body: ev(`{"k":"x@\ud83d"}`), want: "invalid_utf8", field: "data"},
		{name: "pair reversed", body: ev(`{"k":"@\ude00\ud83d"}`), want: "invalid_utf8", field: "data"},
		{name: "two highs then a low", body: ev(`{"k":"@\ud83d\ud83d\ude00"}`), want: "invalid_utf8", field: "data"},
		{name: "pair then lone low", body: ev(`{"k":"\ud83d\ude00@\ude00"}`), want: "invalid_utf8", field: "data"},
		{name: "escaped backslash then u", body: ev(`{"k":"\\ud800","j":"@\udfff"}`), want: "invalid_utf8", field: "data"},
		{name: "lone surrogate in a key of data", body: ev(`{"@\ud800":1}`), want: "invalid_utf8", field: "data"},
		// valid
		{name: "raw emoji", body: ev(`{"k":"😀 é ✓ 𐀀 ` + "\U0010FFFF \uFFFF" + `"}`)},
		{name: "escaped pair", body: ev(`{"k":"\ud83d\ude00"}`)},
		{name: "escaped pair upper case", body: ev(`{"k":"\uD83D\uDE00\uD800\uDC00\uDBFF\uDFFF"}`)},
		{name: "escaped U+FFFD and BMP edges", body: ev(`{"k":"\ufffd\ud7ff\ue000\u0000"}`)},
		{name: "escaped backslash before ud800 text", body: ev(`{"k":"\\ud800"}`)},
		// other ingest fields
		{name: "type: invalid byte", body: `{"type":"incident.@` + "\xff" + `opened","data":{}}`, want: "invalid_utf8", field: "type"},
		{name: "type: lone surrogate", body: `{"type":"@\udc00","data":{}}`, want: "invalid_utf8", field: "type"},
		{name: "id: invalid byte", body: `{"id":"k@` + "\xc3(" + `","type":"incident.opened","data":{}}`, want: "invalid_utf8", field: "id"},
		{name: "id: lone surrogate", body: `{"type":"incident.opened","data":{},"id":"k@\ud800"}`, want: "invalid_utf8", field: "id"},
		{name: "id: escaped pair ok", body: `{"type":"incident.opened","data":{},"id":"k\ud83d\ude00"}`},
		{name: "unknown key: invalid byte", body: `{"type":"incident.opened","data":{},"@` + "\xff" + `":1}`, want: "invalid_utf8"},
		{name: "unknown key: lone surrogate", body: `{"@\ud800":1,"type":"incident.opened","data":{}}`, want: "invalid_utf8"},
		{name: "problem before a syntax error", body: `{"type":"@` + "\xff" + `",}`, want: "invalid_utf8", field: "type"},
		{name: "syntax error before a problem", body: `{"type":,"data":"` + "\xff" + `"}`, want: "400"},
		// nesting
		{name: "data 64 objects deep", body: ev(nest(`{"a":`, `}`, 63, `{}`))},
		{name: "data 64 arrays deep", body: ev(`{"a":` + nest(`[`, `]`, 63, `1`) + `}`)},
		{name: "data 64 empty arrays deep", body: ev(`{"a":` + nest(`[`, `]`, 62, `[]`) + `}`)},
		{name: "data 65 objects deep", body: ev(nest(`{"a":`, `}`, 64, `@{}`)), want: "nesting_too_deep", field: "data"},
		{name: "data 65 arrays deep", body: ev(`{"a":` + nest(`[`, `]`, 63, `@[1]`) + `}`), want: "nesting_too_deep", field: "data"},
		{name: "data 65 mixed", body: ev(nest(`{"a":[`, `]}`, 32, `@{}`)), want: "nesting_too_deep", field: "data"},
		{name: "data 5000 deep", body: ev(nest(`{"a":`, `}`, 64, `@`+nest(`[`, `]`, 5000, ``))), want: "nesting_too_deep", field: "data"},
		{name: "data 5000 deep, truncated", body: ev(nest(`{"a":`, ``, 64, `@`+nest(`[`, ``, 5000, ``))), want: "nesting_too_deep", field: "data"},
		{name: "id 64 deep", body: `{"type":"incident.opened","data":{},"id":` + nest(`[`, `]`, 64, ``) + `}`, want: "invalid_id"},
		{name: "id 65 deep", body: `{"type":"incident.opened","data":{},"id":` + nest(`[`, `]`, 64, `@[]`) + `}`, want: "nesting_too_deep", field: "id"},
		{name: "type 65 deep", body: `{"type":` + nest(`{"x":`, `}`, 64, `@{}`) + `,"data":{}}`, want: "nesting_too_deep", field: "type"},
		{name: "unknown field 65 deep", body: `{"x":` + nest(`[`, `]`, 64, `@[]`) + `}`, want: "nesting_too_deep", field: "x"},
		// endpoints
		{parse: "create", name: "name: invalid byte", body: `{` + url + `,"name":"Caf@` + "\xe9" + ` Ops"}`, want: "invalid_utf8", field: "name"},
		{parse: "create", name: "name: raw surrogate", body: `{` + url + `,"name":"@` + "\xed\xa0\x80" + `"}`, want: "invalid_utf8", field: "name"},
		{parse: "create", name: "name: lone surrogate", body: `{` + url + `,"name":"n@\ud800"}`, want: "invalid_utf8", field: "name"},
		{parse: "create", name: "name: escaped pair ok", body: `{` + url + `,"name":"n\ud83d\ude00"}`},
		{parse: "create", name: "name: raw emoji ok", body: `{` + url + `,"name":"Ops 😀"}`},
		{parse: "create", name: "description: invalid byte", body: `{` + url + `,"name":"n","description":"@` + "\x80" + `"}`, want: "invalid_utf8", field: "description"},
		{parse: "create", name: "description: lone low", body: `{` + url + `,"name":"n","description":"@\udfff"}`, want: "invalid_utf8", field: "description"},
		{parse: "create", name: "url: invalid byte", body: `{"url":"https://a.example.com/@` + "\xff" + `","name":"n"}`, want: "invalid_utf8", field: "url"},
		{parse: "create", name: "url: lone surrogate", body: `{"url":"https://a.example.com/@\ud800","name":"n"}`, want: "invalid_utf8", field: "url"},
		{parse: "create", name: "event_types: lone surrogate", body: `{` + url + `,"name":"n","event_types":["@\ud800"]}`, want: "invalid_utf8", field: "event_types"},
		{parse: "create", name: "event_types 64 deep", body: `{` + url + `,"name":"n","event_types":` + nest(`[`, `]`, 64, ``) + `}`, want: "invalid_event_types"},
		{parse: "create", name: "event_types 65 deep", body: `{` + url + `,"name":"n","event_types":` + nest(`[`, `]`, 64, `@[]`) + `}`, want: "nesting_too_deep", field: "event_types"},
		{parse: "create", name: "key: invalid byte", body: `{` + url + `,"@` + "\xff" + `":"n"}`, want: "invalid_utf8"},
		{parse: "patch", name: "patch name: invalid bytes", body: `{"name":"@` + "\xff\xfe" + `"}`, want: "invalid_utf8", field: "name"},
		{parse: "patch", name: "patch name: lone surrogate", body: `{"name":"ok @\uDE00"}`, want: "invalid_utf8", field: "name"},
		{parse: "patch", name: "patch active 65 deep", body: `{"active":` + nest(`[`, `]`, 64, `@[]`) + `}`, want: "nesting_too_deep", field: "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, offset := tt.body, strings.Index(tt.body, "@")
			if offset >= 0 {
				body = strings.Replace(body, "@", "", 1)
			}
			var err error
			switch tt.parse {
			case "", "ingest":
				_, err = api.ParseIngest([]byte(body))
			case "create":
				_, err = api.ParseCreateEndpoint([]byte(body), strict)
			case "patch":
				_, err = api.ParsePatchEndpoint([]byte(body), strict)
			}
			checkErr(t, err, tt.want)
			var ve *api.ValidationError
			if tt.want != "invalid_utf8" && tt.want != "nesting_too_deep" || !errors.As(err, &ve) {
				return
			}
			if offset < 0 {
				t.Fatalf("row has no @ marker: %q", tt.body)
			}
			if ve.Field != tt.field {
				t.Errorf("field = %q, want %q (%s)", ve.Field, tt.field, ve.Message)
			}
			if ve.Offset != offset || !regexp.MustCompile(fmt.Sprintf(`\bbyte offset %d\b`, offset)).MatchString(ve.Message) {
				t.Errorf("offset = %d, message %q; want offset %d", ve.Offset, ve.Message, offset)
			}
		})
	}
}

// TestMessagesStayUTF8: a long multi-byte field name or type quoted in a message is cut at a
// rune boundary, so the error body is UTF-8 too.
func TestMessagesStayUTF8(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes: a cut at 64 falls on a rune boundary only by luck
	for _, body := range []string{
		`{"type":"incident.opened","data":{},"x` + long + `":1}`,
		`{"type":"x` + long + `","data":{}}`,
		`{"x` + long + `":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`,
	} {
		_, err := api.ParseIngest([]byte(body))
		if err == nil || !utf8.ValidString(err.Error()) {
			t.Errorf("message for %q: %q", body, err)
		}
	}
}

// A null among event_types is a wrong type, not an unknown event type named "".
func TestEventTypesNullElement(t *testing.T) {
	for _, body := range []string{
		`{"url":"https://a.example.com","name":"n","event_types":[null]}`,
		`{"url":"https://a.example.com","name":"n","event_types":["incident.opened",null]}`,
	} {
		_, err := api.ParseCreateEndpoint([]byte(body), netpolicy.Policy{})
		var ve *api.ValidationError
		if !errors.As(err, &ve) || ve.Code != "invalid_event_types" || !strings.Contains(ve.Message, "must be an array of strings") {
			t.Errorf("%s: err = %v, want invalid_event_types: must be an array of strings", body, err)
		}
	}
}
