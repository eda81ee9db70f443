package netpolicy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The Dialer must plug straight into fasthttp.Client.
var (
	_ fasthttp.DialFunc            = new(Dialer).Dial
	_ fasthttp.DialFuncWithTimeout = new(Dialer).DialTimeout
)

// These tests open real sockets only on 127.0.0.0/8. Resolution is faked
// through the lookup seam, and every connect goes through a hook that
// fails the test, without dialling, if asked for anything else.

type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	calls int
}

func (r *fakeResolver) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	ips, ok := r.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(ips))
	for i, s := range ips {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

func (r *fakeResolver) lookups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

type dialRecorder struct {
	t     *testing.T
	mu    sync.Mutex
	addrs []string
}

// dial connects for real, but only to loopback.
func (d *dialRecorder) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.record(address)
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(ap.Addr()) {
		d.t.Errorf("test tried to dial %q; tests may only dial 127.0.0.0/8 IP literals", address)
		return nil, errors.New("test refused non-loopback dial")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

func (d *dialRecorder) record(address string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, address)
}

func (d *dialRecorder) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

func newTestDialer(t *testing.T, p Policy, hosts map[string][]string) (*Dialer, *fakeResolver, *dialRecorder) {
	t.Helper()
	res := &fakeResolver{hosts: hosts}
	rec := &dialRecorder{t: t}
	d := &Dialer{Policy: p, Timeout: 5 * time.Second, lookup: res.lookup, dialContext: rec.dial}
	return d, res, rec
}

// listen starts a loopback listener that greets every connection, so a
// test can prove it reached this listener and not something else.
func listen(t *testing.T) (port string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port
}

func expectGreeting(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read from dialled conn = %q, %v; want greeting from test listener", got, err)
	}
}

