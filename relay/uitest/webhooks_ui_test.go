package uitest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// TestWebhooksUI walks the whole Organization › Integrations › Webhooks page as a user
// would, in headless Chromium against the real relay and real receivers: sign in (a wrong
// token first, then the ingest token), add an endpoint (a bad URL first), read its secret, send a test that a
// receiver verifies, switch it off and on, watch a failing endpoint's attempts, delete with
// confirmation, use the page 375 px wide, and be sent back to sign-in by a 401.
func TestWebhooksUI(t *testing.T) {
	requireChromium(t)
	began := time.Now()

	// A long delivery timeout: the failing receiver below holds requests on purpose.
	relay := relaytest.Start(t, relaytest.Options{IngestToken: "ui_test_ingest_token_0123456789",
		Args: []string{"--retry-schedule", "100ms,200ms", "--delivery-timeout", "10s"}})
	good := relaytest.NewReceiver(t, nil)
	// The failing receiver holds requests until the test has seen them pending in the page,
	// then answers 500, except that it drops the connection on the second attempt of an
	// event, so the page shows both kinds of failure.
	release := make(chan struct{})
	var eventAttempts atomic.Int32
	failing := relaytest.NewReceiver(t, func(w http.ResponseWriter, r *relaytest.Request) {
		select {
		case <-release:
		case <-time.After(8 * time.Second):
		}
		if r.Header.Get("X-BlameTrail-Event") != api.TypeTestPing && eventAttempts.Add(1) == 2 {
			panic(http.ErrAbortHandler) // net/http closes the connection without an answer
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	gone := relaytest.NewReceiver(t, relaytest.Status(http.StatusGone))
	apiCtx := relaytest.Context(t, 85*time.Second)

	checkUIHeaders(t, relay.URL)

	b := newBrowser(t, 80*time.Second)
	t.Logf("relay and browser up after %s", time.Since(began).Round(time.Millisecond))

	// --- Sign in: a wrong token is refused with a message, the right one opens the page.
	b.do(chromedp.Navigate(relay.URL + "/"))
	b.waitFor("the sign-in form", `!document.getElementById('view-signin').hidden && document.activeElement.id === 'token'`)
	if got := eval[string](b, `document.querySelector('label[for=token]').textContent`); got != "API token" {
		t.Errorf("token label = %q, want %q", got, "API token")
	}
	if typ := eval[string](b, `document.getElementById('token').type`); typ != "password" {
		t.Errorf("token input type = %q, want password", typ)
	}
	b.shot("01-sign-in")
	// Typed and submitted with the keyboard alone.
	b.do(chromedp.SendKeys(chromedp.ID("token"), "not-the-token"+kb.Enter))
	b.waitFor("the refusal message", `document.getElementById('signin-error').textContent.includes('not accepted')`)
	if stored := eval[bool](b, `sessionStorage.length > 0`); stored {
		t.Error("a refused token was kept in sessionStorage")
	}
	b.shot("02-sign-in-refused")
	// The ingest token is a valid token without admin rights: the page says which token it is.
	b.do(clearField("token"), chromedp.SendKeys(chromedp.ID("token"), relay.IngestToken+kb.Enter))
	b.waitFor("the ingest token's message", `document.getElementById('signin-error').textContent.includes('ingest token')`)
	if stored := eval[bool](b, `sessionStorage.length > 0`); stored {
		t.Error("the ingest token was kept in sessionStorage")
	}
	b.do(clearField("token"), chromedp.SendKeys(chromedp.ID("token"), relay.Token+kb.Enter))
	b.waitFor("the Webhooks page", `!document.getElementById('view-list').hidden && !document.getElementById('list-empty').hidden`)
	if crumb := eval[string](b, `document.querySelector('nav[aria-label=Breadcrumb]').innerText.replace(/\s+/g, ' ').trim()`); crumb != "Organization › Integrations › Webhooks" {
		t.Errorf("breadcrumb = %q", crumb)
	}
	if h1 := eval[string](b, `document.getElementById('list-title').textContent`); h1 != "Webhooks" {
		t.Errorf("h1 = %q, want Webhooks", h1)
	}
	if stored := eval[string](b, `sessionStorage.getItem('blametrail.apiToken')`); stored != relay.Token {
		t.Error("the token is not in sessionStorage after sign-in")
	}
	checkLabels(t, b, "empty list")
	b.shot("03-webhooks-empty")

	// --- Add Endpoint: the API's validation error shows next to the URL field.
	b.do(chromedp.Click(chromedp.ID("add-endpoint")))
	b.waitFor("the add form with event types", `document.getElementById('add-dialog').open && document.querySelectorAll('#ep-types-list input[type=checkbox]').length > 0`)
	types := eval[[]string](b, `[...document.querySelectorAll('#ep-types-list input')].map(i => i.value)`)
	if want := []string{api.TypeIncidentOpened, api.TypeIncidentAcknowledged, api.TypeIncidentResolved, api.TypeDeployIngested}; strings.Join(types, ",") != strings.Join(want, ",") {
		t.Errorf("event type checkboxes = %v, want %v (no test.ping)", types, want)
	}
	for _, l := range []struct{ id, text string }{{"ep-url", "URL"}, {"ep-name", "Name"}} {
		if got := eval[string](b, `document.querySelector('label[for=`+l.id+`]').textContent`); got != l.text {
			t.Errorf("label of %s = %q, want %q", l.id, got, l.text)
		}
	}
	checkLabels(t, b, "add form")
	b.do(
		chromedp.SendKeys(chromedp.ID("ep-url"), "ftp://x"),
		chromedp.SendKeys(chromedp.ID("ep-name"), "Ops dashboard"),
		chromedp.Click(chromedp.ID("add-save")),
	)
	b.waitFor("the URL error", `document.getElementById('url-error').textContent.length > 0`)
	if msg := eval[string](b, `document.getElementById('name-error').textContent`); msg != "" {
		t.Errorf("name shows an error for a bad URL: %q", msg)
	}
	if !eval[bool](b, `document.getElementById('ep-url').getAttribute('aria-invalid') === 'true' && document.activeElement.id === 'ep-url'`) {
		t.Error("the URL input is not marked invalid and focused")
	}
	b.shot("04-add-endpoint-invalid")

	// --- Save a valid endpoint; the secret is shown once with Copy and the warning.
	b.do(
		clearField("ep-url"),
		chromedp.SendKeys(chromedp.ID("ep-url"), good.URL),
		chromedp.Click(chromedp.ID("type-incident-opened")),
		chromedp.Click(chromedp.ID("type-incident-resolved")),
		chromedp.Click(chromedp.ID("add-save")),
	)
	b.waitFor("the signing secret", `!document.getElementById('add-secret').hidden && document.getElementById('new-secret').value.startsWith('whsec_')`)
	secret := eval[string](b, `document.getElementById('new-secret').value`)
	if !eval[bool](b, `document.getElementById('add-secret').textContent.includes('store it securely')`) {
		t.Error(`the secret step does not say "store it securely"`)
	}
	eps, err := relay.Client.AllEndpoints(apiCtx)
	if err != nil || len(eps) != 1 {
		t.Fatalf("endpoints after Save: %v, %v", eps, err)
	}
	ep := eps[0]
	if ep.URL != good.URL || ep.Name != "Ops dashboard" || strings.Join(ep.EventTypes, ",") != "incident.opened,incident.resolved" {
		t.Errorf("created endpoint = %+v", ep)
	}
	if apiSecret, err := relay.Client.Secret(apiCtx, ep.ID); err != nil || apiSecret != secret {
		t.Errorf("the page's secret is not the API's: %v", err)
	}
	b.shot("05-endpoint-secret")
	b.do(chromedp.Click(chromedp.ID("copy-secret")))
	b.waitFor("the copy result", `document.getElementById('copy-status').textContent.length > 0`)
	b.do(chromedp.Click(chromedp.ID("secret-done")))
	b.waitFor("the new row", `!document.getElementById('add-dialog').open && document.getElementById('new-secret').value === '' && !!document.querySelector('tr[data-endpoint-id=`+js(ep.ID)+`]')`)
	row := `document.querySelector('tr[data-endpoint-id=` + js(ep.ID) + `]')`

	// --- Send Test: the receiver gets a test.ping that verifies with the page's secret.
	b.do(chromedp.Click(chromedp.ID("row-test-" + ep.ID)))
	relaytest.Eventually(t, 10*time.Second, "the test ping at the receiver", func() bool { return good.Count() > 0 })
	ping := good.Requests()[0]
	if err := signature.VerifyHeaders(secret, ping.Header, ping.Body); err != nil {
		t.Errorf("test ping does not verify with the secret shown in the page: %v", err)
	}
	var body struct{ Type string }
	if err := json.Unmarshal(ping.Body, &body); err != nil || body.Type != api.TypeTestPing || ping.Header.Get("X-BlameTrail-Event") != api.TypeTestPing {
		t.Errorf("test ping body %s, event header %q", ping.Body, ping.Header.Get("X-BlameTrail-Event"))
	}
	b.waitFor("the row's last delivery", row+`.querySelector('.cell-last').textContent.includes('Succeeded')`)

	// --- The Active switch, both ways, checked against the API.
	for _, want := range []bool{false, true} {
		b.do(chromedp.Click(chromedp.ID("row-active-" + ep.ID)))
		relaytest.Eventually(t, 10*time.Second, "active="+strconv.FormatBool(want)+" in the API", func() bool {
			got, err := relay.Client.Endpoint(apiCtx, ep.ID)
			return err == nil && got.Active == want
		})
		status := map[bool]string{false: "Disabled", true: "Active"}[want]
		b.waitFor("status "+status, row+`.querySelector('.cell-status').textContent === `+js(status)+
			` && document.getElementById('row-active-`+ep.ID+`').checked === `+strconv.FormatBool(want))
	}

	// --- A failing endpoint and one that answered 410 Gone.
	failEP, err := relay.Client.CreateEndpoint(apiCtx, apiclient.EndpointCreate{URL: failing.URL, Name: "Billing service"})
	if err != nil {
		t.Fatal(err)
	}
	goneEP, err := relay.Client.CreateEndpoint(apiCtx, apiclient.EndpointCreate{URL: gone.URL, Name: "Legacy CRM"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.Client.SendTest(apiCtx, goneEP.ID); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, 10*time.Second, "the 410 endpoint disabled", func() bool {
		got, err := relay.Client.Endpoint(apiCtx, goneEP.ID)
		return err == nil && got.DisabledReason != nil && *got.DisabledReason == api.DisabledGone
	})
	b.do(chromedp.Reload()) // the token survives a reload: it is in sessionStorage
	b.waitFor("three rows", `document.querySelectorAll('#endpoint-rows tr').length === 3`)

	// --- Endpoint detail: deliveries show up pending (and the page says it refreshes), then
	// fail with every attempt listed, without a reload. A test ping gets one attempt; an
	// event gets the retries of the schedule (100ms, 200ms): three attempts.
	b.do(chromedp.Click(chromedp.ID("row-deliveries-" + failEP.ID)))
	b.waitFor("the endpoint detail", `!document.getElementById('view-detail').hidden && document.getElementById('detail-title').textContent === 'Billing service'`)
	if title := eval[string](b, `document.title`); !strings.HasPrefix(title, "Billing service") {
		t.Errorf("detail title = %q", title)
	}
	b.do(chromedp.Click(chromedp.ID("detail-test-" + failEP.ID)))
	b.waitFor("a pending test ping", `!!document.querySelector('#deliveries li[data-status=pending]') && !document.getElementById('refresh-note').hidden`)
	if _, err := relay.Client.Ingest(apiCtx, apiclient.Event{Type: api.TypeIncidentOpened, Data: map[string]any{"incident_id": "inc_42", "title": "Checkout latency"}}); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the event's delivery, newest first", `(() => {
		const items = document.querySelectorAll('#deliveries li.delivery');
		return items.length === 2 && items[0].dataset.eventType === 'incident.opened' && items[1].dataset.eventType === 'test.ping';
	})()`)
	b.shot("06-endpoint-pending")
	close(release)
	event := `document.querySelector('#deliveries li[data-event-type="incident.opened"]')`
	b.waitFor("the event's delivery failed after 3 attempts", `(() => {
		const d = `+event+`;
		return !!d && d.dataset.status === 'failed' && d.querySelectorAll('tr.attempt').length === 3 &&
			!document.querySelector('#deliveries li[data-status=pending]') && document.getElementById('refresh-note').hidden;
	})()`)
	attempts := eval[[]string](b, `[...`+event+`.querySelectorAll('tr.attempt td.result')].map(r => r.textContent)`)
	if len(attempts) != 3 || attempts[0] != "HTTP 500" || attempts[2] != "HTTP 500" ||
		strings.Contains(attempts[1], "HTTP") || attempts[1] == "" {
		t.Errorf("attempt results = %q, want HTTP 500, the connection error, HTTP 500", attempts)
	}
	if d := eval[string](b, event+`.querySelector('tr.attempt td:last-child').textContent`); !strings.HasSuffix(d, " ms") {
		t.Errorf("attempt duration = %q", d)
	}
	if n := eval[int](b, `document.querySelectorAll('#deliveries li[data-event-type="test.ping"] tr.attempt').length`); n != 1 {
		t.Errorf("the test ping shows %d attempts, want 1", n)
	}
	b.waitFor("the failure counted", `document.querySelector('#detail-meta [data-field=consecutive_failures] dd').textContent === '1'`)
	checkLabels(t, b, "endpoint detail")
	checkFits(t, b, 1280, "detail")
	detailShot := b.shot("07-endpoint-detail")
	checkRotateSecret(t, b, relay, failEP.ID)

	// --- Back through the breadcrumb: every status as the API reports it.
	b.do(chromedp.Click(chromedp.CSS("#breadcrumb a")))
	b.waitFor("the list with the failure", `(() => {
		const r = document.querySelector('tr[data-endpoint-id=`+js(failEP.ID)+`]');
		return !!r && r.querySelector('.cell-last').textContent.includes('Failed');
	})()`)
	goneRow := `document.querySelector('tr[data-endpoint-id=` + js(goneEP.ID) + `]')`
	if status := eval[string](b, goneRow+`.querySelector('.cell-status').textContent`); status != "Auto-disabled: endpoint returned 410 Gone" {
		t.Errorf("410 endpoint status = %q", status)
	}
	failNow, err := relay.Client.Endpoint(apiCtx, failEP.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := eval[string](b, `document.querySelector('tr[data-endpoint-id=`+js(failEP.ID)+`] .cell-failures').textContent`); got != strconv.Itoa(failNow.ConsecutiveFailures) {
		t.Errorf("consecutive failures shown %q, API says %d", got, failNow.ConsecutiveFailures)
	}
	checkLabels(t, b, "list")
	checkFits(t, b, 1280, "list")
	listShot := b.shot("08-webhooks")

	// --- Delete asks first: Escape keeps the endpoint, Delete endpoint removes it.
	b.do(chromedp.Click(chromedp.ID("row-delete-" + ep.ID)))
	b.waitFor("the delete dialog", `document.getElementById('delete-dialog').open && document.activeElement.id === 'delete-cancel'`)
	if name := eval[string](b, `document.getElementById('delete-name').textContent`); name != "Ops dashboard" {
		t.Errorf("delete dialog names %q", name)
	}
	b.do(chromedp.KeyEvent(kb.Escape))
	b.waitFor("the dialog closed", `!document.getElementById('delete-dialog').open`)
	if _, err := relay.Client.Endpoint(apiCtx, ep.ID); err != nil {
		t.Fatalf("Escape in the delete dialog deleted the endpoint: %v", err)
	}
	b.do(chromedp.Click(chromedp.ID("row-delete-" + ep.ID)))
	b.waitFor("the delete dialog again", `document.getElementById('delete-dialog').open`)
	b.shot("09-delete-confirm")
	b.do(chromedp.Click(chromedp.ID("delete-confirm")))
	b.waitFor("the row gone", `!document.getElementById('delete-dialog').open && !`+row+` && document.getElementById('notice').textContent.includes('Deleted')`)
	if _, err := relay.Client.Endpoint(apiCtx, ep.ID); !errors.Is(err, apiclient.ErrNotFound) {
		t.Errorf("after Delete the API answers %v, want 404", err)
	}

	// --- 375 px wide: rows become cards, nothing scrolls sideways, every control fits.
	b.do(chromedp.EmulateViewport(375, 812), chromedp.Reload())
	b.waitFor("the list at 375 px", `document.querySelectorAll('#endpoint-rows tr').length === 2`)
	checkFits(t, b, 375, "list")
	b.shot("10-webhooks-375px")
	b.do(chromedp.Click(chromedp.ID("row-deliveries-" + failEP.ID)))
	b.waitFor("the detail at 375 px", `!document.getElementById('view-detail').hidden && document.querySelectorAll('#deliveries tr.attempt').length === 4`)
	checkFits(t, b, 375, "detail")
	b.shot("11-endpoint-375px")
	b.do(chromedp.EmulateViewport(1280, 860))

	// --- API data is text, never markup.
	hostile := `<img src=x onerror="window.__pwned=1">Evil & Co`
	if _, err := relay.Client.CreateEndpoint(apiCtx, apiclient.EndpointCreate{URL: good.URL, Name: hostile}); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Click(chromedp.CSS("#breadcrumb a")))
	b.waitFor("the hostile name as text", `[...document.querySelectorAll('#endpoint-rows .cell-name a')].some(a => a.textContent === `+js(hostile)+`)`)
	if eval[bool](b, `!!document.querySelector('#endpoint-rows img') || window.__pwned === 1`) {
		t.Error("an endpoint name was rendered as HTML")
	}

	// --- A 401 (the token was revoked) sends the user back to sign-in with a message.
	b.do(chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('blametrail.apiToken', 'revoked-token')`), chromedp.Reload())
	b.waitFor("sign-in after a 401", `!document.getElementById('view-signin').hidden && document.getElementById('signin-error').textContent.includes('no longer accepts')`)
	if eval[bool](b, `sessionStorage.getItem('blametrail.apiToken') !== null`) {
		t.Error("the rejected token stayed in sessionStorage")
	}
	b.shot("12-session-ended")

	if problems := b.consoleProblems(); len(problems) > 0 {
		t.Errorf("the page logged errors or CSP violations:\n%s", strings.Join(problems, "\n"))
	}
	publishScreenshot(t, listShot, "ui-webhooks.png")
	publishScreenshot(t, detailShot, "ui-endpoint.png")
	t.Logf("browser flow took %s; screenshots in %s", time.Since(began).Round(time.Millisecond), b.dir)
}

