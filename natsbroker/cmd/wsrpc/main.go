// Command wsrpc is the wsrpc command built with the NATS broker: the same
// command as github.com/wsrpc/wsrpc/cmd/wsrpc, whose `serve --nats URL`
// shares pub/sub topics with every other server on the same NATS, with
// history in JetStream (see package natsbroker). It lives in this module so
// that the core command, and every user of the core library, does without
// nats.go.
//
//	go install github.com/wsrpc/wsrpc/natsbroker/cmd/wsrpc@latest
//	wsrpc serve --addr 127.0.0.1:8080 --nats nats://127.0.0.1:4222
package main

import (
	"context"

	"github.com/wsrpc/wsrpc/internal/cli"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
)

func main() {
	cli.Main(cli.Extensions{Broker: func(_ context.Context, url string) (pubsub.Broker, error) {
		return natsbroker.Connect(url, natsbroker.Options{})
	}})
}
