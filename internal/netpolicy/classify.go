package netpolicy

import "net/netip"

// Reasons returned by Classify. They are stable: callers may log them or
// switch on them.
const (
	reasonInvalid        = "invalid"
	reasonUnspecified    = "unspecified"
	reasonLoopback       = "loopback"
	reasonPrivate        = "private"
	reasonLinkLocal      = "link-local"
	reasonCGNAT          = "cgnat"
	reasonMulticast      = "multicast"
	reasonBroadcast      = "broadcast"
	reasonReserved       = "reserved"
	reasonBenchmarking   = "benchmarking"
	reasonDocumentation  = "documentation"
	reasonIPv4Compatible = "ipv4-compatible"
)

type rangeRule struct {
	prefix netip.Prefix
	reason string
}

// The tables are scanned in order and the first match wins, so narrower
// prefixes sit before any wider prefix that contains them.
var v4Rules = []rangeRule{
	{netip.MustParsePrefix("0.0.0.0/8"), reasonUnspecified}, // "this network"; 0.0.0.0 reaches localhost on Linux
	{netip.MustParsePrefix("10.0.0.0/8"), reasonPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), reasonCGNAT},
	{netip.MustParsePrefix("127.0.0.0/8"), reasonLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), reasonLinkLocal}, // includes 169.254.169.254 cloud metadata
	{netip.MustParsePrefix("172.16.0.0/12"), reasonPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), reasonReserved}, // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), reasonDocumentation},
	{netip.MustParsePrefix("192.88.99.0/24"), reasonReserved}, // deprecated 6to4 relay anycast
	{netip.MustParsePrefix("192.168.0.0/16"), reasonPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), reasonBenchmarking},
	{netip.MustParsePrefix("198.51.100.0/24"), reasonDocumentation},
	{netip.MustParsePrefix("203.0.113.0/24"), reasonDocumentation},
	{netip.MustParsePrefix("224.0.0.0/4"), reasonMulticast},
	{netip.MustParsePrefix("255.255.255.255/32"), reasonBroadcast},
	{netip.MustParsePrefix("240.0.0.0/4"), reasonReserved},
}

var v6Rules = []rangeRule{
	{netip.MustParsePrefix("::/128"), reasonUnspecified},
	{netip.MustParsePrefix("::1/128"), reasonLoopback},
	// Deprecated (RFC 4291) and never routed, but some stacks still hand
	// ::a.b.c.d to the embedded IPv4 address.
	{netip.MustParsePrefix("::/96"), reasonIPv4Compatible},
	// RFC 8215 local-use NAT64: its translator is operator-defined, so the
	// embedded IPv4 address cannot be located reliably. Refuse it whole.
	{netip.MustParsePrefix("64:ff9b:1::/48"), reasonReserved},
	{netip.MustParsePrefix("fc00::/7"), reasonPrivate},
	{netip.MustParsePrefix("fe80::/10"), reasonLinkLocal},
	{netip.MustParsePrefix("fec0::/10"), reasonPrivate}, // deprecated site-local, the old "private" range
	{netip.MustParsePrefix("ff00::/8"), reasonMulticast},
	{netip.MustParsePrefix("2001:2::/48"), reasonBenchmarking},
	{netip.MustParsePrefix("2001:db8::/32"), reasonDocumentation},
	{netip.MustParsePrefix("3fff::/20"), reasonDocumentation},
	// IETF protocol assignments, including Teredo (2001::/32), which tunnels
	// to an IPv4 address of the client's choosing. IANA marks the block as
	// not globally reachable; no webhook receiver lives there.
	{netip.MustParsePrefix("2001::/23"), reasonReserved},
}

var (
	nat64Prefix   = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour     = netip.MustParsePrefix("2002::/16")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// Classify reports why the policy refuses ip, or "" when ip is an ordinary
// public address. It is a pure function and ignores Policy.AllowPrivate;
// callers decide whether a reason is fatal.
//
// Reasons: "invalid", "unspecified", "loopback", "private", "link-local",
// "cgnat", "multicast", "broadcast", "reserved", "benchmarking",
// "documentation" and "ipv4-compatible".
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are classified as the IPv4
// address they map to. NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses
// carry the reason of the IPv4 address they embed, because that is where a
// translator would deliver the traffic. IPv6 outside 2000::/3 that matches
// no narrower rule is "reserved": nothing else is assigned for global
// unicast, so refusing it closes gaps this table does not name.
func Classify(ip netip.Addr) (reason string) {
	reason, _ = classify(ip)
	return reason
}

// classify is Classify plus the embedded IPv4 address responsible for the
// verdict, when there is one, so error messages can name it.
func classify(ip netip.Addr) (reason string, embedded netip.Addr) {
	if !ip.IsValid() {
		return reasonInvalid, netip.Addr{}
	}
	// A zoned address never matches a prefix (netip.Prefix.Contains), so
	// without this fe80::1%eth0 would slip past the link-local rule.
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return classify4(ip), netip.Addr{}
	}

	for _, p := range [...]netip.Prefix{nat64Prefix, sixToFour} {
		if !p.Contains(ip) {
			continue
		}
		v4 := embeddedIPv4(ip, p)
		if r := classify4(v4); r != "" {
			return r, v4
		}
		return "", netip.Addr{}
	}

	for _, r := range v6Rules {
		if r.prefix.Contains(ip) {
			return r.reason, netip.Addr{}
		}
	}
	if !globalUnicast.Contains(ip) {
		return reasonReserved, netip.Addr{}
	}
	return "", netip.Addr{}
}

func classify4(ip netip.Addr) string {
	for _, r := range v4Rules {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}

// embeddedIPv4 extracts the IPv4 address a translation prefix carries: the
// low 32 bits for NAT64 /96, bits 16..47 for 6to4.
func embeddedIPv4(ip netip.Addr, p netip.Prefix) netip.Addr {
	b := ip.As16()
	if p == sixToFour {
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	}
	return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
}

// describe turns a reason into the noun phrase used in error messages.
func describe(reason string) string {
	switch reason {
	case reasonUnspecified:
		return "an unspecified address"
	case reasonLoopback:
		return "a loopback address"
	case reasonPrivate:
		return "a private address"
	case reasonLinkLocal:
		return "a link-local address"
	case reasonCGNAT:
		return "a carrier-grade NAT (100.64.0.0/10) address"
	case reasonMulticast:
		return "a multicast address"
	case reasonBroadcast:
		return "the broadcast address"
	case reasonBenchmarking:
		return "a benchmarking address"
	case reasonDocumentation:
		return "a documentation address"
	case reasonIPv4Compatible:
		return "a deprecated IPv4-compatible IPv6 address"
	case reasonInvalid:
		return "an invalid address"
	default:
		return "a reserved address"
	}
}
