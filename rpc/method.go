package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
)

// Method declares a method once, for both sides: its name, the Go type of
// its params (In) and of its result (Out). Declare it in a package that the
// server and its clients both import:
//
//	var Greet = rpc.NewMethod[GreetParams, GreetResult]("greet")
//
// The server registers a handler for it with handler.Register, which only
// accepts a func(context.Context, GreetParams) (GreetResult, error); a
// caller calls it with [Method.Call] (on an *[Peer]) or client.CallMethod
// (on a *client.Client), which only accept GreetParams and return a
// GreetResult. A mismatch is a compile error, not a -32601 or -32602 at run
// time. The declaration also gives discovery (rpc.discover) the Go types to
// describe.
//
// JSON-RPC params are an array or an object, so a method that JSON-RPC
// callers use has a struct, slice, array or map In (on JSON-RPC a nil
// slice, map or pointer is sent as no params); a scalar In works on
// wsrpc.v1 only.
//
// A Method is a small immutable value, safe for concurrent use. Its zero
// value has no name: a call of it is answered with method not found.
type Method[In, Out any] struct{ name string }

// NewMethod declares the method name with params In and result Out. It
// panics if name is not a valid method name (see [ValidMethodName]): a
// declaration is a constant of the program, like a regexp.MustCompile.
func NewMethod[In, Out any](name string) Method[In, Out] {
	mustMethodName("NewMethod", name)
	return Method[In, Out]{name: name}
}

// Name returns the method's name.
func (m Method[In, Out]) Name() string { return m.name }

// Caller makes a call and decodes its result: *[Peer] is one (in either
// direction: a server calls its client's methods through the request's
// Peer). *client.Client takes per-call options, so it is called with
// client.CallMethod instead.
type Caller interface {
	Call(ctx context.Context, method string, params, result any) error
}

// Call calls the method on c with params in and returns its result, as
// c.Call(ctx, m.Name(), in, &out) does; the error is Call's.
func (m Method[In, Out]) Call(ctx context.Context, c Caller, in In) (Out, error) {
	var out Out
	err := c.Call(ctx, m.name, in, &out)
	return out, err
}

// Notification declares a notification: a method called without a reply,
// with params of type In. Its handler is registered with
// handler.RegisterNotification; it is sent with [Notification.Notify] (on an
// *[Peer]) or client.NotifyMethod. Like [Method], it is an immutable value.
type Notification[In any] struct{ name string }

// NewNotification declares the notification name with params In. It
// panics if name is not a valid method name (see [ValidMethodName]).
func NewNotification[In any](name string) Notification[In] {
	mustMethodName("NewNotification", name)
	return Notification[In]{name: name}
}

// Name returns the notification's method name.
func (n Notification[In]) Name() string { return n.name }

// Notifier sends notifications: *[Peer] is one. *client.Client takes
// per-call options, so it is used with client.NotifyMethod instead.
type Notifier interface {
	Notify(ctx context.Context, method string, params any) error
}

// Notify sends the notification on c with params in, as c.Notify does.
func (n Notification[In]) Notify(ctx context.Context, c Notifier, in In) error {
	return c.Notify(ctx, n.name, in)
}

// StreamMethod declares a method that answers with a stream of results of
// type Item (see [Peer.Stream]), for params of type In. Its handler is
// registered with handler.RegisterStream; it is called with
// [StreamMethod.Stream] on an *[Peer] or a *client.Client alike. Like
// [Method], it is an immutable value.
type StreamMethod[In, Item any] struct{ name string }

// NewStreamMethod declares the streaming method name with params In and
// results Item. It panics if name is not a valid method name (see
// [ValidMethodName]).
func NewStreamMethod[In, Item any](name string) StreamMethod[In, Item] {
	mustMethodName("NewStreamMethod", name)
	return StreamMethod[In, Item]{name: name}
}

// Name returns the method's name.
func (m StreamMethod[In, Item]) Name() string { return m.name }

// Streamer opens streams: *[Peer] and *client.Client both are.
type Streamer interface {
	Stream(ctx context.Context, method string, params any, opts ...StreamOption) (*Stream, error)
}

// Stream calls the method on c as a stream, with params in, as c.Stream
// does; the results arrive typed, through the returned [StreamOf].
func (m StreamMethod[In, Item]) Stream(ctx context.Context, c Streamer, in In, opts ...StreamOption) (*StreamOf[Item], error) {
	s, err := c.Stream(ctx, m.name, in, opts...)
	if err != nil {
		return nil, err
	}
	return &StreamOf[Item]{Stream: s}, nil
}

// StreamOf is a [Stream] whose results decode to Item: Recv and All return
// Items; Close and Result are the Stream's. One goroutine reads it.
type StreamOf[Item any] struct {
	*Stream
}

// Recv returns the next result, decoded with the connection's value codec,
// or what [Stream.Recv] ends with (io.EOF once the call ended with a
// result). A result that does not decode is an error; the stream goes on.
func (s *StreamOf[Item]) Recv() (Item, error) {
	var it Item
	err := s.Stream.RecvValue(&it)
	return it, err
}

// All returns the results in order, decoded, as [Stream.All] does: the last
// pair has the zero Item and the error the stream ended with, unless the
// call ended with a result. Breaking out of the loop closes the stream.
func (s *StreamOf[Item]) All() iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		defer s.Close()
		for {
			var it Item
			raw, err := s.Stream.next() // decoded in place, as RecvValue does
			if errors.Is(err, io.EOF) {
				return
			}
			if err == nil {
				err = s.p.unmarshal(raw.data, &it)
				raw.release()
				if !yield(it, err) {
					return
				}
				continue
			}
			yield(it, err)
			return
		}
	}
}

// ReservedMethod reports whether name is in a namespace the protocol
// reserves: "$/" (the runtime's own messages: cancellation, shutdown,
// streams, publish/subscribe) and "rpc." (reserved by JSON-RPC 2.0 for
// methods of the runtime, such as rpc.discover). An application neither
// declares nor registers such names.
func ReservedMethod(name string) bool {
	return strings.HasPrefix(name, "$/") || strings.HasPrefix(name, "rpc.")
}

// ValidMethodName returns an error unless name may be declared as a method:
// it must not be empty, contain '*' (which makes a routing pattern) or be
// reserved ([ReservedMethod]).
func ValidMethodName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("wsrpc: empty method name")
	case strings.Contains(name, "*"):
		return fmt.Errorf("wsrpc: method name %q contains '*'", name)
	case ReservedMethod(name):
		return fmt.Errorf("wsrpc: method name %q is reserved (the \"$/\" and \"rpc.\" prefixes are the protocol's)", name)
	}
	return nil
}

func mustMethodName(fn, name string) {
	if err := ValidMethodName(name); err != nil {
		panic(fmt.Sprintf("rpc.%s: %v", fn, err))
	}
}
