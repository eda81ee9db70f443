package uitest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// browserZone is the time zone the browser runs in: half an hour off any whole-hour zone,
// and never UTC, so reading the recover time as UTC (or in the test's own zone) shows.
const browserZone = "Asia/Kolkata"

var browserLoc = time.FixedZone("IST", 5*3600+30*60) // browserZone has had no DST since 1945

// TestResendUI drives "Resend" on a failed delivery and "Recover failed deliveries…" on its
// endpoint, in headless Chromium against the real relay and a real receiver: the resent
// delivery reaches the receiver again under its own delivery id and the page shows it
// succeed, with every attempt kept; the API's refusals show in the page; the recover dialog
// sends the chosen local time as UTC and reports how many deliveries it resent.
func TestResendUI(t *testing.T) {
	requireChromium(t)
	began := time.Now()

	// A long delivery timeout: the receiver holds the resend on purpose.
	// No resend window and small segments: checkRecoverExpired can make payloads expire.
	relay := relaytest.Start(t, relaytest.Options{Args: []string{"--retry-schedule", "100ms,200ms", "--delivery-timeout", "10s",
		"--history-payload-bytes", "0", "--wal-segment-size", "65536"}})
	rc := relaytest.NewReceiver(t, relaytest.Status(http.StatusInternalServerError))
	apiCtx := relaytest.Context(t, 85*time.Second)

	ep, err := relay.Client.CreateEndpoint(apiCtx, apiclient.EndpointCreate{URL: rc.URL, Name: "Orders service"})
	if err != nil {
		t.Fatal(err)
	}
	first := ingestAndFail(t, apiCtx, relay, ep.ID, api.TypeIncidentOpened)
	if n := rc.Count(); n != 3 {
		t.Fatalf("the receiver got %d requests for the failed delivery, want 3 (the schedule's)", n)
	}

	b := newBrowser(t, 80*time.Second, chromedp.Env("TZ="+browserZone))
	if off := eval[int](b, `new Date(2024, 0, 1).getTimezoneOffset()`); off != -330 {
		t.Fatalf("the browser's UTC offset is %d min, want -330 (%s): the time zone checks below would prove nothing", off, browserZone)
	}
	signIn(b, relay, "#/endpoints/"+ep.ID)
	item := `document.getElementById(` + js("delivery-"+first) + `)`
	resendID := "resend-" + first
	b.waitFor("the failed delivery with Resend", item+`?.dataset.status === 'failed' && !!document.getElementById(`+js(resendID)+`)`)
	if text := eval[string](b, `document.getElementById(`+js(resendID)+`).textContent`); !strings.HasPrefix(text, "Resend") || !strings.Contains(text, first) {
		t.Errorf("Resend button text = %q, want Resend and the delivery id for screen readers", text)
	}
	checkLabels(t, b, "deliveries with Resend")
	checkFits(t, b, 1280, "deliveries with Resend")

	// --- Resend, from the keyboard. The receiver holds the request until the page has shown
	// the delivery pending, then accepts it.
	release := make(chan struct{})
	rc.SetHandler(func(w http.ResponseWriter, _ *relaytest.Request) {
		select {
		case <-release:
		case <-time.After(8 * time.Second):
		}
		w.WriteHeader(http.StatusOK)
	})
	b.do(chromedp.Focus(chromedp.ID(resendID)), chromedp.KeyEvent(kb.Enter))
	b.waitFor("the resent delivery pending, without Resend, keeping focus", item+`?.dataset.status === 'pending' &&
		!`+item+`.querySelector('button') && document.activeElement === `+item+` &&
		document.getElementById('notice').textContent.includes('Resending delivery `+first+`')`)
	b.shot("20-resend-pending")
	close(release)
	b.waitFor("the resent delivery succeeded, its earlier attempts kept", `(() => {
		const d = `+item+`;
		if (!d || d.dataset.status !== 'succeeded') return false;
		const rows = [...d.querySelectorAll('tr.attempt')].map(r => [...r.cells].map(c => c.textContent));
		return rows.length === 4 && rows[3][0] === '4' && rows[3][2] === 'HTTP 200' &&
			rows.slice(0, 3).every((r, i) => r[0] === String(i + 1) && r[2] === 'HTTP 500') &&
			!!document.getElementById(`+js(resendID)+`);
	})()`)
	reqs := rc.Requests()
	if len(reqs) != 4 {
		t.Fatalf("the receiver got %d requests, want the 3 failures and the resend", len(reqs))
	}
	for i, r := range reqs {
		if got := r.Header.Get(signature.HeaderBlameTrailDelivery); got != first {
			t.Errorf("request %d carries %s %q, want the delivery's own id %s", i+1, signature.HeaderBlameTrailDelivery, got, first)
		}
	}
	if !bytes.Equal(reqs[3].Body, reqs[0].Body) {
		t.Errorf("the resend's body differs from the original's:\n%s\n%s", reqs[3].Body, reqs[0].Body)
	}
	b.shot("21-resend-succeeded")

	// --- A refusal shows the API's own message in the page's alert: an endpoint disabled
	// behind the page's back cannot resend.
	setActive(t, apiCtx, relay, ep.ID, false)
	b.do(chromedp.Click(chromedp.ID(resendID)))
	b.waitFor("the refusal, in place of the earlier notice", `!document.getElementById('alert').hidden &&
		document.getElementById('alert').textContent.startsWith('Could not resend') && document.getElementById('notice').hidden`)
	code, msg := apiError(t, apiCtx, relay, "POST", "/api/webhooks/endpoints/"+ep.ID+"/deliveries/"+first+"/resend", "")
	if code != "endpoint_inactive" {
		t.Errorf("resend on a disabled endpoint: error code %q, want endpoint_inactive", code)
	}
	if got, want := eval[string](b, `document.getElementById('alert').textContent`), "Could not resend delivery "+first+": "+msg; got != want {
		t.Errorf("alert = %q, want %q", got, want)
	}
	b.waitFor("the page refreshed to the disabled endpoint", `document.querySelector('#detail-meta [data-field=status] dd').textContent === 'Disabled'`)
	setActive(t, apiCtx, relay, ep.ID, true)

	// --- Two more deliveries fail; Recover resends both (not the one that succeeded).
	rc.SetHandler(relaytest.Status(http.StatusInternalServerError))
	failed := []string{
		ingestAndFail(t, apiCtx, relay, ep.ID, api.TypeIncidentAcknowledged),
		ingestAndFail(t, apiCtx, relay, ep.ID, api.TypeIncidentResolved),
	}
	rc.SetHandler(nil)
	before := rc.Count()
	b.do(chromedp.Click(chromedp.ID("refresh-deliveries")))
	b.waitFor("two failed deliveries and the active endpoint", `document.querySelectorAll('#deliveries li[data-status=failed]').length === 2 &&
		document.querySelector('#detail-meta [data-field=status] dd').textContent === 'Active'`)
	recordRecoverBodies(b)

	recoverID := "detail-recover-" + ep.ID
	b.do(chromedp.Click(chromedp.ID(recoverID)))
	b.waitFor("the recover dialog", `document.getElementById('recover-dialog').open && document.activeElement.id === 'recover-since'`)
	checkLabels(t, b, "recover dialog")
	if got := eval[string](b, `document.querySelector('label[for=recover-since]').textContent`); got != "Failed since" {
		t.Errorf("label of the time input = %q", got)
	}
	if zone := eval[string](b, `document.getElementById('recover-zone').textContent`); !strings.Contains(zone, "UTC+05:30") {
		t.Errorf("the dialog names the time zone %q, want one at UTC+05:30", zone)
	}
	shown := eval[string](b, `document.getElementById('recover-since').value`)
	if def, err := time.ParseInLocation("2006-01-02T15:04", shown, browserLoc); err != nil {
		t.Errorf("default time %q: %v", shown, err)
	} else if d := time.Since(def) - 24*time.Hour; d < -time.Minute || d > 2*time.Minute {
		t.Errorf("default time %q is %s off 24 hours ago", shown, d)
	}
	b.shot("22-recover-dialog")

	// Nothing chosen: the dialog says so and sends nothing.
	b.do(clearField("recover-since"), chromedp.Click(chromedp.ID("recover-confirm")))
	b.waitFor("the missing time flagged", `document.getElementById('since-error').textContent.length > 0 &&
		document.getElementById('recover-since').getAttribute('aria-invalid') === 'true' && document.activeElement.id === 'recover-since'`)
	if n := eval[int](b, `window.__recoverBodies.length`); n != 0 {
		t.Errorf("an empty time sent %d recover requests", n)
	}

	// Two hours ago on the browser's clock; the relay must get that instant, in UTC.
	since := time.Now().Add(-2 * time.Hour).In(browserLoc).Truncate(time.Minute)
	b.do(chromedp.SetValue(chromedp.ID("recover-since"), since.Format("2006-01-02T15:04")), chromedp.Click(chromedp.ID("recover-confirm")))
	b.waitFor("the recover result", `!document.getElementById('recover-dialog').open && document.getElementById('notice').textContent.startsWith('Resent')`)
	var sent []struct{ Since string }
	if err := json.Unmarshal([]byte(eval[string](b, `'[' + window.__recoverBodies.join(',') + ']'`)), &sent); err != nil || len(sent) != 1 {
		t.Fatalf("recover request bodies: %v, %v", sent, err)
	}
	if want := since.UTC().Format(time.RFC3339); sent[0].Since != want {
		t.Errorf("recover sent since %q for %s local, want %q", sent[0].Since, since.Format("2006-01-02T15:04"), want)
	}
	if got, want := eval[string](b, `document.getElementById('notice').textContent`), "Resent 2 deliveries to Orders service."; got != want {
		t.Errorf("notice = %q, want %q", got, want)
	}
	b.waitFor("both recovered deliveries succeeded, focus back on Recover", `(() => {
		const ids = `+jsList(failed)+`;
		return ids.every(id => {
			const d = document.getElementById('delivery-' + id);
			return !!d && d.dataset.status === 'succeeded' && d.querySelectorAll('tr.attempt').length === 4;
		}) && document.activeElement.id === `+js(recoverID)+`;
	})()`)
	got := map[string]int{}
	for _, r := range rc.Requests()[before:] {
		got[r.Header.Get(signature.HeaderBlameTrailDelivery)]++
	}
	if len(got) != 2 || got[failed[0]] != 1 || got[failed[1]] != 1 {
		t.Errorf("after Recover the receiver got deliveries %v, want one each of %v", got, failed)
	}
	b.shot("23-recovered")

	// --- The API's refusal shows in the dialog, which stays open.
	setActive(t, apiCtx, relay, ep.ID, false)
	b.do(chromedp.Click(chromedp.ID(recoverID)))
	b.waitFor("the recover dialog again", `document.getElementById('recover-dialog').open && document.getElementById('recover-error').textContent === ''`)
	b.do(chromedp.Click(chromedp.ID("recover-confirm")))
	b.waitFor("the refusal in the dialog", `document.getElementById('recover-error').textContent.startsWith('Could not recover')`)
	code, msg = apiError(t, apiCtx, relay, "POST", "/api/webhooks/endpoints/"+ep.ID+"/recover", `{"since":"`+since.UTC().Format(time.RFC3339)+`"}`)
	if code != "endpoint_inactive" {
		t.Errorf("recover on a disabled endpoint: error code %q, want endpoint_inactive", code)
	}
	if got, want := eval[string](b, `document.getElementById('recover-error').textContent`), "Could not recover failed deliveries: "+msg; got != want {
		t.Errorf("recover error = %q, want %q", got, want)
	}
	if !eval[bool](b, `document.getElementById('recover-dialog').open && !document.getElementById('recover-confirm').disabled`) {
		t.Error("after a refusal the dialog closed or its button stayed disabled")
	}
	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the dialog closed", `!document.getElementById('recover-dialog').open`)

	setActive(t, apiCtx, relay, ep.ID, true)
	rc.SetHandler(relaytest.Status(http.StatusInternalServerError))
	checkRecoverExpired(t, apiCtx, b, relay, ep.ID, recoverID)

	if problems := b.consoleProblems(); len(problems) > 0 {
		t.Errorf("the page logged errors or CSP violations:\n%s", strings.Join(problems, "\n"))
	}
	t.Logf("resend flow took %s; screenshots in %s", time.Since(began).Round(time.Millisecond), b.dir)
}

