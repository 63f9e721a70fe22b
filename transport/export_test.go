package transport

import "net"

// Internals the external tests look at.

func PendingOf(c *Conn) int64   { return c.pending.Load() }
func SocketOf(c *Conn) net.Conn { return c.cork.Conn }
