package relay

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryMax(t *testing.T) {
	const hostV2 = "0::/kubepods/pod1/relay\n"
	const hostV1 = "12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
	tests := []struct {
		name    string
		self    string            // /proc/self/cgroup
		files   map[string]string // path under root → content
		want    int64
		wantErr bool
	}{
		{name: "no cgroup files", want: 0},
		{name: "namespaced v2", self: "0::/\n", files: map[string]string{"memory.max": "268435456\n"}, want: 256 << 20},
		{name: "no /proc/self/cgroup: the root's", files: map[string]string{"memory.max": "268435456\n"}, want: 256 << 20},
		{name: "v2 unlimited", self: "0::/\n", files: map[string]string{"memory.max": "max\n"}, want: 0},
		{name: "v2 wins over v1", files: map[string]string{"memory.max": "1048576", "memory/memory.limit_in_bytes": "2097152"}, want: 1 << 20},
		{name: "v2 host view: the process's own cgroup", self: hostV2,
			files: map[string]string{"kubepods/pod1/relay/memory.max": "134217728", "kubepods/memory.max": "max"}, want: 128 << 20},
		{name: "v2 host view: a parent's smaller limit", self: hostV2,
			files: map[string]string{"kubepods/pod1/relay/memory.max": "max", "kubepods/pod1/memory.max": "67108864", "kubepods/memory.max": "1073741824"}, want: 64 << 20},
		{name: "v2 path of another namespace: the root's", self: "0::/elsewhere/x\n", files: map[string]string{"memory.max": "1048576"}, want: 1 << 20},
		{name: "namespaced v1", self: "5:memory:/\n", files: map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, want: 512 << 20},
		{name: "v1 host view", self: hostV1,
			files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712", "memory/docker/abc/memory.limit_in_bytes": "314572800"}, want: 300 << 20},
		{name: "v1 unlimited", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, want: 0},
		{name: "garbage", files: map[string]string{"memory.max": "lots"}, wantErr: true},
		{name: "negative", files: map[string]string{"memory.max": "-1"}, wantErr: true},
		{name: "zero", files: map[string]string{"memory.max": "0"}, want: 0},
		{name: "garbage in /proc/self/cgroup", self: "::\nnonsense\n0::/../../..\n", files: map[string]string{"memory.max": "1048576"}, want: 1 << 20},
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
			got, err := CgroupMemoryMax(root, []byte(tt.self))
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
		{"given, even above the container's", 512 << 20, true, 256 << 20, 512 << 20, "--memory-limit or BLAMETRAIL_MEMORY_LIMIT"},
		{"given 0 turns it off", 0, true, 256 << 20, 0, "--memory-limit or BLAMETRAIL_MEMORY_LIMIT"},
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
