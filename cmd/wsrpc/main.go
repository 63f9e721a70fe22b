// Command wsrpc is the command-line tool of wsrpc:
//
//	wsrpc serve      run a server with the demo services and topics
//	wsrpc call       call a method and print its result as JSON
//	wsrpc notify     send a notification
//	wsrpc subscribe  subscribe to topics and print their publications
//	wsrpc publish    publish a JSON value on a topic
//	wsrpc connect    talk raw WebSocket to any server, interactively
//	wsrpc bench      load-test a method
//	wsrpc demo       a server and a scripted client in one process
//	wsrpc version    print the version
//
// "wsrpc help" lists the commands and "wsrpc <command> --help" shows each
// one's flags and examples. The command lives in package internal/cli; this
// is its core build, without the NATS broker of `wsrpc serve --nats`, which
// the build in the natsbroker module adds
// (go install github.com/wsrpc/wsrpc/natsbroker/cmd/wsrpc@latest).
package main

import "github.com/wsrpc/wsrpc/internal/cli"

// main only hands the process to cli.Main, which does everything else (and
// is tested in-process). SIGINT and SIGTERM end the command.
func main() {
	cli.Main(cli.Extensions{})
}
