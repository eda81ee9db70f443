package main_test

// End to end on the real binary: rotating an endpoint's signing secret with an overlap, bringing
// your own secret, and the rotation's refusals.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// broughtSecret is a secret "from Vault": whsec_ and n random bytes.
func broughtSecret(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// deliverOne posts an event and returns the request the receiver got for it.
func deliverOne(t *testing.T, r *relaytest.Relay, rc *relaytest.Receiver) relaytest.Request {
	t.Helper()
	n := rc.Count()
	ingest(t, r, api.TypeIncidentOpened, map[string]any{"n": n})
	reqs := waitCount(t, rc, n+1)
	return reqs[n]
}

// checkVerifies asserts which receivers accept a delivery: one that holds only secret old,
// one that holds only secret new. It also checks that both header families carry the same
// list of sigs signatures. oldSecret "" checks only the new one.
func checkVerifies(t *testing.T, req relaytest.Request, oldSecret, newSecret string, oldOK bool, sigs int) {
	t.Helper()
	std, bt := req.Header.Get(signature.HeaderSignature), req.Header.Get(signature.HeaderBlameTrailSignature)
	if std != bt {
		t.Errorf("%s = %q but %s = %q", signature.HeaderSignature, std, signature.HeaderBlameTrailSignature, bt)
	}
	if n := len(strings.Fields(std)); n != sigs {
		t.Errorf("signature header holds %d signatures, want %d: %q", n, sigs, std)
	}
	if err := signature.VerifyHeaders(newSecret, req.Header, req.Body); err != nil {
		t.Errorf("receiver holding only the new secret: %v", err)
	}
	if oldSecret == "" { // no rotation yet
		return
	}
	err := signature.VerifyHeaders(oldSecret, req.Header, req.Body)
	switch {
	case oldOK && err != nil:
		t.Errorf("receiver holding only the old secret, during the overlap: %v", err)
	case !oldOK && !errors.Is(err, signature.ErrNoMatchingSignature):
		t.Errorf("receiver holding only the old secret, after the overlap: err = %v, want ErrNoMatchingSignature", err)
	}
}

func secretInfo(t *testing.T, r *relaytest.Relay, id string) api.SecretInfo {
	t.Helper()
	info, err := r.Client.SecretInfo(testCtx(t), id)
	if err != nil {
		t.Fatalf("GET secret of %s: %v", id, err)
	}
	return info
}

// TestE2ESecretRotationOverlap: after a rotation with a 3 s overlap, a receiver that still
// holds the old secret and one that already holds the new one both verify; once the overlap
// is over only the new one does, and GET …/secret stops showing the expiry.
func TestE2ESecretRotationOverlap(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Args: permissive})
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	oldSecret := ep.Secret
	if info := secretInfo(t, r, ep.ID); info.Secret != oldSecret || info.PreviousSecretExpiresAt != nil {
		t.Fatalf("before any rotation: %+v", info)
	}
	checkVerifies(t, deliverOne(t, r, rc), "", oldSecret, false, 1)

	before := time.Now()
	info, err := r.Client.RotateSecret(testCtx(t), ep.ID, apiclient.SecretRotation{ExpirePreviousIn: "3s"})
	if err != nil {
		t.Fatal(err)
	}
	newSecret := info.Secret
	if newSecret == oldSecret || api.ValidateSecret(newSecret) != nil {
		t.Fatalf("rotation answered secret %q", newSecret)
	}
	exp := info.PreviousSecretExpiresAt
	if exp == nil || exp.Before(before.Add(3*time.Second-time.Second)) || exp.After(time.Now().Add(3*time.Second+time.Second)) {
		t.Fatalf("previous_secret_expires_at = %v, want about 3 s from now", exp)
	}
	if got := secretInfo(t, r, ep.ID); got.Secret != newSecret || got.PreviousSecretExpiresAt == nil || !got.PreviousSecretExpiresAt.Equal(*exp) {
		t.Fatalf("GET secret during the overlap = %+v, want %s until %s", got, newSecret, exp)
	}
	checkVerifies(t, deliverOne(t, r, rc), oldSecret, newSecret, true, 2)

	// Wait out the overlap by polling the API, which judges it by the same clock as the signer.
	relaytest.Eventually(t, waitLong, "previous secret to expire", func() bool {
		return secretInfo(t, r, ep.ID).PreviousSecretExpiresAt == nil
	})
	checkVerifies(t, deliverOne(t, r, rc), oldSecret, newSecret, false, 1)

	// "0s" retires the previous secret at once.
	info, err = r.Client.RotateSecret(testCtx(t), ep.ID, apiclient.SecretRotation{ExpirePreviousIn: "0s"})
	if err != nil {
		t.Fatal(err)
	}
	if info.PreviousSecretExpiresAt != nil {
		t.Fatalf("rotation with 0s: previous_secret_expires_at = %v, want null", info.PreviousSecretExpiresAt)
	}
	checkVerifies(t, deliverOne(t, r, rc), newSecret, info.Secret, false, 1)
}

