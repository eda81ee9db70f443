package fleet

// Secrets at rest.
//
// Without Options.SecretKey secrets are stored as given ("whsec_…"). With it, every secret
// written is stored as
//
//	enc1:<key id>:<base64(nonce || AES-256-GCM ciphertext and tag)>
//
// with a random 96-bit nonce per write, a key id (the first 4 bytes of SHA-256 over a label
// and the key: names the key in errors, reveals nothing usable about it), and as additional
// data the endpoint id and the column, so a ciphertext copied to another row or column does
// not decrypt. A stored secret this relay cannot read (another key, no key, moved, altered,
// an unknown format) is ErrSecretKey: never garbage, never a plaintext guess.
//
// Plaintext rows stay readable when a key is set. Encryption protects the secrets' secrecy
// against someone who reads the database or its backups; accepting plaintext gives such a
// reader nothing, and it lets a fleet turn encryption on without downtime: EncryptSecrets
// then rewrites the remaining plaintext rows (relays with the key run it at start). The reverse
// is refused: a relay without the key fails on every encrypted row, so a relay deployed without
// the key is noticed at once rather than writing plaintext unnoticed for long.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/jackc/pgx/v5"
)

const (
	encPrefix     = "enc1:"
	colSecret     = "secret"
	colPrevSecret = "prev_secret"
)

