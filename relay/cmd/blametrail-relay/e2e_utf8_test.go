package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// TestHostileUTF8 posts bodies that are not UTF-8 JSON (RFC 8259), or nest too deeply, to the
// real relay: each is refused with 422, the code, the field and the byte offset of the problem,
// and none reaches a receiver. Valid emoji, raw and as an escaped surrogate pair, and data
// nested exactly MaxNestingDepth levels are accepted and delivered byte for byte to a receiver
// that decodes the body as text before verifying its signature, as Standard Webhooks libraries
// in JavaScript or Python do. An endpoint name that is not UTF-8 is refused, not rewritten.
func TestHostileUTF8(t *testing.T) {
	t.Parallel()
	var key atomic.Value // the endpoint's secret, stored before any event is posted
	// The receiver verifies what a text-decoding library would see: the body decoded as UTF-8
	// (each invalid byte becoming U+FFFD) and encoded again. Anything else is a 400.
	rc := relaytest.NewReceiver(t, func(w http.ResponseWriter, r *relaytest.Request) {
		text := []byte(strings.ToValidUTF8(string(r.Body), "\uFFFD"))
		if err := signature.VerifyHeaders(key.Load().(string), r.Header, text); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, Name: "UTF-8 fixture", Description: "unchanged"})
	key.Store(ep.Secret)

	const (
		events = "/api/events"
		eps    = "/api/webhooks/endpoints"
	)
	epPath := eps + "/" + ep.ID
	nest := func(open, close string, n int, inner string) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	// at marks the problem in a body; the expected offset is where it stands, and it is removed.
	const at = "\x00AT\x00"
	type row struct {
		name   string
		method string
		path   string
		body   string // holds at once, just before the offending byte
		code   string
		field  string
	}
	ev := func(data string) string { return `{"type":"incident.opened","data":` + data + `}` }
	rows := []row{
		// invalid bytes in data
		{name: "0xFF at start of a string", body: ev(`{"k":"` + at + "\xffabc\"}"), field: "data", code: "invalid_utf8"},
		{name: "0xFE in the middle", body: ev(`{"k":"ab` + at + "\xfecd\"}"), field: "data", code: "invalid_utf8"},
		{name: "continuation byte at end", body: ev(`{"k":"abc` + at + "\x80\"}"), field: "data", code: "invalid_utf8"},
		{name: "truncated 3-byte sequence", body: ev(`{"k":"` + at + "\xe2\x82\"}"), field: "data", code: "invalid_utf8"},
		{name: "truncated 4-byte sequence at end of body", body: ev(`{"k":"x` + at + "\xf0\x9f\x98"), field: "data", code: "invalid_utf8"},
		{name: "overlong slash", body: ev(`{"k":"` + at + "\xc0\xaf\"}"), field: "data", code: "invalid_utf8"},
		{name: "overlong 3-byte NUL", body: ev(`{"k":"` + at + "\xe0\x80\x80\"}"), field: "data", code: "invalid_utf8"},
		{name: "surrogate encoded raw (ED A0 80)", body: ev(`{"k":"` + at + "\xed\xa0\x80\"}"), field: "data", code: "invalid_utf8"},
		{name: "above U+10FFFF", body: ev(`{"k":"` + at + "\xf4\x90\x80\x80\"}"), field: "data", code: "invalid_utf8"},
		{name: "invalid byte in a key of data", body: ev(`{"a":{"` + at + "\xff\":1}}"), field: "data", code: "invalid_utf8"},
		// escaped lone surrogates in data
		{name: "lone high surrogate", body: ev(`{"k":"` + at + `\ud800"}`), field: "data", code: "invalid_utf8"},
		{name: "lone low surrogate", body: ev(`{"k":"x` + at + `\udc00y"}`), field: "data", code: "invalid_utf8"},
		{name: "high then a BMP escape", body: ev(`{"k":"` + at + `\uD83D\u0041"}`), field: "data", code: "invalid_utf8"},
		{name: "high then a raw character", body: ev(`{"k":"` + at + `\ud83dA"}`), field: "data", code: "invalid_utf8"},
		{name: "pair in the wrong order", body: ev(`{"k":"` + at + `\ude00\ud83d"}`), field: "data", code: "invalid_utf8"},
		{name: "two high surrogates", body: ev(`{"k":"` + at + `\ud83d\ud83d\ude00"}`), field: "data", code: "invalid_utf8"},
		{name: "lone surrogate in an array", body: ev(`{"k":["ok","` + at + `\udfff"]}`), field: "data", code: "invalid_utf8"},
		// other ingest fields
		{name: "invalid byte in type", body: `{"type":"incident.` + at + "\xffopened\",\"data\":{}}", field: "type", code: "invalid_utf8"},
		{name: "lone surrogate in id", body: `{"type":"incident.opened","data":{},"id":"k` + at + `\ud800"}`, field: "id", code: "invalid_utf8"},
		{name: "invalid byte in id", body: `{"id":"k` + at + "\xc3(\",\"type\":\"incident.opened\",\"data\":{}}", field: "id", code: "invalid_utf8"},
		// nesting
		{name: "data 65 objects deep", body: ev(nest(`{"a":`, `}`, 64, at+`{}`)), field: "data", code: "nesting_too_deep"},
		{name: "data 65 levels with arrays", body: ev(`{"a":` + nest(`[`, `]`, 63, at+`[]`) + `}`), field: "data", code: "nesting_too_deep"},
		{name: "thousands of levels", body: ev(nest(`{"a":`, `}`, 64, at+nest(`[`, `]`, 5000, ``))), field: "data", code: "nesting_too_deep"},
		{name: "id 65 levels deep", body: `{"type":"incident.opened","data":{},"id":` + nest(`[`, `]`, 64, at+`[]`) + `}`, field: "id", code: "nesting_too_deep"},
		// I-JSON (RFC 7493): a name twice in one object, a number beyond a float's range
		{name: "type twice", body: `{"type":"incident.opened",` + at + `"type":"deploy.ingested","data":{}}`, field: "type", code: "duplicate_key"},
		{name: "a name twice in data", body: ev(`{"a":1,` + at + `"a":2}`), field: "data", code: "duplicate_key"},
		{name: "the same name escaped", body: ev(`{"x":{"a":1,"b":[],` + at + `"\u0061":2}}`), field: "data", code: "duplicate_key"},
		{name: "number past a float", body: ev(`{"n":[1,` + at + `1e309]}`), field: "data", code: "number_out_of_range"},
		{name: "negative number past a float", body: ev(`{"n":` + at + `-2e308}`), field: "data", code: "number_out_of_range"},
		{name: "an integer of 310 digits", body: ev(`{"n":` + at + `1` + strings.Repeat("0", 309) + `}`), field: "data", code: "number_out_of_range"},
		{name: "create: name twice", method: "POST", path: eps,
			body: `{"url":"` + rc.URL + `","name":"n",` + at + `"name":"m"}`, field: "name", code: "duplicate_key"},
		{name: "patch: active twice", method: "PATCH", path: epPath,
			body: `{"active":false,` + at + `"active":true}`, field: "active", code: "duplicate_key"},
		// endpoints
		{name: "create: name with invalid UTF-8", method: "POST", path: eps,
			body: `{"url":"` + rc.URL + `","name":"Caf` + at + "\xe9 Ops\"}", field: "name", code: "invalid_utf8"},
		{name: "create: description with a lone surrogate", method: "POST", path: eps,
			body: `{"url":"` + rc.URL + `","name":"n","description":"` + at + `\udbff"}`, field: "description", code: "invalid_utf8"},
		{name: "create: url with invalid UTF-8", method: "POST", path: eps,
			body: `{"url":"` + rc.URL + `/` + at + "\xff\",\"name\":\"n\"}", field: "url", code: "invalid_utf8"},
		{name: "create: event_types 65 levels deep", method: "POST", path: eps,
			body: `{"url":"` + rc.URL + `","name":"n","event_types":` + nest(`[`, `]`, 64, at+`[]`) + `}`, field: "event_types", code: "nesting_too_deep"},
		{name: "patch: name with invalid UTF-8", method: "PATCH", path: epPath,
			body: `{"name":"` + at + "\xff\xfe\"}", field: "name", code: "invalid_utf8"},
		{name: "patch: name with a lone surrogate", method: "PATCH", path: epPath,
			body: `{"name":"ok ` + at + `\uDE00"}`, field: "name", code: "invalid_utf8"},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			offset := strings.Index(tt.body, at)
			if offset < 0 {
				t.Fatalf("row has no marker: %q", tt.body)
			}
			body := strings.Replace(tt.body, at, "", 1)
			method, path := tt.method, tt.path
			if method == "" {
				method, path = "POST", events
			}
			status, resp, _ := rawDo(t, r, method, path, "application/json", r.Token, []byte(body))
			checkErrorBody(t, status, resp, http.StatusUnprocessableEntity, tt.code)
			var eb api.ErrorBody
			_ = json.Unmarshal(resp, &eb)
			if eb.Error.Field != tt.field {
				t.Errorf("field = %q, want %q; body %s", eb.Error.Field, tt.field, resp)
			}
			if want := fmt.Sprintf(`\bbyte offset %d\b`, offset); !regexp.MustCompile(want).MatchString(eb.Error.Message) {
				t.Errorf("message %q does not name byte offset %d", eb.Error.Message, offset)
			}
			if !utf8.Valid(resp) {
				t.Errorf("the error body itself is not UTF-8: %q", resp)
			}
		})
	}

	// Valid bodies pass and reach the receiver byte for byte, and it verifies them.
	valid := []string{
		`{"title":"Database down 😀","n":1}`,
		`{"title":"Database down \ud83d\ude00","n":2}`,
		`{"mixed":"\uD83D\uDE00 é ✓ \u00e9 \ud800\udc00 \udbff\udfff","raw":"𐀀 ￿ 􏿿"}`,
		`{"a":` + nest(`[`, `]`, 63, `"deepest"`) + `}`, // 64 levels: data, then 63 arrays
		nest(`{"a":`, `}`, 63, `{}`),
		// the same name in different objects; the largest and smallest floats; underflow reads as 0
		`{"a":{"a":1},"b":[{"a":1},{"a":2}],"n":1.7976931348623157e308,"m":-1e308,"s":5e-324,"u":1e-999}`,
	}
	sent := map[string]string{} // event id → data as posted
	for i, data := range valid {
		status, resp, _ := r.Do("POST", events, "application/json", r.Token, []byte(ev(data)))
		if status != http.StatusAccepted {
			t.Fatalf("valid event %d: %d %s", i, status, resp)
		}
		var res api.IngestResult
		if err := json.Unmarshal(resp, &res); err != nil || res.Deliveries != 1 {
			t.Fatalf("valid event %d: %s (%v)", i, resp, err)
		}
		sent[res.ID] = data
	}
	ds := waitFinished(t, r, ep.ID, len(valid))
	for _, d := range ds {
		if d.Status != api.StatusSucceeded {
			t.Errorf("delivery %s of %s: %s, attempts %+v (the receiver could not verify it)", d.ID, d.EventID, d.Status, d.Attempts)
		}
	}
	reqs := rc.Requests()
	if len(reqs) != len(valid) {
		t.Errorf("receiver got %d requests, want %d: a refused event was delivered", len(reqs), len(valid))
	}
	for _, req := range reqs {
		var env struct {
			ID   string
			Data json.RawMessage
		}
		if err := json.Unmarshal(req.Body, &env); err != nil {
			t.Errorf("delivery body: %v: %q", err, req.Body)
			continue
		}
		want, ok := sent[env.ID]
		if !ok {
			t.Errorf("receiver got an event that was not accepted: %q", req.Body)
			continue
		}
		if !bytes.Equal(env.Data, []byte(want)) {
			t.Errorf("event %s: data delivered as\n %q\nwant\n %q", env.ID, env.Data, want)
		}
		if err := signature.VerifyHeaders(ep.Secret, req.Header, req.Body); err != nil {
			t.Errorf("event %s: raw body does not verify: %v", env.ID, err)
		}
	}

	// Nothing was created or rewritten by the refused endpoint bodies.
	all, err := r.Client.AllEndpoints(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("relay has %d endpoints, want 1 (a refused name was stored): %+v", len(all), all)
	}
	got := getEndpoint(t, r, ep.ID)
	if got.Name != "UTF-8 fixture" || got.Description != "unchanged" || !got.UpdatedAt.Equal(ep.UpdatedAt) {
		t.Errorf("fixture changed by refused patches: %+v", got)
	}
	checkAlive(t, r)
}
