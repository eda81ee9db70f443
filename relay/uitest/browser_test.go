package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which scripts/ensure-chromium.sh installs.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds every single wait; the whole flow has its own, larger bound.
const stepTimeout = 15 * time.Second

// requireChromium returns when Chromium is installed. Otherwise it fails the test under CI
// (a browser test that silently skips proves nothing) and skips it elsewhere.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is missing: run scripts/ensure-chromium.sh (apt-get install -y chromium)", chromiumPath)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// browser is one headless Chromium with one tab, bound to a test.
type browser struct {
	t   *testing.T
	ctx context.Context // the flow's context: the tab, with the flow's deadline
	dir string          // where screenshots go

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newBrowser starts Chromium with exactly the flags the project allows, a fresh profile in
// t.TempDir(), and a desktop-sized viewport. Everything it runs is bounded by budget. extra
// adds allocator options that are not flags (chromedp.Env, say).
func newBrowser(t *testing.T, budget time.Duration, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	requireChromium(t)
	var out syncWriter
	// Not chromedp.DefaultExecAllocatorOptions: that list adds some twenty flags of its own
	// (enable-automation, disable-dev-shm-usage, hide-scrollbars, ...), and chromedp.Headless
	// and chromedp.DisableGPU add hide-scrollbars, mute-audio and enable-unsafe-swiftshader.
	// Flag sets just the one switch. The allocator itself adds only --remote-debugging-pipe
	// and the first page, about:blank.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&out),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit, before t.TempDir() is removed
		if t.Failed() {
			t.Logf("chromium output:\n%s", tail(out.String(), 4000))
		}
	})
	// The first Do starts the browser; it must not carry a timeout, which would end the
	// browser with it. The start itself is bounded by a watchdog instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tabCtx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v\n%s", err, tail(out.String(), 4000))
		}
	case <-time.After(30 * time.Second):
		cancelTab()
		t.Fatalf("chromium did not start within 30s\n%s", tail(out.String(), 4000))
	}
	ctx, cancel := context.WithTimeout(tabCtx, budget)
	t.Cleanup(cancel)

	b := &browser{t: t, ctx: ctx, dir: artifactsDir(t)}
	messages := chromedp.Console(tabCtx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	b.do(chromedp.EmulateViewport(1280, 860))
	return b
}

// do runs actions, bounded by stepTimeout.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("browser action failed: %v", err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript boolean expression until it holds.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if err != nil && ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			b.fail("timed out waiting for %s (last error: %v)", what, lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fail saves a screenshot and the page's text for the post-mortem, then fails the test.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 5*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		path := filepath.Join(b.dir, "FAILED-"+sanitize(b.t.Name())+".png")
		if os.WriteFile(path, png, 0o644) == nil {
			msg += "\nscreenshot: " + path
		}
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err == nil {
		msg += "\npage text:\n" + tail(text, 3000)
	}
	b.t.Fatal(msg)
}

// shot saves a screenshot of the whole page as <dir>/<name>.png and returns its path. The
// viewport grows to the page's height for the picture and is put back afterwards.
func (b *browser) shot(name string) string {
	b.t.Helper()
	size := eval[struct{ W, H, Page int64 }](b,
		`({W: window.innerWidth, H: window.innerHeight, Page: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)})`)
	h := min(max(size.Page, size.H), 4000)
	if h != size.H {
		b.do(chromedp.EmulateViewport(size.W, h))
		defer b.do(chromedp.EmulateViewport(size.W, size.H))
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// consoleProblems lists uncaught exceptions and Content-Security-Policy reports. Failed
// requests the flow causes on purpose (401, 422, 404) are the browser's network log, not
// problems.
func (b *browser) consoleProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		text := m.String()
		if m.IsException() || strings.Contains(text, "Content Security Policy") ||
			(m.Type == chromedp.ConsoleError && m.Source != "network") {
			out = append(out, text)
		}
	}
	return out
}

// unlabelledControls lists the visible controls that a screen reader could not name, or that
// the keyboard cannot reach.
func (b *browser) unlabelledControls() []string {
	return eval[[]string](b, `(() => {
		const bad = [];
		for (const e of document.querySelectorAll('button, input, select, textarea, a[href]')) {
			if (e.closest('[hidden]') || e.closest('dialog:not([open])')) continue;
			let name = (e.getAttribute('aria-label') || '');
			if (e.labels) for (const l of e.labels) name += l.textContent;
			if (e.tagName === 'BUTTON' || e.tagName === 'A') name += e.textContent;
			if (!name.trim()) bad.push('no name: ' + e.outerHTML.slice(0, 160));
			if (e.tabIndex < 0) bad.push('not focusable: ' + e.outerHTML.slice(0, 160));
		}
		return bad;
	})()`)
}

// clearField empties a text input, as select-all and delete would.
func clearField(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.getElementById(` + js(id) + `).value = ''`)
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// artifactsDir is $ARTIFACTS_DIR, or <repo>/artifacts/screenshots.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// publishScreenshot copies a screenshot to docs/images when UPDATE_SCREENSHOTS=1, so a
// normal run (CI included) never changes the tree.
func publishScreenshot(t *testing.T, src, name string) {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return
	}
	dst := filepath.Join(repoRoot(t), "docs", "images", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(src, dst); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func sanitize(s string) string { return unsafeName.ReplaceAllString(s, "_") }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// syncWriter collects Chromium's output; the allocator writes it from its own goroutine.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
