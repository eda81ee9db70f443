package netpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxURLLength bounds what we store and echo back; 2048 is the common
// de-facto limit for URLs and far beyond any sane webhook endpoint.
const maxURLLength = 2048

// CheckURL validates a customer-supplied webhook URL at create/update time.
// It never touches DNS, so it cannot tell where a host name points: the
// Dialer makes that decision at delivery time. What CheckURL can do is
// reject malformed URLs and hosts that are refused on their face (IP
// literals in refused ranges, localhost), giving the customer an immediate
// error instead of a delivery that fails later.
//
// Every error wraps ErrInvalidURL, ErrSchemeNotAllowed or
// ErrDestinationRefused, and its text is written for an API error body.
func (p Policy) CheckURL(raw string) error {
	if raw == "" {
		return invalidf("url is empty")
	}
	if len(raw) > maxURLLength {
		return invalidf("url is longer than %d characters", maxURLLength)
	}
	if err := checkCharacters(raw); err != nil {
		return err
	}

	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which the customer already has.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return invalidf("url does not parse: %v", err)
	}
	if !u.IsAbs() {
		return invalidf("url must be absolute, e.g. https://example.com/webhook")
	}

	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https":
	case "http":
		if !p.AllowHTTP {
			return schemef("url must use https (start the relay with %s to permit http)", flagAllowHTTP)
		}
	default:
		return schemef("url scheme %q is not supported: use https", u.Scheme)
	}

	if u.Opaque != "" {
		return invalidf("url must have the form %s://host/path", scheme)
	}
	// Checked on the raw string because "https://h/#" parses to an empty
	// Fragment; '#' can appear nowhere else in a URL that parsed.
	if strings.Contains(raw, "#") {
		return invalidf("url must not contain a fragment (#...): fragments are never sent to the server")
	}
	host := u.Hostname()
	if host == "" {
		return invalidf("url must have a host")
	}
	if err := checkPort(u); err != nil {
		return err
	}
	return p.checkHost(host)
}

// checkCharacters rejects what url.Parse tolerates but a stored endpoint
// must not contain: whitespace and control characters (header injection,
// confusing logs) and invisible format characters such as U+00AD, which
// IDNA deletes, so "local\u00adhost" would become "localhost".
func checkCharacters(raw string) error {
	if !utf8.ValidString(raw) {
		return invalidf("url is not valid UTF-8")
	}
	for i, r := range raw {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return invalidf("url must not contain whitespace, control or invisible characters (found %U at byte %d)", r, i)
		}
	}
	return nil
}

func checkPort(u *url.URL) error {
	if strings.HasSuffix(u.Host, ":") {
		return invalidf("url has an empty port after ':'")
	}
	port := u.Port()
	if port == "" {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return invalidf("url port %s is outside 1-65535", port)
	}
	return nil
}

func (p Policy) checkHost(host string) error {
	// After url.Parse only a bracketed IPv6 literal can contain ':'.
	if strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return invalidf("url host %s is not a valid IPv6 address", host)
		}
		return p.checkIP(host, ip)
	}

	name, err := foldHost(host)
	if err != nil {
		return err
	}
	// Trailing dots only mark the name as fully qualified; "localhost." and
	// "127.0.0.1." reach the same place as their undotted forms.
	name = strings.TrimRight(name, ".")
	if name == "" {
		return invalidf("url host %s is not a valid host name", host)
	}

	// Following the WHATWG URL standard, a host whose last label is numeric
	// is an IPv4 address or nothing. Resolvers built on inet_aton accept
	// "2130706433", "0x7f.1" and "127.1" as 127.0.0.1, so treating such a
	// host as a DNS name would let it past this check.
	if endsInNumber(name) {
		ip, ok := parseIPv4Permissive(name)
		if !ok {
			return invalidf("url host %s looks like an IPv4 address but is not a valid one", host)
		}
		return p.checkIP(host, ip)
	}

	if !p.AllowPrivate && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
		return refusedf("url host %s is a loopback name (refused unless %s)", host, flagAllowPrivate)
	}
	return nil
}

func (p Policy) checkIP(host string, ip netip.Addr) error {
	reason, embedded := classify(ip)
	if reason == "" || p.AllowPrivate {
		return nil
	}
	// Show the canonical address next to obfuscated spellings so the
	// customer can see why "0x7f.1" counts as loopback.
	shown := host
	if canonical := ip.Unmap().String(); canonical != host {
		shown = fmt.Sprintf("%s (%s)", host, canonical)
	}
	if embedded.IsValid() {
		return refusedf("url host %s embeds IPv4 address %s, which is %s (refused unless %s)",
			shown, embedded, describe(reason), flagAllowPrivate)
	}
	return refusedf("url host %s is %s (refused unless %s)", shown, describe(reason), flagAllowPrivate)
}

// foldHost lowercases host and applies the part of IDNA (UTS #46) mapping
// that matters for spotting IP literals and localhost: fullwidth ASCII and
// ideographic full stops, which IDNA-aware clients turn into "127.0.0.1"
// from "１２７。０。０。１". Other non-ASCII digits also map to ASCII under
// NFKC; without Unicode tables we cannot map them, so we refuse them.
func foldHost(host string) (string, error) {
	ascii := true
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(host), nil
	}

	var b strings.Builder
	b.Grow(len(host))
	for _, r := range host {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII variants
			r -= 0xFEE0
		case r == 0x3002 || r == 0xFF61: // ideographic and halfwidth full stops
			r = '.'
		}
		if r >= utf8.RuneSelf && unicode.IsNumber(r) {
			return "", invalidf("url host %s contains non-ASCII digits; use its ASCII (punycode) form", host)
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String(), nil
}

// endsInNumber reports whether the last label of name is a number in the
// sense of the WHATWG URL standard (decimal, or 0x-prefixed hex).
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if len(last) >= 2 && (last[:2] == "0x" || last[:2] == "0X") {
		return strings.Trim(last[2:], "0123456789abcdefABCDEF") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// parseIPv4Permissive parses the inet_aton / WHATWG forms of an IPv4
// address: one to four parts, each decimal, octal (leading 0) or hex (0x),
// with the last part filling all remaining bytes ("127.1", "2130706433").
func parseIPv4Permissive(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, 0, 4)
	for _, part := range parts {
		if part == "" {
			return netip.Addr{}, false
		}
		n, ok := parseIPv4Number(part)
		if !ok {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}

	lastIdx := len(nums) - 1
	var v uint64
	for i, n := range nums[:lastIdx] {
		if n > 0xff {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	if nums[lastIdx] >= 1<<(8*(4-lastIdx)) {
		return netip.Addr{}, false
	}
	v |= nums[lastIdx]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseIPv4Number(part string) (uint64, bool) {
	base := uint64(10)
	switch {
	case len(part) >= 2 && (part[:2] == "0x" || part[:2] == "0X"):
		base, part = 16, part[2:]
	case len(part) >= 2 && part[0] == '0':
		base, part = 8, part[1:]
	}
	var n uint64
	for i := 0; i < len(part); i++ {
		var d uint64
		switch c := part[i]; {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		n = n*base + d
		if n > 0xffffffff {
			return 0, false
		}
	}
	// An empty remainder ("0x") is zero, as in inet_aton and WHATWG.
	return n, true
}
