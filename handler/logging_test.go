package handler_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// newLogger logs to buf at level without the time, with every duration
// shown as D.
func newLogger(buf io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey:
				return slog.Attr{}
			case "duration":
				return slog.String("duration", "D")
			case rpc.LogKeyConn:
				return slog.String(a.Key, "C") // random
			case rpc.LogKeyRemote:
				return slog.String(a.Key, "R") // a random port
			}
			return a
		},
	}))
}

func TestLogging(t *testing.T) {
	const base = ` method=m id=0 duration=D`
	tests := []struct {
		name  string
		level slog.Level // of the logger
		opts  []handler.LogOption
		give  handler.Handler
		want  string // the log line; "" for none
	}{
		{"success", slog.LevelInfo, nil, echo,
			`level=INFO msg="rpc call"` + base + ` code=0`},
		{"success, payloads", slog.LevelInfo, []handler.LogOption{handler.LogPayloads()}, echo,
			`level=INFO msg="rpc call"` + base + ` code=0 params="{\"x\":1}" result="{\"x\":1}"`},
		{"invalid params", slog.LevelInfo, nil, fail(rpc.NewError(rpc.CodeInvalidParams, "bad")),
			`level=WARN msg="rpc call failed"` + base + ` code=-32602 error="wsrpc: invalid params (-32602): bad"`},
		{"failure, payloads", slog.LevelInfo, []handler.LogOption{handler.LogPayloads()}, fail(rpc.NewError(5, "app")),
			`level=WARN msg="rpc call failed"` + base + ` code=5 error="wsrpc: code 5 (5): app" params="{\"x\":1}"`},
		{"canceled", slog.LevelInfo, nil, fail(context.Canceled),
			`level=WARN msg="rpc call failed"` + base + ` code=-32001 error="context canceled"`},
		{"internal", slog.LevelInfo, nil, fail(errors.New("boom")),
			`level=ERROR msg="rpc call failed"` + base + ` code=-32603 error=boom`},
		{"warn level: success not logged", slog.LevelWarn, nil, echo, ""},
		{"warn level: failure logged", slog.LevelWarn, nil, fail(rpc.ErrBusy),
			`level=WARN msg="rpc call failed"` + base + ` code=-32003 error="wsrpc: busy (-32003): busy"`},
		{"error level: warning not logged", slog.LevelError, nil, fail(rpc.ErrBusy), ""},
		{"error level: internal logged", slog.LevelError, nil, fail(errors.New("boom")),
			`level=ERROR msg="rpc call failed"` + base + ` code=-32603 error=boom`},
		{"off", slog.LevelError + 1, nil, fail(errors.New("boom")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := handler.Logging(newLogger(&buf, tt.level), tt.opts...)(tt.give)
			wantResult, wantErr := tt.give.ServeRPC(context.Background(), newReq("m", `{"x":1}`))
			got, err := h.ServeRPC(context.Background(), newReq("m", `{"x":1}`))
			if string(got) != string(wantResult) || err != wantErr {
				t.Errorf("outcome changed: %q, %v; want %q, %v", got, err, wantResult, wantErr)
			}
			if line := strings.TrimSuffix(buf.String(), "\n"); line != tt.want {
				t.Errorf("logged\n%s\nwant\n%s", line, tt.want)
			}
		})
	}
}

func TestLoggingPayloadCut(t *testing.T) {
	long := strings.Repeat("a", 2000)
	accents := "x" + strings.Repeat("é", 600) // byte 1024 is inside an 'é'
	tests := []struct {
		name string
		give string
		want string
	}{
		{"short", "abc", "abc"},
		{"exact", long[:handler.MaxLoggedPayload], long[:handler.MaxLoggedPayload]},
		{"long", long, long[:handler.MaxLoggedPayload] + "…(2000 bytes)"},
		{"cut at a character", accents, accents[:handler.MaxLoggedPayload-1] + "…(1201 bytes)"},
		{"binary", "\xff\x00", "base64:/wA="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			logger := slog.New(recordFunc(func(r slog.Record) {
				r.Attrs(func(a slog.Attr) bool {
					if a.Key == "params" {
						got = a.Value.String()
					}
					return true
				})
			}))
			handler.Logging(logger, handler.LogPayloads())(echo).ServeRPC(context.Background(), newReq("m", tt.give))
			if got != tt.want {
				t.Errorf("params logged as %q (%d bytes), want %q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
		})
	}
}

func TestLoggingDisabledIsFree(t *testing.T) {
	var buf bytes.Buffer
	h := handler.Logging(newLogger(&buf, slog.LevelError+1), handler.LogPayloads())(echo)
	req := newReq("m", "x")
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { h.ServeRPC(ctx, req) }); n != 0 {
		t.Errorf("%v allocations per call with logging off, want 0", n)
	}
	if buf.Len() != 0 {
		t.Errorf("logged %q", buf.String())
	}
}

func TestLoggingNilLogger(t *testing.T) {
	got, err := handler.Logging(nil)(echo).ServeRPC(context.Background(), newReq("m", "x"))
	if err != nil || string(got) != "x" {
		t.Errorf("got %q, %v", got, err)
	}
}

// recordFunc is a slog.Handler that passes every record to itself.
type recordFunc func(slog.Record)

func (recordFunc) Enabled(context.Context, slog.Level) bool        { return true }
func (f recordFunc) Handle(_ context.Context, r slog.Record) error { f(r); return nil }
func (f recordFunc) WithAttrs([]slog.Attr) slog.Handler            { return f }
func (f recordFunc) WithGroup(string) slog.Handler                 { return f }
