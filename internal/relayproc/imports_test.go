package relayproc

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerImport: the packages that run the relay for tests and the harness never link
// its server package, so what they exercise is the binary users run.
func TestNoServerImport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const server = "github.com/blametrail/terraform-provider-blametrail/relay"
	for _, pkg := range []string{
		"github.com/blametrail/terraform-provider-blametrail/internal/relayproc",
		"github.com/blametrail/terraform-provider-blametrail/internal/relaytest",
		"github.com/blametrail/terraform-provider-blametrail/internal/bench",
		"github.com/blametrail/terraform-provider-blametrail/relay/cmd/blametrail-bench",
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == server {
				t.Errorf("%s imports the relay's server package %s", pkg, server)
			}
		}
	}
}