// TestE2ESecretRotationSurvivesSIGKILL: the rotation and its overlap are in the WAL; after a
// SIGKILL and a restart both secrets still sign, with the same expiry.
func TestE2ESecretRotationSurvivesSIGKILL(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Args: permissive})
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	info, err := r.Client.RotateSecret(testCtx(t), ep.ID, apiclient.SecretRotation{})
	if err != nil {
		t.Fatal(err)
	}
	if info.PreviousSecretExpiresAt == nil || time.Until(*info.PreviousSecretExpiresAt) < 23*time.Hour {
		t.Fatalf("default overlap: previous_secret_expires_at = %v, want 24 h from now", info.PreviousSecretExpiresAt)
	}
	r.Kill()
	r.Restart()
	got := secretInfo(t, r, ep.ID)
	if got.Secret != info.Secret || got.PreviousSecretExpiresAt == nil || !got.PreviousSecretExpiresAt.Equal(*info.PreviousSecretExpiresAt) {
		t.Fatalf("after SIGKILL and restart: %+v, want %s until %s", got, info.Secret, info.PreviousSecretExpiresAt)
	}
	checkVerifies(t, deliverOne(t, r, rc), ep.Secret, info.Secret, true, 2)
}

// TestE2ESecretBringYourOwn: a secret brought on create and on rotate is the one that signs.
func TestE2ESecretBringYourOwn(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Args: permissive})
	rc := relaytest.NewReceiver(t, nil)
	first, second := broughtSecret(t, 32), broughtSecret(t, 64)
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL, Secret: first})
	if ep.Secret != first || secretInfo(t, r, ep.ID).Secret != first {
		t.Fatalf("create with a brought secret answered %q", ep.Secret)
	}
	checkVerifies(t, deliverOne(t, r, rc), "", first, false, 1)

	info, err := r.Client.RotateSecret(testCtx(t), ep.ID, apiclient.SecretRotation{Secret: second, ExpirePreviousIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Secret != second || secretInfo(t, r, ep.ID).Secret != second {
		t.Fatalf("rotate with a brought secret answered %q", info.Secret)
	}
	checkVerifies(t, deliverOne(t, r, rc), first, second, true, 2)

	// The secret that signs (current, or previous during its overlap) cannot be rotated to.
	for _, sec := range []string{first, second} {
		_, err := r.Client.RotateSecret(testCtx(t), ep.ID, apiclient.SecretRotation{Secret: sec})
		var ae *apiclient.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "secret_in_use" {
			t.Errorf("rotate to a secret in use: %v, want 409 secret_in_use", err)
		}
	}
}

// TestE2ESecretRefusals: the secret routes' 4xx answers, each with its code.
func TestE2ESecretRefusals(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Args: permissive})
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	rotate := endpointsPath + "/" + ep.ID + "/secret/rotate"
	short := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23))
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		code                                  string
	}{
		{"create: secret not whsec", "POST", endpointsPath, "application/json",
			`{"url":"` + rc.URL + `","name":"n","secret":"hunter2"}`, 422, api.CodeInvalidSecret},
		{"create: 23-byte secret", "POST", endpointsPath, "application/json",
			`{"url":"` + rc.URL + `","name":"n","secret":"` + short + `"}`, 422, api.CodeInvalidSecret},
		{"rotate: 23-byte secret", "POST", rotate, "application/json", `{"secret":"` + short + `"}`, 422, api.CodeInvalidSecret},
		{"rotate: url-safe base64", "POST", rotate, "application/json",
			`{"secret":"whsec_` + strings.Repeat("-", 32) + `"}`, 422, api.CodeInvalidSecret},
		{"rotate: over 7 days", "POST", rotate, "application/json", `{"expire_previous_in":"169h"}`, 422, api.CodeInvalidExpirePreviousIn},
		{"rotate: negative", "POST", rotate, "application/json", `{"expire_previous_in":"-1h"}`, 422, api.CodeInvalidExpirePreviousIn},
		{"rotate: not a duration", "POST", rotate, "application/json", `{"expire_previous_in":"tomorrow"}`, 422, api.CodeInvalidExpirePreviousIn},
		{"rotate: number", "POST", rotate, "application/json", `{"expire_previous_in":86400}`, 422, api.CodeInvalidExpirePreviousIn},
		{"rotate: unknown field", "POST", rotate, "application/json", `{"grace":"1h"}`, 422, "unknown_field"},
		{"rotate: malformed", "POST", rotate, "application/json", `{"expire_previous_in":`, 400, "malformed_json"},
		{"rotate: not JSON", "POST", rotate, "text/plain", `expire=1h`, 415, "unsupported_media_type"},
		{"rotate: GET", "GET", rotate, "", ``, 405, "method_not_allowed"},
		{"secret: POST", "POST", endpointsPath + "/" + ep.ID + "/secret", "application/json", `{}`, 405, "method_not_allowed"},
		{"rotate: unknown endpoint", "POST", endpointsPath + "/ep_01JD0000000000000000000000/secret/rotate", "application/json", `{}`, 404, "endpoint_not_found"},
		{"rotate: malformed id", "POST", endpointsPath + "/nope/secret/rotate", "application/json", `{}`, 404, "endpoint_not_found"},
		{"secret: unknown endpoint", "GET", endpointsPath + "/ep_01JD0000000000000000000000/secret", "", ``, 404, "endpoint_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := rawDo(t, r, tt.method, tt.path, tt.contentType, r.Token, []byte(tt.body))
			checkErrorBody(t, status, body, tt.status, tt.code)
			if strings.Contains(string(body), short[6:]) {
				t.Errorf("the error quotes the secret: %s", body)
			}
		})
	}
	// A deleted endpoint's secret routes.
	gone := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	if err := r.Client.DeleteEndpoint(testCtx(t), gone.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", endpointsPath + "/" + gone.ID + "/secret"},
		{"POST", endpointsPath + "/" + gone.ID + "/secret/rotate"},
	} {
		status, body, _ := rawDo(t, r, c.method, c.path, "", r.Token, nil)
		checkErrorBody(t, status, body, 404, "endpoint_not_found")
	}
	// No token: 401 before anything else.
	status, body, _ := rawDo(t, r, "POST", rotate, "application/json", "", []byte(`{}`))
	checkErrorBody(t, status, body, 401, "unauthorized")

	// None of that changed the secret; an empty body rotates with the defaults.
	if got := secretInfo(t, r, ep.ID); got.Secret != ep.Secret || got.PreviousSecretExpiresAt != nil {
		t.Fatalf("refused rotations changed the secret: %+v", got)
	}
	status, body, _ = rawDo(t, r, "POST", rotate, "", r.Token, nil)
	var info api.SecretInfo
	if status != 200 || json.Unmarshal(body, &info) != nil || info.Secret == ep.Secret || info.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate with no body: %d %s", status, body)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(body, &raw)
	if len(raw) != 2 {
		t.Errorf("rotation answer has fields other than secret and previous_secret_expires_at: %s", body)
	}
}

const endpointsPath = "/api/webhooks/endpoints"
