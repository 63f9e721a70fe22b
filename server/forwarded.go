package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Limits on the work clientAddr does for one handshake. The headers it reads
// come (at least partly) from the client, so they must not be able to make
// the server do unbounded work.
const (
	// maxForwardedHops is the largest number of hops (elements of the
	// Forwarded or X-Forwarded-For chain) that is looked at. A longer chain
	// is ignored as a whole.
	maxForwardedHops = 64
	// maxForwardedHeaderBytes is the largest combined length of the values
	// of the header that is used (joined with ","). A longer header is
	// ignored as a whole.
	maxForwardedHeaderBytes = 8 << 10
)

// trustedProxies is a parsed list of proxy networks.
//
// Only when a handshake's socket peer is in one of them may the Forwarded
// (RFC 7239) or X-Forwarded-For header say who the client is.
type trustedProxies []netip.Prefix

// parseTrustedProxies parses CIDR prefixes ("10.0.0.0/8", "::1/128") and bare
// IP addresses ("127.0.0.1", "::1", which mean a /32 or a /128). Surrounding
// white space is ignored; an empty entry is an error. IPv4-mapped IPv6
// addresses are unmapped (so "::ffff:10.0.0.0/104" is "10.0.0.0/8"), and the
// host bits of prefixes are cleared ("10.1.2.3/8" is "10.0.0.0/8").
func parseTrustedProxies(list []string) (trustedProxies, error) {
	if len(list) == 0 {
		return nil, nil
	}
	t := make(trustedProxies, 0, len(list))
	for _, s := range list {
		p, err := parseTrustedProxy(s)
		if err != nil {
			return nil, fmt.Errorf("wsrpc: trusted proxy %q: %w", s, err)
		}
		t = append(t, p)
	}
	return t, nil
}

func parseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("empty entry; want an IP address or a CIDR prefix")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a valid CIDR prefix: %w", err)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a valid IP address or CIDR prefix: %w", err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("IPv6 zones are not supported")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// contains reports whether ip is in one of the networks. ip is unmapped and
// an IPv6 zone is ignored first, so "::ffff:10.1.2.3" is in "10.0.0.0/8" and
// "fe80::1%eth0" in "fe80::/10".
func (t trustedProxies) contains(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return false
	}
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// hop is one element of a forwarding chain.
type hop struct {
	addr netip.Addr // unmapped; may have an IPv6 zone
	port uint16
	ok   bool // false: unparseable, "unknown" or obfuscated
}

func (h hop) tcpAddr() *net.TCPAddr {
	return &net.TCPAddr{IP: net.IP(h.addr.AsSlice()), Port: int(h.port), Zone: h.addr.Zone()}
}

// clientAddr returns the address of the client of a handshake whose socket
// peer is remote (net/http's Request.RemoteAddr: "ip:port" or "[v6]:port")
// and whose request headers are h.
//
// If remote is not a trusted proxy, the headers are ignored and the result is
// remote itself (nil if remote cannot be parsed). Otherwise the chain of hops
// comes from the one header the proxies are known to set, header: Forwarded
// (the for= parameter of each element) or X-Forwarded-For; the other is
// ignored, since a proxy passes on, untouched, the one it does not manage,
// and a client could name itself there. The chain is walked from
// the right (the hop nearest to us) to the left, skipping hops that are
// trusted proxies themselves; the first one that is not trusted is the
// client. If all are trusted, the leftmost one is the client. An unusable
// element (unparseable, "unknown", obfuscated) ends the walk: nothing left of
// it is believed, and the result is the trusted hop that handed it on (the
// socket peer if it is the rightmost element).
//
// A chain longer than maxForwardedHops, or a header longer than
// maxForwardedHeaderBytes, is ignored and the result is remote.
//
// The port of the result is the socket's for the socket peer, the one given
// in Forwarded if any, and else 0. The result is always nil or a
// *net.TCPAddr with an unmapped IP.
func (t trustedProxies) clientAddr(remote string, h http.Header, header string) net.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return nil
	}
	last := hop{addr: ap.Addr().Unmap(), port: ap.Port(), ok: true}
	if !t.contains(last.addr) {
		return last.tcpAddr()
	}
	chain, ok := forwardedChain(h, header)
	if !ok {
		return last.tcpAddr()
	}
	for i := len(chain) - 1; i >= 0; i-- {
		hp := chain[i]
		if !hp.ok {
			break
		}
		if !t.contains(hp.addr) {
			return hp.tcpAddr()
		}
		last = hp
	}
	return last.tcpAddr()
}