func TestDialerRefuses(t *testing.T) {
	tests := []struct {
		name     string
		hosts    map[string][]string
		addr     string
		wantMsgs []string
	}{
		{"loopback name", map[string][]string{"hook.test": {"127.0.0.1"}}, "hook.test:443",
			[]string{"hook.test", "127.0.0.1 (loopback)", "--allow-private-networks"}},
		{"every address refused", map[string][]string{"hook.test": {"10.0.0.1", "127.0.0.1"}}, "hook.test:443",
			[]string{"10.0.0.1 (private)", "127.0.0.1 (loopback)"}},
		{"metadata via mapped v6", map[string][]string{"hook.test": {"::ffff:169.254.169.254"}}, "hook.test:80",
			[]string{"169.254.169.254 (link-local)"}},
		{"NAT64 of private", map[string][]string{"hook.test": {"64:ff9b::a00:1"}}, "hook.test:443",
			[]string{"64:ff9b::a00:1 (private, embeds 10.0.0.1)"}},
		{"loopback v6", map[string][]string{"hook.test": {"::1"}}, "hook.test:443",
			[]string{"::1 (loopback)"}},
		{"literal v4", nil, "127.0.0.1:443", []string{"127.0.0.1 (loopback)"}},
		{"literal v6", nil, "[::1]:443", []string{"::1 (loopback)"}},
		{"literal mapped v6", nil, "[::ffff:127.0.0.1]:443", []string{"127.0.0.1 (loopback)"}},
		{"literal unspecified", nil, "0.0.0.0:443", []string{"0.0.0.0 (unspecified)"}},
		// The numeric forms CheckURL reads as IPv4 addresses are literals here too.
		{"decimal v4", nil, "2130706433:443", []string{"127.0.0.1 (loopback)"}},
		{"hex v4", nil, "0x7f.1:443", []string{"127.0.0.1 (loopback)"}},
		{"octal v4", nil, "0177.0.0.1:443", []string{"127.0.0.1 (loopback)"}},
		{"short v4", nil, "127.1:443", []string{"127.0.0.1 (loopback)"}},
		{"v4 with trailing dot", nil, "169.254.169.254.:80", []string{"169.254.169.254 (link-local)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, res, rec := newTestDialer(t, Policy{}, tt.hosts)
			c, err := d.Dial(tt.addr)
			if err == nil {
				c.Close()
				t.Fatalf("Dial(%q) succeeded, want refusal", tt.addr)
			}
			if !errors.Is(err, ErrDestinationRefused) {
				t.Fatalf("Dial(%q) = %v, want error wrapping ErrDestinationRefused", tt.addr, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "netpolicy: dial "+tt.addr+": ") {
				t.Errorf("error %q lacks the dial context prefix", msg)
			}
			for _, want := range tt.wantMsgs {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if got := rec.dialed(); len(got) != 0 {
				t.Errorf("refused destination was dialled: %v", got)
			}
			if tt.hosts == nil && res.lookups() != 0 {
				t.Errorf("IP literal went through the resolver %d times", res.lookups())
			}
		})
	}
}

func TestDialerAllowPrivateConnects(t *testing.T) {
	port := listen(t)
	d, res, rec := newTestDialer(t, Policy{AllowPrivate: true}, map[string][]string{"hook.test": {"127.0.0.1"}})

	c, err := d.Dial("hook.test:" + port)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if got, want := c.RemoteAddr().String(), "127.0.0.1:"+port; got != want {
		t.Errorf("connected to %s, want %s", got, want)
	}
	expectGreeting(t, c)

	// One lookup, then a connect to the IP literal: nothing re-resolves
	// the name between check and connect.
	if n := res.lookups(); n != 1 {
		t.Errorf("resolver called %d times, want 1", n)
	}
	if got := rec.dialed(); len(got) != 1 || got[0] != "127.0.0.1:"+port {
		t.Errorf("dialled %v, want [127.0.0.1:%s]", got, port)
	}
}

// A host CheckURL accepted as an IPv4 address in one of its numeric forms is
// dialled at that address, never looked up: Go's resolver knows no such
// name, so the endpoint was accepted but every attempt failed "no such host".
func TestDialerNumericIPv4Hosts(t *testing.T) {
	port := listen(t)
	tests := []struct {
		host      string
		wantValid bool
	}{
		{"127.0.0.1.", true},
		{"2130706433", true},
		{"2130706433.", true},
		{"0x7f000001", true},
		{"0X7F.1", true},
		{"017700000001", true},
		{"0177.0.0.1", true},
		{"127.1", true},
		{"127.0.1", true},
		{"256.1", false},
		{"4294967296", false},
		{"1.2.3.4.5", false},
		{"hook.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			policy := Policy{AllowHTTP: true, AllowPrivate: true}
			url := "http://" + tt.host + ":" + port + "/webhook"
			if err := policy.CheckURL(url); (err == nil) != tt.wantValid {
				t.Fatalf("CheckURL(%q) = %v; this test expects valid=%v", url, err, tt.wantValid)
			}
			d, res, rec := newTestDialer(t, policy, nil)
			c, err := d.Dial(tt.host + ":" + port)
			if tt.wantValid {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				expectGreeting(t, c)
				if got := rec.dialed(); len(got) != 1 || got[0] != "127.0.0.1:"+port {
					t.Errorf("dialled %v, want [127.0.0.1:%s]", got, port)
				}
			} else {
				if err == nil {
					c.Close()
					t.Fatal("Dial succeeded, want ErrInvalidURL")
				}
				if !errors.Is(err, ErrInvalidURL) {
					t.Errorf("Dial = %v, want error wrapping ErrInvalidURL", err)
				}
				if got := rec.dialed(); len(got) != 0 {
					t.Errorf("dialled %v, want nothing", got)
				}
			}
			if n := res.lookups(); n != 0 {
				t.Errorf("numeric host went through the resolver %d times", n)
			}
		})
	}
}

func TestDialerTriesPermittedAddressesInOrder(t *testing.T) {
	port := listen(t) // bound to 127.0.0.1 only, so 127.0.0.2/3 on this port refuse

	tests := []struct {
		name       string
		resolved   []string
		wantDials  []string
		wantGreet  bool
		wantRefuse bool
	}{
		{"falls back past a closed address", []string{"127.0.0.2", "127.0.0.1"},
			[]string{"127.0.0.2", "127.0.0.1"}, true, false},
		{"stops at the first that connects", []string{"127.0.0.1", "127.0.0.2"},
			[]string{"127.0.0.1"}, true, false},
		{"duplicates dialled once", []string{"127.0.0.2", "::ffff:127.0.0.2", "127.0.0.1"},
			[]string{"127.0.0.2", "127.0.0.1"}, true, false},
		{"all closed", []string{"127.0.0.2", "127.0.0.3"},
			[]string{"127.0.0.2", "127.0.0.3"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, rec := newTestDialer(t, Policy{AllowPrivate: true}, map[string][]string{"hook.test": tt.resolved})
			c, err := d.Dial("hook.test:" + port)
			if tt.wantGreet {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				expectGreeting(t, c)
			} else {
				if err == nil {
					c.Close()
					t.Fatal("Dial succeeded, want connect failure")
				}
				if errors.Is(err, ErrDestinationRefused) {
					t.Errorf("connect failure %v must not look like a policy refusal", err)
				}
				for _, ip := range tt.wantDials {
					if !strings.Contains(err.Error(), ip) {
						t.Errorf("error %q does not name attempted address %s", err, ip)
					}
				}
			}
			want := make([]string, len(tt.wantDials))
			for i, ip := range tt.wantDials {
				want[i] = ip + ":" + port
			}
			if got := rec.dialed(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("dialled %v, want %v", got, want)
			}
		})
	}
}

// With the strict policy a host with both refused and permitted addresses
// must skip the refused ones. The only permitted addresses are public, so
// this test fakes the connect: no socket is opened at all.
func TestDialerSkipsRefusedAddresses(t *testing.T) {
	res := &fakeResolver{hosts: map[string][]string{
		"hook.test": {"10.0.0.1", "169.254.169.254", "8.8.8.8", "127.0.0.1"},
	}}
	var dialed []string
	d := &Dialer{
		Timeout: time.Second,
		lookup:  res.lookup,
		dialContext: func(_ context.Context, _, address string) (net.Conn, error) {
			dialed = append(dialed, address)
			client, server := net.Pipe()
			server.Close()
			return client, nil
		},
	}
	c, err := d.Dial("hook.test:443")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c.Close()
	if len(dialed) != 1 || dialed[0] != "8.8.8.8:443" {
		t.Errorf("dialled %v, want only the permitted [8.8.8.8:443]", dialed)
	}
}

func TestDialerErrors(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantErr error // nil: any error that is not a sentinel
		wantMsg string
	}{
		{"no port", "hook.test", ErrInvalidURL, "missing port"},
		{"port zero", "hook.test:0", ErrInvalidURL, "1-65535"},
		{"named port", "hook.test:https", ErrInvalidURL, "1-65535"},
		{"port too big", "hook.test:65536", ErrInvalidURL, "1-65535"},
		{"empty host", ":443", ErrInvalidURL, "missing host"},
		{"unknown host", "missing.test:443", nil, "resolve missing.test: lookup missing.test: no such host"},
		{"empty answer", "empty.test:443", nil, "no addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, rec := newTestDialer(t, Policy{AllowPrivate: true}, map[string][]string{"empty.test": {}})
			c, err := d.Dial(tt.addr)
			if err == nil {
				c.Close()
				t.Fatalf("Dial(%q) succeeded, want error", tt.addr)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Dial(%q) = %v, want error wrapping %v", tt.addr, err, tt.wantErr)
			}
			if tt.wantErr == nil && (errors.Is(err, ErrDestinationRefused) || errors.Is(err, ErrInvalidURL)) {
				t.Errorf("Dial(%q) = %v, want a plain resolve error", tt.addr, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if got := rec.dialed(); len(got) != 0 {
				t.Errorf("dialled %v, want nothing", got)
			}
		})
	}
}

func TestDialerTimeoutBoundsResolution(t *testing.T) {
	blocking := func(ctx context.Context, _ string) ([]netip.Addr, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	tests := []struct {
		name    string
		timeout time.Duration // Dialer.Timeout
		arg     time.Duration // DialTimeout argument; 0 means call Dial
	}{
		{"Dialer.Timeout", 50 * time.Millisecond, 0},
		{"caller timeout shorter than Dialer.Timeout", time.Hour, 50 * time.Millisecond},
		{"Dialer.Timeout shorter than caller timeout", 50 * time.Millisecond, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Dialer{Timeout: tt.timeout, lookup: blocking}
			start := time.Now()
			var err error
			if tt.arg == 0 {
				_, err = d.Dial("hook.test:443")
			} else {
				_, err = d.DialTimeout("hook.test:443", tt.arg)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want DeadlineExceeded", err)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("took %v; the 50ms bound was not applied", elapsed)
			}
		})
	}
}

func TestEffectiveTimeout(t *testing.T) {
	tests := []struct {
		dialer, arg, want time.Duration
	}{
		{0, 0, defaultDialTimeout},
		{time.Second, 0, time.Second},
		{0, time.Second, time.Second},
		{time.Second, 2 * time.Second, time.Second},
		{2 * time.Second, time.Second, time.Second},
		{-1, -1, defaultDialTimeout},
	}
	for _, tt := range tests {
		d := &Dialer{Timeout: tt.dialer}
		if got := d.effectiveTimeout(tt.arg); got != tt.want {
			t.Errorf("Timeout=%v, arg=%v: got %v, want %v", tt.dialer, tt.arg, got, tt.want)
		}
	}
}

// The real resolver path, on a name that never leaves the machine.
func TestDialerRealResolverRefusesLocalhost(t *testing.T) {
	for _, r := range []*net.Resolver{nil, {PreferGo: true}} {
		probe := r
		if probe == nil {
			probe = net.DefaultResolver
		}
		if _, err := probe.LookupNetIP(context.Background(), "ip", "localhost"); err != nil {
			t.Skipf("localhost does not resolve here: %v", err)
		}
		d := &Dialer{Timeout: 5 * time.Second, Resolver: r}
		c, err := d.Dial("localhost:1")
		if err == nil {
			c.Close()
			t.Fatal("Dial(localhost:1) succeeded, want refusal")
		}
		if !errors.Is(err, ErrDestinationRefused) {
			t.Errorf("Dial(localhost:1) = %v, want ErrDestinationRefused", err)
		}
	}
}

// End to end through fasthttp, the client the relay actually uses.
func TestDialerWithFasthttpClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("delivered") }}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	url := "http://hook.test:" + port + "/webhook"

	tests := []struct {
		name   string
		policy Policy
		want   error
	}{
		{"strict refuses", Policy{AllowHTTP: true}, ErrDestinationRefused},
		{"AllowPrivate delivers", Policy{AllowHTTP: true, AllowPrivate: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.CheckURL(url); err != nil {
				t.Fatalf("CheckURL(%q) = %v", url, err)
			}
			d, _, _ := newTestDialer(t, tt.policy, map[string][]string{"hook.test": {"127.0.0.1"}})
			client := &fasthttp.Client{DialTimeout: d.DialTimeout}
			status, body, err := client.GetTimeout(nil, url, 5*time.Second)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("GET = %d, %v; want error wrapping %v", status, err, tt.want)
				}
				return
			}
			if err != nil || status != fasthttp.StatusOK || string(body) != "delivered" {
				t.Fatalf("GET = %d %q, %v; want 200 \"delivered\"", status, body, err)
			}
		})
	}
}
