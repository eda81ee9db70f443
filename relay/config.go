// Package relay is the BlameTrail webhook relay: configuration, the HTTP server (admin API,
// ingest, health), and the wiring of store and delivery engine. Only its binary,
// relay/cmd/blametrail-relay, imports it; tests start that binary instead of importing this.
package relay

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/delivery"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

// Config is the relay's whole configuration, from flags and BLAMETRAIL_* variables.
type Config struct {
	Listen      string
	AdminListen string
	// Store is "local" or, in fleet mode, a PostgreSQL connection string (never logged).
	Store string
	// StoreSecretKey (fleet mode, optional) encrypts signing secrets at rest: 32 bytes.
	StoreSecretKey       []byte
	DataDir              string
	APIToken             string
	IngestToken          string
	RetrySchedule        []time.Duration
	DeliveryTimeout      time.Duration
	DisableAfter         int
	AllowHTTP            bool
	AllowPrivateNetworks bool
	Fsync                string
	MaxBodySize          int
	MaxConnections       int
	MaxConnsPerIP        int
	MaxInFlight          int
	HistoryLimit         int
	ShutdownTimeout      time.Duration
	WALRepair            bool
	WALSegmentSize       int64
	PayloadCache         int
	HistoryCache         int
	HistoryPayloadBytes  int64 // 0: none kept past replay and live payloads
	IdempotencyCache     int
	SnapshotBytes        int64
	SnapshotInterval     time.Duration
	MemoryLimit          int64
	MemoryLimitGiven     bool // by flag or environment; otherwise a container's limit may lower it
	PprofListen          string
	MetricsListen        string
	LogFormat            string
	LogLevel             slog.Level
	Version              string
}

// MaxBodySizeLimit is the largest --max-body-size: what one WAL record holds, less room for the
// rest of an event's record.
const MaxBodySizeLimit = wal.MaxRecordSize - 1<<20

// MinTokenLength is the shortest API token the relay accepts, in characters.
const MinTokenLength = 16

// ErrUsage is a configuration the relay refuses to start with.
var ErrUsage = errors.New("usage")

// Usage is the text above the flags in `blametrail-relay --help`.
const Usage = `Usage: blametrail-relay [flags]
       blametrail-relay store import --data-dir DIR --store DSN [--store-secret-key KEY]

Runs the BlameTrail webhook relay: it accepts events (POST /api/events), keeps them in its
write-ahead log and delivers them, signed, to the endpoints managed through its admin API.
Each flag can also be set by its BLAMETRAIL_* variable (--data-dir: BLAMETRAIL_DATA_DIR).

Commands:
  store import   seed a fleet's PostgreSQL (--store) from a stopped relay's data dir, keeping
                 endpoint ids and signing secrets (blametrail-relay store import --help)

Flags:
`

