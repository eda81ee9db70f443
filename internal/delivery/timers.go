package delivery

import "github.com/blametrail/terraform-provider-blametrail/internal/store"

// timer is a delivery waiting for its due time. It is 40 bytes against a store.Ready's 64, and
// the heap below holds timers by value without boxing them in an interface (container/heap
// would allocate one per push): with a million retries scheduled the timers are the engine's
// largest structure.
type timer struct {
	due int64 // unix nanoseconds
	id  store.DeliveryID
	ep  string // the endpoint id, shared with the store's endpoint, not a copy
}

// timerHeap is a binary min-heap of timers by due time.
type timerHeap []timer

// shrinkAbove is the capacity past which a heap that fell below a quarter of it is copied
// into a smaller array, so that a drained backlog gives its memory back.
const shrinkAbove = 4096

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	h.up(len(*h) - 1)
}

// pop removes and returns the earliest timer; the heap must not be empty.
func (h *timerHeap) pop() timer {
	old := *h
	n := len(old) - 1
	top := old[0]
	old[0] = old[n]
	old[n] = timer{} // no endpoint id kept alive by the spare slot
	*h = old[:n]
	h.down(0)
	h.shrink()
	return top
}

// dropEndpoint removes an endpoint's timers, keeping the others in heap order.
func (h *timerHeap) dropEndpoint(ep string) {
	old := *h
	kept := old[:0]
	for _, t := range old {
		if t.ep != ep {
			kept = append(kept, t)
		}
	}
	clear(old[len(kept):])
	*h = kept
	for i := len(kept)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	h.shrink()
}

func (h *timerHeap) shrink() {
	if c := cap(*h); c > shrinkAbove && len(*h) < c/4 {
		*h = append(make(timerHeap, 0, 2*len(*h)), *h...)
	}
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].due <= h[i].due {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (h timerHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].due < h[l].due {
			m = r
		}
		if h[i].due <= h[m].due {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
