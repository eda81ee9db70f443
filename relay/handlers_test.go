package relay

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// requireJSON is the gate of every JSON body (ingest, create, patch, rotate, resend): a body
// declared as something the relay would read differently is refused with 415.
func TestRequireJSON(t *testing.T) {
	tests := []struct {
		ct, ce  string
		ok      bool
		message string // part of the 415's message
	}{
		{ct: "application/json", ok: true},
		{ct: "Application/JSON; charset=UTF-8", ok: true},
		{ct: `application/json; charset="utf-8"`, ok: true},
		{ct: "application/json;charset=utf8", ok: true},
		{ct: "application/cloudevents+json", ok: true},
		{ct: "application/json; profile=x", ok: true},
		{ct: "application/json", ce: "identity", ok: true},
		{ct: "application/json", ce: " Identity ", ok: true},
		{ct: "", message: "Content-Type must be application/json, got none"},
		{ct: "text/json", message: "got \"text/json\""},
		{ct: "application/x-www-form-urlencoded", message: "Content-Type must be"},
		{ct: "application/json; charset=latin1", message: `charset "latin1" is not supported`},
		{ct: "application/json; x=y; Charset=UTF-16", message: `charset "UTF-16" is not supported`},
		{ct: "application/json", ce: "gzip", message: `Content-Encoding "gzip" is not supported`},
		{ct: "application/json", ce: "br, gzip", message: "send the body uncompressed"},
	}
	for _, tt := range tests {
		t.Run(tt.ct+"|"+tt.ce, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			if tt.ct != "" {
				ctx.Request.Header.SetContentType(tt.ct)
			}
			if tt.ce != "" {
				ctx.Request.Header.Set("Content-Encoding", tt.ce)
			}
			if got := requireJSON(&ctx); got != tt.ok {
				t.Fatalf("requireJSON = %v, want %v (answer %d %s)", got, tt.ok, ctx.Response.StatusCode(), ctx.Response.Body())
			}
			if tt.ok {
				return
			}
			var got api.ErrorBody
			if err := json.Unmarshal(ctx.Response.Body(), &got); err != nil {
				t.Fatalf("answer %d %s: %v", ctx.Response.StatusCode(), ctx.Response.Body(), err)
			}
			if ctx.Response.StatusCode() != fasthttp.StatusUnsupportedMediaType ||
				got.Error.Code != "unsupported_media_type" || !strings.Contains(got.Error.Message, tt.message) {
				t.Errorf("answer %d %+v, want 415 unsupported_media_type mentioning %q", ctx.Response.StatusCode(), got, tt.message)
			}
		})
	}
}
