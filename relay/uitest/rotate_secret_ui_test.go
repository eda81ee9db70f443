package uitest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// checkRotateSecret drives "Rotate secret" on the endpoint detail view that b shows: the
// dialog rotates with the overlap chosen, shows the new secret once with the time the
// previous one stops signing, and the API then reports the same secret and expiry.
func checkRotateSecret(t *testing.T, b *browser, relay *relaytest.Relay, id string) {
	t.Helper()
	before, err := relay.Client.SecretInfo(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Click(chromedp.ID("detail-rotate-" + id)))
	b.waitFor("the rotate dialog", `document.getElementById('rotate-dialog').open && document.activeElement.id === 'rotate-overlap' &&
		document.getElementById('rotate-overlap').value === '24h'`)
	checkLabels(t, b, "rotate dialog")
	b.do(chromedp.SetValue(chromedp.ID("rotate-overlap"), "1h"))
	b.do(chromedp.Click(chromedp.ID("rotate-confirm")))
	b.waitFor("the new secret", `!document.getElementById('rotate-result').hidden && document.getElementById('rotated-secret').value.startsWith('whsec_') &&
		!!document.getElementById('rotated-expires') && document.activeElement.id === 'copy-rotated'`)
	shown := eval[string](b, `document.getElementById('rotated-secret').value`)
	expiresShown := eval[string](b, `document.getElementById('rotated-expires').getAttribute('datetime')`)
	b.shot("07b-secret-rotated")

	info, err := relay.Client.SecretInfo(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if shown == before.Secret || shown != info.Secret {
		t.Errorf("the dialog shows a secret that is not the endpoint's new one")
	}
	exp := info.PreviousSecretExpiresAt
	if exp == nil {
		t.Fatalf("after the rotation the API reports no previous_secret_expires_at")
	}
	if got, err := time.Parse(time.RFC3339Nano, expiresShown); err != nil || !got.Equal(*exp) {
		t.Errorf("the dialog shows expiry %q, the API %s", expiresShown, exp)
	}
	if d := time.Until(*exp); d > time.Hour || d < 50*time.Minute {
		t.Errorf("previous secret expires in %s, want about the 1 h chosen", d)
	}
	b.do(chromedp.Click(chromedp.ID("rotate-done")))
	b.waitFor("the dialog closed, the secret gone from the page", `!document.getElementById('rotate-dialog').open &&
		document.getElementById('rotated-secret').value === '' && document.getElementById('notice').textContent.includes('Rotated')`)
}
