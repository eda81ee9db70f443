package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// defaultDialTimeout applies when neither Dialer.Timeout nor the caller
// sets one: an unbounded resolve or connect would pin a delivery worker on
// a customer's broken endpoint forever.
const defaultDialTimeout = 10 * time.Second

// Dialer connects to webhook endpoints under a Policy. It resolves the host
// itself, classifies every resolved address and connects to a permitted IP
// literal, so nothing re-resolves the name between the check and the
// connect. Its Dial and DialTimeout methods plug into fasthttp.Client's Dial
// and DialTimeout fields.
//
// The zero value is usable: strict policy, default timeout, default
// resolver. A Dialer is safe for concurrent use once configured.
type Dialer struct {
	// Policy decides which addresses may be dialled. AllowHTTP is ignored
	// here; it only matters to CheckURL.
	Policy Policy
	// Timeout bounds resolution and connection together. Zero means
	// defaultDialTimeout.
	Timeout time.Duration
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver

	// Test seams. Tests must never reach the network beyond 127.0.0.0/8, so
	// they replace resolution and can observe or fake each connect.
	lookup      func(ctx context.Context, host string) ([]netip.Addr, error)
	dialContext func(ctx context.Context, network, address string) (net.Conn, error)
}

// Dial connects to addr ("host:port") within d.Timeout. It has the
// signature of fasthttp.DialFunc.
func (d *Dialer) Dial(addr string) (net.Conn, error) {
	return d.DialTimeout(addr, 0)
}

// DialTimeout connects to addr ("host:port"). The effective bound is the
// smaller of timeout and d.Timeout, ignoring either when it is not positive,
// so a caller cannot stretch the operator's limit. It has the signature of
// fasthttp.DialFuncWithTimeout.
//
// If no resolved address is permitted the error wraps ErrDestinationRefused
// and names the host, each address and why it was refused.
func (d *Dialer) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := d.dial(addr, d.effectiveTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("netpolicy: dial %s: %w", addr, err)
	}
	return conn, nil
}

func (d *Dialer) effectiveTimeout(timeout time.Duration) time.Duration {
	t := d.Timeout
	if timeout > 0 && (t <= 0 || timeout < t) {
		t = timeout
	}
	if t <= 0 {
		t = defaultDialTimeout
	}
	return t
}

func (d *Dialer) dial(addr string, timeout time.Duration) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	// fasthttp always passes a numeric port; a service name would need
	// another lookup we have no reason to allow.
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("%w: port %q is not a number in 1-65535", ErrInvalidURL, portStr)
	}
	if host == "" {
		return nil, fmt.Errorf("%w: missing host", ErrInvalidURL)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	addrs, err := d.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}

	permitted, refused := d.partition(addrs)
	if len(permitted) == 0 {
		return nil, refusedf("host %s resolves only to refused addresses: %s (refused unless %s)",
			host, strings.Join(refused, ", "), flagAllowPrivate)
	}
	return d.connect(ctx, permitted, uint16(port))
}

// resolve returns host's addresses, unmapped and deduplicated. IP literals,
// including the numeric IPv4 forms CheckURL reads as addresses, bypass the
// resolver so they cannot be reinterpreted by it.
func (d *Dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	// CheckURL reads a host whose last label is numeric ("127.1", "2130706433", "0x7f.1",
	// "127.0.0.1.") as the IPv4 address the WHATWG URL standard makes of it, and judged that
	// address. Dial the same one: Go's resolver finds no such name (the URL was accepted but
	// could never be delivered) and others may read it their own way.
	if name, err := foldHost(host); err == nil {
		if name = strings.TrimRight(name, "."); name != "" && endsInNumber(name) {
			ip, ok := parseIPv4Permissive(name)
			if !ok {
				return nil, fmt.Errorf("%w: host %s looks like an IPv4 address but is not a valid one", ErrInvalidURL, host)
			}
			return []netip.Addr{ip}, nil
		}
	}

	var (
		raw []netip.Addr
		err error
	)
	switch {
	case d.lookup != nil:
		raw, err = d.lookup(ctx, host)
	case d.Resolver != nil:
		raw, err = d.Resolver.LookupNetIP(ctx, "ip", host)
	default:
		raw, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	if err != nil {
		return nil, err
	}

	// LookupNetIP can return A records as IPv4-mapped IPv6 addresses;
	// dialling those would pick a different socket family than intended.
	seen := make(map[netip.Addr]bool, len(raw))
	addrs := make([]netip.Addr, 0, len(raw))
	for _, ip := range raw {
		ip = ip.Unmap()
		if seen[ip] {
			continue
		}
		seen[ip] = true
		addrs = append(addrs, ip)
	}
	if len(addrs) == 0 {
		return nil, errors.New("no addresses found")
	}
	return addrs, nil
}

// partition splits addrs into those the policy permits, in resolver order,
// and descriptions of those it refuses.
func (d *Dialer) partition(addrs []netip.Addr) (permitted []netip.Addr, refused []string) {
	for _, ip := range addrs {
		reason, embedded := classify(ip)
		switch {
		case reason == "":
			permitted = append(permitted, ip)
		case d.Policy.AllowPrivate && reason != reasonInvalid:
			permitted = append(permitted, ip)
		case embedded.IsValid():
			refused = append(refused, fmt.Sprintf("%s (%s, embeds %s)", ip, reason, embedded))
		default:
			refused = append(refused, fmt.Sprintf("%s (%s)", ip, reason))
		}
	}
	return permitted, refused
}

// connect tries each permitted address in order, sharing the deadline the
// way net.Dialer does so one black-holed address cannot eat the whole
// budget of the ones after it.
func (d *Dialer) connect(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, error) {
	dial := d.dialContext
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}

	var errs []error
	for i, ip := range addrs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		attemptCtx, cancel := partialDeadline(ctx, len(addrs)-i)
		// Always an IP literal: handing the dialler a name would reopen
		// the rebinding window this type exists to close.
		conn, err := dial(attemptCtx, "tcp", netip.AddrPortFrom(ip, port).String())
		cancel()
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// partialDeadline mirrors net.Dialer's split of the remaining time across
// the remaining addresses, with the same two-second floor.
func partialDeadline(ctx context.Context, remaining int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || remaining <= 1 {
		return context.WithCancel(ctx)
	}
	const saneMinimum = 2 * time.Second
	left := time.Until(deadline)
	share := left / time.Duration(remaining)
	if share < saneMinimum {
		share = min(left, saneMinimum)
	}
	return context.WithTimeout(ctx, share)
}
