package server

import (
	"context"
	"log/slog"

	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
)

// logPeer logs an Info record about a connection: msg, the connection's
// attributes ([rpc.Peer.AppendLogAttrs]: conn, remote, principal), then
// attrs.
func (s *Server) logPeer(msg string, p *rpc.Peer, attrs ...slog.Attr) {
	if l := s.cfg.Logger(); l != nil {
		all := append(p.AppendLogAttrs(make([]slog.Attr, 0, 3+len(attrs))), attrs...)
		l.LogAttrs(context.Background(), slog.LevelInfo, "wsrpc: "+msg, all...)
	}
}

// reasonText is why a connection ended, as a log shows it: always a
// string.
func reasonText(err error) string {
	if err == nil {
		return ""
	}
	return logtext.Clip(err.Error())
}
