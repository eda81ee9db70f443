package delivery

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/internal/store"
)

// TestEngineResumePullsHeldDeliveries: re-enabling an endpoint that holds more deliveries than
// a few pull pages hands the engine one resume, not one entry per delivery; the engine pulls
// them and every one reaches the receiver exactly once, while a delivery that arrives during
// the resume goes through too.
func TestEngineResumePullsHeldDeliveries(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("X-BlameTrail-Delivery")]++
		mu.Unlock()
	}))
	defer srv.Close()

	// Until the engine is attached the store's announcements go nowhere: the deliveries stay
	// pending in the store, then held when the endpoint is disabled.
	var (
		amu       sync.Mutex
		attached  bool
		announced []store.Ready
	)
	e := New(Config{Schedule: []time.Duration{time.Hour}, Timeout: 5 * time.Second, MaxInFlight: 4,
		Policy: netpolicy.Policy{AllowHTTP: true, AllowPrivate: true}, UserAgent: "test"})
	st := store.New(store.Options{OnStop: e.Drop, OnReady: func(r store.Ready) {
		amu.Lock()
		on := attached
		if on {
			announced = append(announced, r)
		}
		amu.Unlock()
		if on {
			e.Ready(r)
		}
	}})
	e.SetStore(st)
	e.Start()
	defer e.Stop(t.Context())

	url, name, off, on := srv.URL+"/hook", "held", false, true
	ep, err := st.CreateEndpoint(api.EndpointInput{URL: &url, Name: &name}, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const held = 3*pullPage + 17
	for range held {
		if _, err := st.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.UpdateEndpoint(ep.ID, api.EndpointInput{Active: &off}); err != nil {
		t.Fatal(err)
	}
	amu.Lock()
	attached = true
	amu.Unlock()
	if _, err := st.UpdateEndpoint(ep.ID, api.EndpointInput{Active: &on}); err != nil {
		t.Fatal(err)
	}
	amu.Lock()
	if len(announced) != 1 || !announced[0].Resume {
		t.Errorf("the re-enable announced %d entries, want one resume", len(announced))
	}
	amu.Unlock()
	if _, err := st.Ingest(api.IngestInput{Type: api.TypeIncidentOpened, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, 30*time.Second, "every delivery to arrive", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == held+1
	})
	mu.Lock()
	defer mu.Unlock()
	for id, n := range got {
		if n != 1 {
			t.Errorf("delivery %s arrived %d times", id, n)
		}
	}
}