// The headers a trusted proxy may be said to set (WithForwardedHeader).
const (
	headerXFF       = "X-Forwarded-For"
	headerForwarded = "Forwarded"
)

// forwardedChain returns the hops of header (headerForwarded or headerXFF)
// in h, left to right. ok is false if the header is over the limits.
func forwardedChain(h http.Header, header string) (chain []hop, ok bool) {
	if header == headerForwarded {
		vals := h.Values(headerForwarded)
		if !withinLimit(vals) {
			return nil, false
		}
		for _, v := range vals {
			if chain, ok = appendForwarded(chain, v); !ok {
				return nil, false
			}
		}
		return chain, true
	}
	vals := h.Values(headerXFF)
	if !withinLimit(vals) {
		return nil, false
	}
	for _, v := range vals {
		if chain, ok = appendXFF(chain, v); !ok {
			return nil, false
		}
	}
	return chain, true
}

// withinLimit reports whether vals, joined with ",", are no longer than
// maxForwardedHeaderBytes.
func withinLimit(vals []string) bool {
	n := -1
	for _, v := range vals {
		n += len(v) + 1
		if n > maxForwardedHeaderBytes {
			return false
		}
	}
	return true
}

// appendXFF appends the hops of one X-Forwarded-For field value to chain.
// Empty list elements are skipped. It returns false if the chain gets longer
// than maxForwardedHops.
func appendXFF(chain []hop, v string) ([]hop, bool) {
	for v != "" {
		var elem string
		elem, v, _ = strings.Cut(v, ",")
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		if len(chain) == maxForwardedHops {
			return nil, false
		}
		chain = append(chain, parseXFFElem(elem))
	}
	return chain, true
}

// parseXFFElem parses an address of X-Forwarded-For: a plain IP address, and
// tolerated, "ip:port", "[v6]:port" or "[v6]". The port is dropped.
func parseXFFElem(s string) hop {
	if a, err := netip.ParseAddr(s); err == nil {
		return hop{addr: a.Unmap(), ok: true}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return hop{addr: ap.Addr().Unmap(), ok: true}
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return hop{addr: a.Unmap(), ok: true}
		}
	}
	return hop{}
}

// appendForwarded appends the hops of one Forwarded field value (RFC 7239
// section 4) to chain: one hop per element, from its for= parameter.
// Parameter names are case-insensitive, values are tokens or quoted strings;
// white space is tolerated around "," and ";". An element with a syntax
// error, without for= or with for= twice is an unusable hop, and parsing
// resumes after the next "," outside a quoted string. Empty list elements are
// skipped. It returns false if the chain gets longer than maxForwardedHops.
func appendForwarded(chain []hop, v string) ([]hop, bool) {
	i := 0
	for {
		var (
			elem  hop
			empty = true
			seen  bool // for= seen
			bad   bool
		)
		for {
			i = skipOWS(v, i)
			if i == len(v) || v[i] == ',' {
				break
			}
			empty = false
			if v[i] == ';' {
				i++
				continue
			}
			// forwarded-pair = token "=" value
			start := i
			for i < len(v) && isTokenChar(v[i]) {
				i++
			}
			name := v[start:i]
			if name == "" || i == len(v) || v[i] != '=' {
				bad = true
				break
			}
			i++
			var val string
			if i < len(v) && v[i] == '"' {
				var ok bool
				if val, i, ok = parseQuoted(v, i); !ok {
					bad = true
					break
				}
			} else {
				start := i
				for i < len(v) && isValueChar(v[i]) {
					i++
				}
				val = v[start:i]
				if val == "" {
					bad = true
					break
				}
			}
			if j := skipOWS(v, i); j < len(v) && v[j] != ';' && v[j] != ',' {
				bad = true
				break
			}
			if strings.EqualFold(name, "for") {
				if seen {
					bad = true
					break
				}
				seen = true
				elem = parseNode(val)
			}
		}
		if bad {
			i = skipElement(v, i)
			elem = hop{}
		}
		if !empty {
			if len(chain) == maxForwardedHops {
				return nil, false
			}
			if !seen {
				elem = hop{}
			}
			chain = append(chain, elem)
		}
		if i >= len(v) {
			return chain, true
		}
		i++ // the ","
	}
}

