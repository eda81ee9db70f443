// Package uitest drives the relay's admin web UI in a real browser: Debian's Chromium,
// headless, through chromedp, against the real relay binary (internal/relaytest) and real
// webhook receivers. It holds only tests; nothing imports it.
//
// The tests need /usr/bin/chromium (scripts/ensure-chromium.sh installs it, and `make test`
// runs that first). Without it they fail when CI=true and skip elsewhere. They save a
// screenshot of every page to $ARTIFACTS_DIR (default <repo>/artifacts/screenshots); with
// UPDATE_SCREENSHOTS=1 they also refresh the two pictures in docs/images that README shows.
package uitest
