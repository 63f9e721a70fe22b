package rpc

import (
	"fmt"
	"log/slog"

	"github.com/wsrpc/wsrpc/internal/logtext"
)

// Log attribute keys: every log record the library writes about a
// connection carries them, with these types under any slog handler.
const (
	LogKeyConn      = "conn"      // string: the connection's [Peer.ID]
	LogKeyRemote    = "remote"    // string: [Peer.RemoteAddr] ("" when unknown)
	LogKeyPrincipal = "principal" // string (see [Peer.AppendLogAttrs]); absent without a principal
)

// AppendLogAttrs appends to dst the attributes that say which connection a
// log record is about: conn (the ID), remote (the remote address as text)
// and, when the session has a principal, principal. The principal is
// logged as a string: a string as it is, a [fmt.Stringer] by its String,
// otherwise by its type name alone (so that a struct holding a token does
// not end up in the logs); a principal that implements [slog.LogValuer]
// decides for itself. It is cut to 256 bytes. A nil p appends nothing.
//
// The library's own records (the server's connected, disconnected and
// refused records, the peer's warnings, handler.Logging and
// handler.Recover) use it; so can an application's.
func (p *Peer) AppendLogAttrs(dst []slog.Attr) []slog.Attr {
	if p == nil {
		return dst
	}
	dst = append(dst, slog.String(LogKeyConn, p.id), slog.String(LogKeyRemote, addrText(p.remoteAddr)))
	if pr := p.session.Principal(); pr != nil {
		dst = append(dst, slog.Attr{Key: LogKeyPrincipal, Value: principalValue(pr)})
	}
	return dst
}

// addrText is an address as a log shows it.
func addrText(a interface{ String() string }) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func principalValue(pr any) slog.Value {
	switch v := pr.(type) {
	case slog.LogValuer:
		return slog.AnyValue(v)
	case string:
		return slog.StringValue(logtext.Clip(v))
	case fmt.Stringer:
		return slog.StringValue(logtext.Clip(v.String()))
	}
	return slog.StringValue(fmt.Sprintf("(%T)", pr))
}

// logArgs returns args followed by the connection's attributes, for the
// peer's own records.
func (p *Peer) logArgs(args []any) []any {
	var buf [3]slog.Attr
	for _, a := range p.AppendLogAttrs(buf[:0]) {
		args = append(args, a)
	}
	return args
}

// panicText is a panic value as a log shows it: always a string, cut to
// 256 bytes.
func panicText(v any) string { return logtext.Clip(fmt.Sprint(v)) }
