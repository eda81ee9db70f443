package relay

import (
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The browser flow lives in relay/uitest; these tests pin what the server promises about
// the UI's files and what the files promise about themselves.

// uiServer serves the relay's handler (no store behind it: the UI routes need none) on a
// real socket.
func uiServer(t *testing.T) string {
	t.Helper()
	s := &Server{log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { s.handle(ctx, serveAll) }, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func uiRequest(t *testing.T, method, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func embedded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(uiFS, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUIServesEmbeddedFilesWithSecurityHeaders(t *testing.T) {
	base := uiServer(t)
	for _, tc := range []struct{ path, file, ctype string }{
		{"/", "ui/index.html", "text/html; charset=utf-8"},
		{"/ui/app.js", "ui/app.js", "text/javascript; charset=utf-8"},
		{"/ui/resend.js", "ui/resend.js", "text/javascript; charset=utf-8"},
		{"/ui/app.css", "ui/app.css", "text/css; charset=utf-8"},
		{"/ui/favicon.svg", "ui/favicon.svg", "image/svg+xml"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := uiRequest(t, "GET", base+tc.path, nil)
			h := resp.Header
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for k, want := range map[string]string{
				"Content-Type":            tc.ctype,
				"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-cache",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if string(body) != string(embedded(t, tc.file)) {
				t.Error("body is not the embedded file")
			}
			etag := h.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			resp, body = uiRequest(t, "GET", base+tc.path, http.Header{"If-None-Match": {`"other", ` + etag}})
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("revalidation: %d with %d bytes, want 304 and none", resp.StatusCode, len(body))
			}
		})
	}
}

func TestUIHeadHasLengthAndNoBody(t *testing.T) {
	base := uiServer(t)
	resp, body := uiRequest(t, "HEAD", base+"/", nil)
	want := len(embedded(t, "ui/index.html"))
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(want) {
		t.Errorf("HEAD /: %d, %d body bytes, Content-Length %q; want 200, 0, %d",
			resp.StatusCode, len(body), resp.Header.Get("Content-Length"), want)
	}
}

// The UI hook must not change anything else: other methods, unknown files and unknown
// paths get the API's JSON errors. (The browser test checks the API itself, on the binary.)
func TestUILeavesOtherRoutesAlone(t *testing.T) {
	base := uiServer(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"DELETE", "/ui/app.js", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"GET", "/ui/", http.StatusNotFound, "route_not_found"},
		{"GET", "/ui/missing.js", http.StatusNotFound, "route_not_found"},
		{"GET", "/ui/../nope", http.StatusNotFound, "route_not_found"},
		{"GET", "/index.html", http.StatusNotFound, "route_not_found"},
		{"GET", "/nope", http.StatusNotFound, "route_not_found"},
	} {
		resp, body := uiRequest(t, tc.method, base+tc.path, nil)
		var eb struct{ Error struct{ Code string } }
		if resp.StatusCode != tc.status || json.Unmarshal(body, &eb) != nil || eb.Error.Code != tc.code {
			t.Errorf("%s %s: %d %s; want %d with code %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.code)
		}
		if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow = %q", tc.method, tc.path, resp.Header.Get("Allow"))
		}
	}
}

// Every embedded file is served: a file type the server does not know would otherwise be
// dropped without a word.
func TestUIEveryEmbeddedFileIsServed(t *testing.T) {
	n := 0
	err := fs.WalkDir(uiFS, "ui", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		key := "/" + name
		if name == "ui/index.html" {
			key = "/"
		}
		if _, ok := uiAssets[key]; !ok {
			t.Errorf("%s is embedded but not served at %s", name, key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(uiAssets) {
		t.Errorf("%d files embedded, %d served", n, len(uiAssets))
	}
}

// scripts returns every embedded JavaScript file by name.
func scripts(t *testing.T) map[string]string {
	t.Helper()
	names, err := fs.Glob(uiFS, "ui/*.js")
	if err != nil || len(names) == 0 {
		t.Fatalf("no scripts embedded: %v", err)
	}
	out := map[string]string{}
	for _, name := range names {
		out[name] = string(embedded(t, name))
	}
	return out
}

// The CSP forbids inline code; these checks catch a change that would only show up as a
// broken page (and a console error) in the browser. The JavaScript must also never parse API
// data as HTML.
func TestUIFilesNeedNoCSPExceptions(t *testing.T) {
	html := string(embedded(t, "ui/index.html"))
	css := string(embedded(t, "ui/app.css"))

	for _, tag := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, `src="/ui/`) {
			t.Errorf("inline or foreign script: %s", tag)
		}
	}
	for name, re := range map[string]*regexp.Regexp{
		"<style> element":       regexp.MustCompile(`(?i)<style\b`),
		"style attribute":       regexp.MustCompile(`(?i)\sstyle\s*=`),
		"event handler":         regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		"javascript: URL":       regexp.MustCompile(`(?i)javascript:`),
		"external src or href":  regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`),
		"form posting anywhere": regexp.MustCompile(`(?i)<form\b[^>]*\saction\s*=`),
	} {
		if m := re.FindString(html); m != "" {
			t.Errorf("index.html has a %s: %q", name, m)
		}
	}
	for name, script := range scripts(t) {
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", ".style."} {
			if strings.Contains(script, bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
	if m := regexp.MustCompile(`(?i)@import|url\(\s*['"]?(https?:)?//`).FindString(css); m != "" {
		t.Errorf("app.css loads something from elsewhere: %q", m)
	}
}

// Every element a script looks up by a literal id exists in the page.
func TestUIScriptIDsExistInPage(t *testing.T) {
	html := string(embedded(t, "ui/index.html"))
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bid="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		ids[m[1]] = true
	}
	lookup := regexp.MustCompile(`\$\('([A-Za-z0-9_-]+)'\)`)
	for name, script := range scripts(t) {
		refs := lookup.FindAllStringSubmatch(script, -1)
		if name == "ui/app.js" && len(refs) < 20 {
			t.Fatalf("found only %d $('id') lookups in app.js; has the script changed style?", len(refs))
		}
		for _, m := range refs {
			if !ids[m[1]] {
				t.Errorf("%s looks up #%s, which index.html does not have", name, m[1])
			}
		}
	}
	// The API's error "field" names map to "<field>-error" elements (since: recover).
	for _, field := range []string{"url", "name", "description", "event_types", "since"} {
		if !ids[field+"-error"] {
			t.Errorf("no #%s-error for the API's field %q", field, field)
		}
	}
}

// index.html loads every embedded script, deferred (they run in document order, after the
// page is parsed), and resend.js before app.js, which calls it at once.
func TestUIPageLoadsEveryScriptInOrder(t *testing.T) {
	html := string(embedded(t, "ui/index.html"))
	var loaded []string
	for _, tag := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(html, -1) {
		m := regexp.MustCompile(`src="/(ui/[^"]+)"`).FindStringSubmatch(tag)
		if m == nil || !regexp.MustCompile(`\sdefer\b`).MatchString(tag) {
			t.Errorf("script without a /ui/ src or without defer: %s", tag)
			continue
		}
		loaded = append(loaded, m[1])
	}
	for name := range scripts(t) {
		if !slices.Contains(loaded, name) {
			t.Errorf("%s is embedded but index.html does not load it", name)
		}
	}
	if r, a := slices.Index(loaded, "ui/resend.js"), slices.Index(loaded, "ui/app.js"); r < 0 || a < 0 || r > a {
		t.Errorf("scripts load in the order %v; resend.js must come before app.js", loaded)
	}
}

func TestETagMatches(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`*`, true},
		{`"abcd"`, false},
		{``, false},
	} {
		if got := etagMatches([]byte(tc.header), `"abc"`); got != tc.want {
			t.Errorf("etagMatches(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}
