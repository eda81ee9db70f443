package delivery

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// TestTimerHeap: whatever the pushes (ties included) and endpoint drops, pops come out in due
// order and are exactly the timers pushed and not dropped; a drained heap gives its array back.
func TestTimerHeap(t *testing.T) {
	tests := []struct {
		name string
		n    int
		dues int64 // dues are drawn from [0, dues): small means many ties
		drop []string
	}{
		{name: "empty", n: 0, dues: 1},
		{name: "one", n: 1, dues: 10},
		{name: "ties", n: 500, dues: 3},
		{name: "spread", n: 10_000, dues: 1 << 40},
		{name: "drop one endpoint", n: 5_000, dues: 1000, drop: []string{"ep_b"}},
		{name: "drop all", n: 5_000, dues: 1000, drop: []string{"ep_a", "ep_b", "ep_c"}},
	}
	eps := []string{"ep_a", "ep_b", "ep_c"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.n), uint64(tt.dues)))
			var h timerHeap
			var want []timer
			for i := range tt.n {
				var id store.DeliveryID
				id[0], id[1] = byte(i>>8), byte(i)
				tm := timer{due: r.Int64N(tt.dues), id: id, ep: eps[r.IntN(len(eps))]}
				h.push(tm)
				if !slices.Contains(tt.drop, tm.ep) {
					want = append(want, tm)
				}
			}
			for _, ep := range tt.drop {
				h.dropEndpoint(ep)
			}
			var got []timer
			for len(h) > 0 {
				got = append(got, h.pop())
			}
			for i := 1; i < len(got); i++ {
				if got[i].due < got[i-1].due {
					t.Fatalf("pop %d: due %d after %d", i, got[i].due, got[i-1].due)
				}
			}
			key := func(a, b timer) int { return slices.Compare(a.id[:], b.id[:]) }
			slices.SortFunc(got, key)
			slices.SortFunc(want, key)
			if !slices.Equal(got, want) {
				t.Fatalf("popped %d timers, want the %d pushed and not dropped", len(got), len(want))
			}
			if tt.n > 2*shrinkAbove && cap(h) > shrinkAbove {
				t.Errorf("drained heap keeps an array of %d timers", cap(h))
			}
		})
	}
}
