package main_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

var endpointKeys = []string{
	"active", "consecutive_failures", "created_at", "description", "disabled_reason",
	"event_types", "id", "name", "updated_at", "url",
}

func jsonKeys(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, body)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func checkRFC3339UTC(t *testing.T, field string, body []byte) time.Time {
	t.Helper()
	var m map[string]json.RawMessage
	_ = json.Unmarshal(body, &m)
	var s string
	if err := json.Unmarshal(m[field], &s); err != nil {
		t.Fatalf("%s is not a string: %s", field, m[field])
	}
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		t.Errorf("%s = %q, want RFC 3339 UTC", field, s)
	}
	return ts
}

func TestAdminCreateGetSecret(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	body := `{"url":"https://hooks.example.com/a?x=1","name":"Dashboard","description":"line one\nline two",` +
		`"event_types":["incident.opened","deploy.ingested"],"active":true}`
	status, created, h := r.Do("POST", "/api/webhooks/endpoints", "application/json", r.Token, []byte(body))
	if status != http.StatusCreated {
		t.Fatalf("create = %d %s", status, created)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if got, want := jsonKeys(t, created), append(slices.Clone(endpointKeys), "secret"); !slices.Equal(got, sorted(want)) {
		t.Errorf("create keys = %v, want %v", got, sorted(want))
	}
	var ep api.Endpoint
	if err := json.Unmarshal(created, &ep); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.ID, "ep_") || len(ep.ID) != len("ep_")+26 {
		t.Errorf("id = %q", ep.ID)
	}
	want := api.Endpoint{
		ID: ep.ID, URL: "https://hooks.example.com/a?x=1", Name: "Dashboard", Description: "line one\nline two",
		EventTypes: []string{"incident.opened", "deploy.ingested"}, Active: true,
	}
	checkEndpoint(t, ep, want)
	key, ok := strings.CutPrefix(ep.Secret, "whsec_")
	raw, err := base64.StdEncoding.DecodeString(key)
	if !ok || err != nil || len(raw) != 32 {
		t.Errorf("secret %q: want whsec_ + base64 of 32 bytes (err %v, %d bytes)", ep.Secret, err, len(raw))
	}
	created1 := checkRFC3339UTC(t, "created_at", created)
	updated1 := checkRFC3339UTC(t, "updated_at", created)
	if !created1.Equal(updated1) || time.Since(created1).Abs() > time.Minute {
		t.Errorf("created_at %v updated_at %v, want equal and now", created1, updated1)
	}

	status, got, _ := r.Do("GET", "/api/webhooks/endpoints/"+ep.ID, "", r.Token, nil)
	if status != http.StatusOK {
		t.Fatalf("get = %d %s", status, got)
	}
	if keys := jsonKeys(t, got); !slices.Equal(keys, endpointKeys) {
		t.Errorf("get keys = %v, want %v (no secret)", keys, endpointKeys)
	}
	var gotEp api.Endpoint
	_ = json.Unmarshal(got, &gotEp)
	checkEndpoint(t, gotEp, want)

	status, sec, _ := r.Do("GET", "/api/webhooks/endpoints/"+ep.ID+"/secret", "", r.Token, nil)
	if status != http.StatusOK {
		t.Fatalf("secret = %d %s", status, sec)
	}
	if keys := jsonKeys(t, sec); !slices.Equal(keys, []string{"previous_secret_expires_at", "secret"}) {
		t.Errorf("secret keys = %v", keys)
	}
	var s api.Secret
	_ = json.Unmarshal(sec, &s)
	if s.Secret != ep.Secret {
		t.Errorf("GET secret = %q, create returned %q", s.Secret, ep.Secret)
	}

	// Defaults: no description, no event types, active.
	status, minimal, _ := r.Do("POST", "/api/webhooks/endpoints", "application/json", r.Token,
		[]byte(`{"url":"https://hooks.example.com/b","name":"Minimal"}`))
	if status != http.StatusCreated {
		t.Fatalf("create minimal = %d %s", status, minimal)
	}
	var m api.Endpoint
	_ = json.Unmarshal(minimal, &m)
	checkEndpoint(t, m, api.Endpoint{ID: m.ID, URL: "https://hooks.example.com/b", Name: "Minimal", EventTypes: []string{}, Active: true})
	if !strings.Contains(string(minimal), `"event_types":[]`) || !strings.Contains(string(minimal), `"disabled_reason":null`) {
		t.Errorf("minimal endpoint should carry event_types [] and disabled_reason null: %s", minimal)
	}
	if m.ID <= ep.ID {
		t.Errorf("ids should grow: %s then %s", ep.ID, m.ID)
	}

	// Created inactive: disabled by hand.
	off := false
	inactive := createEndpoint(t, r, apiclient.EndpointCreate{URL: "https://hooks.example.com/c", Active: &off})
	if inactive.Active || inactive.DisabledReason == nil || *inactive.DisabledReason != api.DisabledManual {
		t.Errorf("created with active:false = %+v, want inactive with reason manual", inactive)
	}
	checkAlive(t, r)
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// checkEndpoint compares the user-visible fields; timestamps are checked elsewhere.
func checkEndpoint(t *testing.T, got, want api.Endpoint) {
	t.Helper()
	reason := func(p *string) string {
		if p == nil {
			return "<null>"
		}
		return *p
	}
	if got.ID != want.ID || got.URL != want.URL || got.Name != want.Name || got.Description != want.Description ||
		!slices.Equal(got.EventTypes, want.EventTypes) || got.Active != want.Active ||
		reason(got.DisabledReason) != reason(want.DisabledReason) || got.ConsecutiveFailures != want.ConsecutiveFailures {
		t.Errorf("endpoint =\n %+v (reason %s)\nwant\n %+v (reason %s)", got, reason(got.DisabledReason), want, reason(want.DisabledReason))
	}
	if got.EventTypes == nil {
		t.Errorf("event_types is null, want a list")
	}
}

func TestAdminListPagination(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	var ids []string
	for i := range 7 {
		ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: "https://hooks.example.com/" + string(rune('a'+i)), Name: "ep " + string(rune('a'+i))})
		ids = append(ids, ep.ID)
	}
	var got []string
	var sizes []int
	path := "/api/webhooks/endpoints?limit=3"
	for range 10 {
		status, body, _ := r.Do("GET", path, "", r.Token, nil)
		if status != http.StatusOK {
			t.Fatalf("list %s = %d %s", path, status, body)
		}
		if keys := jsonKeys(t, body); !slices.Equal(keys, []string{"data", "next_cursor"}) {
			t.Errorf("list keys = %v", keys)
		}
		var page api.EndpointList
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Data))
		for _, ep := range page.Data {
			got = append(got, ep.ID)
			if ep.Secret != "" {
				t.Errorf("list leaks the secret of %s", ep.ID)
			}
		}
		if page.NextCursor == nil {
			if !strings.Contains(string(body), `"next_cursor":null`) {
				t.Errorf("last page should say next_cursor null: %s", body)
			}
			break
		}
		path = "/api/webhooks/endpoints?limit=3&cursor=" + *page.NextCursor
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Errorf("page sizes = %v, want [3 3 1]", sizes)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("listed %v, want creation order %v", got, ids)
	}

	// Default limit returns all seven in one page; the client's walk agrees.
	all, err := r.Client.AllEndpoints(testCtx(t))
	if err != nil || len(all) != 7 {
		t.Errorf("AllEndpoints = %d, %v", len(all), err)
	}
	// A deleted endpoint's id still works as a cursor.
	if err := r.Client.DeleteEndpoint(testCtx(t), ids[2]); err != nil {
		t.Fatal(err)
	}
	page, err := r.Client.ListEndpoints(testCtx(t), ids[2], 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 3 || page.Data[0].ID != ids[3] {
		t.Errorf("page after deleted cursor starts at %v, want %s", page.Data, ids[3])
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=251", "limit=abc", "cursor=nope", "cursor=ep_zzzzzzzzzzzzzzzzzzzzzzzzzz"} {
		status, body, _ := r.Do("GET", "/api/webhooks/endpoints?"+q, "", r.Token, nil)
		checkErrorBody(t, status, body, http.StatusUnprocessableEntity, "")
	}
}

