package main_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// TestInfo: GET /api/info names the relay and its API version, so a client can confirm what
// it talks to before it trusts an endpoint_not_found. It is authenticated like the rest of
// /api: the version is not told to whoever can reach the port.
func TestInfo(t *testing.T) {
	t.Parallel()
	r := relaytest.Start(t, relaytest.Options{})

	status, body, h := r.Do("GET", "/api/info", "", r.Token, nil)
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/info = %d %s %q", status, h.Get("Content-Type"), body)
	}
	if got, want := jsonKeys(t, body), []string{"api_version", "name", "version"}; !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	var info api.Info
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if info != (api.Info{Name: "blametrail-relay", APIVersion: 1, Version: "test"}) {
		t.Errorf("info = %+v", info)
	}

	got, err := r.Client.Info(testCtx(t))
	if err != nil || got != info {
		t.Errorf("client Info = %+v, %v", got, err)
	}

	for _, tok := range []string{"", "wrong"} {
		status, body, _ := r.Do("GET", "/api/info", "", tok, nil)
		checkErrorBody(t, status, body, http.StatusUnauthorized, "unauthorized")
	}
	status, body, _ = r.Do("POST", "/api/info", "application/json", r.Token, []byte(`{}`))
	checkErrorBody(t, status, body, http.StatusMethodNotAllowed, "method_not_allowed")
}
