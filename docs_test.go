package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// tfplugindocsArgs is how `make docs` runs the generator; keep the two the same.
var tfplugindocsArgs = []string{"generate", "--provider-name", "blametrail", "--rendered-provider-name", "BlameTrail"}

// tfplugindocsValidateArgs is how `make docs` checks docs/ after generating it, and what the
// Terraform Registry accepts: only .md files, known directories, valid front matter, a page
// per resource and data source.
var tfplugindocsValidateArgs = []string{"validate", "--provider-name", "blametrail"}

// managedDocs are the parts of docs/ that tfplugindocs owns (it deletes and rewrites them);
// anything else in docs/, such as docs/images, is left to people.
var managedDocs = []string{"index.md", "data-sources", "resources", "guides", "functions",
	"ephemeral-resources", "actions", "list-resources", "state-stores"}

// TestDocsAreGenerated fails when docs/ is not what `make docs` writes from templates/,
// examples/ and the provider's schema: docs are generated, never edited by hand. It renders
// into a temporary directory, so it never touches the working tree.
func TestDocsAreGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider and runs terraform; skipped with -short")
	}
	tf := terraformBinary(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	// tfplugindocs takes the output directory relative to the provider directory.
	rel, err := filepath.Rel(wd, out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append(append([]string{"tool", "tfplugindocs"}, tfplugindocsArgs...),
		"--rendered-website-dir", rel)...)
	// tfplugindocs looks for terraform on PATH (and would download one if it found none).
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(tf)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"CHECKPOINT_DISABLE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tfplugindocs generate: %v\n%s", err, b)
	}

	want := docFiles(t, out)
	got := docFiles(t, "docs")
	var stale []string
	for name, content := range want {
		have, ok := got[name]
		switch {
		case !ok:
			stale = append(stale, name+" is missing")
		case !bytes.Equal(have, content):
			stale = append(stale, name+" differs")
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			stale = append(stale, name+" is not generated (stale, or hand-written in a generated directory)")
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		t.Errorf("docs/ is out of date; run `make docs` and commit the result (edit templates/ and examples/, not docs/):")
		for _, s := range stale {
			t.Errorf("  docs/%s", s)
		}
	}
}

// TestDocsValidate runs `tfplugindocs validate` on docs/ as committed (the Registry rejects,
// for example, a non-.md file under docs/).
func TestDocsValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider and runs terraform; skipped with -short")
	}
	tf := terraformBinary(t)
	cmd := exec.Command("go", append([]string{"tool", "tfplugindocs"}, tfplugindocsValidateArgs...)...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(tf)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"CHECKPOINT_DISABLE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tfplugindocs validate: %v\n%s", err, b)
	}
}

// docFiles reads the tfplugindocs-managed files under root, keyed by slash path.
func docFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, m := range managedDocs {
		err := filepath.WalkDir(filepath.Join(root, m), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			r, _ := filepath.Rel(root, p)
			files[filepath.ToSlash(r)] = b
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return files
}

// terraformBinary is the terraform the acceptance tests use (TF_ACC_TERRAFORM_PATH, as
// `make test` sets it from scripts/ensure-terraform.sh), else the one on PATH.
func terraformBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("no terraform: set TF_ACC_TERRAFORM_PATH or run `make test`, which finds or installs one")
	}
	return p
}
