package relay

// `blametrail-relay store import`: moving from one relay to a fleet without new secrets. It
// copies every endpoint of a stopped relay's data dir into the fleet's PostgreSQL, with its id,
// secrets and state, so receivers keep verifying and Terraform state keeps pointing at the
// same ids. It never writes a record to the data dir, never prints a secret or the DSN, and
// never overwrites an endpoint the fleet already holds.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/dirlock"
	"github.com/blametrail/terraform-provider-blametrail/internal/fleet"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// ImportConfig is the configuration of `blametrail-relay store import`.
type ImportConfig struct {
	DataDir string
	// Store is the fleet's PostgreSQL connection string (never printed: it may hold a password).
	Store          string
	StoreSecretKey []byte
}

// ImportUsage is the text above the flags in `blametrail-relay store import --help`.
const ImportUsage = `Usage: blametrail-relay store import --data-dir DIR --store DSN [--store-secret-key KEY]

Seeds a fleet's PostgreSQL from a single relay's data dir, to move from one relay to a fleet
without new secrets: every endpoint keeps its id, URL, name, description, event types, active
flag and disabled reason, failure counter, creation time and signing secret (and, during a
rotation's overlap, the previous secret and its expiry), so receivers keep verifying and
Terraform state stays valid.

The relay must be stopped: import takes the data dir's lock, and exits 1 when a relay holds it.
The data dir is only read (no record, no snapshot is written). An endpoint whose id PostgreSQL
already holds is skipped and left as it is, so running import again is safe. One line per
endpoint (id, name, imported or skipped) goes to stdout, never a secret or the connection
string. Then start the relays with --store DSN: a relay started on the old data dir keeps
delivering the events it had queued.

Exit status: 0 every endpoint imported or skipped, 1 failure, 2 usage error.

Flags (each also read from its BLAMETRAIL_* variable):
`

