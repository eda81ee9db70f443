package relay

import "testing"

// TestListenerRoles pins which paths each listener serves; everything else is 404
// route_not_found there (the end-to-end tests check the answers).
func TestListenerRoles(t *testing.T) {
	paths := []string{"/api/events", "/healthz", "/readyz", "/api/info", "/api/event-types", "/metrics", "/", "/ui/app.js",
		"/api/webhooks/endpoints", "/api/webhooks/endpoints/ep_1/secret", "/nowhere"}
	want := map[listenerRole]map[string]bool{
		serveIngest: {"/api/events": true, "/healthz": true, "/readyz": true},
		serveAdmin: {"/healthz": true, "/readyz": true, "/api/info": true, "/api/event-types": true, "/metrics": true, "/": true,
			"/ui/app.js": true, "/api/webhooks/endpoints": true, "/api/webhooks/endpoints/ep_1/secret": true, "/nowhere": true},
	}
	for _, p := range paths {
		if !serveAll.serves(p) {
			t.Errorf("without --admin-listen, --listen does not serve %s", p)
		}
		for role, served := range want {
			if got := role.serves(p); got != served[p] {
				t.Errorf("%s: serves(%s) = %v, want %v", role, p, got, served[p])
			}
		}
	}
}
