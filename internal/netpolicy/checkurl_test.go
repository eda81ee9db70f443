package netpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	strict := Policy{}
	allowHTTP := Policy{AllowHTTP: true}
	allowPrivate := Policy{AllowPrivate: true}
	allowAll := Policy{AllowHTTP: true, AllowPrivate: true}

	long := "https://example.com/" + strings.Repeat("a", maxURLLength-len("https://example.com/"))

	tests := []struct {
		name    string
		policy  Policy
		url     string
		wantErr error  // nil means the URL is accepted
		wantMsg string // substring of the error text
	}{
		// Accepted shapes.
		{"https", strict, "https://example.com/webhook", nil, ""},
		{"https with port query and userinfo", strict, "https://u:p@hooks.example.com:8443/a/b?x=1", nil, ""},
		{"uppercase scheme", strict, "HTTPS://example.com/", nil, ""},
		{"http with AllowHTTP", allowHTTP, "http://example.com/", nil, ""},
		{"public IPv4 literal", strict, "https://8.8.8.8/", nil, ""},
		{"public IPv6 literal", strict, "https://[2001:4860:4860::8888]:443/", nil, ""},
		{"public IPv4 in decimal form", strict, "https://134744072/", nil, ""},
		{"exactly max length", strict, long, nil, ""},
		{"trailing dot name", strict, "https://example.com./", nil, ""},
		{"IDN host", strict, "https://bücher.example/", nil, ""},

		// Shape problems.
		{"empty", strict, "", ErrInvalidURL, "empty"},
		{"relative", strict, "/webhook", ErrInvalidURL, "absolute"},
		{"scheme-relative", strict, "//example.com/webhook", ErrInvalidURL, "absolute"},
		{"opaque", strict, "https:example.com", ErrInvalidURL, "https://host/path"},
		{"missing host", strict, "https:///webhook", ErrInvalidURL, "must have a host"},
		{"missing host with port", strict, "https://:443/", ErrInvalidURL, "must have a host"},
		{"port zero", strict, "https://example.com:0/", ErrInvalidURL, "outside 1-65535"},
		{"port too big", strict, "https://example.com:65536/", ErrInvalidURL, "outside 1-65535"},
		{"port huge", strict, "https://example.com:99999999999999999999/", ErrInvalidURL, "outside 1-65535"},
		{"port not numeric", strict, "https://example.com:https/", ErrInvalidURL, "does not parse"},
		{"empty port", strict, "https://example.com:/", ErrInvalidURL, "empty port"},
		{"fragment", strict, "https://example.com/#section", ErrInvalidURL, "fragments are never sent"},
		{"empty fragment", strict, "https://example.com/#", ErrInvalidURL, "fragment"},
		{"too long", strict, long + "a", ErrInvalidURL, "longer than 2048"},
		{"space in path", strict, "https://example.com/a b", ErrInvalidURL, "whitespace"},
		{"leading space", strict, " https://example.com/", ErrInvalidURL, "whitespace"},
		{"trailing newline", strict, "https://example.com/\n", ErrInvalidURL, "whitespace"},
		{"tab", strict, "https://exa\tmple.com/", ErrInvalidURL, "whitespace"},
		{"nul", strict, "https://example.com/\x00", ErrInvalidURL, "control"},
		{"DEL", strict, "https://example.com/\x7f", ErrInvalidURL, "control"},
		{"non-breaking space", strict, "https://example.com/\u00a0", ErrInvalidURL, "whitespace"},
		{"soft hyphen", strict, "https://local\u00adhost/", ErrInvalidURL, "invisible"},
		{"zero-width space", strict, "https://example.com\u200b/", ErrInvalidURL, "invisible"},
		{"invalid utf-8", strict, "https://example.com/\xff", ErrInvalidURL, "UTF-8"},
		{"bad escape", strict, "https://example.com/%zz", ErrInvalidURL, "does not parse"},
		{"percent-encoded host", strict, "https://%31%32%37.0.0.1/", ErrInvalidURL, "does not parse"},
		{"unterminated IPv6", strict, "https://[::1/", ErrInvalidURL, "does not parse"},
		{"numeric-looking but invalid host", strict, "https://1.2.3.4.5/", ErrInvalidURL, "not a valid one"},
		{"octet out of range", strict, "https://256.0.0.1/", ErrInvalidURL, "not a valid one"},
		{"numeric TLD", strict, "https://example.123/", ErrInvalidURL, "not a valid one"},
		{"bad octal", strict, "https://08.0.0.1/", ErrInvalidURL, "not a valid one"},
		{"only dots", strict, "https://./", ErrInvalidURL, "not a valid host name"},
		{"fullwidth non-mappable digits", strict, "https://\u0661\u0662\u0667.example/", ErrInvalidURL, "non-ASCII digits"},
		{"math digits", strict, "https://\U0001D7CF\U0001D7D0\U0001D7D5.0.0.1/", ErrInvalidURL, "non-ASCII digits"},
		{"shape checked even with AllowPrivate", allowAll, "https://example.com/#x", ErrInvalidURL, "fragment"},

		// Schemes.
		{"http without AllowHTTP", strict, "http://example.com/", ErrSchemeNotAllowed, "url must use https (start the relay with --allow-http to permit http)"},
		{"ftp", strict, "ftp://example.com/", ErrSchemeNotAllowed, `"ftp" is not supported`},
		{"ftp with AllowHTTP", allowAll, "ftp://example.com/", ErrSchemeNotAllowed, "not supported"},
		{"javascript", strict, "javascript:alert(1)", ErrSchemeNotAllowed, "not supported"},
		{"file", allowAll, "file:///etc/passwd", ErrSchemeNotAllowed, "not supported"},
		{"gopher", strict, "gopher://127.0.0.1:6379/_x", ErrSchemeNotAllowed, "not supported"},

		// Refused literal destinations.
		{"private v4", strict, "https://10.0.0.1/", ErrDestinationRefused, "url host 10.0.0.1 is a private address (refused unless --allow-private-networks)"},
		{"private v4 with port", strict, "https://192.168.1.10:8443/", ErrDestinationRefused, "private"},
		{"loopback v4", strict, "https://127.0.0.1/", ErrDestinationRefused, "loopback"},
		{"metadata", strict, "https://169.254.169.254/latest/meta-data/", ErrDestinationRefused, "link-local"},
		{"cgnat", strict, "https://100.64.0.1/", ErrDestinationRefused, "carrier-grade NAT"},
		{"unspecified v4", strict, "https://0.0.0.0/", ErrDestinationRefused, "unspecified"},
		{"broadcast", strict, "https://255.255.255.255/", ErrDestinationRefused, "broadcast"},
		{"loopback v6", strict, "https://[::1]/", ErrDestinationRefused, "loopback"},
		{"unspecified v6", strict, "https://[::]/", ErrDestinationRefused, "unspecified"},
		{"ULA v6", strict, "https://[fd00::1]:8080/", ErrDestinationRefused, "private"},
		{"link-local v6 with zone", strict, "https://[fe80::1%25eth0]/", ErrDestinationRefused, "link-local"},
		{"mapped v6", strict, "https://[::ffff:10.0.0.1]/", ErrDestinationRefused, "(10.0.0.1) is a private address"},
		{"mapped v6 hex", strict, "https://[::ffff:a9fe:a9fe]/", ErrDestinationRefused, "link-local"},
		{"NAT64", strict, "https://[64:ff9b::a00:1]/", ErrDestinationRefused, "embeds IPv4 address 10.0.0.1"},
		{"6to4", strict, "https://[2002:7f00:1::]/", ErrDestinationRefused, "embeds IPv4 address 127.0.0.1"},
		{"IPv4-compatible", strict, "https://[::7f00:1]/", ErrDestinationRefused, "IPv4-compatible"},
		{"decimal", strict, "https://2130706433/", ErrDestinationRefused, "2130706433 (127.0.0.1) is a loopback address"},
		{"hex", strict, "https://0x7f000001/", ErrDestinationRefused, "(127.0.0.1)"},
		{"hex short", strict, "https://0x7f.1/", ErrDestinationRefused, "(127.0.0.1)"},
		{"short", strict, "https://127.1/", ErrDestinationRefused, "(127.0.0.1)"},
		{"octal", strict, "https://0177.0.0.01/", ErrDestinationRefused, "(127.0.0.1)"},
		{"three-part", strict, "https://10.1.257/", ErrDestinationRefused, "(10.1.1.1)"},
		{"uppercase hex", strict, "https://0XA9.0XFE.0xa9.0xFE/", ErrDestinationRefused, "(169.254.169.254)"},
		{"bare 0", strict, "https://0/", ErrDestinationRefused, "unspecified"},
		{"trailing dot IP", strict, "https://127.0.0.1./", ErrDestinationRefused, "loopback"},
		{"fullwidth IP", strict, "https://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/", ErrDestinationRefused, "loopback"},
		{"localhost", strict, "https://localhost/", ErrDestinationRefused, "loopback name"},
		{"localhost with port", strict, "https://localhost:8080/", ErrDestinationRefused, "loopback name"},
		{"LOCALHOST", strict, "https://LOCALHOST/", ErrDestinationRefused, "loopback name"},
		{"localhost dot", strict, "https://localhost./", ErrDestinationRefused, "loopback name"},
		{"sub.localhost", strict, "https://api.localhost/", ErrDestinationRefused, "loopback name"},
		{"fullwidth localhost", strict, "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", ErrDestinationRefused, "loopback name"},
		{"http private with AllowHTTP only", allowHTTP, "http://10.0.0.1/", ErrDestinationRefused, "private"},

		// AllowPrivate relaxes every destination rule.
		{"AllowPrivate private v4", allowPrivate, "https://10.0.0.1/", nil, ""},
		{"AllowPrivate loopback v6", allowPrivate, "https://[::1]:8443/", nil, ""},
		{"AllowPrivate decimal", allowPrivate, "https://2130706433/", nil, ""},
		{"AllowPrivate localhost", allowPrivate, "https://localhost/", nil, ""},
		{"AllowPrivate still needs https", allowPrivate, "http://localhost/", ErrSchemeNotAllowed, "https"},
		{"AllowAll local http", allowAll, "http://127.0.0.1:8080/hook", nil, ""},

		// Names that merely contain "localhost" are ordinary names.
		{"localhost as label prefix", strict, "https://localhost.example.com/", nil, ""},
		{"notlocalhost", strict, "https://notlocalhost/", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.CheckURL(tt.url)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckURL(%q) = %v, want error wrapping %v", tt.url, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("CheckURL(%q) error %q does not contain %q", tt.url, err.Error(), tt.wantMsg)
			}
			// Exactly one sentinel, so a caller's switch is unambiguous.
			n := 0
			for _, s := range []error{ErrInvalidURL, ErrSchemeNotAllowed, ErrDestinationRefused} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("CheckURL(%q) error wraps %d sentinels, want 1", tt.url, n)
			}
		})
	}
}

