package relay

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestReplaceLogAttrPrintsValues(t *testing.T) {
	reason := "consecutive_failures"
	type pair struct{ A, B int }
	var nilString *string
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"pointer to string", &reason, "v=consecutive_failures"},
		{"nil pointer", nilString, "v=<nil>"},
		{"pointer to pointer", func() **string { p := &reason; return &p }(), "v=consecutive_failures"},
		{"pointer to struct", &pair{1, 2}, `v="{A:1 B:2}"`},
		{"stringer pointer kept", addr, "v=127.0.0.1:80"},
		{"error kept", errors.New("boom"), "v=boom"},
		{"plain value", 42, "v=42"},
		{"logOptional nil", logOptional(nil), "v=<nil>"},
		{"logOptional", logOptional(&reason), "v=consecutive_failures"},
	}
	for _, tt := range tests {
		var b strings.Builder
		log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: ReplaceLogAttr}))
		log.Info("m", "v", tt.v)
		out := b.String()
		if !strings.Contains(out, " "+tt.want+"\n") || strings.Contains(out, "0x") {
			t.Errorf("%s: logged %q, want %q", tt.name, out, tt.want)
		}
	}
	// Without it, the text handler prints the address: what this guards against.
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("m", "v", &reason)
	if !strings.Contains(b.String(), "v=0x") {
		t.Logf("the text handler no longer prints pointers as addresses: %s", b.String())
	}
}

func TestReplaceLogAttrJSON(t *testing.T) {
	reason := "gone"
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: ReplaceLogAttr}))
	log.Info("m", "a", &reason, "b", (*string)(nil))
	if out := b.String(); !strings.Contains(out, `"a":"gone"`) || !strings.Contains(out, `"b":null`) {
		t.Errorf("logged %s", out)
	}
}
