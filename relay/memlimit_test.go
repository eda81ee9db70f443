package relay

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryMax(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // path under root → content
		want    int64
		wantErr bool
	}{
		{name: "no cgroup files", want: 0},
		{name: "v2 limit", files: map[string]string{"memory.max": "268435456\n"}, want: 256 << 20},
		{name: "v2 unlimited", files: map[string]string{"memory.max": "max\n"}, want: 0},
		{name: "v2 wins over v1", files: map[string]string{"memory.max": "1048576", "memory/memory.limit_in_bytes": "2097152"}, want: 1 << 20},
		{name: "v1 limit", files: map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, want: 512 << 20},
		{name: "v1 unlimited", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, want: 0},
		{name: "garbage", files: map[string]string{"memory.max": "lots"}, wantErr: true},
		{name: "negative", files: map[string]string{"memory.max": "-1"}, wantErr: true},
		{name: "zero", files: map[string]string{"memory.max": "0"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tt.files {
				full := filepath.Join(root, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := CgroupMemoryMax(root)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("CgroupMemoryMax = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEffectiveMemoryLimit(t *testing.T) {
	const def = DefaultMemoryLimit
	tests := []struct {
		name       string
		configured int64
		given      bool
		cgroup     int64
		want       int64
		source     string
	}{
		{"host, no cgroup limit", def, false, 0, def, "default"},
		{"container below the default", def, false, 256 << 20, 256 << 20 / 10 * 9, "90% of the container's memory limit"},
		{"container above the default", def, false, 1 << 30, def, "default"},
		{"given, even above the container's", 512 << 20, true, 256 << 20, 512 << 20, "--memory-limit"},
		{"given 0 turns it off", 0, true, 256 << 20, 0, "--memory-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, src := EffectiveMemoryLimit(tt.configured, tt.given, tt.cgroup)
			if got != tt.want || src != tt.source {
				t.Fatalf("EffectiveMemoryLimit = %d (%s), want %d (%s)", got, src, tt.want, tt.source)
			}
		})
	}
}
