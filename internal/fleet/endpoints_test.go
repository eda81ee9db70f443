package fleet

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

func ptr[T any](v T) *T { return &v }

// TestCRUD: an endpoint is stored as given, read back, patched and deleted; a missing one is
// ErrNotFound for every operation, a taken id ErrExists.
func TestCRUD(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	ctx := t.Context()
	in := sample()
	in.EventTypes = []string{"incident.opened", "deploy.ingested"}
	out := create(t, db, in)
	if out.ID != in.ID || out.URL != in.URL || out.Name != in.Name || out.Description != in.Description ||
		!slices.Equal(out.EventTypes, in.EventTypes) || !out.Active || out.DisabledReason != "" ||
		out.Secret != in.Secret || out.PrevSecret != "" || out.Version == 0 {
		t.Errorf("Create returned %+v for %+v", out, in)
	}
	if out.CreatedAt.IsZero() || !out.CreatedAt.Equal(out.UpdatedAt) || out.CreatedAt.Location() != time.UTC {
		t.Errorf("times %v, %v", out.CreatedAt, out.UpdatedAt)
	}
	if v := out.View(); v.ID != in.ID || v.DisabledReason != nil || v.Secret != "" || !slices.Equal(v.EventTypes, in.EventTypes) {
		t.Errorf("View = %+v", v)
	}
	if got := get(t, db, in.ID); !equalEndpoint(got, out) {
		t.Errorf("Get = %+v, want %+v", got, out)
	}
	if _, err := db.Create(ctx, in); !errors.Is(err, ErrExists) {
		t.Errorf("second Create: %v, want ErrExists", err)
	}

	up, err := db.Update(ctx, in.ID, api.EndpointInput{URL: ptr("https://example.org/new"), EventTypes: ptr([]string{})})
	if err != nil {
		t.Fatal(err)
	}
	if up.URL != "https://example.org/new" || up.Name != in.Name || len(up.EventTypes) != 0 || up.Version <= out.Version ||
		up.UpdatedAt.Before(out.UpdatedAt) || !up.CreatedAt.Equal(out.CreatedAt) {
		t.Errorf("Update returned %+v", up)
	}
	if err := db.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}

	missing := in.ID
	if _, err := db.Get(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get: %v", err)
	}
	if _, err := db.Update(ctx, missing, api.EndpointInput{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update: %v", err)
	}
	if err := db.Delete(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete: %v", err)
	}
	if _, err := db.RotateSecret(ctx, missing, "whsec_x", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("RotateSecret: %v", err)
	}
	if _, err := db.SecretInfo(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("SecretInfo: %v", err)
	}
	if _, err := db.Update(ctx, missing, api.EndpointInput{Secret: ptr("whsec_x")}); err == nil {
		t.Errorf("Update took a secret")
	}
}

func equalEndpoint(a, b Endpoint) bool {
	return a.ID == b.ID && a.URL == b.URL && a.Name == b.Name && a.Description == b.Description &&
		slices.Equal(a.EventTypes, b.EventTypes) && a.Active == b.Active && a.DisabledReason == b.DisabledReason &&
		a.ConsecutiveFailures == b.ConsecutiveFailures && a.Secret == b.Secret && a.PrevSecret == b.PrevSecret &&
		a.PrevSecretExpires.Equal(b.PrevSecretExpires) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt) && a.Version == b.Version
}