func newAEAD(key []byte) (cipher.AEAD, string, error) {
	if len(key) != SecretKeySize {
		return nil, "", fmt.Errorf("fleet: secret key is %d bytes, want %d (AES-256)", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, "", fmt.Errorf("fleet: secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, "", fmt.Errorf("fleet: secret key: %w", err)
	}
	sum := sha256.Sum256(append([]byte("blametrail fleet secret key id\x00"), key...))
	return aead, hex.EncodeToString(sum[:4]), nil
}

// aad binds a ciphertext to its row and column.
func aad(id, column string) []byte {
	return []byte("blametrail endpoint secret v1\x00" + column + "\x00" + id)
}

// sealSecret is what to store for a secret of endpoint id: the secret itself without a key.
func (db *DB) sealSecret(id, column, secret string) (string, error) {
	if db.aead == nil {
		return secret, nil
	}
	nonce := make([]byte, db.aead.NonceSize(), db.aead.NonceSize()+len(secret)+db.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("fleet: encrypt secret of endpoint %s: %w", id, err)
	}
	sealed := db.aead.Seal(nonce, nonce, []byte(secret), aad(id, column))
	return encPrefix + db.keyID + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// looksSealed tells a sealed secret ("enc<version>:…", this format or a future one) from a
// plaintext one ("whsec_…").
func looksSealed(stored string) bool {
	return strings.HasPrefix(stored, "enc") && strings.Contains(stored[:min(len(stored), 8)], ":")
}

// openSecret reads a stored secret of endpoint id ("" stays "").
func (db *DB) openSecret(id, column, stored string) (string, error) {
	if !looksSealed(stored) {
		return stored, nil // plaintext
	}
	rest, ok := strings.CutPrefix(stored, encPrefix)
	if !ok {
		return "", fmt.Errorf("%w: %s of endpoint %s has an unknown format %q (written by a newer relay?)",
			ErrSecretKey, column, id, stored[:strings.IndexByte(stored, ':')+1])
	}
	keyID, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("%w: %s of endpoint %s is malformed", ErrSecretKey, column, id)
	}
	if db.aead == nil {
		return "", fmt.Errorf("%w: %s of endpoint %s is encrypted (key %s) and this relay has no secret key",
			ErrSecretKey, column, id, keyID)
	}
	if keyID != db.keyID {
		return "", fmt.Errorf("%w: %s of endpoint %s is encrypted with key %s, this relay's key is %s",
			ErrSecretKey, column, id, keyID, db.keyID)
	}
	sealed, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(sealed) < db.aead.NonceSize() {
		return "", fmt.Errorf("%w: %s of endpoint %s is malformed", ErrSecretKey, column, id)
	}
	n := db.aead.NonceSize()
	plain, err := db.aead.Open(nil, sealed[:n], sealed[n:], aad(id, column))
	if err != nil {
		return "", fmt.Errorf("%w: %s of endpoint %s does not decrypt for this row (copied from another row, or altered)",
			ErrSecretKey, column, id)
	}
	return string(plain), nil
}

// SecretInfo returns an endpoint's signing secret and, while the previous one still signs (by
// the database's clock), when it stops; ErrNotFound when there is no such endpoint.
func (db *DB) SecretInfo(ctx context.Context, id string) (api.SecretInfo, error) {
	var now time.Time
	e, err := db.scanEndpoint(db.pool.QueryRow(ctx, `SELECT `+columns+` FROM blametrail_endpoints WHERE id = $1`, id))
	if err == nil {
		err = db.pool.QueryRow(ctx, `SELECT now()`).Scan(&now)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return api.SecretInfo{}, fmt.Errorf("fleet: secret of endpoint %s: %w", id, err)
	}
	return e.SecretInfo(now), nil
}

// RotateSecret makes secret the endpoint's signing secret, with internal/store's semantics:
// with overlap > 0 the current secret keeps signing until now+overlap (the database's now);
// with 0 it stops at once; a previous secret still in its own overlap is dropped, so at most
// two secrets sign. A secret that already signs (the current one, or the previous one while
// valid) is refused with ErrSecretInUse. It returns what SecretInfo then reports.
func (db *DB) RotateSecret(ctx context.Context, id, secret string, overlap time.Duration) (api.SecretInfo, error) {
	if secret == "" || overlap < 0 {
		return api.SecretInfo{}, fmt.Errorf("fleet: rotate secret of endpoint %s: empty secret or negative overlap", id)
	}
	info, err := db.rotate(ctx, id, secret, overlap)
	if err != nil {
		return api.SecretInfo{}, fmt.Errorf("fleet: rotate secret of endpoint %s: %w", id, err)
	}
	return info, nil
}

func (db *DB) rotate(ctx context.Context, id, secret string, overlap time.Duration) (api.SecretInfo, error) {
	// The comparison needs the plaintext (ciphertexts differ on every write), so the row is
	// read and locked, then written, in one transaction: a concurrent rotation waits, then
	// judges the secret this one made.
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return api.SecretInfo{}, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	cur, err := db.scanEndpoint(tx.QueryRow(ctx, `SELECT `+columns+` FROM blametrail_endpoints WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return api.SecretInfo{}, ErrNotFound
	}
	if err != nil {
		return api.SecretInfo{}, err
	}
	var now time.Time // now() is the transaction's start: the same in every statement of it
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return api.SecretInfo{}, err
	}
	if secret == cur.Secret || secret == cur.PrevSecret && now.Before(cur.PrevSecretExpires) {
		return api.SecretInfo{}, ErrSecretInUse
	}
	newSecret, err := db.sealSecret(id, colSecret, secret)
	if err != nil {
		return api.SecretInfo{}, err
	}
	var prev *string
	if overlap > 0 {
		p, err := db.sealSecret(id, colPrevSecret, cur.Secret)
		if err != nil {
			return api.SecretInfo{}, err
		}
		prev = &p
	}
	e, err := db.scanEndpoint(tx.QueryRow(ctx, `UPDATE blametrail_endpoints SET
			secret = $2, prev_secret = $3,
			prev_secret_expires = CASE WHEN $3::text IS NULL THEN NULL ELSE now() + $4 * interval '1 microsecond' END,
			updated_at = now()
		WHERE id = $1 RETURNING `+columns, id, newSecret, prev, overlap.Microseconds()))
	if err != nil {
		return api.SecretInfo{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return api.SecretInfo{}, err
	}
	return e.SecretInfo(now), nil
}

// EncryptSecrets rewrites, encrypted with this relay's key, every secret still stored in
// plaintext, and returns how many endpoints it rewrote. Each is its own short transaction, so
// it can run while the fleet serves; running it twice, or on several relays at once, is safe.
func (db *DB) EncryptSecrets(ctx context.Context) (int, error) {
	if db.aead == nil {
		return 0, errors.New("fleet: encrypt secrets: this relay has no secret key")
	}
	rows, err := db.pool.Query(ctx, `SELECT id FROM blametrail_endpoints
		WHERE secret NOT LIKE 'enc1:%' OR prev_secret NOT LIKE 'enc1:%' ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("fleet: encrypt secrets: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("fleet: encrypt secrets: %w", err)
	}
	n := 0
	for _, id := range ids {
		done, err := db.encryptOne(ctx, id)
		if err != nil {
			return n, fmt.Errorf("fleet: encrypt secrets of endpoint %s: %w", id, err)
		}
		if done {
			n++
		}
	}
	return n, nil
}

func (db *DB) encryptOne(ctx context.Context, id string) (bool, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	var secret string
	var prev *string
	err = tx.QueryRow(ctx, `SELECT secret, prev_secret FROM blametrail_endpoints WHERE id = $1 FOR UPDATE`, id).Scan(&secret, &prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // deleted meanwhile
	}
	if err != nil {
		return false, err
	}
	changed := false
	seal := func(column, stored string) (string, error) {
		if looksSealed(stored) {
			// Checks it is ours: a row that also holds a secret sealed under another key or
			// in an unknown format is an error, not sealed a second time.
			_, err := db.openSecret(id, column, stored)
			return stored, err
		}
		changed = true
		return db.sealSecret(id, column, stored)
	}
	if secret, err = seal(colSecret, secret); err != nil {
		return false, err
	}
	if prev != nil {
		p, err := seal(colPrevSecret, *prev)
		if err != nil {
			return false, err
		}
		prev = &p
	}
	if !changed {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE blametrail_endpoints SET secret = $2, prev_secret = $3 WHERE id = $1`, id, secret, prev); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}
