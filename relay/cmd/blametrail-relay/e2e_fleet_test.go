package main_test

// Fleet mode, admin side: what is written through one relay is read through the others at once
// and takes effect on every relay within fleetPropagation (see e2e_fleet_helpers_test.go).

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/pgtest"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// TestFleetCreateReadThroughAnyRelay: endpoints created through each relay, concurrently, are
// read through the two others at once (200, never 404, the same fields), their secrets read
// through another relay equal the create answer's, and the list through C holds them all.
// Secrets are encrypted at rest with --store-secret-key (relay C gets its DSN and key from
// BLAMETRAIL_STORE and BLAMETRAIL_STORE_SECRET_KEY), and every relay signs with them; a
// rotation through C is what A and B read back.
func TestFleetCreateReadThroughAnyRelay(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "fleet_create")
	key, tok := storeSecretKey(), fleetToken()
	rs := startMembers(t,
		fleetOpts(dsn, tok, "--store-secret-key", key),
		fleetOpts(dsn, tok, "--store-secret-key", key),
		relaytest.Options{Token: tok, Args: []string{"--retry-schedule", fleetSchedule},
			Env: []string{"BLAMETRAIL_STORE=" + dsn, "BLAMETRAIL_STORE_SECRET_KEY=" + key}})
	rc := relaytest.NewReceiver(t, nil)

	const perRelay = 4
	ctx := testCtx(t)
	var mu sync.Mutex
	var made []api.Endpoint
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			for k := range perRelay {
				in := fleetEndpoint(fmt.Sprintf("%s/%s%d", rc.URL, strings.ToLower(fleetNames[i]), k))
				in.Name = fmt.Sprintf("made through %s, #%d", fleetNames[i], k)
				ep, err := r.Client.CreateEndpoint(ctx, in)
				if err != nil {
					t.Errorf("create through %s: %v", fleetNames[i], err)
					return
				}
				var reads sync.WaitGroup
				for j := range rs {
					if j == i {
						continue
					}
					reads.Go(func() {
						got, err := rs[j].Client.Endpoint(ctx, ep.ID)
						if err != nil {
							t.Errorf("GET %s through %s at once after its create through %s: %v", ep.ID, fleetNames[j], fleetNames[i], err)
							return
						}
						checkEndpoint(t, got, ep)
					})
				}
				reads.Go(func() {
					j := (i + 1) % len(rs)
					s, err := rs[j].Client.SecretInfo(ctx, ep.ID)
					if err != nil || s.Secret != ep.Secret {
						t.Errorf("secret of %s through %s: %v, equal to the create answer's: %v", ep.ID, fleetNames[j], err, s.Secret == ep.Secret)
					}
				})
				reads.Wait()
				mu.Lock()
				made = append(made, ep)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	list, err := rs[2].Client.AllEndpoints(ctx)
	if err != nil {
		t.Fatalf("list through C: %v", err)
	}
	if len(list) != len(made) {
		t.Errorf("list through C has %d endpoints, want %d", len(list), len(made))
	}
	secrets := map[string]string{} // receiver path → secret
	for _, ep := range made {
		i := slices.IndexFunc(list, func(e api.Endpoint) bool { return e.ID == ep.ID })
		if i < 0 {
			t.Errorf("list through C lacks %s (%s)", ep.ID, ep.Name)
			continue
		}
		checkEndpoint(t, list[i], ep)
		u, err := url.Parse(ep.URL)
		if err != nil {
			t.Fatal(err)
		}
		secrets[u.Path] = ep.Secret
	}

	// At rest, every secret is ciphertext.
	rows, err := pgConn(t, dsn).Query(ctx, "SELECT id, secret FROM blametrail_endpoints")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ ID, Secret string }])
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(made) {
		t.Errorf("%d rows in blametrail_endpoints, want %d", len(stored), len(made))
	}
	for _, row := range stored {
		if strings.HasPrefix(row.Secret, "whsec_") || slices.ContainsFunc(made, func(e api.Endpoint) bool { return strings.Contains(row.Secret, e.Secret) }) {
			t.Errorf("endpoint %s's secret is stored in plaintext with --store-secret-key set", row.ID)
		}
	}

	// Every relay fans out to all of them and signs with each one's secret.
	time.Sleep(fleetPropagation)
	for i, r := range rs {
		ingestExpect(t, r, len(made), "ingest on "+fleetNames[i])
	}
	reqs := waitCount(t, rc, len(rs)*len(made))
	for _, req := range reqs {
		secret, ok := secrets[req.Path]
		if !ok {
			t.Errorf("a delivery to %s, which no endpoint has", req.Path)
			continue
		}
		if err := signature.VerifyHeaders(secret, req.Header, req.Body); err != nil {
			t.Errorf("delivery to %s: %v", req.Path, err)
		}
	}

	// A rotation through C is what A and B read back.
	rot, err := rs[2].Client.RotateSecret(ctx, made[0].ID, apiclient.SecretRotation{ExpirePreviousIn: "1h"})
	if err != nil {
		t.Fatalf("rotate through C: %v", err)
	}
	for i, r := range rs[:2] {
		got := secretInfo(t, r, made[0].ID)
		// The expiry as stored may be rounded (PostgreSQL keeps microseconds): the same to the second.
		if got.Secret != rot.Secret || got.PreviousSecretExpiresAt == nil || rot.PreviousSecretExpiresAt == nil ||
			got.PreviousSecretExpiresAt.Sub(*rot.PreviousSecretExpiresAt).Abs() >= time.Second {
			t.Errorf("secret through %s after the rotation through C: new secret equal %v, expiry %v, want %v",
				fleetNames[i], got.Secret == rot.Secret, got.PreviousSecretExpiresAt, rot.PreviousSecretExpiresAt)
		}
	}
	for _, r := range rs {
		checkAlive(t, r)
	}
}

