package main_test

// Receivers are judged only by their answer: the status decides, large headers are fine, and
// nothing a receiver sends back (headers, cookies, Location, status text, body) is kept in
// the delivery history or the relay's log.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// TestLargeResponseHeadersSucceed: a receiver that answers 200 with an 8 KiB Set-Cookie (as
// CDNs and gateways do) gets succeeded deliveries, and more of them than --disable-after
// never disable it.
func TestLargeResponseHeadersSucceed(t *testing.T) {
	t.Parallel()
	cookie := "session=" + strings.Repeat("c", 8<<10)
	rc := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		w.Header().Set("Set-Cookie", cookie)
		w.WriteHeader(http.StatusOK)
	})
	r := relaytest.Start(t, relaytest.Options{Args: autoDisableArgs})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	const n = 12 // more than --disable-after 10
	for i := range n {
		ingest(t, r, api.TypeIncidentOpened, map[string]any{"i": i})
	}
	// Settled: nothing pending. Held deliveries would mean the endpoint was disabled.
	settled := waitDeliveries(t, r, ep.ID, "deliveries to settle", func(ds []api.Delivery) bool {
		for _, d := range ds {
			if d.Status == api.StatusPending {
				return false
			}
		}
		return len(ds) == n
	})
	for _, d := range settled {
		if d.Status != api.StatusSucceeded || len(d.Attempts) != 1 {
			t.Errorf("delivery %s: %s after %d attempts (%+v), want succeeded at once", d.ID, d.Status, len(d.Attempts), d.Attempts)
		}
	}
	if got := getEndpoint(t, r, ep.ID); !got.Active || got.DisabledReason != nil || got.ConsecutiveFailures != 0 {
		t.Errorf("endpoint = %+v, want active with no failures", got)
	}
	if rc.Count() != n {
		t.Errorf("receiver got %d requests, want %d", rc.Count(), n)
	}
	checkAlive(t, r)
}

// TestReceiverAnswersNeverLeak: receivers that echo a token in a large header, a cookie, the
// body, a redirect's Location or a malformed status line. The token appears nowhere in GET
// …/deliveries nor in the relay's log (at debug level, which logs every attempt), and each
// stored error is a short phrase.
func TestReceiverAnswersNeverLeak(t *testing.T) {
	t.Parallel()
	const token = "rcvtok_9f3Kq7ZxW2"
	serverError := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		w.Header().Set("Set-Cookie", "session="+token+strings.Repeat("s", 8<<10))
		w.Header().Set("X-Debug-Token", token)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":"boom","token":"`+token+`"}`)
	})
	redirect := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		w.Header().Set("Location", "https://user:"+token+"@login.example.com/cb/"+token+"?code="+token)
		w.WriteHeader(http.StatusFound)
	})
	malformed := relaytest.RawAnswer(t, "HTTP/1.1 "+token+" "+token+"\r\nX-Token: "+token+"\r\n\r\n")

	r := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "10ms", "--log-level", "debug"}})
	cases := []struct {
		name string
		url  string
		code int // of every attempt; 0 = none
		err  string
	}{
		{"500 with token in cookie, header and body", serverError.URL, 500, ""},
		{"302 with token in Location", redirect.URL, 302, "redirect (302) not followed, to https://login.example.com"},
		{"malformed status line", malformed, 0, "malformed response"},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = createEndpoint(t, r, apiclient.EndpointCreate{URL: c.url, Name: c.name}).ID
	}
	ingest(t, r, api.TypeIncidentOpened, map[string]any{"case": "answers"})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := waitFinished(t, r, ids[i], 1)[0]
			if d.Status != api.StatusFailed || len(d.Attempts) != 2 {
				t.Errorf("delivery = %+v, want failed after 2 attempts", d)
			}
			for _, a := range d.Attempts {
				code, msg := 0, ""
				if a.StatusCode != nil {
					code = *a.StatusCode
				}
				if a.Error != nil {
					msg = *a.Error
				}
				if code != c.code || msg != c.err {
					t.Errorf("attempt %d: status %d, error %q; want %d, %q", a.N, code, msg, c.code, c.err)
				}
				if len(msg) > 200 || !utf8.ValidString(msg) {
					t.Errorf("attempt %d: error of %d bytes or invalid UTF-8: %q", a.N, len(msg), msg)
				}
			}
			status, body, _ := r.Do("GET", "/api/webhooks/endpoints/"+ids[i]+"/deliveries?limit=250", "", r.Token, nil)
			if status != http.StatusOK {
				t.Fatalf("GET deliveries = %d %s", status, body)
			}
			if strings.Contains(string(body), token) {
				t.Errorf("GET deliveries carries the receiver's token: %s", body)
			}
		})
	}
	// The relay logs each attempt at debug level; wait until it has logged the last one.
	relaytest.Eventually(t, waitLong, "the failed deliveries in the log", func() bool {
		return strings.Count(r.Logs(), `"delivery failed"`) >= len(cases)
	})
	if logs := r.Logs(); strings.Contains(logs, token) {
		t.Errorf("the relay log carries the receiver's token:\n%s", logs)
	}
	checkAlive(t, r)
}