// TestActiveFlag: the active flag follows the admin API's rules, whoever writes it: PATCH
// active:true clears the reason and the counter; active:false disables "manual" but keeps the
// reason of an endpoint the relay disabled; manual SQL gets the same through the trigger.
func TestActiveFlag(t *testing.T) {
	t.Parallel()
	db, dsn := newDB(t, Options{})
	ctx := t.Context()
	conn := raw(t, dsn)

	off := sample()
	off.Active = false
	if e := create(t, db, off); e.Active || e.DisabledReason != api.DisabledManual {
		t.Errorf("created inactive: active %v reason %q", e.Active, e.DisabledReason)
	}

	ep := create(t, db, sample())
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET active = false, disabled_reason = 'gone', consecutive_failures = 4 WHERE id = $1`, ep.ID)
	e, err := db.Update(ctx, ep.ID, api.EndpointInput{Active: ptr(false)})
	if err != nil || e.DisabledReason != api.DisabledGone {
		t.Errorf("active:false on a gone endpoint: %+v, %v (want the reason kept)", e, err)
	}
	e, err = db.Update(ctx, ep.ID, api.EndpointInput{Active: ptr(true)})
	if err != nil || !e.Active || e.DisabledReason != "" || e.ConsecutiveFailures != 0 {
		t.Errorf("active:true: %+v, %v", e, err)
	}
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET consecutive_failures = 3 WHERE id = $1`, ep.ID)
	if e, _ := db.Update(ctx, ep.ID, api.EndpointInput{Active: ptr(true)}); e.ConsecutiveFailures != 0 {
		t.Errorf("active:true on an active endpoint kept %d failures", e.ConsecutiveFailures)
	}
	if e, _ := db.Update(ctx, ep.ID, api.EndpointInput{Active: ptr(false)}); e.Active || e.DisabledReason != api.DisabledManual {
		t.Errorf("active:false: active %v reason %q", e.Active, e.DisabledReason)
	} else if v := e.View(); v.DisabledReason == nil || *v.DisabledReason != api.DisabledManual {
		t.Errorf("View of a disabled endpoint: %+v", v)
	}

	// Manual SQL: disabling by hand is "manual"; enabling clears reason and counter.
	ep2 := create(t, db, sample())
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET active = false WHERE id = $1`, ep2.ID)
	if e := get(t, db, ep2.ID); e.DisabledReason != api.DisabledManual || e.Version <= ep2.Version {
		t.Errorf("SQL disable: reason %q, version %d (was %d)", e.DisabledReason, e.Version, ep2.Version)
	}
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET consecutive_failures = 9 WHERE id = $1`, ep2.ID)
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET active = true WHERE id = $1`, ep2.ID)
	if e := get(t, db, ep2.ID); !e.Active || e.DisabledReason != "" || e.ConsecutiveFailures != 0 {
		t.Errorf("SQL enable: %+v", e)
	}
}

// TestListPages: pages in id order with the last id as the cursor; the last page says there
// is no next one; every endpoint is seen once.
func TestListPages(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	ctx := t.Context()
	var want []string
	for i := range 7 {
		ep := sample()
		ep.ID = fmt.Sprintf("ep_%c%02d", 'z'-i, i) // created in reverse id order
		create(t, db, ep)
		want = append(want, ep.ID)
	}
	slices.Sort(want)
	for _, limit := range []int{1, 3, 7, 100} {
		var got []string
		cursor, pages := "", 0
		for {
			page, next, err := db.List(ctx, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			for _, e := range page {
				got = append(got, e.ID)
				if e.Secret == "" {
					t.Errorf("listed %s without its secret", e.ID)
				}
			}
			if next == "" {
				break
			}
			if next != page[len(page)-1].ID {
				t.Fatalf("next cursor %q, last id %q", next, page[len(page)-1].ID)
			}
			cursor = next
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: listed %v, want %v", limit, got, want)
		}
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	if page, next, err := db.List(ctx, want[len(want)-1], 5); err != nil || len(page) != 0 || next != "" {
		t.Errorf("past the end: %v %q %v", page, next, err)
	}
	if _, _, err := db.List(ctx, "", 0); err == nil {
		t.Errorf("limit 0 accepted")
	}
}

// TestCreateImport: Create keeps the whole state it is given (what seeding from a local relay
// needs): times, counter, reason, previous secret.
func TestCreateImport(t *testing.T) {
	t.Parallel()
	db, _ := newDB(t, Options{})
	in := sample()
	in.Active, in.DisabledReason, in.ConsecutiveFailures = false, api.DisabledConsecutiveFailures, 10
	in.PrevSecret = "whsec_cHJldmlvdXMtc2VjcmV0LXNpZ25zLXN0aWxsLTMyYg=="
	in.PrevSecretExpires = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	in.CreatedAt = time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	in.UpdatedAt = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	e := create(t, db, in)
	in.Version = e.Version
	if !equalEndpoint(e, in) {
		t.Errorf("stored %+v\nwant   %+v", e, in)
	}
}
