package rpc

import "github.com/wsrpc/wsrpc/transport"

// The reserved names of authentication lifetime (docs/PROTOCOL.md, section
// 15): a server whose authentication of a connection ends tells the client
// when, the client presents a new credential before then, and a connection
// that reaches its expiry is closed with [CloseAuthExpired]. Package server
// serves them (server.WithAuthRefresh) and package client uses them
// (client.WithCredentials). Their params and results are JSON on both wire
// codecs, whatever the value codec.
const (
	// MethodAuthRefresh is the client → server call that presents a new
	// credential (its params); the result says when the new authentication
	// ends: {"expiresIn": ms}, or {} for never.
	MethodAuthRefresh = "$/auth.refresh"
	// MethodAuthExpiry is the server → client notification that says when
	// the connection's authentication ends: {"expiresIn": ms}.
	MethodAuthExpiry = "$/auth.expiry"
)

// CloseAuthExpired (4401) is the close code of a connection whose
// authentication expired before it was refreshed. It tells the client to get
// a new credential before it reconnects: the one it has is no longer
// accepted. (4401 echoes HTTP's 401, which a handshake refused for its
// credential gets.)
const CloseAuthExpired transport.StatusCode = 4401