// LoadConfig reads flags from args over environment variables (via getenv) over defaults.
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("blametrail-relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, Usage)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var schedule, timeout, shutdown, level string
	var disableAfter, maxBody, maxInFlight, history string
	var allowHTTP, allowPrivate, walRepair string
	var historyCache, histPayload, maxConns, maxConnsPerIP, storeKey string
	var segSize, payloadCache, idemCache, snapBytes, snapInterval, memLimit string
	fs.StringVar(&c.Listen, "listen", env("BLAMETRAIL_LISTEN", "127.0.0.1:8080"), "address of the HTTP server: ingest and health, and admin API, UI and metrics unless --admin-listen is set")
	fs.StringVar(&c.AdminListen, "admin-listen", env("BLAMETRAIL_ADMIN_LISTEN", ""), "serve the admin API, UI and metrics on this address instead of on --listen, which then serves ingest and health only (off when empty)")
	fs.StringVar(&c.DataDir, "data-dir", env("BLAMETRAIL_DATA_DIR", "./blametrail-data"), "directory for the WAL, snapshots and the generated API token")
	fs.StringVar(&c.APIToken, "api-token", env("BLAMETRAIL_API_TOKEN", ""), "bearer token for everything: admin API, metrics and ingest (default: generated on first start into <data-dir>/api-token)")
	fs.StringVar(&c.Store, "store", env("BLAMETRAIL_STORE", "local"), "where endpoints, secrets and failure counters live: local, or a PostgreSQL connection string (postgres://… or host=… dbname=…) for fleet mode")
	fs.StringVar(&storeKey, "store-secret-key", env("BLAMETRAIL_STORE_SECRET_KEY", ""), "fleet mode: base64 (or hex) of a 32-byte key that encrypts signing secrets in PostgreSQL (AES-256-GCM); every relay of the fleet needs the same")
	fs.StringVar(&c.IngestToken, "ingest-token", env("BLAMETRAIL_INGEST_TOKEN", ""), "bearer token that can only post events (POST /api/events), for the application; off when empty")
	fs.StringVar(&schedule, "retry-schedule", env("BLAMETRAIL_RETRY_SCHEDULE", "1m,6m,36m,3h36m,21h36m"), "delays before retries 1..n, ±10% jitter")
	fs.StringVar(&timeout, "delivery-timeout", env("BLAMETRAIL_DELIVERY_TIMEOUT", "10s"), "one attempt's whole time limit")
	fs.StringVar(&disableAfter, "disable-after", env("BLAMETRAIL_DISABLE_AFTER", "10"), "consecutive failed deliveries before an endpoint is disabled (0 = never)")
	allowHTTP = env("BLAMETRAIL_ALLOW_HTTP", "false")
	allowPrivate = env("BLAMETRAIL_ALLOW_PRIVATE_NETWORKS", "false")
	fs.Var((*boolText)(&allowHTTP), "allow-http", "accept http:// endpoint URLs")
	fs.Var((*boolText)(&allowPrivate), "allow-private-networks", "allow destinations on loopback, private, link-local or unspecified addresses")
	fs.StringVar(&c.Fsync, "fsync", env("BLAMETRAIL_FSYNC", "batch"), "batch (group commit), always, or none (unsafe)")
	fs.StringVar(&maxBody, "max-body-size", env("BLAMETRAIL_MAX_BODY_SIZE", "262144"), "largest request body in bytes")
	fs.StringVar(&maxConns, "max-connections", env("BLAMETRAIL_MAX_CONNECTIONS", "10000"), "connections served at once, per listener; more are answered 503 and closed")
	fs.StringVar(&maxConnsPerIP, "max-connections-per-ip", env("BLAMETRAIL_MAX_CONNECTIONS_PER_IP", "0"), "connections served at once from one client address, per listener, answered 429 beyond (0 = no limit: a sidecar's application connects from 127.0.0.1)")
	fs.StringVar(&maxInFlight, "max-in-flight", env("BLAMETRAIL_MAX_IN_FLIGHT", "16"), "attempts in flight per endpoint")
	fs.StringVar(&history, "history-limit", env("BLAMETRAIL_HISTORY_LIMIT", "100"), "finished deliveries kept per endpoint")
	fs.StringVar(&shutdown, "shutdown-timeout", env("BLAMETRAIL_SHUTDOWN_TIMEOUT", "15s"), "how long shutdown waits for in-flight requests and attempts")
	walRepair = env("BLAMETRAIL_WAL_REPAIR", "false")
	fs.Var((*boolText)(&walRepair), "wal-repair", "on corruption before the WAL's tail, keep a copy of the damaged segment and truncate at the last good record instead of refusing to start")
	fs.StringVar(&segSize, "wal-segment-size", env("BLAMETRAIL_WAL_SEGMENT_SIZE", "67108864"), "bytes per WAL segment before rotation")
	fs.StringVar(&payloadCache, "payload-cache", env("BLAMETRAIL_PAYLOAD_CACHE", "10000"), "event bodies kept in memory (LRU); others are read back from the WAL")
	fs.StringVar(&historyCache, "history-cache", env("BLAMETRAIL_HISTORY_CACHE", "100000"), "finished deliveries kept across all endpoints (LRU), within --history-limit per endpoint")
	fs.StringVar(&histPayload, "history-payload-bytes", env("BLAMETRAIL_HISTORY_PAYLOAD_BYTES", "268435456"), "WAL bytes kept beyond what replay needs so that finished deliveries can be resent (0 = none)")
	fs.StringVar(&idemCache, "idempotency-cache", env("BLAMETRAIL_IDEMPOTENCY_CACHE", "100000"), "ingest idempotency keys remembered (LRU)")
	fs.StringVar(&snapBytes, "snapshot-bytes", env("BLAMETRAIL_SNAPSHOT_BYTES", "67108864"), "take a snapshot after this many bytes of WAL")
	fs.StringVar(&snapInterval, "snapshot-interval", env("BLAMETRAIL_SNAPSHOT_INTERVAL", "5m"), "take a snapshot at least this often while state changes")
	fs.StringVar(&memLimit, "memory-limit", env("BLAMETRAIL_MEMORY_LIMIT", strconv.Itoa(DefaultMemoryLimit)), "soft memory limit in bytes for the Go runtime (0 = none; GOMEMLIMIT wins when set); when not given, 90% of the container's memory limit if that is lower")
	fs.StringVar(&c.PprofListen, "pprof-listen", env("BLAMETRAIL_PPROF_LISTEN", ""), "serve Go profiles on this address (e.g. 127.0.0.1:6060); off when empty")
	fs.StringVar(&c.MetricsListen, "metrics-listen", env("BLAMETRAIL_METRICS_LISTEN", ""), "also serve /metrics without auth on this address (e.g. 127.0.0.1:9090); /metrics on --listen (or --admin-listen) keeps requiring the token")
	fs.StringVar(&c.LogFormat, "log-format", env("BLAMETRAIL_LOG_FORMAT", "text"), "text or json")
	fs.StringVar(&level, "log-level", env("BLAMETRAIL_LOG_LEVEL", "info"), "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	var err error
	p := parser{}
	c.RetrySchedule, err = delivery.ParseSchedule(schedule)
	p.check("retry-schedule", err)
	c.DeliveryTimeout = p.duration("delivery-timeout", timeout, time.Second/10, time.Hour)
	c.ShutdownTimeout = p.duration("shutdown-timeout", shutdown, 0, time.Hour)
	c.DisableAfter = p.integer("disable-after", disableAfter, 0, 1_000_000)
	// An event's record holds its body plus the envelope, the idempotency key and the fan-out:
	// keep a megabyte of the WAL's largest record for those.
	c.MaxBodySize = p.integer("max-body-size", maxBody, 1024, MaxBodySizeLimit)
	c.MaxConnections = p.integer("max-connections", maxConns, 1, 1_000_000)
	// No per-address limit by default: in the sidecar case every ingest request comes from
	// the application on 127.0.0.1, and a cap would throttle it, not an attacker.
	c.MaxConnsPerIP = p.integer("max-connections-per-ip", maxConnsPerIP, 0, 1_000_000)
	if c.MaxConnsPerIP > c.MaxConnections {
		p.check("max-connections-per-ip", fmt.Errorf("%d is more than --max-connections %d", c.MaxConnsPerIP, c.MaxConnections))
	}
	c.MaxInFlight = p.integer("max-in-flight", maxInFlight, 1, 4096)
	c.HistoryLimit = p.integer("history-limit", history, 1, 1_000_000)
	c.AllowHTTP = p.boolean("allow-http", allowHTTP)
	c.WALRepair = p.boolean("wal-repair", walRepair)
	c.WALSegmentSize = int64(p.integer("wal-segment-size", segSize, 64<<10, 1<<30))
	c.HistoryCache = p.integer("history-cache", historyCache, 1, 100_000_000)
	c.PayloadCache = p.integer("payload-cache", payloadCache, 1, 10_000_000)
	c.IdempotencyCache = p.integer("idempotency-cache", idemCache, 1, 100_000_000)
	c.HistoryPayloadBytes = int64(p.integer("history-payload-bytes", histPayload, 0, 1<<50))
	c.SnapshotBytes = int64(p.integer("snapshot-bytes", snapBytes, 1<<20, 1<<40))
	c.MemoryLimit = int64(p.integer("memory-limit", memLimit, 0, 1<<40))
	c.MemoryLimitGiven = getenv("BLAMETRAIL_MEMORY_LIMIT") != ""
	fs.Visit(func(f *flag.Flag) { c.MemoryLimitGiven = c.MemoryLimitGiven || f.Name == "memory-limit" })
	c.SnapshotInterval = p.duration("snapshot-interval", snapInterval, time.Second, 24*time.Hour)
	c.AllowPrivateNetworks = p.boolean("allow-private-networks", allowPrivate)
	switch c.Fsync {
	case "batch", "always", "none":
	default:
		p.check("fsync", fmt.Errorf("%q is not batch, always or none", c.Fsync))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		p.check("log-format", fmt.Errorf("%q is not text or json", c.LogFormat))
	}
	p.check("log-level", c.LogLevel.UnmarshalText([]byte(level)))
	c.APIToken = p.token("api-token", "BLAMETRAIL_API_TOKEN", c.APIToken)
	c.IngestToken = p.token("ingest-token", "BLAMETRAIL_INGEST_TOKEN", c.IngestToken)
	if c.IngestToken != "" && c.IngestToken == c.APIToken {
		// The point of an ingest token is that the application does not hold the admin token.
		// Equal to a generated token is refused at start (loadToken), once that one is read.
		p.check("ingest-token", errors.New("equals the API token (--api-token, BLAMETRAIL_API_TOKEN): give the application a token of its own"))
	}
	c.StoreSecretKey = p.store(c.Store, storeKey)
	p.listenAddr("listen", c.Listen, true)
	p.listenAddr("admin-listen", c.AdminListen, false)
	p.distinctListeners(map[string]string{"listen": c.Listen, "admin-listen": c.AdminListen,
		"metrics-listen": c.MetricsListen, "pprof-listen": c.PprofListen})
	if c.DataDir == "" {
		p.check("data-dir", errors.New("must not be empty"))
	}
	return c, p.err
}

// secretFlags never show their value in --help (or the usage printed on a flag error): a
// value from a BLAMETRAIL_* variable is the flag's default, and flag would print it: a token,
// a DSN with its password, a key.
var secretFlags = []string{"api-token", "ingest-token", "store", "store-secret-key"}

// usage prints head, then the flags with secretFlags' values hidden.
func usage(fs *flag.FlagSet, head string) func() {
	return func() {
		fmt.Fprint(fs.Output(), head)
		for _, name := range secretFlags {
			if f := fs.Lookup(name); f != nil && f.DefValue != "local" {
				f.DefValue = "" // PrintDefaults shows no default for an empty one
			}
		}
		fs.PrintDefaults()
	}
}

type parser struct{ err error }

func (p *parser) check(flag string, err error) {
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%w: --%s: %v", ErrUsage, flag, err)
	}
}

