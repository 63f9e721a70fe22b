package handler

import (
	"github.com/wsrpc/wsrpc/rpc"
)

// codecFor returns the value codec of the connection req arrived on, or
// [rpc.JSON] for a request built without a peer.
func codecFor(req *rpc.Request) rpc.Codec {
	if p := req.Peer(); p != nil {
		if c := p.Codec(); c != nil {
			return c
		}
	}
	return rpc.JSON
}
