package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustTrusted(t testing.TB, list ...string) trustedProxies {
	t.Helper()
	tp, err := parseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// hdr builds a header from name/value pairs; a name may repeat.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		want    []string // prefixes, String form
		wantErr string   // substring of the error
	}{
		{name: "none", give: nil, want: nil},
		{name: "CIDRs", give: []string{"10.0.0.0/8", "::1/128", "192.168.0.0/16"},
			want: []string{"10.0.0.0/8", "::1/128", "192.168.0.0/16"}},
		{name: "bare IPv4", give: []string{"127.0.0.1"}, want: []string{"127.0.0.1/32"}},
		{name: "bare IPv6", give: []string{"::1"}, want: []string{"::1/128"}},
		{name: "masked", give: []string{"10.1.2.3/8", "2001:db8::1/32"}, want: []string{"10.0.0.0/8", "2001:db8::/32"}},
		{name: "mapped bare", give: []string{"::ffff:10.0.0.1"}, want: []string{"10.0.0.1/32"}},
		{name: "mapped prefix", give: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "white space", give: []string{" 10.0.0.0/8\t"}, want: []string{"10.0.0.0/8"}},
		{name: "empty", give: []string{"10.0.0.0/8", ""}, wantErr: `wsrpc: trusted proxy "": empty`},
		{name: "blank", give: []string{"  "}, wantErr: `wsrpc: trusted proxy "  ": empty`},
		{name: "bad CIDR", give: []string{"10.0.0/8"}, wantErr: `wsrpc: trusted proxy "10.0.0/8": not a valid CIDR prefix`},
		{name: "prefix too long", give: []string{"10.0.0.0/33"}, wantErr: `wsrpc: trusted proxy "10.0.0.0/33": not a valid CIDR prefix`},
		{name: "v6 prefix too long", give: []string{"::/129"}, wantErr: `wsrpc: trusted proxy "::/129"`},
		{name: "garbage", give: []string{"proxy.example"}, wantErr: `wsrpc: trusted proxy "proxy.example": not a valid IP address`},
		{name: "zone", give: []string{"fe80::1%eth0"}, wantErr: `wsrpc: trusted proxy "fe80::1%eth0": IPv6 zones`},
		{name: "with port", give: []string{"10.0.0.1:80"}, wantErr: `wsrpc: trusted proxy "10.0.0.1:80"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTrustedProxies(tt.give)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got %v, want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i, p := range got {
				if p.String() != tt.want[i] {
					t.Errorf("entry %d: got %v, want %v", i, p, tt.want[i])
				}
			}
		})
	}
}

func TestTrustedProxiesContains(t *testing.T) {
	tp := mustTrusted(t, "10.0.0.0/8", "::1", "fe80::/10")
	tests := []struct {
		give string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"::ffff:10.1.2.3", true},
		{"::1", true},
		{"::2", false},
		{"fe80::1%eth0", true},
		{"::ffff:11.0.0.1", false},
	}
	for _, tt := range tests {
		if got := tp.contains(netip.MustParseAddr(tt.give)); got != tt.want {
			t.Errorf("contains(%s) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if tp.contains(netip.Addr{}) {
		t.Error("contains(zero Addr) = true")
	}
	if (trustedProxies(nil)).contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("nil list contains 10.0.0.1")
	}
}

func TestClientAddr(t *testing.T) {
	tp := mustTrusted(t, "10.0.0.0/8", "2001:db8:ffff::/48")
	tests := []struct {
		name       string
		giveRemote string
		giveHeader http.Header
		want       string // net.TCPAddr.String(), "" for nil
	}{
		// The socket peer is not trusted: headers are ignored.
		{name: "untrusted spoofed XFF", giveRemote: "203.0.113.9:5555",
			giveHeader: hdr("X-Forwarded-For", "1.2.3.4"), want: "203.0.113.9:5555"},
		{name: "untrusted spoofed Forwarded", giveRemote: "203.0.113.9:5555",
			giveHeader: hdr("Forwarded", "for=1.2.3.4"), want: "203.0.113.9:5555"},
		{name: "untrusted v6", giveRemote: "[2001:db8::7]:443",
			giveHeader: hdr("X-Forwarded-For", "1.2.3.4"), want: "[2001:db8::7]:443"},
		{name: "untrusted no headers", giveRemote: "203.0.113.9:5555", want: "203.0.113.9:5555"},
		{name: "unparseable remote", giveRemote: "not an address",
			giveHeader: hdr("X-Forwarded-For", "1.2.3.4"), want: ""},
		{name: "remote without port", giveRemote: "10.0.0.1", want: ""},
		{name: "empty remote", giveRemote: "", want: ""},

		// Trusted socket peer, no headers.
		{name: "trusted no headers", giveRemote: "10.0.0.1:5555", want: "10.0.0.1:5555"},
		{name: "trusted empty XFF", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", ""), want: "10.0.0.1:5555"},

		// X-Forwarded-For.
		{name: "XFF single", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7"), want: "198.51.100.7:0"},
		{name: "XFF multi-hop rightmost untrusted wins", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "1.1.1.1, 198.51.100.7"), want: "198.51.100.7:0"},
		{name: "XFF trusted hops skipped", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.2.2.2,10.3.3.3"), want: "198.51.100.7:0"},
		{name: "XFF several field lines", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "6.6.6.6, 198.51.100.7", "X-Forwarded-For", "10.2.2.2"),
			want:       "198.51.100.7:0"},
		{name: "XFF white space and empty elements", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", " \t198.51.100.7 , ,\t"), want: "198.51.100.7:0"},
		{name: "XFF IPv6", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "2001:db8::1"), want: "[2001:db8::1]:0"},
		{name: "XFF ip:port tolerated, port dropped", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7:4711"), want: "198.51.100.7:0"},
		{name: "XFF [v6]:port tolerated", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "[2001:db8::1]:4711"), want: "[2001:db8::1]:0"},
		{name: "XFF [v6] tolerated", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "[2001:db8::1]"), want: "[2001:db8::1]:0"},
		{name: "XFF mapped address unmapped", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "::ffff:198.51.100.7"), want: "198.51.100.7:0"},
		{name: "XFF all trusted gives leftmost", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "10.9.9.9, 10.2.2.2, 2001:db8:ffff::1"), want: "10.9.9.9:0"},
		{name: "XFF garbage first from right gives socket", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7, garbage"), want: "10.0.0.1:5555"},
		{name: "XFF garbage stops at last trusted hop", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "6.6.6.6, not-an-ip, 10.2.2.2, 10.3.3.3"), want: "10.2.2.2:0"},
		{name: "XFF unknown", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "6.6.6.6, unknown, 10.2.2.2"), want: "10.2.2.2:0"},
		{name: "XFF bracketed IPv4 is garbage", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "[198.51.100.7]"), want: "10.0.0.1:5555"},

		// Forwarded.
		{name: "Forwarded single", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", "for=198.51.100.7"), want: "198.51.100.7:0"},
		{name: "Forwarded quoted IPv6 with port", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="[2001:db8:cafe::17]:4711"`), want: "[2001:db8:cafe::17]:4711"},
		{name: "Forwarded quoted IPv6", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `For="[2001:db8:cafe::17]"`), want: "[2001:db8:cafe::17]:0"},
		{name: "Forwarded quoted IPv4 with port", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="198.51.100.7:80"`), want: "198.51.100.7:80"},
		{name: "Forwarded unquoted IPv4 with port tolerated", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for=198.51.100.7:80`), want: "198.51.100.7:80"},
		{name: "Forwarded unquoted IPv6 tolerated", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for=[2001:db8::1]:80`), want: "[2001:db8::1]:80"},
		{name: "Forwarded case-insensitive names and other params", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `proto=https;FOR=198.51.100.7 ; by=10.0.0.1;host="a.example"`), want: "198.51.100.7:0"},
		{name: "Forwarded escapes in quoted string", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="198.51.100.\7";host="a\"b,c"`), want: "198.51.100.7:0"},
		{name: "Forwarded comma in quoted string", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for=6.6.6.6, for=198.51.100.7;host="x, for=5.5.5.5", for=10.2.2.2`), want: "198.51.100.7:0"},
		{name: "Forwarded multi-hop trusted skipped", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for=6.6.6.6, for=198.51.100.7:1000,for="[2001:db8:ffff::2]", for=10.3.3.3`),
			want:       "198.51.100.7:1000"},
		{name: "Forwarded several field lines", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for=6.6.6.6, for=198.51.100.7`, "Forwarded", `for=10.3.3.3;proto=https`),
			want:       "198.51.100.7:0"},
		{name: "Forwarded preferred over XFF", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "192.0.2.1", "Forwarded", "for=198.51.100.7"), want: "198.51.100.7:0"},
		{name: "Forwarded garbage stops, XFF not consulted", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("X-Forwarded-For", "192.0.2.1", "Forwarded", "for=nonsense"), want: "10.0.0.1:5555"},
		{name: "Forwarded unknown", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", "for=6.6.6.6, for=unknown, for=10.2.2.2:81"), want: "10.2.2.2:81"},
		{name: "Forwarded unknown first from right", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", "for=6.6.6.6, for=unknown"), want: "10.0.0.1:5555"},
		{name: "Forwarded obfuscated", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", "for=6.6.6.6, for=_hidden, for=10.2.2.2"), want: "10.2.2.2:0"},
		{name: "Forwarded obfuscated port dropped", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="198.51.100.7:_port-1"`), want: "198.51.100.7:0"},
		{name: "Forwarded element without for", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", "for=6.6.6.6, proto=https, for=10.2.2.2"), want: "10.2.2.2:0"},
		{name: "Forwarded duplicate for", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", "for=6.6.6.6, for=10.9.9.9;for=5.5.5.5, for=10.2.2.2"), want: "10.2.2.2:0"},
		{name: "Forwarded unterminated quote", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="6.6.6.6, for=10.2.2.2`), want: "10.0.0.1:5555"},
		{name: "Forwarded unterminated quote on its own line", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="6.6.6.6, for=5.5.5.5`, "Forwarded", "for=10.2.2.2"), want: "10.2.2.2:0"},
		{name: "Forwarded missing =", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", "for 6.6.6.6, for=10.2.2.2"), want: "10.2.2.2:0"},
		{name: "Forwarded unbracketed IPv6 is garbage", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="2001:db8::1"`), want: "10.0.0.1:5555"},
		{name: "Forwarded bracketed IPv4 is garbage", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="[198.51.100.7]"`), want: "10.0.0.1:5555"},
		{name: "Forwarded bad port", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="198.51.100.7:65536"`), want: "10.0.0.1:5555"},
		{name: "Forwarded empty port", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="[2001:db8::1]:"`), want: "10.0.0.1:5555"},
		{name: "Forwarded trailing junk after value", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for="198.51.100.7"x`), want: "10.0.0.1:5555"},
		{name: "Forwarded all trusted gives leftmost", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", `for=10.9.9.9:99, for="[2001:db8:ffff::1]"`), want: "10.9.9.9:99"},
		{name: "Forwarded empty elements skipped", giveRemote: "10.0.0.1:5555",
			giveHeader: hdr("Forwarded", ` , for=198.51.100.7 ,, `), want: "198.51.100.7:0"},

		// IPv4-mapped IPv6 socket peer in an IPv4 network.
		{name: "mapped socket trusted by IPv4 CIDR", giveRemote: "[::ffff:10.0.0.1]:5555",
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7"), want: "198.51.100.7:0"},
		{name: "mapped socket untrusted is unmapped", giveRemote: "[::ffff:203.0.113.9]:5555",
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7"), want: "203.0.113.9:5555"},
		{name: "trusted v6 socket with zone", giveRemote: "[2001:db8:ffff::1%eth0]:5555",
			giveHeader: hdr("Forwarded", `for="[2001:db8::9]"`), want: "[2001:db8::9]:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tp.clientAddr(tt.giveRemote, tt.giveHeader, headerFor(tt.giveHeader))
			checkClientAddr(t, got, tt.want)
		})
	}
}

func checkClientAddr(t *testing.T, got net.Addr, want string) {
	t.Helper()
	if want == "" {
		if got != nil {
			t.Fatalf("got %#v, want nil", got)
		}
		return
	}
	ta, ok := got.(*net.TCPAddr)
	if !ok || ta == nil {
		t.Fatalf("got %#v, want a *net.TCPAddr %s", got, want)
	}
	if ta.String() != want {
		t.Fatalf("got %s, want %s", ta, want)
	}
	if len(ta.IP) == net.IPv6len && ta.IP.To4() != nil {
		t.Errorf("IP %v is IPv4-mapped, want it unmapped", ta.IP)
	}
}

func TestClientAddrZone(t *testing.T) {
	tp := mustTrusted(t, "10.0.0.0/8")
	got := tp.clientAddr("[fe80::1%eth0]:80", nil, headerXFF).(*net.TCPAddr)
	if got.Zone != "eth0" || got.Port != 80 || !got.IP.Equal(net.ParseIP("fe80::1")) {
		t.Fatalf("got %#v", got)
	}
}

// TestClientAddrForwardedLimits: chains and headers over the limits are
// ignored as a whole.
func TestClientAddrForwardedLimits(t *testing.T) {
	tp := mustTrusted(t, "10.0.0.0/8")
	const remote = "10.0.0.1:5555"

	chain := func(n int, format func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = format(i)
		}
		return strings.Join(parts, ", ")
	}
	trustedXFF := func(i int) string { return "10.0.0.2" }
	trustedFwd := func(i int) string { return "for=10.0.0.2" }
	// pad makes a Forwarded element longer without adding hops.
	padded := func(n int) string { return `for=198.51.100.7;x="` + strings.Repeat("a", n) + `"` }

	tests := []struct {
		name       string
		giveHeader http.Header
		want       string
	}{
		{name: "XFF 64 hops", want: "198.51.100.7:0",
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7, "+chain(maxForwardedHops-1, trustedXFF))},
		{name: "XFF 65 hops", want: remote,
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7, "+chain(maxForwardedHops, trustedXFF))},
		{name: "XFF 65 hops over field lines", want: remote,
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7",
				"X-Forwarded-For", chain(maxForwardedHops/2, trustedXFF),
				"X-Forwarded-For", chain(maxForwardedHops/2, trustedXFF))},
		{name: "Forwarded 64 hops", want: "198.51.100.7:0",
			giveHeader: hdr("Forwarded", "for=198.51.100.7, "+chain(maxForwardedHops-1, trustedFwd))},
		{name: "Forwarded 65 hops", want: remote,
			giveHeader: hdr("Forwarded", "for=198.51.100.7, "+chain(maxForwardedHops, trustedFwd))},
		{name: "Forwarded many empty elements are not hops", want: "198.51.100.7:0",
			giveHeader: hdr("Forwarded", "for=198.51.100.7"+strings.Repeat(",", 1000))},
		{name: "Forwarded 8 KiB", want: "198.51.100.7:0",
			giveHeader: hdr("Forwarded", padded(maxForwardedHeaderBytes-len(padded(0))))},
		{name: "Forwarded over 8 KiB", want: remote,
			giveHeader: hdr("Forwarded", padded(maxForwardedHeaderBytes-len(padded(0))+1))},
		{name: "Forwarded over 8 KiB over field lines", want: remote,
			giveHeader: hdr("Forwarded", padded(maxForwardedHeaderBytes/2),
				"Forwarded", padded(maxForwardedHeaderBytes/2))},
		{name: "Forwarded over 8 KiB, XFF not consulted", want: remote,
			giveHeader: hdr("X-Forwarded-For", "192.0.2.1",
				"Forwarded", padded(maxForwardedHeaderBytes))},
		{name: "XFF over 8 KiB", want: remote,
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7"+strings.Repeat(" ", maxForwardedHeaderBytes))},
		{name: "XFF 8 KiB", want: "198.51.100.7:0",
			giveHeader: hdr("X-Forwarded-For", "198.51.100.7"+strings.Repeat(" ", maxForwardedHeaderBytes-len("198.51.100.7")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkClientAddr(t, tp.clientAddr(remote, tt.giveHeader, headerFor(tt.giveHeader)), tt.want)
		})
	}
}

func FuzzClientAddr(f *testing.F) {
	tp := mustTrusted(f, "10.0.0.0/8", "::1", "2001:db8:ffff::/48")
	seeds := []struct{ remote, forwarded, xff string }{
		{"10.0.0.1:5555", "", "198.51.100.7, 10.2.2.2"},
		{"10.0.0.1:5555", `for="[2001:db8:cafe::17]:4711";proto=https`, "192.0.2.1"},
		{"10.0.0.1:5555", `for=6.6.6.6, for=unknown, for=_hidden, for="x\"y"`, ""},
		{"10.0.0.1:5555", "for=\"6.6.6.6\nfor=10.2.2.2", "a\nb"},
		{"[::1]:1", `FOR=198.51.100.7:_p;by=";,"`, ""},
		{"[::ffff:10.0.0.1]:80", "", "[2001:db8::1]:80, ::ffff:1.2.3.4, unknown"},
		{"203.0.113.9:5555", "for=1.2.3.4", "1.2.3.4"},
		{"[fe80::1%eth0]:80", "", ""},
		{"garbage", "for=1.2.3.4", ""},
		{"10.0.0.1:5555", `for="\`, ",,,"},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.forwarded, s.xff)
	}
	f.Fuzz(func(t *testing.T, remote, forwarded, xff string) {
		h := http.Header{}
		if forwarded != "" {
			h["Forwarded"] = strings.Split(forwarded, "\n")
		}
		if xff != "" {
			h["X-Forwarded-For"] = strings.Split(xff, "\n")
		}
		got := tp.clientAddr(remote, h, headerFor(h))
		ap, err := netip.ParseAddrPort(remote)
		if err != nil {
			if got != nil {
				t.Fatalf("unparseable remote %q: got %#v, want nil", remote, got)
			}
			return
		}
		ta, ok := got.(*net.TCPAddr)
		if !ok || ta == nil {
			t.Fatalf("got %#v, want a *net.TCPAddr", got)
		}
		if len(ta.IP) != net.IPv4len && len(ta.IP) != net.IPv6len {
			t.Fatalf("got IP %#v", ta.IP)
		}
		if ta.Port < 0 || ta.Port > 65535 {
			t.Fatalf("got port %d", ta.Port)
		}
		if !tp.contains(ap.Addr()) {
			sock := ap.Addr().Unmap()
			if !ta.IP.Equal(net.IP(sock.AsSlice())) || ta.Port != int(ap.Port()) {
				t.Fatalf("untrusted socket %s: got %s, want the socket address", remote, ta)
			}
		}
	})
}

// headerFor is the header the proxies of a test case set: Forwarded when
// the case has one, else X-Forwarded-For.
func headerFor(h http.Header) string {
	if len(h.Values(headerForwarded)) > 0 {
		return headerForwarded
	}
	return headerXFF
}

// TestClientAddrReadsOnlyTheProxysHeader: the header the proxies do not set
// is the client's to forge, so it is never read, whichever it is.
func TestClientAddrReadsOnlyTheProxysHeader(t *testing.T) {
	tp := mustTrusted(t, "10.0.0.0/8")
	both := hdr("X-Forwarded-For", "203.0.113.7", "Forwarded", "for=198.51.100.66")
	tests := []struct {
		name   string
		header string
		give   http.Header
		want   string
	}{
		{"XFF proxy, forged Forwarded", headerXFF, both, "203.0.113.7:0"},
		{"Forwarded proxy, forged XFF", headerForwarded, both, "198.51.100.66:0"},
		{"XFF proxy, only a forged Forwarded", headerXFF, hdr("Forwarded", "for=198.51.100.66"), "10.0.0.1:5555"},
		{"Forwarded proxy, only a forged XFF", headerForwarded, hdr("X-Forwarded-For", "203.0.113.7"), "10.0.0.1:5555"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkClientAddr(t, tp.clientAddr("10.0.0.1:5555", tt.give, tt.header), tt.want)
		})
	}
}