func TestParseIPv4Permissive(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means not an IPv4 address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0x", "0.0.0.0"},
		{"0", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"1.16777215", "1.255.255.255"},
		{"1.1.65535", "1.1.255.255"},
		{"4294967296", ""},
		{"1.16777216", ""},
		{"1.1.65536", ""},
		{"1.1.1.256", ""},
		{"256.1.1.1", ""},
		{"1.2.3.4.5", ""},
		{"1..2", ""},
		{"08", ""},
		{"0xg", ""},
		{"99999999999999999999999", ""},
		{"example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseIPv4Permissive(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("parseIPv4Permissive(%q) = %s, want failure", tt.in, got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("parseIPv4Permissive(%q) = %s, %v; want %s", tt.in, got, ok, tt.want)
			}
		})
	}
}

// FuzzCheckURL checks that no input panics and that every rejection wraps
// exactly one sentinel, whatever the policy.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/webhook", "http://10.0.0.1:8080/", "https://[::ffff:127.0.0.1]/",
		"https://0x7f.1/", "https://2130706433/", "https://[fe80::1%25eth0]/", "https://localhost./",
		"https://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/", "ftp://x", "https://a:0/",
		"https://x/#f", "//x", "https:opaque", "https://[64:ff9b::a00:1]/", "https://1.2.3.4.5/",
	} {
		f.Add(s)
	}
	policies := []Policy{{}, {AllowHTTP: true}, {AllowPrivate: true}, {AllowHTTP: true, AllowPrivate: true}}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range policies {
			err := p.CheckURL(raw)
			if err == nil {
				continue
			}
			n := 0
			for _, s := range []error{ErrInvalidURL, ErrSchemeNotAllowed, ErrDestinationRefused} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%+v.CheckURL(%q) = %v: wraps %d sentinels, want 1", p, raw, err, n)
			}
			if p.AllowPrivate && errors.Is(err, ErrDestinationRefused) {
				t.Fatalf("%+v.CheckURL(%q) refused a destination despite AllowPrivate: %v", p, raw, err)
			}
		}
	})
}
