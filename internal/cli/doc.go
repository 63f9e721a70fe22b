// Package cli is the wsrpc command, the command-line tool of wsrpc, as a
// package: each build of the command (cmd/wsrpc, the core one, and
// natsbroker/cmd/wsrpc, which adds a NATS broker) is a main function that
// calls [Main] with its [Extensions]. The commands:
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
// one's flags and examples. Output meant for programs (call results, bench
// --json, subscribe's publications when stdout is not a terminal) is JSON on
// stdout; output for people is aligned text; an error is one line on stderr.
// The exit status is 0 on success, 1 when the command failed and 2 when the
// command line is wrong; call, notify and publish say more with theirs (the
// class of the error: no connection, timeout, method not found, invalid
// params, ...; callHelp has the table), and an interrupted command exits
// with 128 + the signal's number (130 for SIGINT), which Main puts in its
// context's cause.
//
// The RPC commands (call, notify, subscribe, publish, bench and demo) reach
// the server through package client, the one call path every front end
// shares; call, notify, publish and bench make one connection each and do
// not reconnect, while subscribe reconnects and recovers what it missed, and
// the demo shows its client riding out a dropped connection and a restart. connect, a raw WebSocket client for any
// server, is built on package transport, and so is the demo's JSON-RPC batch
// step, which shows the text on the wire.
//
// # Layout
//
// A build's main.go only calls Main, which wires the process to run (run.go),
// so that every command is tested in-process with its own streams; what a
// build adds (Extensions) reaches the commands in env. There is one file per
// command, services.go holds the demo services, streams.go the demo
// streaming services (countdown, and tail, which reads the hub's broker
// through a tap) and topics.go the demo topics that serve and demo share,
// flags.go the flag helpers and dial.go what the client commands share
// (TLS files, the proxy of proxy.go, the dial errors); verbose.go is call -v,
// discover.go call --list, lineedit.go connect's prompt and term_linux.go
// the terminal control it needs (termios through ioctl; term_other.go does
// without a prompt elsewhere). The latencies of bench go into
// internal/histogram.
//
// # Goroutines and ownership
//
// Every goroutine a command starts is waited for before the command returns:
// serve's HTTP server goroutine (by the shutdown) and the clock publishing
// the time topic (stopped before the shutdown, and so are the handlers of
// the streams countdown and tail, which would hold the drain up), bench's
// workers and progress line, connect's pings and its reader of the terminal
// (whose reads time out every tenth of a second in the prompt's raw mode),
// subscribe's subscriber (which makes the subscribes while the command
// prints), demo's shutdown, Main's signal watcher. The one exception is the
// stdin reader of connect (without a prompt) and publish when stdin is the
// process's own: a read from a pipe or a terminal in line mode cannot be
// interrupted, so the command closes stdin and returns, and the reader, which
// holds nothing, ends with the process.
//
// # Concurrency
//
// run wraps stdout and stderr so that writes from several goroutines (slog,
// a progress line) do not interleave mid-line; a command prints its results
// from one goroutine.
package cli
