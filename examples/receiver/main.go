// Command receiver is a minimal BlameTrail webhook receiver: it verifies each delivery's
// signature, drops redeliveries it has already seen, and logs what arrived. It is meant to
// be read and copied; see README.md for how to run it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// maxBody bounds what an unauthenticated caller can make us buffer before the signature
// is checked.
const maxBody = 1 << 20

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	flag.Parse()

	secret := os.Getenv("BLAMETRAIL_SIGNING_SECRET")
	if secret == "" {
		fmt.Fprintln(os.Stderr, "receiver: set BLAMETRAIL_SIGNING_SECRET to the endpoint's signing secret (whsec_...)")
		os.Exit(2)
	}
	// Fail at start-up on a mistyped secret rather than rejecting every delivery later.
	if _, err := signature.DecodeSecret(secret); err != nil {
		fmt.Fprintf(os.Stderr, "receiver: BLAMETRAIL_SIGNING_SECRET: %v\n", err)
		os.Exit(2)
	}

	h := &handler{secret: secret, seen: newSeenSet(10_000)}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s", *listen)
	log.Fatal(srv.ListenAndServe())
}

type handler struct {
	secret string
	seen   *seenSet
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	// The signature covers the exact bytes sent, so read the raw body before anything
	// (a JSON decoder, say) gets a chance to reinterpret it.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		log.Printf("reading body: %v", err)
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if err := signature.VerifyHeaders(h.secret, r.Header, body); err != nil {
		log.Printf("rejected delivery from %s: %v", r.RemoteAddr, err)
		http.Error(w, "invalid signature", http.StatusBadRequest)
		return
	}

	id := r.Header.Get(signature.HeaderID)
	if id == "" {
		id = r.Header.Get(signature.HeaderBlameTrailDelivery)
	}
	event := r.Header.Get(signature.HeaderBlameTrailEvent)
	// The relay retries until it gets a 2xx, so the same delivery can arrive twice;
	// acknowledge a duplicate but do not act on it again.
	if !h.seen.add(id) {
		log.Printf("duplicate delivery %s (event %s), ignored", id, event)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	log.Printf("delivery %s event %s: signature verified (%d bytes)", id, event, len(body))
	w.WriteHeader(http.StatusNoContent)
}

// seenSet remembers the last limit delivery ids, forgetting the oldest first, so memory stays
// bounded however long the receiver runs.
type seenSet struct {
	mu    sync.Mutex
	limit int
	ids   map[string]struct{}
	order []string // ring buffer of ids in arrival order
	next  int
}

func newSeenSet(limit int) *seenSet {
	return &seenSet{limit: limit, ids: make(map[string]struct{}, limit)}
}

// add records id and reports whether it was new.
func (s *seenSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if len(s.order) < s.limit {
		s.order = append(s.order, id)
	} else {
		delete(s.ids, s.order[s.next])
		s.order[s.next] = id
		s.next = (s.next + 1) % s.limit
	}
	s.ids[id] = struct{}{}
	return true
}
