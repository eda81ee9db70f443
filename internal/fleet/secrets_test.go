package fleet

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

func key(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, SecretKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	secretA = "whsec_c2VjcmV0LWEtc2VjcmV0LWEtc2VjcmV0LWEtMzI="
	secretB = "whsec_c2VjcmV0LWItc2VjcmV0LWItc2VjcmV0LWItMzI="
	secretC = "whsec_c2VjcmV0LWMtc2VjcmV0LWMtc2VjcmV0LWMtMzI="
)

// TestRotateSecret: internal/store's rotation rules, with and without encryption: the old
// secret keeps signing for the overlap (by the database's clock), 0 ends it at once, a secret
// that still signs cannot come back, an expired one can.
func TestRotateSecret(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]Options{"plaintext": {}, "encrypted": {SecretKey: key(t)}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db, dsn := newDB(t, opts)
			ctx := t.Context()
			ep := sample()
			ep.Secret = secretA
			create(t, db, ep)

			info, err := db.RotateSecret(ctx, ep.ID, secretB, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			e := get(t, db, ep.ID)
			want := e.UpdatedAt.Add(time.Hour) // updated_at is the rotation's now()
			if info.Secret != secretB || info.PreviousSecretExpiresAt == nil || !info.PreviousSecretExpiresAt.Equal(want) {
				t.Fatalf("RotateSecret = %+v, want %s until %s", info, secretB, want)
			}
			if e.Secret != secretB || e.PrevSecret != secretA || !e.PrevSecretExpires.Equal(want) {
				t.Fatalf("after rotation: %q, prev %q until %s", e.Secret, e.PrevSecret, e.PrevSecretExpires)
			}
			if got, err := db.SecretInfo(ctx, ep.ID); err != nil || got.Secret != secretB || got.PreviousSecretExpiresAt == nil ||
				!got.PreviousSecretExpiresAt.Equal(want) {
				t.Fatalf("SecretInfo = %+v, %v", got, err)
			}
			for _, s := range []string{secretA, secretB} {
				if _, err := db.RotateSecret(ctx, ep.ID, s, time.Hour); !errors.Is(err, ErrSecretInUse) {
					t.Errorf("rotate to %s, which signs: %v", s[:12], err)
				}
			}

			// The previous secret's overlap ends: it may come back.
			sqlExec(t, raw(t, dsn), `UPDATE blametrail_endpoints SET prev_secret_expires = now() - interval '1 second' WHERE id = $1`, ep.ID)
			if got, _ := db.SecretInfo(ctx, ep.ID); got.PreviousSecretExpiresAt != nil {
				t.Errorf("an expired previous secret is reported: %+v", got)
			}
			if _, err := db.RotateSecret(ctx, ep.ID, secretA, time.Hour); err != nil {
				t.Errorf("rotate back to an expired secret: %v", err)
			}

			info, err = db.RotateSecret(ctx, ep.ID, secretC, 0)
			if err != nil || info.Secret != secretC || info.PreviousSecretExpiresAt != nil {
				t.Fatalf("rotation with no overlap: %+v, %v", info, err)
			}
			if e := get(t, db, ep.ID); e.Secret != secretC || e.PrevSecret != "" || !e.PrevSecretExpires.IsZero() {
				t.Errorf("after rotation with no overlap: %+v", e)
			}
		})
	}
}

