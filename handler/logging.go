package handler

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strconv"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
)

// LogOption configures [Logging].
type LogOption func(*logOptions)

type logOptions struct {
	payloads bool
}

// LogPayloads makes [Logging] add the params and the result of each call
// (params only, for a failed call). A payload longer than [MaxLoggedPayload]
// bytes is cut. Payloads may hold secrets: log them only where that is safe.
func LogPayloads() LogOption { return func(o *logOptions) { o.payloads = true } }

// MaxLoggedPayload is the number of bytes of a payload that [LogPayloads]
// logs; the rest is replaced by a note of the full size.
const MaxLoggedPayload = 1024

// Logging logs one record per call, after it returns, with its method, its
// wire id ("" for a notification), the connection's conn, remote and
// principal attributes ([rpc.Peer.AppendLogAttrs]), its duration and its
// outcome code (0 for success; see [rpc.CodeOf]), plus the error text for a
// failed call. Params and results are left out unless [LogPayloads] is
// given.
//
// Given to [rpc.WithOutgoingMiddleware], it logs the calls the peer makes
// the same way, with direction=outgoing added after the id (the id is the
// one the request was sent with); a record without direction is of a call
// the peer served.
//
// The method, the id and the error text come from the peer, and each is cut
// to 256 bytes. Warn and Error records are limited per connection (see
// [rpc.Peer.AllowWarning]); the first one after a pause says how many were
// suppressed.
//
// Levels: Info for a success; Error for [rpc.CodeInternalError] (a handler
// failure, or any error that is not an *[rpc.Error]); Warn for every other
// code, such as an unknown method, invalid params, a refusal by [Authorize]
// or [Limit], a cancellation or an application's own code. A panic that
// passes through Logging is not logged here: [Recover] logs it.
//
// Logging asks logger.Enabled before doing anything, so with every level off
// a call costs one call to Enabled; with Warn and Error on and Info off, a
// success costs two monotonic clock reads and two calls to Enabled. A nil
// logger logs nothing.
func Logging(logger *slog.Logger, opts ...LogOption) Middleware {
	var o logOptions
	for _, opt := range opts {
		opt(&o)
	}
	return func(next Handler) Handler {
		if logger == nil {
			return next
		}
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			// Error is the highest level logged: if it is off, nothing is.
			if !logger.Enabled(ctx, slog.LevelError) {
				return next.ServeRPC(ctx, req)
			}
			start := now()
			result, err := next.ServeRPC(ctx, req)
			d := now() - start
			code := rpc.CodeOf(err)
			level := levelOf(code)
			if level != slog.LevelError && !logger.Enabled(ctx, level) {
				return result, err
			}
			suppressed := 0
			if peer := req.Peer(); peer != nil && level >= slog.LevelWarn {
				var ok bool
				if ok, suppressed = peer.AllowWarning(); !ok {
					return result, err
				}
			}
			var attrs [12]slog.Attr
			attrs[0] = slog.String("method", logtext.Clip(req.Method))
			attrs[1] = slog.String("id", logtext.Clip(req.WireID()))
			n := 2
			if req.Outgoing() {
				attrs[n] = slog.String("direction", "outgoing")
				n++
			}
			n = len(req.Peer().AppendLogAttrs(attrs[:n]))
			attrs[n] = slog.Duration("duration", d)
			attrs[n+1] = slog.Int("code", int(code))
			n += 2
			if err != nil {
				attrs[n] = slog.String("error", logtext.Clip(err.Error()))
				n++
			}
			if suppressed > 0 {
				attrs[n] = slog.Int("suppressed", suppressed)
				n++
			}
			if o.payloads {
				attrs[n] = slog.Attr{Key: "params", Value: payload(req.Params)}
				n++
				if err == nil {
					attrs[n] = slog.Attr{Key: "result", Value: payload(result)}
					n++
				}
			}
			msg := "rpc call"
			if err != nil {
				msg = "rpc call failed"
			}
			logger.LogAttrs(ctx, level, msg, attrs[:n]...)
			return result, err
		})
	}
}

func levelOf(code rpc.Code) slog.Level {
	switch code {
	case 0:
		return slog.LevelInfo
	case rpc.CodeInternalError:
		return slog.LevelError
	}
	return slog.LevelWarn
}

// payload renders an encoded value for a log: as text when it is UTF-8
// (JSON is), else as base64, cut at MaxLoggedPayload bytes.
func payload(b []byte) slog.Value {
	n := min(len(b), MaxLoggedPayload)
	cut := n
	// Back up to the start of a character, so that a cut does not make
	// valid text look binary.
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && cut < len(b) && !utf8.RuneStart(b[cut]); i++ {
		cut--
	}
	var s string
	if utf8.Valid(b[:cut]) {
		s = string(b[:cut])
	} else {
		cut = n
		s = "base64:" + base64.StdEncoding.EncodeToString(b[:cut])
	}
	if cut < len(b) {
		s += "…(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return slog.StringValue(s)
}