// TestFleetToggleStopsDeliveriesEverywhere: active:false through C takes effect on C at once
// and on A and B within fleetPropagation: an event ingested there then makes no delivery to the
// endpoint (or a held one) and the receiver gets nothing; active:true through B resumes
// deliveries on A. The same holds for a change made by manual SQL, which no relay made.
func TestFleetToggleStopsDeliveriesEverywhere(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).CreateDB(t, "fleet_toggle")
	rs := startFleet(t, dsn)
	a, b, c := rs[0], rs[1], rs[2]
	rc := relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, a, fleetEndpoint(rc.URL))
	time.Sleep(fleetPropagation)
	waitReceived(t, rc, ingestExpect(t, a, 1, "A, the endpoint active"), ingestExpect(t, c, 1, "C, the endpoint active"))

	off, on := false, true
	got := patchEndpoint(t, c, ep.ID, apiclient.EndpointPatch{Active: &off})
	if got.Active || got.DisabledReason == nil || *got.DisabledReason != api.DisabledManual {
		t.Errorf("PATCH active:false through C answered %+v, want inactive, reason manual", got)
	}
	held := []string{ingestNotDelivered(t, c, ep.ID, "C, at once after its own toggle")}
	time.Sleep(fleetPropagation)
	held = append(held, ingestNotDelivered(t, a, ep.ID, "A, 1 s after C's toggle"),
		ingestNotDelivered(t, b, ep.ID, "B, 1 s after C's toggle"))
	checkNotReceived(t, rc, held...)

	patchEndpoint(t, b, ep.ID, apiclient.EndpointPatch{Active: &on})
	time.Sleep(fleetPropagation)
	waitReceived(t, rc, ingestExpect(t, a, 1, "A, 1 s after B re-enabled the endpoint"))

	// Manual SQL: the trigger notifies every relay, none of which made the change.
	if _, err := pgConn(t, dsn).Exec(testCtx(t), "UPDATE blametrail_endpoints SET active = false WHERE id = $1", ep.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(fleetPropagation)
	held = held[:0]
	for i, r := range rs {
		held = append(held, ingestNotDelivered(t, r, ep.ID, fleetNames[i]+", 1 s after a manual UPDATE … SET active = false"))
		if got := getEndpoint(t, r, ep.ID); got.Active || got.DisabledReason == nil || *got.DisabledReason != api.DisabledManual {
			t.Errorf("GET through %s after the manual disable: %+v, want inactive, reason manual", fleetNames[i], got)
		}
	}
	checkNotReceived(t, rc, held...)

	patchEndpoint(t, a, ep.ID, apiclient.EndpointPatch{Active: &on})
	waitReceived(t, rc, ingestExpect(t, a, 1, "A, at once after its own re-enable"))
	time.Sleep(fleetPropagation)
	waitReceived(t, rc, ingestExpect(t, c, 1, "C, 1 s after A re-enabled the endpoint"))
	for _, r := range rs {
		checkAlive(t, r)
	}
}

