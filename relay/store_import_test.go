package relay_test

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/relay"
)

const (
	importDSN = "postgres://relay:import_password@db.example/bt"
	importKey = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=" // 32 bytes
)

func TestLoadImportConfig(t *testing.T) {
	c, err := relay.LoadImportConfig([]string{"--data-dir", "/var/lib/bt", "--store", importDSN}, envOf(), io.Discard)
	if err != nil || c.DataDir != "/var/lib/bt" || c.Store != importDSN || c.StoreSecretKey != nil {
		t.Errorf("flags: %+v, %v", c, err)
	}
	c, err = relay.LoadImportConfig(nil, envOf("BLAMETRAIL_DATA_DIR", "/data", "BLAMETRAIL_STORE", "host=/run/pg dbname=bt",
		"BLAMETRAIL_STORE_SECRET_KEY", importKey), io.Discard)
	if err != nil || c.DataDir != "/data" || c.Store != "host=/run/pg dbname=bt" || len(c.StoreSecretKey) != 32 {
		t.Errorf("environment: %+v, %v", c, err)
	}
	c, err = relay.LoadImportConfig([]string{"--data-dir", "/flag"}, envOf("BLAMETRAIL_DATA_DIR", "/env", "BLAMETRAIL_STORE", importDSN), io.Discard)
	if err != nil || c.DataDir != "/flag" {
		t.Errorf("a flag over its variable: %+v, %v", c, err)
	}
}

func TestLoadImportConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  func(string) string
		want string
	}{
		{"nothing", nil, envOf(), "--data-dir: is required"},
		{"no store", []string{"--data-dir", "/d"}, envOf(), "--store: is required"},
		{"store local", []string{"--data-dir", "/d", "--store", "local"}, envOf(), "--store: is required"},
		{"store local from the relay's environment", []string{"--data-dir", "/d"}, envOf("BLAMETRAIL_STORE", "local"), "--store: is required"},
		{"store not a DSN", []string{"--data-dir", "/d", "--store", "mysql:import_password"}, envOf(), "--store: must be"},
		{"key too short", []string{"--data-dir", "/d", "--store", importDSN, "--store-secret-key", "c2hvcnQ="}, envOf(), "--store-secret-key"},
		{"unknown flag", []string{"--listen", ":8080"}, envOf(), "listen"},
		{"positional argument", []string{"--data-dir", "/d", "--store", importDSN, "now"}, envOf(), `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			_, err := relay.LoadImportConfig(tt.args, tt.env, &out)
			if !errors.Is(err, relay.ErrUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrUsage saying %q", err, tt.want)
			}
			if strings.Contains(err.Error()+out.String(), "import_password") {
				t.Errorf("the error or usage prints the DSN's password: %v\n%s", err, out.String())
			}
		})
	}
	var out strings.Builder
	_, err := relay.LoadImportConfig([]string{"--help"}, envOf("BLAMETRAIL_STORE", importDSN, "BLAMETRAIL_STORE_SECRET_KEY", importKey), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
	if h := out.String(); !strings.Contains(h, "store import --data-dir DIR --store DSN") || strings.Contains(h, "import_password") ||
		strings.Contains(h, importKey) {
		t.Errorf("--help does not say what import does, or prints the DSN or the key:\n%s", h)
	}
}
