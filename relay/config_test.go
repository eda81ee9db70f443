package relay_test

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := relay.LoadConfig(nil, envOf(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Minute, 6 * time.Minute, 36 * time.Minute, 3*time.Hour + 36*time.Minute, 21*time.Hour + 36*time.Minute}
	switch {
	case c.Listen != "127.0.0.1:8080":
		t.Errorf("Listen = %q", c.Listen)
	case c.DataDir != "./blametrail-data":
		t.Errorf("DataDir = %q", c.DataDir)
	case c.APIToken != "":
		t.Errorf("APIToken = %q, want empty (generated)", c.APIToken)
	case !slices.Equal(c.RetrySchedule, want):
		t.Errorf("RetrySchedule = %v", c.RetrySchedule)
	case c.DeliveryTimeout != 10*time.Second:
		t.Errorf("DeliveryTimeout = %s", c.DeliveryTimeout)
	case c.DisableAfter != 10:
		t.Errorf("DisableAfter = %d", c.DisableAfter)
	case c.AllowHTTP || c.AllowPrivateNetworks:
		t.Errorf("AllowHTTP %v AllowPrivateNetworks %v, want both false", c.AllowHTTP, c.AllowPrivateNetworks)
	case c.Fsync != "batch":
		t.Errorf("Fsync = %q", c.Fsync)
	case c.MaxBodySize != 256<<10:
		t.Errorf("MaxBodySize = %d, want 256 KiB", c.MaxBodySize)
	case c.MaxConnections != 10000 || c.MaxConnsPerIP != 0:
		t.Errorf("MaxConnections %d MaxConnsPerIP %d, want 10000 and 0 (no limit)", c.MaxConnections, c.MaxConnsPerIP)
	case c.HistoryPayloadBytes != 256<<20:
		t.Errorf("HistoryPayloadBytes = %d, want 256 MiB", c.HistoryPayloadBytes)
	case c.AdminListen != "" || c.IngestToken != "":
		t.Errorf("AdminListen %q IngestToken %q, want both empty (off)", c.AdminListen, c.IngestToken)
	case c.LogLevel != slog.LevelInfo || c.LogFormat != "text":
		t.Errorf("log %s %s", c.LogLevel, c.LogFormat)
	}
}

