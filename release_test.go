package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// goreleaserConfig is the part of .goreleaser.yml these tests read.
type goreleaserConfig struct {
	Builds []struct {
		ID     string   `yaml:"id"`
		Goos   []string `yaml:"goos"`
		Goarch []string `yaml:"goarch"`
		Ignore []struct {
			Goos   string `yaml:"goos"`
			Goarch string `yaml:"goarch"`
		} `yaml:"ignore"`
	} `yaml:"builds"`
	Archives []struct {
		ID    string   `yaml:"id"`
		Files []string `yaml:"files"`
	} `yaml:"archives"`
}

func readGoreleaserConfig(t *testing.T) goreleaserConfig {
	t.Helper()
	b, err := os.ReadFile(".goreleaser.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c goreleaserConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf(".goreleaser.yml: %v", err)
	}
	if len(c.Builds) == 0 {
		t.Fatal(".goreleaser.yml: no builds")
	}
	return c
}

// goreleaserTargets is every GOOS/GOARCH pair a build lists (goos × goarch, minus ignore),
// as "goos/goarch".
func goreleaserTargets(t *testing.T) map[string][]string {
	t.Helper()
	targets := map[string][]string{}
	for _, b := range readGoreleaserConfig(t).Builds {
		for _, goos := range b.Goos {
			for _, goarch := range b.Goarch {
				ignored := slices.ContainsFunc(b.Ignore, func(i struct {
					Goos   string `yaml:"goos"`
					Goarch string `yaml:"goarch"`
				}) bool {
					return (i.Goos == "" || i.Goos == goos) && (i.Goarch == "" || i.Goarch == goarch)
				})
				if !ignored {
					targets[b.ID] = append(targets[b.ID], goos+"/"+goarch)
				}
			}
		}
	}
	return targets
}

// TestGoreleaserTargets fails when .goreleaser.yml lists a GOOS/GOARCH pair that the Go
// running the tests (the one go.mod asks for) cannot build: goreleaser skips such a pair with
// only a debug line, so the release would silently lack it (windows/arm, removed in Go 1.25,
// was one). `make release-check` builds linux/amd64 with goreleaser itself.
func TestGoreleaserTargets(t *testing.T) {
	out, err := exec.Command("go", "tool", "dist", "list").Output()
	if err != nil {
		t.Fatalf("go tool dist list: %v", err)
	}
	valid := strings.Fields(string(out))
	for id, targets := range goreleaserTargets(t) {
		t.Logf("build %s: %s", id, strings.Join(targets, " "))
		for _, target := range targets {
			if !slices.Contains(valid, target) {
				t.Errorf("build %s lists %s, which this Go does not support (go tool dist list); add it to ignore", id, target)
			}
		}
	}
}

// TestGoreleaserArchiveFiles fails when an archive names a file that is not in the tree
// (goreleaser fails the release on it, after building everything).
func TestGoreleaserArchiveFiles(t *testing.T) {
	for _, a := range readGoreleaserConfig(t).Archives {
		for _, f := range a.Files {
			if f == "none*" { // goreleaser's idiom for "the binary alone"
				continue
			}
			matches, err := filepath.Glob(f)
			if err != nil || len(matches) == 0 {
				t.Errorf("archive %s: %s matches no file (%v)", a.ID, f, err)
			}
		}
	}
}
