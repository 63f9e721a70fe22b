package server

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/wsrpc/wsrpc/internal/logtext"
)

// originAllowed applies the Origin check (see [WithOriginPatterns]) before
// anything else is spent on the handshake, and answers 403 when it fails,
// with a log line that names the Origin and the Host seen and, when the two
// differ the way a reverse proxy makes them differ, what to change.
//
// It decides as coder/websocket's Accept does (which checks again): no
// Origin passes; an Origin whose host (with its port) equals the Host,
// ignoring case, passes; so does one whose host (or scheme://host, for a
// pattern holding "://") matches a pattern. Anything else is refused.
func (s *Server) originAllowed(w http.ResponseWriter, r *http.Request, remote string) bool {
	origin := r.Header.Get("Origin")
	if s.opts.skipOriginCheck || origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil {
		if strings.EqualFold(u.Host, r.Host) {
			return true
		}
		for _, p := range s.opts.originPatterns {
			target := u.Host
			if strings.Contains(p, "://") {
				target = u.Scheme + "://" + u.Host
			}
			if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
				return true
			}
		}
	}
	s.refuse(RefusedOrigin)
	s.log("handshake refused: cross-origin", "remote", remote,
		"origin", logtext.ClipTo(origin, maxLoggedHost), "host", logtext.ClipTo(r.Host, maxLoggedHost),
		"status", http.StatusForbidden, "why", originMismatch(u, r.Host))
	http.Error(w, "cross-origin handshake refused: the Origin does not match the Host", http.StatusForbidden)
	return false
}

// originMismatch says why an Origin whose URL is u (nil: it did not parse)
// does not match host, for the log line of a refusal.
func originMismatch(u *url.URL, host string) string {
	if u == nil || u.Host == "" {
		return "the Origin is not a URL with a host"
	}
	oName, oPort := splitHostPort(u.Host)
	hName, hPort := splitHostPort(host)
	if !strings.EqualFold(oName, hName) {
		return "the Origin names another host: a page of another site, or a proxy that does not pass the Host the client sent " +
			"(nginx: proxy_set_header Host $http_host); allow other sites' pages with WithOriginPatterns (wsrpc serve --origin)"
	}
	if hPort == "" {
		return "the Host has no port but the Origin has " + oPort +
			": a proxy passes the Host without its port (nginx: proxy_set_header Host $http_host, not $host)"
	}
	return "the Host's port " + hPort + " is not the Origin's (" + orNone(oPort) +
		"): a proxy passes another port, or the page is served from another port (allow it with WithOriginPatterns, wsrpc serve --origin)"
}

// splitHostPort splits a host[:port] (IPv6 in brackets) without failing:
// a missing port is "".
func splitHostPort(hp string) (host, port string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), ""
}

func orNone(port string) string {
	if port == "" {
		return "none"
	}
	return port
}
