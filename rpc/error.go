package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Code classifies an error. Codes travel on the wire unchanged in both codecs.
// The JSON-RPC 2.0 standard codes are used for what they mean there; the
// runtime's own codes sit in the range JSON-RPC reserves for implementations
// (-32000 to -32099). Applications may use any other value.
type Code int32

// JSON-RPC 2.0 standard codes.
const (
	CodeParseError     Code = -32700 // the message is not valid JSON
	CodeInvalidRequest Code = -32600 // the message is not a valid request object
	CodeMethodNotFound Code = -32601 // no handler for the method
	CodeInvalidParams  Code = -32602 // the params could not be decoded
	CodeInternalError  Code = -32603 // the handler failed (a panic, an unclassified error)
)

// Runtime codes.
const (
	// CodeUnavailable: the request was refused before any work started (the
	// peer is shutting down or the connection closed before it was sent). It
	// is always safe to retry, on this or another connection.
	CodeUnavailable Code = -32000
	// CodeCanceled: the caller cancelled the call.
	CodeCanceled Code = -32001
	// CodeDeadlineExceeded: the call's deadline passed.
	CodeDeadlineExceeded Code = -32002
	// CodeBusy: the peer has too many calls in flight; the request was not
	// started and may be retried later.
	CodeBusy Code = -32003
	// CodeUnauthenticated: the caller has not authenticated.
	CodeUnauthenticated Code = -32004
	// CodePermissionDenied: the caller may not call this method.
	CodePermissionDenied Code = -32005
	// CodeConnectionLost: the connection ended after the request was sent and
	// before its reply came back: the outcome is unknown.
	CodeConnectionLost Code = -32006
)

var codeNames = map[Code]string{
	CodeParseError:       "parse error",
	CodeInvalidRequest:   "invalid request",
	CodeMethodNotFound:   "method not found",
	CodeInvalidParams:    "invalid params",
	CodeInternalError:    "internal error",
	CodeUnavailable:      "unavailable",
	CodeCanceled:         "canceled",
	CodeDeadlineExceeded: "deadline exceeded",
	CodeBusy:             "busy",
	CodeUnauthenticated:  "unauthenticated",
	CodePermissionDenied: "permission denied",
	CodeConnectionLost:   "connection lost",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", int32(c))
}

// Error is the one error type that crosses the wire: a code, a message, and
// optional data (encoded with the value codec; JSON by default).
//
// errors.Is(err, target) holds when target is an *Error with the same code
// (and for the context errors, see [Error.Is]), so the sentinels below can
// be matched through any wrapping:
//
//	if errors.Is(err, rpc.ErrMethodNotFound) { ... }
type Error struct {
	Code    Code
	Message string
	Data    []byte // raw encoded data, nil if none

	notStarted bool // made by NotStarted: a handler's deliberate refusal
}

// NewError returns an *Error with code and message.
func NewError(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// NotStarted returns the error a handler gives to refuse a call before doing
// any of its work (it is warming up, say), so that the caller may retry it,
// here or elsewhere: [CodeUnavailable]. Only such a deliberate refusal goes
// out with that code; an unavailable error a handler passes on from a call of
// its own is sent as an internal error, since work may have been done.
func NotStarted(message string) *Error {
	return &Error{Code: CodeUnavailable, Message: message, notStarted: true}
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("wsrpc: %s (%d)", e.Code, int32(e.Code))
	}
	return fmt.Sprintf("wsrpc: %s (%d): %s", e.Code, int32(e.Code), e.Message)
}

// Is reports whether target is an *Error with the same code. An error with
// CodeCanceled also matches context.Canceled, and one with
// CodeDeadlineExceeded matches context.DeadlineExceeded, so that a deadline
// that expired on the other side reads the same as one that expired here.
func (e *Error) Is(target error) bool {
	switch target {
	case context.Canceled:
		return e.Code == CodeCanceled
	case context.DeadlineExceeded:
		return e.Code == CodeDeadlineExceeded
	}
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels, one per code, for errors.Is.
var (
	ErrParse            = NewError(CodeParseError, "parse error")
	ErrInvalidRequest   = NewError(CodeInvalidRequest, "invalid request")
	ErrMethodNotFound   = NewError(CodeMethodNotFound, "method not found")
	ErrInvalidParams    = NewError(CodeInvalidParams, "invalid params")
	ErrInternal         = NewError(CodeInternalError, "internal error")
	ErrUnavailable      = NewError(CodeUnavailable, "unavailable")
	ErrCanceled         = NewError(CodeCanceled, "canceled")
	ErrDeadlineExceeded = NewError(CodeDeadlineExceeded, "deadline exceeded")
	ErrBusy             = NewError(CodeBusy, "busy")
	ErrUnauthenticated  = NewError(CodeUnauthenticated, "unauthenticated")
	ErrPermissionDenied = NewError(CodePermissionDenied, "permission denied")
	ErrConnectionLost   = NewError(CodeConnectionLost, "connection lost")
)

// CodeOf returns the code carried by err: the code of an *Error in its chain,
// CodeCanceled or CodeDeadlineExceeded for context errors, 0 for nil, and
// CodeInternalError for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	switch {
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	}
	return CodeInternalError
}

// toError turns a handler's error into the *Error sent on the wire. An error
// that is not an *Error keeps its text but gets CodeInternalError (or the
// context code).
//
// An *Error returned as it is goes out as it is. One wrapped in another
// error (fmt.Errorf("asking the client: %w", err)) keeps its code and data,
// and its message becomes the whole text, the wrappers' included, with the
// *Error's own "wsrpc: code (n): " prefix left out, so that the caller
// learns where the error came from: as gRPC's status.FromError does.
func toError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	var e *Error
	if errors.As(err, &e) {
		msg := strings.Replace(err.Error(), e.Error(), e.Message, 1)
		return &Error{Code: e.Code, Message: msg, Data: e.Data, notStarted: e.notStarted}
	}
	return &Error{Code: CodeOf(err), Message: err.Error()}
}
