package netpolicy

import (
	"net/netip"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		ip   string
		want string
	}{
		// Public addresses, v4 and v6.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2001:4860:4860::8888", ""},
		{"2606:4700:4700::1111", ""},

		// Unspecified / "this network".
		{"0.0.0.0", "unspecified"},
		{"0.255.255.255", "unspecified"},
		{"1.0.0.0", ""},
		{"::", "unspecified"},

		// Loopback.
		{"127.0.0.1", "loopback"},
		{"127.255.255.255", "loopback"},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"::1", "loopback"},

		// RFC 1918 with edges on both sides.
		{"9.255.255.255", ""},
		{"10.0.0.0", "private"},
		{"10.255.255.255", "private"},
		{"11.0.0.0", ""},
		{"172.15.255.255", ""},
		{"172.16.0.0", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.0", ""},
		{"192.167.255.255", ""},
		{"192.168.0.0", "private"},
		{"192.168.255.255", "private"},
		{"192.169.0.0", ""},
		{"fc00::", "private"},
		{"fd12:3456:789a::1", "private"},
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"},
		{"fec0::1", "private"},

		// Link-local, including cloud metadata endpoints.
		{"169.254.0.0", "link-local"},
		{"169.254.169.254", "link-local"},
		{"169.254.255.255", "link-local"},
		{"169.253.255.255", ""},
		{"169.255.0.0", ""},
		{"fe80::1", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fd00:ec2::254", "private"},

		// CGNAT.
		{"100.63.255.255", ""},
		{"100.64.0.0", "cgnat"},
		{"100.127.255.255", "cgnat"},
		{"100.128.0.0", ""},

		// Multicast, broadcast, reserved.
		{"223.255.255.255", ""},
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"240.0.0.0", "reserved"},
		{"254.255.255.255", "reserved"},
		{"255.255.255.254", "reserved"},
		{"255.255.255.255", "broadcast"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"192.0.0.0", "reserved"},
		{"192.0.0.255", "reserved"},
		{"192.0.1.0", ""},
		{"192.88.99.1", "reserved"},
		{"100::1", "reserved"},
		{"2001::1", "reserved"},     // Teredo
		{"2001:1ff::1", "reserved"}, // top of 2001::/23
		{"2001:200::1", ""},         // just past it
		{"4000::1", "reserved"},     // outside 2000::/3
		{"::ffff:0:a00:1", "reserved"},

		// Benchmarking and documentation.
		{"198.17.255.255", ""},
		{"198.18.0.0", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.20.0.0", ""},
		{"2001:2::1", "benchmarking"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.1", "documentation"},
		{"203.0.113.1", "documentation"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},

		// IPv4-mapped IPv6 is judged as the IPv4 it maps to.
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:8.8.8.8", ""},

		// IPv4-compatible (deprecated).
		{"::10.0.0.1", "ipv4-compatible"},
		{"::8.8.8.8", "ipv4-compatible"},

		// NAT64 and 6to4 carry the verdict of the IPv4 they embed.
		{"64:ff9b::a00:1", "private"},
		{"64:ff9b::127.0.0.1", "loopback"},
		{"64:ff9b::169.254.169.254", "link-local"},
		{"64:ff9b::8.8.8.8", ""},
		{"64:ff9b:1::8.8.8.8", "reserved"},
		{"2002:0a00:0001::", "private"},
		{"2002:7f00:1::1", "loopback"},
		{"2002:a9fe:a9fe::", "link-local"},
		{"2002:0808:0808::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			if got := Classify(ip); got != tt.want {
				t.Errorf("Classify(%s) = %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
}

func TestClassifyInvalid(t *testing.T) {
	if got := Classify(netip.Addr{}); got != "invalid" {
		t.Errorf("Classify(zero Addr) = %q, want %q", got, "invalid")
	}
}

// Every reason Classify can return must have its own wording in error
// messages; falling through to "a reserved address" for a new reason would
// mislead customers.
func TestDescribeCoversEveryReason(t *testing.T) {
	reasons := []string{
		reasonInvalid, reasonUnspecified, reasonLoopback, reasonPrivate,
		reasonLinkLocal, reasonCGNAT, reasonMulticast, reasonBroadcast,
		reasonBenchmarking, reasonDocumentation, reasonIPv4Compatible,
	}
	generic := describe(reasonReserved)
	for _, r := range reasons {
		if describe(r) == generic {
			t.Errorf("describe(%q) falls back to the generic %q", r, generic)
		}
	}
}
