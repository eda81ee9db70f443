package relay

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// FleetMode reports whether the relay keeps its endpoints in PostgreSQL (--store is a DSN).
func (c Config) FleetMode() bool { return c.Store != "local" }

// store checks --store and --store-secret-key and returns the key's bytes. Neither value is
// quoted in an error: a DSN may hold a password, and the key is a secret.
func (p *parser) store(dsn, key string) []byte {
	switch {
	case dsn == "local":
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"), strings.Contains(dsn, "="):
	default:
		p.check("store", errors.New(`must be "local" or a PostgreSQL connection string (postgres://… or host=… dbname=…)`))
		return nil
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return nil
	}
	if dsn == "local" {
		p.check("store-secret-key", errors.New("applies to fleet mode only (--store with a PostgreSQL connection string)"))
		return nil
	}
	for _, dec := range []func(string) ([]byte, error){base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString} {
		if b, err := dec(key); err == nil && len(b) == 32 {
			return b
		}
	}
	p.check("store-secret-key", errors.New("must be the base64 or hex encoding of exactly 32 bytes (for example: openssl rand -base64 32)"))
	return nil
}