// parseNode parses the value of a for= parameter (RFC 7239 section 6):
// an IPv4 address or an IPv6 address in brackets, each with an optional port.
// "unknown" and obfuscated identifiers ("_hidden") are unusable; an
// obfuscated port ("_p") is dropped.
func parseNode(s string) hop {
	host, port := s, ""
	bracketed := strings.HasPrefix(s, "[")
	if bracketed {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hop{}
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return hop{}
			}
			port = port[1:]
			if port == "" {
				return hop{}
			}
		}
	} else if h, p, found := strings.Cut(s, ":"); found {
		if p == "" {
			return hop{}
		}
		host, port = h, p
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return hop{} // also "unknown" and obfuscated identifiers like "_hidden"
	}
	if bracketed != a.Is6() {
		return hop{} // IPv6 must be in brackets, IPv4 must not
	}
	hp := hop{addr: a.Unmap(), ok: true}
	switch {
	case port == "":
	case port[0] == '_': // obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
		if len(port) == 1 {
			return hop{}
		}
		for i := 1; i < len(port); i++ {
			if c := port[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return hop{}
			}
		}
	default: // port = 1*5DIGIT
		if len(port) > 5 {
			return hop{}
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return hop{}
			}
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return hop{}
		}
		hp.port = uint16(n)
	}
	return hp
}

// parseQuoted parses the quoted-string starting at v[i] (a '"') and returns
// its unescaped contents and the index after it.
func parseQuoted(v string, i int) (s string, next int, ok bool) {
	i++ // opening quote
	start := i
	var b *strings.Builder
	for i < len(v) {
		c := v[i]
		switch {
		case c == '"':
			if b == nil {
				return v[start:i], i + 1, true
			}
			return b.String(), i + 1, true
		case c == '\\':
			if i+1 == len(v) || !isQuotedChar(v[i+1]) {
				return "", len(v), false
			}
			if b == nil {
				b = new(strings.Builder)
				b.WriteString(v[start:i])
			}
			b.WriteByte(v[i+1])
			i += 2
		case isQuotedChar(c):
			if b != nil {
				b.WriteByte(c)
			}
			i++
		default:
			return "", len(v), false
		}
	}
	return "", len(v), false // unterminated
}

// skipElement returns the index of the next ',' at or after i that is not in
// a quoted string, or len(v).
func skipElement(v string, i int) int {
	quoted := false
	for i < len(v) {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == ',':
			return i
		}
		i++
	}
	return len(v)
}

func skipOWS(v string, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isTokenChar reports whether c is a tchar of RFC 9110.
func isTokenChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isValueChar reports whether c may be in an unquoted parameter value. Beyond
// tchar it tolerates ":", "[" and "]", which RFC 7239 wants quoted but some
// proxies send bare ("for=[2001:db8::1]:80").
func isValueChar(c byte) bool {
	return isTokenChar(c) || c == ':' || c == '[' || c == ']'
}

// isQuotedChar reports whether c may be in a quoted-string, literally
// (qdtext, except '"' and '\\') or after a backslash: HTAB, SP, VCHAR,
// obs-text.
func isQuotedChar(c byte) bool {
	return c == '\t' || c == ' ' || 0x21 <= c && c != 0x7f
}