// checkUIHeaders asks for every UI file with a plain HTTP client: the security headers are
// on each, and API paths keep their JSON answers.
func checkUIHeaders(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, path := range []string{"/", "/ui/app.js", "/ui/resend.js", "/ui/app.css", "/ui/favicon.svg"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusOK || h.Get("Content-Security-Policy") != wantCSP ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: %d, CSP %q, nosniff %q, referrer %q", path, resp.StatusCode,
				h.Get("Content-Security-Policy"), h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/webhooks/endpoints", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/webhooks/endpoints without a token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func checkLabels(t *testing.T, b *browser, where string) {
	t.Helper()
	if bad := b.unlabelledControls(); len(bad) > 0 {
		t.Errorf("%s: controls without a name or out of the tab order:\n%s", where, strings.Join(bad, "\n"))
	}
}

// checkFits asserts the page does not scroll sideways in a viewport width px wide and every
// control lies inside it.
func checkFits(t *testing.T, b *browser, width int, where string) {
	t.Helper()
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > width {
		t.Errorf("%s at %d px: the page is %d px wide and scrolls sideways", where, width, w)
	}
	outside := eval[[]string](b, `[...document.querySelectorAll('main button, main a[href], main input')]
		.filter(e => !e.closest('[hidden]') && e.getClientRects().length)
		.filter(e => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > `+strconv.Itoa(width)+` + 0.5; })
		.map(e => (e.id || e.textContent.trim()) + ' ' + Math.round(e.getBoundingClientRect().right))`)
	if len(outside) > 0 {
		t.Errorf("%s at %d px: controls outside the viewport: %v", where, width, outside)
	}
}