// token trims surrounding whitespace from a token (--api-token, --ingest-token), as loadToken
// does for the file: a Kubernetes secret made with --from-file ends in a newline. Set but
// blank or shorter than MinTokenLength is an error; the message never holds the token.
func (p *parser) token(flag, envName, v string) string {
	t := strings.TrimSpace(v)
	unset := "unset it to use the generated one"
	if flag != "api-token" {
		unset = "unset it"
	}
	switch {
	case v == "":
	case t == "":
		p.check(flag, fmt.Errorf("%s or --%s is set but blank: give a token of at least %d characters, or %s", envName, flag, MinTokenLength, unset))
	case utf8.RuneCountInString(t) < MinTokenLength:
		p.check(flag, fmt.Errorf("the token from %s or --%s must be at least %d characters (surrounding whitespace not counted)", envName, flag, MinTokenLength))
	}
	return t
}

// listenAddr checks that v is host:port (the host may be empty, for every interface). Empty
// is an error only when required.
func (p *parser) listenAddr(flag, v string, required bool) {
	if v == "" {
		if required {
			p.check(flag, errors.New("must not be empty"))
		}
		return
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		p.check(flag, fmt.Errorf("%q is not host:port (such as 127.0.0.1:8080, or :8080 for every interface)", v))
	}
}

