package relay

import (
	"strings"
	"testing"
)

func TestLogURLMasksCredentials(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.example.com/blametrail", "https://hooks.example.com/blametrail"},
		{"https://alice:s3cret@hooks.example.com/h", "https://redacted@hooks.example.com/h"},
		{"https://hooks.example.com/h?token=s3cret", "https://hooks.example.com/h?redacted"},
		{"http://[::1]:8080/h#frag", "http://[::1]:8080/h#frag"},
	} {
		got := logURL(tc.in)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("logURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