// checkRecoverExpired makes the relay drop the payloads of failed deliveries for real (it runs
// with --history-payload-bytes 0, and two snapshots compact the segments that held them) and
// checks that the page reports them as not resent.
func checkRecoverExpired(t *testing.T, ctx context.Context, b *browser, relay *relaytest.Relay, endpoint, recoverID string) {
	t.Helper()
	pad := strings.Repeat("x", 20_000) // a few of these fill the 64 KiB segments
	for i := range 4 {
		if _, err := relay.Client.Ingest(ctx, apiclient.Event{Type: api.TypeIncidentResolved, Data: map[string]any{"n": i, "pad": pad}}); err != nil {
			t.Fatal(err)
		}
	}
	relaytest.Eventually(t, 10*time.Second, "the large deliveries to fail", func() bool {
		list, err := relay.Client.ListDeliveries(ctx, endpoint, "", 50)
		if err != nil {
			return false
		}
		failed := 0
		for _, d := range list.Data {
			if d.EventType == api.TypeIncidentResolved && d.Status == api.StatusFailed {
				failed++
			}
		}
		return failed == 4
	})
	written := func() int { return strings.Count(relay.Logs(), `"msg":"snapshot written"`) }
	for range 2 { // the second snapshot compacts what the first one covers
		n := written()
		if err := syscall.Kill(relay.PID(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		relaytest.Eventually(t, 10*time.Second, "a snapshot", func() bool { return written() > n })
	}
	b.do(chromedp.Click(chromedp.ID(recoverID)))
	b.waitFor("the recover dialog", `document.getElementById('recover-dialog').open`)
	b.do(chromedp.Click(chromedp.ID("recover-confirm")))
	want := "Resent 0 deliveries to Orders service. 4 could not be resent: payload no longer kept."
	b.waitFor("the expired payloads reported", `document.getElementById('notice').textContent === `+js(want))
	if open := eval[bool](b, `document.getElementById('recover-dialog').open`); open {
		t.Error("the dialog stayed open after a recover that succeeded")
	}
	b.shot("24-recover-expired")
}

// ingestAndFail sends an event of type typ and waits until its delivery to endpoint has
// failed every attempt of the schedule; it returns the delivery's id.
func ingestAndFail(t *testing.T, ctx context.Context, relay *relaytest.Relay, endpoint, typ string) string {
	t.Helper()
	if _, err := relay.Client.Ingest(ctx, apiclient.Event{Type: typ, Data: map[string]any{"incident_id": "inc_7", "title": "Checkout latency"}}); err != nil {
		t.Fatal(err)
	}
	var id string
	relaytest.Eventually(t, 10*time.Second, typ+" failed", func() bool {
		list, err := relay.Client.ListDeliveries(ctx, endpoint, "", 50)
		if err != nil {
			return false
		}
		for _, d := range list.Data {
			if d.EventType == typ && d.Status == api.StatusFailed && len(d.Attempts) == 3 {
				id = d.ID
				return true
			}
		}
		return false
	})
	return id
}

func setActive(t *testing.T, ctx context.Context, relay *relaytest.Relay, id string, active bool) {
	t.Helper()
	if _, err := relay.Client.UpdateEndpoint(ctx, id, apiclient.EndpointPatch{Active: &active}); err != nil {
		t.Fatal(err)
	}
}

// apiError makes a call the test expects the relay to refuse and returns the error's code
// and message, to compare with what the page shows.
func apiError(t *testing.T, ctx context.Context, relay *relaytest.Relay, method, path, body string) (code, message string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, relay.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+relay.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || resp.StatusCode < 400 {
		t.Fatalf("%s %s: %d, %v; want an error body", method, path, resp.StatusCode, err)
	}
	return eb.Error.Code, eb.Error.Message
}

// signIn opens the UI at hash with the relay's token typed into the sign-in form.
func signIn(b *browser, relay *relaytest.Relay, hash string) {
	b.t.Helper()
	b.do(chromedp.Navigate(relay.URL + "/" + hash))
	b.waitFor("the sign-in form", `!document.getElementById('view-signin').hidden && document.activeElement.id === 'token'`)
	b.do(chromedp.SendKeys(chromedp.ID("token"), relay.Token+kb.Enter))
	b.waitFor("signed in", `document.getElementById('view-signin').hidden`)
}

// recordRecoverBodies wraps the page's fetch so the test can read the bodies the page sends
// to /recover (window.__recoverBodies); every request still goes to the relay.
func recordRecoverBodies(b *browser) {
	b.do(chromedp.Evaluate[chromedp.Void](`(() => {
		window.__recoverBodies = [];
		const real = window.fetch;
		window.fetch = function (url, init) {
			if (String(url).endsWith('/recover')) window.__recoverBodies.push(init && init.body);
			return real.apply(this, arguments);
		};
	})()`))
}

func jsList(ss []string) string {
	b, err := json.Marshal(ss)
	if err != nil {
		panic(err)
	}
	return string(b)
}
