package main_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// TestBadInput sends one bad request per row to a relay and checks the status, the
// {"error":{"code","message"}} body and, where the contract names one, the header. After the
// battery no endpoint was half-created, a fixture endpoint is unchanged, and the relay is alive.
func TestBadInput(t *testing.T) {
	t.Parallel()
	// Three relays: the test default (http and private networks allowed), one with the
	// production defaults, and one that allows http but not private networks.
	open := relaytest.Start(t, relaytest.Options{})
	strict := relaytest.Start(t, relaytest.Options{Args: []string{"--allow-http=false", "--allow-private-networks=false"}})
	httpOnly := relaytest.Start(t, relaytest.Options{Args: []string{"--allow-private-networks=false"}})

	fixture := createEndpoint(t, open, apiclient.EndpointCreate{
		URL: "https://hooks.example.com/fixture", Name: "Fixture", Description: "unchanged", EventTypes: []string{"incident.opened"},
	})
	epPath := "/api/webhooks/endpoints/" + fixture.ID
	const (
		eps    = "/api/webhooks/endpoints"
		events = "/api/events"
		json_  = "application/json"
	)
	validEvent := `{"type":"incident.opened","data":{}}`
	big := func(prefix, suffix string) string {
		return prefix + strings.Repeat("a", 256<<10) + suffix
	}
	create := func(url string) string {
		b, _ := json.Marshal(map[string]string{"url": url, "name": "n"})
		return string(b)
	}
	wellFormedUnknown := "ep_01h0000000000000000000000a"

	type row struct {
		name      string
		relay     *relaytest.Relay
		method    string
		path      string
		ct        string
		token     string // "-" = none
		body      string
		status    int
		code      string
		header    string // a header that must be present
		headerHas string // and a substring of its value
	}
	rows := []row{
		// 400 malformed JSON
		{name: "create malformed", method: "POST", path: eps, body: `{"url":`, status: 400, code: "malformed_json"},
		{name: "create empty body", method: "POST", path: eps, ct: json_, body: ``, status: 400, code: "malformed_json"},
		{name: "create array", method: "POST", path: eps, body: `[{"url":"https://a.example.com","name":"n"}]`, status: 400, code: "malformed_json"},
		{name: "create trailing garbage", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n"} x`, status: 400, code: "malformed_json"},
		{name: "patch malformed", method: "PATCH", path: epPath, body: `{"name":"x"`, status: 400, code: "malformed_json"},
		{name: "ingest malformed", method: "POST", path: events, body: `{"type":"incident.opened","data":{}`, status: 400, code: "malformed_json"},
		{name: "ingest string", method: "POST", path: events, body: `"incident.opened"`, status: 400, code: "malformed_json"},

		// 401
		{name: "no token", method: "GET", path: eps, token: "-", status: 401, code: "unauthorized", header: "WWW-Authenticate", headerHas: "Bearer"},
		{name: "wrong token", method: "GET", path: eps, token: "wrong", status: 401, code: "unauthorized", header: "WWW-Authenticate", headerHas: "Bearer"},
		{name: "token prefix", method: "GET", path: epPath, token: "x", status: 401, code: "unauthorized", header: "WWW-Authenticate"},
		{name: "ingest no token", method: "POST", path: events, ct: json_, token: "-", body: validEvent, status: 401, code: "unauthorized", header: "WWW-Authenticate"},
		{name: "secret wrong token", method: "GET", path: epPath + "/secret", token: "wrong", status: 401, code: "unauthorized", header: "WWW-Authenticate"},

		// 404
		{name: "get well-formed unknown id", method: "GET", path: eps + "/" + wellFormedUnknown, status: 404, code: "endpoint_not_found"},
		{name: "patch well-formed unknown id", method: "PATCH", path: eps + "/" + wellFormedUnknown, body: `{"name":"x"}`, status: 404, code: "endpoint_not_found"},
		{name: "delete well-formed unknown id", method: "DELETE", path: eps + "/" + wellFormedUnknown, status: 404, code: "endpoint_not_found"},
		{name: "secret well-formed unknown id", method: "GET", path: eps + "/" + wellFormedUnknown + "/secret", status: 404, code: "endpoint_not_found"},
		{name: "test well-formed unknown id", method: "POST", path: eps + "/" + wellFormedUnknown + "/test", status: 404, code: "endpoint_not_found"},
		{name: "deliveries well-formed unknown id", method: "GET", path: eps + "/" + wellFormedUnknown + "/deliveries", status: 404, code: "endpoint_not_found"},
		{name: "get garbage id", method: "GET", path: eps + "/nope", status: 404, code: "endpoint_not_found"},
		{name: "get garbage ep_ id", method: "GET", path: eps + "/ep_ZZZ", status: 404, code: "endpoint_not_found"},
		{name: "get id out of range", method: "GET", path: eps + "/ep_z1h0000000000000000000000a", status: 404, code: "endpoint_not_found"},
		{name: "get long garbage id", method: "GET", path: eps + "/" + strings.Repeat("x", 3000), status: 404, code: "endpoint_not_found"},
		{name: "delete garbage id", method: "DELETE", path: eps + "/%00", status: 404, code: "endpoint_not_found"},
		{name: "unknown sub-route", method: "GET", path: epPath + "/nothing", status: 404, code: "route_not_found"},
		{name: "get collection with a trailing slash", method: "GET", path: eps + "/", status: 404, code: "route_not_found"},
		{name: "delete without an id", method: "DELETE", path: eps + "/", status: 404, code: "route_not_found"},
		{name: "patch without an id", method: "PATCH", path: eps + "/", body: `{"name":"x"}`, status: 404, code: "route_not_found"},
		{name: "get an endpoint with a trailing slash", method: "GET", path: epPath + "/", status: 404, code: "route_not_found"},
		{name: "delete an endpoint with a trailing slash", method: "DELETE", path: epPath + "/", status: 404, code: "route_not_found"},
		{name: "unknown route", method: "GET", path: "/api/nothing", status: 404, code: "route_not_found"},
		{name: "wrong base path", method: "GET", path: "/api" + eps + "/" + wellFormedUnknown, status: 404, code: "route_not_found"},
		{name: "unknown route outside api", method: "GET", path: "/nothing", token: "-", status: 404, code: "route_not_found"},

		// 405 with Allow
		{name: "PUT endpoints", method: "PUT", path: eps, body: `{}`, status: 405, code: "method_not_allowed", header: "Allow", headerHas: "POST"},
		{name: "PUT endpoint", method: "PUT", path: epPath, body: `{}`, status: 405, code: "method_not_allowed", header: "Allow", headerHas: "PATCH"},
		{name: "GET events", method: "GET", path: events, status: 405, code: "method_not_allowed", header: "Allow", headerHas: "POST"},
		{name: "DELETE event-types", method: "DELETE", path: "/api/event-types", status: 405, code: "method_not_allowed", header: "Allow", headerHas: "GET"},
		{name: "POST secret", method: "POST", path: epPath + "/secret", status: 405, code: "method_not_allowed", header: "Allow", headerHas: "GET"},
		{name: "GET test", method: "GET", path: epPath + "/test", status: 405, code: "method_not_allowed", header: "Allow", headerHas: "POST"},
		{name: "POST healthz", method: "POST", path: "/healthz", token: "-", status: 405, code: "method_not_allowed", header: "Allow", headerHas: "GET"},

		// 413 (JSON bodies over 256 KiB)
		{name: "ingest too large", method: "POST", path: events, body: big(`{"type":"incident.opened","data":{"x":"`, `"}}`), status: 413, code: "payload_too_large"},
		{name: "create too large", method: "POST", path: eps, body: big(`{"url":"https://a.example.com","name":"n","description":"`, `"}`), status: 413, code: "payload_too_large"},

		// 415
		{name: "create no content type", method: "POST", path: eps, ct: "-", body: create("https://a.example.com/"), status: 415, code: "unsupported_media_type"},
		{name: "create text/plain", method: "POST", path: eps, ct: "text/plain", body: create("https://a.example.com/"), status: 415, code: "unsupported_media_type"},
		{name: "patch form", method: "PATCH", path: epPath, ct: "application/x-www-form-urlencoded", body: `name=x`, status: 415, code: "unsupported_media_type"},
		{name: "ingest no content type", method: "POST", path: events, ct: "-", body: validEvent, status: 415, code: "unsupported_media_type"},
		{name: "ingest text/json", method: "POST", path: events, ct: "text/json", body: validEvent, status: 415, code: "unsupported_media_type"},

		// 422: URLs
		{name: "relative url", method: "POST", path: eps, body: create("/hook"), status: 422, code: "invalid_url"},
		{name: "ftp url", method: "POST", path: eps, body: create("ftp://files.example.com/hook"), status: 422, code: "invalid_url"},
		{name: "url without host", method: "POST", path: eps, body: create("https:///hook"), status: 422, code: "invalid_url"},
		{name: "url with fragment", method: "POST", path: eps, body: create("https://a.example.com/#x"), status: 422, code: "invalid_url"},
		{name: "url with space", method: "POST", path: eps, body: create("https://a.example.com/a b"), status: 422, code: "invalid_url"},
		{name: "url not a string", method: "POST", path: eps, body: `{"url":1,"name":"n"}`, status: 422, code: "invalid_url"},
		{name: "url missing", method: "POST", path: eps, body: `{"name":"n"}`, status: 422, code: "invalid_url"},
		{name: "http without --allow-http", relay: strict, method: "POST", path: eps, body: create("http://hooks.example.com/"), status: 422, code: "invalid_url"},
		{name: "patch to http without --allow-http", relay: strict, method: "PATCH", path: eps + "/" + wellFormedUnknown, body: `{"url":"http://hooks.example.com/"}`, status: 422, code: "invalid_url"},
		{name: "private 10/8 http", relay: httpOnly, method: "POST", path: eps, body: create("http://10.0.0.1/"), status: 422, code: "invalid_url"},
		{name: "private 10/8 https", relay: strict, method: "POST", path: eps, body: create("https://10.0.0.1/"), status: 422, code: "invalid_url"},
		{name: "loopback v4", relay: strict, method: "POST", path: eps, body: create("https://127.0.0.1/"), status: 422, code: "invalid_url"},
		{name: "loopback v6", relay: strict, method: "POST", path: eps, body: create("https://[::1]/"), status: 422, code: "invalid_url"},
		{name: "link-local metadata", relay: strict, method: "POST", path: eps, body: create("https://169.254.169.254/"), status: 422, code: "invalid_url"},
		{name: "loopback with port, http relay", relay: httpOnly, method: "POST", path: eps, body: create("http://127.0.0.1:8080/"), status: 422, code: "invalid_url"},
		{name: "localhost", relay: strict, method: "POST", path: eps, body: create("https://localhost/"), status: 422, code: "invalid_url"},

		// 422: names and other fields
		{name: "empty name", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":""}`, status: 422, code: "invalid_name"},
		{name: "whitespace name", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"  \t "}`, status: 422, code: "invalid_name"},
		{name: "201-char name", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"` + strings.Repeat("é", 201) + `"}`, status: 422, code: "invalid_name"},
		{name: "name with newline", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"a\nb"}`, status: 422, code: "invalid_name"},
		{name: "name missing", method: "POST", path: eps, body: `{"url":"https://a.example.com"}`, status: 422, code: "invalid_name"},
		{name: "name null", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":null}`, status: 422, code: "invalid_name"},
		{name: "unknown event type", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n","event_types":["incident.exploded"]}`, status: 422, code: "invalid_event_types"},
		{name: "test.ping subscription", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n","event_types":["test.ping"]}`, status: 422, code: "invalid_event_types"},
		{name: "event_types not a list", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n","event_types":"incident.opened"}`, status: 422, code: "invalid_event_types"},
		{name: "active not a bool", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n","active":"yes"}`, status: 422, code: "invalid_active"},
		{name: "description too long", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n","description":"` + strings.Repeat("d", 1025) + `"}`, status: 422, code: "invalid_description"},
		{name: "create unknown field", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n","signing_secret":"whsec_x"}`, status: 422, code: "unknown_field"},
		{name: "create invalid secret", method: "POST", path: eps, body: `{"url":"https://a.example.com","name":"n","secret":"whsec_x"}`, status: 422, code: "invalid_secret"},
		{name: "patch unknown field", method: "PATCH", path: epPath, body: `{"id":"ep_x"}`, status: 422, code: "unknown_field"},
		{name: "patch bad url", method: "PATCH", path: epPath, body: `{"url":"ftp://x.example.com/"}`, status: 422, code: "invalid_url"},
		{name: "patch empty name", method: "PATCH", path: epPath, body: `{"name":" "}`, status: 422, code: "invalid_name"},
		{name: "patch bad event type", method: "PATCH", path: epPath, body: `{"event_types":["nope"]}`, status: 422, code: "invalid_event_types"},
		{name: "patch valid name with bad types", method: "PATCH", path: epPath, body: `{"name":"changed","event_types":["nope"]}`, status: 422, code: "invalid_event_types"},

		// 422: ingest
		{name: "ingest unknown type", method: "POST", path: events, body: `{"type":"incident.exploded","data":{}}`, status: 422, code: "invalid_event_type"},
		{name: "ingest test.ping", method: "POST", path: events, body: `{"type":"test.ping","data":{}}`, status: 422, code: "invalid_event_type"},
		{name: "ingest type missing", method: "POST", path: events, body: `{"data":{}}`, status: 422, code: "invalid_event_type"},
		{name: "ingest data array", method: "POST", path: events, body: `{"type":"incident.opened","data":[1,2]}`, status: 422, code: "invalid_data"},
		{name: "ingest data string", method: "POST", path: events, body: `{"type":"incident.opened","data":"{}"}`, status: 422, code: "invalid_data"},
		{name: "ingest data null", method: "POST", path: events, body: `{"type":"incident.opened","data":null}`, status: 422, code: "invalid_data"},
		{name: "ingest data number", method: "POST", path: events, body: `{"type":"incident.opened","data":1}`, status: 422, code: "invalid_data"},
		{name: "ingest data missing", method: "POST", path: events, body: `{"type":"incident.opened"}`, status: 422, code: "invalid_data"},
		{name: "ingest unknown field", method: "POST", path: events, body: `{"type":"incident.opened","data":{},"source":"x"}`, status: 422, code: "unknown_field"},
		{name: "ingest empty id", method: "POST", path: events, body: `{"type":"incident.opened","data":{},"id":""}`, status: 422, code: "invalid_id"},
		{name: "ingest numeric id", method: "POST", path: events, body: `{"type":"incident.opened","data":{},"id":7}`, status: 422, code: "invalid_id"},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.relay
			if r == nil {
				r = open
			}
			token := r.Token
			switch tt.token {
			case "-":
				token = ""
			case "":
			default:
				token = tt.token
			}
			ct := tt.ct
			switch {
			case ct == "-":
				ct = ""
			case ct == "" && tt.body != "":
				ct = json_
			}
			status, body, h := rawDo(t, r, tt.method, tt.path, ct, token, []byte(tt.body))
			checkErrorBody(t, status, body, tt.status, tt.code)
			if tt.header != "" && !strings.Contains(h.Get(tt.header), tt.headerHas) {
				t.Errorf("%s = %q, want it to contain %q", tt.header, h.Get(tt.header), tt.headerHas)
			}
			if strings.Contains(string(body), r.Token) {
				t.Errorf("error body echoes the api token: %s", body)
			}
		})
	}

	// Nothing was half-created, the fixture is as it was, and every relay is alive.
	for name, r := range map[string]*relaytest.Relay{"open": open, "strict": strict, "httpOnly": httpOnly} {
		all, err := r.Client.AllEndpoints(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if r == open {
			want = 1
		}
		if len(all) != want {
			t.Errorf("%s relay has %d endpoints after the bad-input battery, want %d: %+v", name, len(all), want, all)
		}
		checkAlive(t, r)
	}
	got := getEndpoint(t, open, fixture.ID)
	want := fixture
	want.Secret = ""
	checkEndpoint(t, got, want)
	if !got.UpdatedAt.Equal(fixture.UpdatedAt) {
		t.Errorf("a rejected patch touched updated_at: %v → %v", fixture.UpdatedAt, got.UpdatedAt)
	}
	// The relays still take good requests.
	if res := ingest(t, open, api.TypeDeployIngested, map[string]any{}); !strings.HasPrefix(res.ID, "evt_") {
		t.Errorf("ingest after the battery = %+v", res)
	}
	createEndpoint(t, strict, apiclient.EndpointCreate{URL: "https://hooks.example.com/ok"})
}

// TestContentTypeVariants: JSON with parameters or a +json subtype is accepted.
func TestContentTypeVariants(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"} {
		status, body, _ := r.Do("POST", "/api/events", ct, r.Token, []byte(`{"type":"incident.opened","data":{"a":1}}`))
		if status != http.StatusAccepted {
			t.Errorf("Content-Type %q: %d %s", ct, status, body)
		}
	}
	// Leading whitespace and a UTF-8 body are fine.
	status, body, _ := r.Do("POST", "/api/webhooks/endpoints", "application/json", r.Token,
		[]byte("\n  {\"url\":\"https://a.example.com/ü\",\"name\":\"Ünïcode ✓\"}\n"))
	if status != http.StatusCreated {
		t.Errorf("create with surrounding whitespace: %d %s", status, body)
	}
}

// TestBodyLimitGoClient: an ordinary Go client that sends an oversized body gets the 413,
// not a connection reset, every time (the relay drains the refused body before closing).
func TestBodyLimitGoClient(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	body := []byte(`{"type":"incident.opened","data":{"x":"` + strings.Repeat("a", 300<<10) + `"}}`)
	for range 10 {
		status, resp, _ := r.Do("POST", "/api/events", "application/json", r.Token, body)
		checkErrorBody(t, status, resp, http.StatusRequestEntityTooLarge, "payload_too_large")
	}
	// Exactly at the limit is accepted.
	prefix, suffix := `{"type":"incident.opened","data":{"x":"`, `"}}`
	exact := prefix + strings.Repeat("a", 256<<10-len(prefix)-len(suffix)) + suffix
	if status, resp, _ := r.Do("POST", "/api/events", "application/json", r.Token, []byte(exact)); status != http.StatusAccepted {
		t.Errorf("body of exactly 256 KiB: %d %s", status, resp)
	}
	checkAlive(t, r)
}