// TestFleetPatchReachesOtherRelays: a URL changed through A is where B and C deliver within
// fleetPropagation, signed with the endpoint's secret; the old URL gets nothing more. A secret
// rotated through B (the previous one expiring at once) is what C signs with within
// fleetPropagation.
func TestFleetPatchReachesOtherRelays(t *testing.T) {
	t.Parallel()
	rs := startFleet(t, pgtest.Shared(t).CreateDB(t, "fleet_patch"))
	a, b, c := rs[0], rs[1], rs[2]
	oldRC, newRC := relaytest.NewReceiver(t, nil), relaytest.NewReceiver(t, nil)
	ep := createEndpoint(t, a, fleetEndpoint(oldRC.URL))
	time.Sleep(fleetPropagation)
	waitReceived(t, oldRC, ingestExpect(t, c, 1, "C, before the patch"))

	if got := patchEndpoint(t, a, ep.ID, apiclient.EndpointPatch{URL: &newRC.URL}); got.URL != newRC.URL {
		t.Errorf("PATCH url through A answered url %q, want %q", got.URL, newRC.URL)
	}
	time.Sleep(fleetPropagation)
	moved := []string{ingestExpect(t, c, 1, "C, 1 s after A's patch"), ingestExpect(t, b, 1, "B, 1 s after A's patch")}
	for _, req := range waitReceived(t, newRC, moved...) {
		if err := signature.VerifyHeaders(ep.Secret, req.Header, req.Body); err != nil {
			t.Errorf("delivery to the new URL: %v", err)
		}
	}
	checkNotReceived(t, oldRC, moved...)

	rot, err := b.Client.RotateSecret(testCtx(t), ep.ID, apiclient.SecretRotation{ExpirePreviousIn: "0s"})
	if err != nil {
		t.Fatalf("rotate through B: %v", err)
	}
	if got := secretInfo(t, a, ep.ID); got.Secret != rot.Secret {
		t.Errorf("secret through A right after the rotation through B is not the new one")
	}
	time.Sleep(fleetPropagation)
	req := waitReceived(t, newRC, ingestExpect(t, c, 1, "C, 1 s after B's rotation"))[0]
	checkVerifies(t, req, ep.Secret, rot.Secret, false, 1)
	for _, r := range rs {
		checkAlive(t, r)
	}
}

// TestFleetDeleteEverywhere: an endpoint deleted through B is 404 endpoint_not_found through A
// within fleetPropagation (at once, since reads go to PostgreSQL), gone from C's list, and
// within fleetPropagation no relay fans out to it any more, while the endpoint beside it still
// gets every event. Deleting it again through A is 404 endpoint_not_found.
func TestFleetDeleteEverywhere(t *testing.T) {
	t.Parallel()
	rs := startFleet(t, pgtest.Shared(t).CreateDB(t, "fleet_delete"))
	a, b, c := rs[0], rs[1], rs[2]
	goneRC, keptRC := relaytest.NewReceiver(t, nil), relaytest.NewReceiver(t, nil)
	gone := createEndpoint(t, a, fleetEndpoint(goneRC.URL))
	kept := createEndpoint(t, c, fleetEndpoint(keptRC.URL))
	time.Sleep(fleetPropagation)
	before := ingestExpect(t, a, 2, "A, before the delete")
	waitReceived(t, goneRC, before)
	waitReceived(t, keptRC, before)

	if err := b.Client.DeleteEndpoint(testCtx(t), gone.ID); err != nil {
		t.Fatalf("delete through B: %v", err)
	}
	relaytest.Eventually(t, fleetPropagation, "GET through A to answer 404 endpoint_not_found", func() bool {
		_, err := a.Client.Endpoint(testCtx(t), gone.ID)
		return errors.Is(err, apiclient.ErrEndpointNotFound)
	})
	status, body, _ := doAt(t, c.AdminURL, "GET", "/api/webhooks/endpoints/"+gone.ID, c.Token, nil)
	checkErrorBody(t, status, body, http.StatusNotFound, api.CodeEndpointNotFound)
	list, err := c.Client.AllEndpoints(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != kept.ID {
		t.Errorf("list through C after the delete: %+v, want only %s", list, kept.ID)
	}

	time.Sleep(fleetPropagation)
	after := []string{ingestExpect(t, a, 1, "A, 1 s after B's delete"), ingestExpect(t, c, 1, "C, 1 s after B's delete")}
	waitReceived(t, keptRC, after...)
	checkNotReceived(t, goneRC, after...)

	err = a.Client.DeleteEndpoint(testCtx(t), gone.ID)
	if !errors.Is(err, apiclient.ErrEndpointNotFound) {
		t.Errorf("second delete through A: %v, want 404 endpoint_not_found", err)
	}
	for _, r := range rs {
		checkAlive(t, r)
	}
}