// stored is a secret column as PostgreSQL holds it.
func stored(t *testing.T, dsn, column, id string) string {
	t.Helper()
	var s string
	if err := raw(t, dsn).QueryRow(t.Context(), "SELECT "+column+" FROM blametrail_endpoints WHERE id = $1", id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSecretEncryption: with a key, secrets are stored sealed (a fresh nonce each write) and
// read back; another key, no key, a ciphertext moved to another row or column, an altered
// one or an unknown format are ErrSecretKey, never a wrong secret.
func TestSecretEncryption(t *testing.T) {
	t.Parallel()
	k1 := key(t)
	db, dsn := newDB(t, Options{SecretKey: k1})
	ctx := t.Context()
	a, b := sample(), sample()
	a.Secret, b.Secret = secretA, secretA
	create(t, db, a)
	create(t, db, b)
	if _, err := db.RotateSecret(ctx, b.ID, secretB, time.Hour); err != nil {
		t.Fatal(err)
	}
	sa, sb, pb := stored(t, dsn, "secret", a.ID), stored(t, dsn, "secret", b.ID), stored(t, dsn, "prev_secret", b.ID)
	for _, s := range []string{sa, sb, pb} {
		if !strings.HasPrefix(s, "enc1:") || strings.Contains(s, "c2VjcmV0") {
			t.Fatalf("stored secret %q is not sealed", s)
		}
	}
	if pb == sa {
		t.Errorf("the same secret sealed twice gave the same ciphertext")
	}
	if e := get(t, db, b.ID); e.Secret != secretB || e.PrevSecret != secretA {
		t.Errorf("read back %q, prev %q", e.Secret, e.PrevSecret)
	}

	expectKeyErr := func(t *testing.T, db *DB, id string, says ...string) {
		t.Helper()
		_, err := db.Get(ctx, id)
		if !errors.Is(err, ErrSecretKey) {
			t.Fatalf("Get %s: %v, want ErrSecretKey", id, err)
		}
		for _, s := range says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
	}
	wrong := open(t, dsn, Options{SecretKey: key(t)})
	expectKeyErr(t, wrong, a.ID, "encrypted with key "+db.keyID, "this relay's key is "+wrong.keyID)
	if _, _, err := wrong.List(ctx, "", 10); !errors.Is(err, ErrSecretKey) {
		t.Errorf("List with the wrong key: %v", err)
	}
	none := open(t, dsn, Options{})
	expectKeyErr(t, none, a.ID, "no secret key")
	if _, err := none.SecretInfo(ctx, a.ID); !errors.Is(err, ErrSecretKey) {
		t.Errorf("SecretInfo with no key: %v", err)
	}

	conn := raw(t, dsn)
	// b's current secret moved into a's row: it would sign a's deliveries with b's secret.
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET secret = $2 WHERE id = $1`, a.ID, sb)
	expectKeyErr(t, db, a.ID, "copied from another row")
	// b's previous secret moved into its current one.
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET secret = $2 WHERE id = $1`, b.ID, pb)
	expectKeyErr(t, db, b.ID)
	// One character of a ciphertext changed.
	c := create(t, db, sample())
	sc := []byte(stored(t, dsn, "secret", c.ID))
	sc[len(sc)-3] ^= 1
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET secret = $2 WHERE id = $1`, c.ID, string(sc))
	expectKeyErr(t, db, c.ID)
	sqlExec(t, conn, `UPDATE blametrail_endpoints SET secret = 'enc2:abcd:xyz' WHERE id = $1`, c.ID)
	expectKeyErr(t, db, c.ID, "unknown format")
}

// TestPlaintextWithKey: rows written without a key stay readable with one; EncryptSecrets
// seals them (once), after which a relay without the key can no longer read them.
func TestPlaintextWithKey(t *testing.T) {
	t.Parallel()
	dsn := newDSN(t)
	plain := open(t, dsn, Options{})
	k := key(t)
	keyed := open(t, dsn, Options{SecretKey: k})
	ctx := t.Context()
	p := sample()
	p.Secret = secretA
	create(t, plain, p)
	if _, err := plain.RotateSecret(ctx, p.ID, secretB, time.Hour); err != nil {
		t.Fatal(err)
	}
	sealed := create(t, keyed, sample())
	if e := get(t, keyed, p.ID); e.Secret != secretB || e.PrevSecret != secretA {
		t.Fatalf("plaintext row read with a key: %+v", e)
	}
	if _, err := plain.EncryptSecrets(ctx); err == nil {
		t.Error("EncryptSecrets without a key succeeded")
	}
	n, err := keyed.EncryptSecrets(ctx)
	if err != nil || n != 1 {
		t.Fatalf("EncryptSecrets = %d, %v; want 1", n, err)
	}
	if s, ps := stored(t, dsn, "secret", p.ID), stored(t, dsn, "prev_secret", p.ID); !strings.HasPrefix(s, "enc1:") || !strings.HasPrefix(ps, "enc1:") {
		t.Errorf("after EncryptSecrets: %q, %q", s, ps)
	}
	if e := get(t, keyed, p.ID); e.Secret != secretB || e.PrevSecret != secretA {
		t.Errorf("after EncryptSecrets: %+v", e)
	}
	if e := get(t, keyed, sealed.ID); e.Secret != sealed.Secret {
		t.Errorf("an already sealed row changed: %+v", e)
	}
	if n, err := keyed.EncryptSecrets(ctx); err != nil || n != 0 {
		t.Errorf("second EncryptSecrets = %d, %v", n, err)
	}
	if _, err := plain.Get(ctx, p.ID); !errors.Is(err, ErrSecretKey) {
		t.Errorf("keyless read after EncryptSecrets: %v", err)
	}
	// A row whose current secret is sealed under another key and whose previous one is in
	// plaintext: refused, not sealed around the foreign ciphertext.
	sqlExec(t, raw(t, dsn), `UPDATE blametrail_endpoints SET prev_secret = $2, prev_secret_expires = now() + interval '1 hour'
		WHERE id = $1`, sealed.ID, secretC)
	other := open(t, dsn, Options{SecretKey: key(t)})
	if _, err := other.EncryptSecrets(ctx); !errors.Is(err, ErrSecretKey) {
		t.Errorf("EncryptSecrets over a row under another key: %v", err)
	}
}
