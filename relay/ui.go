package relay

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// The admin web UI: static HTML, CSS and JavaScript embedded in the binary and served at "/"
// and "/ui/…". The page talks only to the admin API, with the token the user typed; the
// server side has no session, no templates and no knowledge of the UI's state.
//
// Everything the UI shows of API data is put into the page with textContent, and the
// Content-Security-Policy below allows no inline script or style at all, so a hostile
// endpoint name or delivery error cannot run script in an operator's browser.

//go:embed ui
var uiFS embed.FS

// uiCSP allows the page's own files and fetches to its own origin, nothing else: no inline
// code, no plugins, no framing, no form posts, no <base> tricks.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiPrefix is where the UI's assets live; "/" serves ui/index.html.
const uiPrefix = "/ui/"

// uiAsset is one embedded file, ready to serve.
type uiAsset struct {
	body        []byte
	contentType string
	etag        string
}

// uiAssets maps request paths to files. It is built once at start; a file whose type is not
// known is left out rather than served as something a browser might sniff.
var uiAssets = loadUIAssets(uiFS)

var uiContentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

func loadUIAssets(fsys fs.FS) map[string]uiAsset {
	assets := map[string]uiAsset{}
	_ = fs.WalkDir(fsys, "ui", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := uiContentTypes[path.Ext(name)]
		if !ok {
			return nil
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := uiAsset{body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
		rel := strings.TrimPrefix(name, "ui/")
		if rel == "index.html" {
			assets["/"] = a
		} else {
			assets[uiPrefix+rel] = a
		}
		return nil
	})
	return assets
}

// isUIPath reports whether path belongs to the UI rather than to the API.
func isUIPath(path string) bool {
	return path == "/" || strings.HasPrefix(path, uiPrefix)
}

// serveUI answers GET and HEAD for the UI's files; any other path under /ui/ is the usual
// JSON 404. The files carry no secret, so they need no token: the API calls the page makes do.
func (s *Server) serveUI(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !s.allow(ctx, "GET", "HEAD") {
		return
	}
	a, ok := uiAssets[string(ctx.Path())]
	if !ok {
		routeNotFound(ctx)
		return
	}
	// Revalidate every time (the files change with the binary), but let an unchanged file
	// cost a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if match := ctx.Request.Header.Peek("If-None-Match"); len(match) > 0 && etagMatches(match, a.etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(a.contentType)
	ctx.SetBody(a.body)
}

// etagMatches reads an If-None-Match list ("*", or comma-separated, possibly weak, tags).
func etagMatches(header []byte, etag string) bool {
	for _, part := range bytes.Split(header, []byte(",")) {
		part = bytes.TrimPrefix(bytes.TrimSpace(part), []byte("W/"))
		if string(part) == "*" || string(part) == etag {
			return true
		}
	}
	return false
}
