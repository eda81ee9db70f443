package relaytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Request is one request a Receiver got.
type Request struct {
	At     time.Time
	Path   string
	Header http.Header
	Body   []byte
}

// Receiver is a webhook receiver on 127.0.0.1 that records every request and answers with
// its Handler (200 when nil).
type Receiver struct {
	URL string

	mu      sync.Mutex
	reqs    []Request
	handler func(w http.ResponseWriter, r *Request)
	srv     *httptest.Server
}

// NewReceiver starts a receiver; it is closed at cleanup.
func NewReceiver(t testing.TB, handler func(w http.ResponseWriter, r *Request)) *Receiver {
	rc := &Receiver{handler: handler}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(hr.Body, 4<<20))
		req := Request{At: time.Now(), Path: hr.URL.Path, Header: hr.Header.Clone(), Body: body}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, req)
		h := rc.handler
		rc.mu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		h(w, &req)
	}))
	rc.URL = rc.srv.URL + "/hook"
	t.Cleanup(rc.Close)
	return rc
}

// SetHandler replaces the handler for later requests.
func (rc *Receiver) SetHandler(h func(w http.ResponseWriter, r *Request)) {
	rc.mu.Lock()
	rc.handler = h
	rc.mu.Unlock()
}

// Requests returns a copy of what was received so far.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.reqs...)
}

// Count returns how many requests arrived.
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// Close stops the receiver; hanging handlers are cut off.
func (rc *Receiver) Close() {
	rc.srv.CloseClientConnections()
	rc.srv.Close()
}

// Status returns a handler that answers code.
func Status(code int) func(http.ResponseWriter, *Request) {
	return func(w http.ResponseWriter, _ *Request) { w.WriteHeader(code) }
}