func TestAdminPatch(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	str := func(s string) *string { return &s }
	tests := []struct {
		name  string
		patch string
		apply func(*api.Endpoint)
	}{
		{"url", `{"url":"https://other.example.com/new/path?q=1"}`, func(e *api.Endpoint) { e.URL = "https://other.example.com/new/path?q=1" }},
		{"name", `{"name":"Renamed ✓"}`, func(e *api.Endpoint) { e.Name = "Renamed ✓" }},
		{"description", `{"description":"now described"}`, func(e *api.Endpoint) { e.Description = "now described" }},
		{"description null clears", `{"description":null}`, func(e *api.Endpoint) { e.Description = "" }},
		{"event_types", `{"event_types":["incident.resolved","incident.opened"]}`, func(e *api.Endpoint) {
			e.EventTypes = []string{"incident.resolved", "incident.opened"}
		}},
		{"event_types empty = all", `{"event_types":[]}`, func(e *api.Endpoint) { e.EventTypes = []string{} }},
		{"active false", `{"active":false}`, func(e *api.Endpoint) { e.Active = false; e.DisabledReason = str(api.DisabledManual) }},
		{"active true", `{"active":true}`, func(e *api.Endpoint) { e.Active = true; e.DisabledReason = nil }},
		{"empty patch", `{}`, func(*api.Endpoint) {}},
		{"all at once", `{"url":"https://x.example.com/","name":"n","description":"d","event_types":["deploy.ingested"],"active":true}`,
			func(e *api.Endpoint) {
				e.URL, e.Name, e.Description, e.EventTypes, e.Active = "https://x.example.com/", "n", "d", []string{"deploy.ingested"}, true
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := createEndpoint(t, r, apiclient.EndpointCreate{
				URL: "https://hooks.example.com/orig", Name: "Original", Description: "original description",
				EventTypes: []string{"incident.acknowledged"},
			})
			if tt.name == "active true" {
				off := false
				patchEndpoint(t, r, orig.ID, apiclient.EndpointPatch{Active: &off})
			}
			want := orig
			want.Secret = ""
			tt.apply(&want)
			time.Sleep(2 * time.Millisecond) // updated_at has millisecond resolution
			status, body, _ := r.Do("PATCH", "/api/webhooks/endpoints/"+orig.ID, "application/json", r.Token, []byte(tt.patch))
			if status != http.StatusOK {
				t.Fatalf("patch = %d %s", status, body)
			}
			if keys := jsonKeys(t, body); !slices.Equal(keys, endpointKeys) {
				t.Errorf("patch answer keys = %v", keys)
			}
			var got api.Endpoint
			_ = json.Unmarshal(body, &got)
			checkEndpoint(t, got, want)
			checkEndpoint(t, getEndpoint(t, r, orig.ID), want)
			if !got.CreatedAt.Equal(orig.CreatedAt) || !got.UpdatedAt.After(orig.UpdatedAt) {
				t.Errorf("created_at %v→%v updated_at %v→%v: want created kept, updated later",
					orig.CreatedAt, got.CreatedAt, orig.UpdatedAt, got.UpdatedAt)
			}
			if sec, err := r.Client.Secret(testCtx(t), orig.ID); err != nil || sec != orig.Secret {
				t.Errorf("patch changed the secret: %q, %v", sec, err)
			}
		})
	}
}