func TestLoadConfigSources(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   func(string) string
		check func(t *testing.T, c relay.Config)
	}{
		{
			name: "environment",
			env: envOf("BLAMETRAIL_LISTEN", "0.0.0.0:9", "BLAMETRAIL_DATA_DIR", "/var/lib/bt", "BLAMETRAIL_API_TOKEN", "  env-token-0123456789\n",
				"BLAMETRAIL_RETRY_SCHEDULE", "1s,2s", "BLAMETRAIL_DELIVERY_TIMEOUT", "3s", "BLAMETRAIL_DISABLE_AFTER", "4",
				"BLAMETRAIL_ALLOW_HTTP", "true", "BLAMETRAIL_ALLOW_PRIVATE_NETWORKS", "1", "BLAMETRAIL_FSYNC", "always"),
			check: func(t *testing.T, c relay.Config) {
				if c.Listen != "0.0.0.0:9" || c.DataDir != "/var/lib/bt" || c.APIToken != "env-token-0123456789" ||
					!slices.Equal(c.RetrySchedule, []time.Duration{time.Second, 2 * time.Second}) || c.DeliveryTimeout != 3*time.Second ||
					c.DisableAfter != 4 || !c.AllowHTTP || !c.AllowPrivateNetworks || c.Fsync != "always" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "flags override environment",
			args: []string{"--listen", "127.0.0.1:0", "--data-dir=/tmp/x", "--api-token", "flag-token-0123456789", "--retry-schedule", "5ms",
				"--delivery-timeout", "500ms", "--disable-after", "0", "--allow-http=false", "--allow-private-networks=false", "--fsync", "none"},
			env: envOf("BLAMETRAIL_LISTEN", "0.0.0.0:9", "BLAMETRAIL_DATA_DIR", "/var/lib/bt", "BLAMETRAIL_API_TOKEN", "env-token-0123456789",
				"BLAMETRAIL_RETRY_SCHEDULE", "1s,2s", "BLAMETRAIL_DELIVERY_TIMEOUT", "3s", "BLAMETRAIL_DISABLE_AFTER", "4",
				"BLAMETRAIL_ALLOW_HTTP", "true", "BLAMETRAIL_ALLOW_PRIVATE_NETWORKS", "true", "BLAMETRAIL_FSYNC", "always"),
			check: func(t *testing.T, c relay.Config) {
				if c.Listen != "127.0.0.1:0" || c.DataDir != "/tmp/x" || c.APIToken != "flag-token-0123456789" ||
					!slices.Equal(c.RetrySchedule, []time.Duration{5 * time.Millisecond}) || c.DeliveryTimeout != 500*time.Millisecond ||
					c.DisableAfter != 0 || c.AllowHTTP || c.AllowPrivateNetworks || c.Fsync != "none" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "--allow-http alone",
			args: []string{"--allow-http"},
			check: func(t *testing.T, c relay.Config) {
				if !c.AllowHTTP || c.AllowPrivateNetworks {
					t.Errorf("AllowHTTP %v AllowPrivateNetworks %v", c.AllowHTTP, c.AllowPrivateNetworks)
				}
			},
		},
		{
			name: "both bool flags alone, before other flags",
			args: []string{"--allow-http", "--allow-private-networks", "--listen", "127.0.0.1:1"},
			check: func(t *testing.T, c relay.Config) {
				if !c.AllowHTTP || !c.AllowPrivateNetworks || c.Listen != "127.0.0.1:1" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "single-dash flags",
			args: []string{"-allow-http", "-log-level", "debug", "-log-format", "json"},
			check: func(t *testing.T, c relay.Config) {
				if !c.AllowHTTP || c.LogLevel != slog.LevelDebug || c.LogFormat != "json" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "least privilege from the environment",
			env: envOf("BLAMETRAIL_API_TOKEN", "admin-token-0123456789", "BLAMETRAIL_INGEST_TOKEN", " ingest-token-0123456789\n",
				"BLAMETRAIL_LISTEN", "127.0.0.1:8080", "BLAMETRAIL_ADMIN_LISTEN", "0.0.0.0:8081"),
			check: func(t *testing.T, c relay.Config) {
				if c.IngestToken != "ingest-token-0123456789" || c.AdminListen != "0.0.0.0:8081" || c.Listen != "127.0.0.1:8080" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "least privilege flags override the environment",
			args: []string{"--ingest-token", "flag-ingest-0123456789", "--admin-listen", "[::1]:9"},
			env:  envOf("BLAMETRAIL_INGEST_TOKEN", "env-ingest-0123456789", "BLAMETRAIL_ADMIN_LISTEN", "127.0.0.1:8081"),
			check: func(t *testing.T, c relay.Config) {
				if c.IngestToken != "flag-ingest-0123456789" || c.AdminListen != "[::1]:9" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			// Port 0 lets the kernel pick a port for each: the tests start relays this way.
			name: "both listeners on port 0",
			args: []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"},
			check: func(t *testing.T, c relay.Config) {
				if c.Listen != "127.0.0.1:0" || c.AdminListen != "127.0.0.1:0" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "same port on two different hosts",
			args: []string{"--listen", "127.0.0.1:8080", "--admin-listen", "10.0.0.5:8080"},
			check: func(t *testing.T, c relay.Config) {
				if c.AdminListen != "10.0.0.5:8080" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "ingest token without an api token (the admin token is generated)",
			args: []string{"--ingest-token", "ingest-token-0123456789"},
			check: func(t *testing.T, c relay.Config) {
				if c.APIToken != "" || c.IngestToken != "ingest-token-0123456789" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "memory limit: the default is not given (a container's limit may lower it)",
			check: func(t *testing.T, c relay.Config) {
				if c.MemoryLimit != relay.DefaultMemoryLimit || c.MemoryLimitGiven {
					t.Errorf("MemoryLimit %d given %v, want the default, not given", c.MemoryLimit, c.MemoryLimitGiven)
				}
			},
		},
		{
			name: "memory limit given by flag",
			args: []string{"--memory-limit", "0"},
			check: func(t *testing.T, c relay.Config) {
				if c.MemoryLimit != 0 || !c.MemoryLimitGiven {
					t.Errorf("MemoryLimit %d given %v, want 0, given", c.MemoryLimit, c.MemoryLimitGiven)
				}
			},
		},
		{
			name: "memory limit given by environment",
			env:  envOf("BLAMETRAIL_MEMORY_LIMIT", "104857600"),
			check: func(t *testing.T, c relay.Config) {
				if c.MemoryLimit != 100<<20 || !c.MemoryLimitGiven {
					t.Errorf("MemoryLimit %d given %v, want 100 MiB, given", c.MemoryLimit, c.MemoryLimitGiven)
				}
			},
		},
		{
			name: "empty environment values fall back to defaults",
			env:  envOf("BLAMETRAIL_LISTEN", "", "BLAMETRAIL_ALLOW_HTTP", ""),
			check: func(t *testing.T, c relay.Config) {
				if c.Listen != "127.0.0.1:8080" || c.AllowHTTP {
					t.Errorf("config = %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = envOf()
			}
			c, err := relay.LoadConfig(tt.args, env, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  func(string) string
		want string // the flag named in the message
	}{
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"positional argument", []string{"serve"}, nil, "serve"},
		{"bool flag given a separate value", []string{"--allow-http", "false"}, nil, "false"},
		{"bad bool flag", []string{"--allow-http=maybe"}, nil, "allow-http"},
		{"bad bool env", nil, envOf("BLAMETRAIL_ALLOW_PRIVATE_NETWORKS", "yes please"), "allow-private-networks"},
		{"empty schedule", []string{"--retry-schedule", ""}, nil, "retry-schedule"},
		{"bad schedule", []string{"--retry-schedule", "1m,x"}, nil, "retry-schedule"},
		{"zero step", []string{"--retry-schedule", "0s"}, nil, "retry-schedule"},
		{"bad schedule env", nil, envOf("BLAMETRAIL_RETRY_SCHEDULE", "-1s"), "retry-schedule"},
		{"timeout too small", []string{"--delivery-timeout", "10ms"}, nil, "delivery-timeout"},
		{"negative resend window", []string{"--history-payload-bytes", "-1"}, nil, "history-payload-bytes"},
		{"resend window with a unit", []string{"--history-payload-bytes", "256MiB"}, nil, "history-payload-bytes"},
		{"timeout not a duration", []string{"--delivery-timeout", "10"}, nil, "delivery-timeout"},
		{"timeout env", nil, envOf("BLAMETRAIL_DELIVERY_TIMEOUT", "2h"), "delivery-timeout"},
		{"disable-after negative", []string{"--disable-after", "-1"}, nil, "disable-after"},
		{"disable-after not a number", nil, envOf("BLAMETRAIL_DISABLE_AFTER", "ten"), "disable-after"},
		{"fsync", []string{"--fsync", "sometimes"}, nil, "fsync"},
		{"store neither local nor a DSN", []string{"--store", "mysql"}, nil, "store"},
		{"store secret key without fleet mode", []string{"--store-secret-key", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="}, nil, "store-secret-key"},
		{"store secret key too short", []string{"--store", "host=/tmp dbname=bt", "--store-secret-key", "c2hvcnQ="}, nil, "store-secret-key"},
		{"fsync env", nil, envOf("BLAMETRAIL_FSYNC", "BATCH"), "fsync"},
		{"max body too small", []string{"--max-body-size", "10"}, nil, "max-body-size"},
		{"max body over what one WAL record holds", []string{"--max-body-size", "67108864"}, nil, "--max-body-size: 67108864 is outside 1024..15728640"},
		{"max body env over what one WAL record holds", nil, envOf("BLAMETRAIL_MAX_BODY_SIZE", "16777216"), "max-body-size"},
		{"log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"log format", []string{"--log-format", "xml"}, nil, "log-format"},
		{"empty listen", []string{"--listen", ""}, nil, "listen"},
		{"empty data dir", []string{"--data-dir="}, nil, "data-dir"},
		{"max connections zero", []string{"--max-connections", "0"}, nil, "--max-connections: 0 is outside 1..1000000"},
		{"max connections per ip env", nil, envOf("BLAMETRAIL_MAX_CONNECTIONS_PER_IP", "-1"), "--max-connections-per-ip: -1 is outside"},
		{"per ip over total", nil, envOf("BLAMETRAIL_MAX_CONNECTIONS", "5", "BLAMETRAIL_MAX_CONNECTIONS_PER_IP", "6"), "6 is more than --max-connections 5"},
		{"token of 15 characters", []string{"--api-token", "fifteen-chars-x"}, nil, "BLAMETRAIL_API_TOKEN or --api-token must be at least 16"},
		{"token short after trimming", nil, envOf("BLAMETRAIL_API_TOKEN", " fifteen-chars-x\n"), "at least 16"},
		{"blank token", nil, envOf("BLAMETRAIL_API_TOKEN", "\n"), "blank"},
		{"ingest token of 15 characters", []string{"--ingest-token", "fifteen-chars-x"}, nil, "BLAMETRAIL_INGEST_TOKEN or --ingest-token must be at least 16"},
		{"ingest token short after trimming", nil, envOf("BLAMETRAIL_INGEST_TOKEN", "\tfifteen-chars-x \n"), "--ingest-token: the token from BLAMETRAIL_INGEST_TOKEN"},
		{"blank ingest token", nil, envOf("BLAMETRAIL_INGEST_TOKEN", "  "), "--ingest-token: BLAMETRAIL_INGEST_TOKEN or --ingest-token is set but blank"},
		{"ingest token equal to the api token", []string{"--api-token", "fifteen-chars-x-and-more", "--ingest-token", "fifteen-chars-x-and-more"}, nil,
			"--ingest-token: equals the API token"},
		{"ingest token equal to the api token after trimming", nil,
			envOf("BLAMETRAIL_API_TOKEN", "fifteen-chars-x-and-more\n", "BLAMETRAIL_INGEST_TOKEN", " fifteen-chars-x-and-more"), "--ingest-token: equals the API token"},
		{"admin listen equal to listen", []string{"--listen", "127.0.0.1:8080", "--admin-listen", "127.0.0.1:8080"}, nil,
			`--admin-listen: "127.0.0.1:8080" and --listen "127.0.0.1:8080" are the same address`},
		{"admin listen on every interface, same port as listen", nil, envOf("BLAMETRAIL_ADMIN_LISTEN", ":8080"), `--admin-listen: ":8080" and --listen "127.0.0.1:8080"`},
		{"listen on 0.0.0.0, admin listen on its port", []string{"--listen", "0.0.0.0:9000", "--admin-listen", "127.0.0.1:9000"}, nil, "are the same address"},
		{"admin listen equal to metrics listen", []string{"--admin-listen", "127.0.0.1:9090", "--metrics-listen", "127.0.0.1:9090"}, nil,
			`--admin-listen: "127.0.0.1:9090" and --metrics-listen`},
		{"metrics listen equal to listen", []string{"--metrics-listen", "127.0.0.1:8080"}, nil, `--listen: "127.0.0.1:8080" and --metrics-listen`},
		{"admin listen without a port", []string{"--admin-listen", "127.0.0.1"}, nil, `--admin-listen: "127.0.0.1" is not host:port`},
		{"admin listen env not an address", nil, envOf("BLAMETRAIL_ADMIN_LISTEN", "admin"), "--admin-listen"},
		{"listen without a port", []string{"--listen", "localhost"}, nil, `--listen: "localhost" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = envOf()
			}
			_, err := relay.LoadConfig(tt.args, env, io.Discard)
			if !errors.Is(err, relay.ErrUsage) {
				t.Fatalf("err = %v, want ErrUsage", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "fifteen-chars-x") {
				t.Errorf("error %q prints the token", err)
			}
		})
	}
	_, err := relay.LoadConfig([]string{"--help"}, envOf(), io.Discard)
	if !errors.Is(err, flag.ErrHelp) || errors.Is(err, relay.ErrUsage) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}

// TestHelpHidesSecrets: --help, and the usage a bad flag prints, show a flag's value from its
// BLAMETRAIL_* variable as its default, except for tokens, the DSN and the key.
func TestHelpHidesSecrets(t *testing.T) {
	env := envOf("BLAMETRAIL_API_TOKEN", "help_api_token_0123456789", "BLAMETRAIL_INGEST_TOKEN", "help_ingest_token_0123456789",
		"BLAMETRAIL_STORE", "postgres://relay:help_password@db.example/bt", "BLAMETRAIL_STORE_SECRET_KEY", "help_key_MfKQ9r8GKYqrTwjUPD8ILPZIo2La",
		"BLAMETRAIL_LISTEN", "127.0.0.1:9999")
	for _, args := range [][]string{{"--help"}, {"--nope"}} {
		var out strings.Builder
		_, _ = relay.LoadConfig(args, env, &out)
		for _, secret := range []string{"help_api_token", "help_ingest_token", "help_password", "help_key"} {
			if strings.Contains(out.String(), secret) {
				t.Errorf("%v prints %s:\n%s", args, secret, out.String())
			}
		}
		if !strings.Contains(out.String(), `(default "127.0.0.1:9999")`) {
			t.Errorf("%v does not show the --listen from the environment:\n%s", args, out.String())
		}
	}
	var out strings.Builder
	_, _ = relay.LoadConfig([]string{"--help"}, envOf(), &out)
	if !strings.Contains(out.String(), `(default "local")`) {
		t.Errorf("--help does not show --store's default:\n%s", out.String())
	}
}