// distinctListeners refuses two listeners on one port: same port (not 0, which the kernel
// picks) and the same host, or a host that means every interface. The bind would fail too,
// but later and without naming both flags. Unset and unparsable addresses are skipped.
func (p *parser) distinctListeners(addrs map[string]string) {
	flags := make([]string, 0, len(addrs))
	for f := range addrs {
		flags = append(flags, f)
	}
	slices.Sort(flags)
	for i, a := range flags {
		for _, b := range flags[i+1:] {
			if sameListener(addrs[a], addrs[b]) {
				p.check(a, fmt.Errorf("%q and --%s %q are the same address: each listener needs its own port", addrs[a], b, addrs[b]))
			}
		}
	}
}

func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	return ha == hb || anyInterface(ha) || anyInterface(hb)
}

func anyInterface(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func (p *parser) duration(flag, v string, lo, hi time.Duration) time.Duration {
	d, err := time.ParseDuration(v)
	if err == nil && (d < lo || d > hi) {
		err = fmt.Errorf("%s is outside %s..%s", v, lo, hi)
	}
	p.check(flag, err)
	return d
}

func (p *parser) integer(flag, v string, lo, hi int) int {
	n, err := strconv.Atoi(v)
	if err == nil && (n < lo || n > hi) {
		err = fmt.Errorf("%d is outside %d..%d", n, lo, hi)
	}
	p.check(flag, err)
	return n
}

func (p *parser) boolean(flag, v string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	p.check(flag, err)
	return b
}

// boolText is a boolean flag kept as text, so "--allow-http" alone, "--allow-http=false" and
// BLAMETRAIL_ALLOW_HTTP=1 all go through one parse with one error message.
type boolText string

func (b *boolText) String() string     { return string(*b) }
func (b *boolText) Set(v string) error { *b = boolText(v); return nil }
func (b *boolText) IsBoolFlag() bool   { return true }