// TestAdminReenableClearsFailures: active:true clears disabled_reason and consecutive_failures.
func TestAdminReenableClearsFailures(t *testing.T) {
	t.Parallel()
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "10ms"}})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	ingest(t, r, api.TypeIncidentOpened, map[string]any{"n": 1})
	ingest(t, r, api.TypeIncidentOpened, map[string]any{"n": 2})
	waitFinished(t, r, ep.ID, 2)
	if got := getEndpoint(t, r, ep.ID); got.ConsecutiveFailures != 2 || !got.Active {
		t.Fatalf("after two failed deliveries: %+v, want active with consecutive_failures 2", got)
	}
	off, on := false, true
	got := patchEndpoint(t, r, ep.ID, apiclient.EndpointPatch{Active: &off})
	if got.Active || got.DisabledReason == nil || *got.DisabledReason != api.DisabledManual {
		t.Errorf("active:false = %+v, want disabled_reason manual", got)
	}
	got = patchEndpoint(t, r, ep.ID, apiclient.EndpointPatch{Active: &on})
	if !got.Active || got.DisabledReason != nil || got.ConsecutiveFailures != 0 {
		t.Errorf("active:true = %+v, want active, no reason, consecutive_failures 0", got)
	}
}

func TestAdminDelete(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: "https://hooks.example.com/del"})
	keep := createEndpoint(t, r, apiclient.EndpointCreate{URL: "https://hooks.example.com/keep"})
	status, body, _ := r.Do("DELETE", "/api/webhooks/endpoints/"+ep.ID, "", r.Token, nil)
	if status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("delete = %d %q, want 204 and no body", status, body)
	}
	p := "/api/webhooks/endpoints/" + ep.ID
	for _, c := range []struct{ method, path, ct, body string }{
		{"GET", p, "", ""},
		{"GET", p + "/deliveries", "", ""},
		{"POST", p + "/test", "", ""},
		{"PATCH", p, "application/json", `{"name":"x"}`},
		{"DELETE", p, "", ""},
	} {
		status, body, _ := r.Do(c.method, c.path, c.ct, r.Token, []byte(c.body))
		checkErrorBody(t, status, body, http.StatusNotFound, "endpoint_not_found")
	}
	_, err := r.Client.Endpoint(testCtx(t), ep.ID)
	if !errors.Is(err, apiclient.ErrNotFound) {
		t.Errorf("client get after delete: %v, want ErrNotFound", err)
	}
	all, err := r.Client.AllEndpoints(testCtx(t))
	if err != nil || len(all) != 1 || all[0].ID != keep.ID {
		t.Errorf("after delete the list is %v (%v), want only %s", all, err, keep.ID)
	}
}

func TestEventTypesAndHealth(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})
	status, body, _ := r.Do("GET", "/api/event-types", "", r.Token, nil)
	if status != http.StatusOK {
		t.Fatalf("event-types = %d %s", status, body)
	}
	var list api.EventTypeList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	want := []string{"incident.opened", "incident.acknowledged", "incident.resolved", "deploy.ingested", "test.ping"}
	if !slices.Equal(list.Data, want) {
		t.Errorf("event types = %v, want %v", list.Data, want)
	}
	status, body, _ = r.Do("GET", "/api/event-types", "", "", nil)
	checkErrorBody(t, status, body, http.StatusUnauthorized, "unauthorized")

	for _, path := range []string{"/healthz", "/readyz"} {
		status, body, h := r.Do("GET", path, "", "", nil)
		if status != http.StatusOK || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s without auth = %d %q %s", path, status, h.Get("Content-Type"), body)
		}
		status, _, _ = r.Do("HEAD", path, "", "", nil)
		if status != http.StatusOK {
			t.Errorf("HEAD %s = %d", path, status)
		}
	}
}
