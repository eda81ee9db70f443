package relay

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// TestRelayID: the id is generated once per data dir and read back after; a file that holds
// no id is an error that says what to do, not a new id.
func TestRelayID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, err := loadRelayID(dir)
	if err != nil || !strings.HasPrefix(id, "rly_") || len(id) != 4+24 {
		t.Fatalf("first start: %q, %v", id, err)
	}
	if again, err := loadRelayID(dir); again != id || err != nil {
		t.Fatalf("second start: %q, %v; want %q", again, err, id)
	}
	if other, _ := loadRelayID(t.TempDir()); other == id {
		t.Fatalf("two data dirs share the id %q", id)
	}
	if err := os.WriteFile(filepath.Join(dir, relayIDFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRelayID(dir); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("garbage: %v", err)
	}
}

func dlv(n int, status string) api.Delivery {
	return api.Delivery{ID: fmt.Sprintf("dlv_%026d", n), Status: status}
}

// TestMergeDeliveries: this relay's page and the fleet's merge newest first, this relay's copy
// winning, cut at the limit, with a next cursor when either had more or together they do.
func TestMergeDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mine, theirs []api.Delivery
		limit        int
		more         bool
		want         []int
		wantNext     bool
	}{
		{"both empty", nil, nil, 3, false, []int{}, false},
		{"only theirs", nil, []api.Delivery{dlv(5, "s"), dlv(2, "s")}, 3, false, []int{5, 2}, false},
		{"interleaved", []api.Delivery{dlv(6, "s"), dlv(3, "s")}, []api.Delivery{dlv(5, "s"), dlv(2, "s")}, 10, false, []int{6, 5, 3, 2}, false},
		{"cut at limit", []api.Delivery{dlv(6, "s"), dlv(3, "s")}, []api.Delivery{dlv(5, "s"), dlv(2, "s")}, 3, false, []int{6, 5, 3}, true},
		{"one side had more", []api.Delivery{dlv(4, "s"), dlv(3, "s")}, nil, 2, true, []int{4, 3}, true},
		{"same delivery in both", []api.Delivery{dlv(4, "mine")}, []api.Delivery{dlv(4, "theirs"), dlv(1, "s")}, 5, false, []int{4, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next := mergeDeliveries(tc.mine, tc.theirs, tc.limit, tc.more)
			ids := []int{}
			for _, d := range got {
				var n int
				fmt.Sscanf(strings.TrimPrefix(d.ID, "dlv_"), "%d", &n)
				ids = append(ids, n)
				if n == 4 && tc.name == "same delivery in both" && d.Status != "mine" {
					t.Errorf("the fleet's copy won over this relay's")
				}
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
			if (next != "") != tc.wantNext || next != "" && next != got[len(got)-1].ID {
				t.Errorf("next %q", next)
			}
		})
	}
}
