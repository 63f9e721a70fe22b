module github.com/wsrpc/wsrpc

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	go.uber.org/goleak v1.3.0
)

require golang.org/x/sync v0.24.0