// LoadImportConfig reads the flags of `store import` (args follow "store import") over
// BLAMETRAIL_DATA_DIR, BLAMETRAIL_STORE and BLAMETRAIL_STORE_SECRET_KEY. Errors wrap ErrUsage,
// or are flag.ErrHelp; none quotes the DSN or the key.
func LoadImportConfig(args []string, getenv func(string) string, stderr io.Writer) (ImportConfig, error) {
	var c ImportConfig
	fs := flag.NewFlagSet("blametrail-relay store import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, ImportUsage)
	var key string
	fs.StringVar(&c.DataDir, "data-dir", getenv("BLAMETRAIL_DATA_DIR"), "the stopped relay's data directory (required; BLAMETRAIL_DATA_DIR)")
	fs.StringVar(&c.Store, "store", getenv("BLAMETRAIL_STORE"), "the fleet's PostgreSQL connection string, postgres://… or host=… dbname=… (required; BLAMETRAIL_STORE)")
	fs.StringVar(&key, "store-secret-key", getenv("BLAMETRAIL_STORE_SECRET_KEY"), "the fleet's --store-secret-key, when it encrypts secrets at rest: secrets are written encrypted with it (BLAMETRAIL_STORE_SECRET_KEY)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	p := parser{}
	if c.DataDir == "" {
		p.check("data-dir", errors.New("is required: the data directory of the relay to import from"))
	}
	if c.Store == "" || c.Store == "local" {
		p.check("store", errors.New("is required: the fleet's PostgreSQL connection string (postgres://… or host=… dbname=…)"))
	} else {
		c.StoreSecretKey = p.store(c.Store, key)
	}
	return c, p.err
}

// ImportResult counts what an import did.
type ImportResult struct {
	Imported, Skipped int
}

// importTimeout bounds each call to PostgreSQL during an import.
const importTimeout = 30 * time.Second

// ImportStore copies every endpoint of cfg.DataDir into the fleet's PostgreSQL, in id order,
// writing one line per endpoint to out. It holds the data dir's lock throughout, so no relay
// starts on the data dir (and changes an endpoint) while it runs. It stops at the first
// failure: what it imported until then stays, and a second run skips it. log hears the
// store's recovery warnings.
func ImportStore(ctx context.Context, cfg ImportConfig, out io.Writer, log *slog.Logger) (ImportResult, error) {
	var res ImportResult
	// The lock creates a missing directory: a mistyped --data-dir must be an error, not an
	// empty relay with nothing to import.
	if fi, err := os.Stat(cfg.DataDir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return res, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	lock, err := dirlock.Acquire(cfg.DataDir)
	if err != nil {
		var le *dirlock.LockedError
		if errors.As(err, &le) {
			holder := "another process"
			if le.PID > 0 {
				holder = fmt.Sprintf("another process (pid %d)", le.PID)
			}
			return res, fmt.Errorf("data dir %s is in use by %s, most likely its relay: stop the relay first, "+
				"import reads a data dir only while nothing writes to it", cfg.DataDir, holder)
		}
		return res, err
	}
	defer lock.Release()

	states, fleetCopy, err := readEndpoints(cfg.DataDir, log)
	if err != nil {
		return res, err
	}
	if fleetCopy {
		log.Warn("this data dir belongs to a relay in fleet mode: its endpoints are a copy of that fleet's, as it last saw them", "data_dir", cfg.DataDir)
	}

	octx, cancel := context.WithTimeout(ctx, importTimeout)
	db, err := fleet.Open(octx, cfg.Store, fleet.Options{SecretKey: cfg.StoreSecretKey})
	cancel()
	if err != nil {
		// fleet's errors never hold the password (pgx redacts it); the DSN is not added.
		return res, fmt.Errorf("open the fleet's PostgreSQL (--store): %w", err)
	}
	defer db.Close()
	if err := checkFleetKey(ctx, db); err != nil {
		return res, err
	}

	now := time.Now()
	for _, st := range states {
		e := fleet.Endpoint{ID: st.ID, URL: st.URL, Name: st.Name, Description: st.Description,
			EventTypes: st.EventTypes, Active: st.Active, DisabledReason: st.DisabledReason,
			ConsecutiveFailures: st.ConsecutiveFailures, Secret: st.Secret,
			CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt}
		// A previous secret past its expiry signs nothing: it is not copied anywhere new.
		if st.PrevSecret != "" && now.Before(st.PrevSecretExpires) {
			e.PrevSecret, e.PrevSecretExpires = st.PrevSecret, st.PrevSecretExpires
		}
		cctx, cancel := context.WithTimeout(ctx, importTimeout)
		got, err := db.Create(cctx, e)
		cancel()
		switch {
		case errors.Is(err, fleet.ErrExists):
			res.Skipped++
			fmt.Fprintf(out, "skipped  %s name=%q reason=%q\n", e.ID, e.Name, "already in the fleet (left as it is)")
			continue
		case err != nil:
			return res, fmt.Errorf("import endpoint %s: %w", e.ID, err)
		case got.Secret != e.Secret || got.PrevSecret != e.PrevSecret:
			// Read back through the same key: never report imported what would not verify.
			return res, fmt.Errorf("import endpoint %s: the secret read back differs from the one written", e.ID)
		}
		res.Imported++
		line := fmt.Sprintf("imported %s name=%q", e.ID, e.Name)
		if !e.Active {
			line += " active=false disabled_reason=" + e.DisabledReason
		}
		if e.PrevSecret != "" {
			line += " previous_secret_expires=" + e.PrevSecretExpires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintln(out, line)
	}
	return res, nil
}

// readEndpoints reads every endpoint of a stopped relay's data dir through a read-only store,
// and whether the dir was a fleet relay's.
func readEndpoints(dir string, log *slog.Logger) ([]store.EndpointState, bool, error) {
	st, err := store.Open(store.Options{Dir: dir, ReadOnly: true, Logger: log})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("data dir %s holds no relay state (no wal directory): is it the relay's --data-dir?", dir)
		}
		return nil, false, fmt.Errorf("read the relay's state in %s: %w", dir, err)
	}
	defer st.Close()
	states, err := st.EndpointStates()
	if err != nil {
		return nil, false, fmt.Errorf("read the relay's state in %s: %w", dir, err)
	}
	return states, st.Synced(), nil
}

// checkFleetKey reads every endpoint the fleet holds: one whose secret this key cannot read
// means the key is not the fleet's (or the fleet encrypts and none was given), and the
// endpoints imported with it would be unreadable to the fleet's relays, or stored in plaintext
// next to encrypted ones.
func checkFleetKey(ctx context.Context, db *fleet.DB) error {
	for cursor := ""; ; {
		lctx, cancel := context.WithTimeout(ctx, importTimeout)
		_, next, err := db.List(lctx, cursor, 500)
		cancel()
		switch {
		case errors.Is(err, fleet.ErrSecretKey):
			return fmt.Errorf("the fleet's secrets are encrypted with another key than --store-secret-key, or "+
				"none was given: give the relays' own --store-secret-key: %w", err)
		case err != nil:
			return fmt.Errorf("read the fleet's endpoints: %w", err)
		case next == "":
			return nil
		}
		cursor = next
	}
}
