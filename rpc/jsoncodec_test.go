package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Helpers for building expected messages. Raw JSON given as "" means absent.

func jtBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func jtID(n uint64) wireID    { return wireID{n: n} }
func jtRaw(raw string) wireID { return wireID{raw: raw} }

func jtRequest(id wireID, method, params string) message {
	return message{kind: kindRequest, id: id, method: method, params: jtBytes(params)}
}

func jtTimed(id wireID, method, params string, timeout time.Duration) message {
	m := jtRequest(id, method, params)
	m.timeout = timeout
	return m
}

func jtNotify(method, params string) message {
	return message{kind: kindNotification, id: nullID, method: method, params: jtBytes(params)}
}

func jtResult(id wireID, result string) message {
	return message{kind: kindResult, id: id, result: jtBytes(result)}
}

func jtError(id wireID, code Code, msg, data string) message {
	return message{kind: kindError, id: id, err: &Error{Code: code, Message: msg, Data: jtBytes(data)}}
}

// jtInvalid is an invalid element whose error message contains msg.
func jtInvalid(id wireID, msg string) message {
	return message{kind: kindInvalid, id: id, err: &Error{Code: CodeInvalidRequest, Message: msg}}
}

func jtCancel(id wireID) message {
	return message{kind: kindCancel, id: id, method: jsonCancelMethod}
}

func jtShutdown(retryAfter time.Duration, reason string) message {
	return message{kind: kindShutdown, id: nullID, method: jsonShutdownMethod, retryAfter: retryAfter, reason: reason}
}

// jtMeta is m with the metadata of the key, value pairs kv.
func jtMeta(m message, kv ...string) message {
	m.meta = Metadata{}
	for i := 0; i < len(kv); i += 2 {
		m.meta[kv[i]] = kv[i+1]
	}
	return m
}

// jtDecoded is what decodeJSON returns. fatal is the code of the fatal error,
// 0 for none; fatalMsg, when set, must be contained in its message.
type jtDecoded struct {
	msgs     []message
	batch    bool
	fatal    Code
	fatalMsg string
}

func jtOne(m message) jtDecoded             { return jtDecoded{msgs: []message{m}} }
func jtBatch(ms ...message) jtDecoded       { return jtDecoded{msgs: ms, batch: true} }
func jtFatal(code Code) jtDecoded           { return jtDecoded{fatal: code} }
func jtParseError() jtDecoded               { return jtFatal(CodeParseError) }
func jtFatalMsg(c Code, s string) jtDecoded { return jtDecoded{fatal: c, fatalMsg: s} }

func jtSameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// jtDiff describes how got differs from want ("" when it does not). For
// invalid elements, want.err.Message only needs to be contained in got's.
func jtDiff(got, want message) string {
	var d []string
	if got.kind != want.kind {
		d = append(d, fmt.Sprintf("kind %d, want %d", got.kind, want.kind))
	}
	if got.id != want.id {
		d = append(d, fmt.Sprintf("id %+v, want %+v", got.id, want.id))
	}
	if got.method != want.method {
		d = append(d, fmt.Sprintf("method %q, want %q", got.method, want.method))
	}
	if !jtSameBytes(got.params, want.params) {
		d = append(d, fmt.Sprintf("params %q, want %q", got.params, want.params))
	}
	if !jtSameBytes(got.result, want.result) {
		d = append(d, fmt.Sprintf("result %q, want %q", got.result, want.result))
	}
	switch {
	case (got.err == nil) != (want.err == nil):
		d = append(d, fmt.Sprintf("err %v, want %v", got.err, want.err))
	case got.err != nil:
		if got.err.Code != want.err.Code {
			d = append(d, fmt.Sprintf("err code %d, want %d", got.err.Code, want.err.Code))
		}
		if want.kind == kindInvalid {
			if !strings.Contains(got.err.Message, want.err.Message) {
				d = append(d, fmt.Sprintf("err message %q, want it to contain %q", got.err.Message, want.err.Message))
			}
		} else if got.err.Message != want.err.Message {
			d = append(d, fmt.Sprintf("err message %q, want %q", got.err.Message, want.err.Message))
		}
		if !jtSameBytes(got.err.Data, want.err.Data) {
			d = append(d, fmt.Sprintf("err data %q, want %q", got.err.Data, want.err.Data))
		}
	}
	if got.timeout != want.timeout {
		d = append(d, fmt.Sprintf("timeout %v, want %v", got.timeout, want.timeout))
	}
	if got.retryAfter != want.retryAfter {
		d = append(d, fmt.Sprintf("retryAfter %v, want %v", got.retryAfter, want.retryAfter))
	}
	if got.reason != want.reason {
		d = append(d, fmt.Sprintf("reason %q, want %q", got.reason, want.reason))
	}
	if !sameMetadata(got.meta, want.meta) {
		d = append(d, fmt.Sprintf("metadata %q, want %q", got.meta, want.meta))
	}
	if got.unanswerable {
		d = append(d, "unanswerable (a binary-only state)")
	}
	return strings.Join(d, "; ")
}

func jtObj(members string) string { return `{"jsonrpc":"2.0",` + members + `}` }

// jtNestedParams is a request whose params nest arrays so that the deepest
// one is at level depth (the request object being level 1).
func jtNestedParams(depth int) string {
	return `{"jsonrpc":"2.0","method":"m","params":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

var jsonDecodeTests = []struct {
	name     string
	give     string
	maxBatch int
	want     jtDecoded
}{
	// The examples of the JSON-RPC 2.0 specification.
	{name: "spec positional 1", give: `{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`,
		want: jtOne(jtRequest(jtID(1), "subtract", `[42, 23]`))},
	{name: "spec positional 2", give: `{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}`,
		want: jtOne(jtRequest(jtID(2), "subtract", `[23, 42]`))},
	{name: "spec result 19", give: `{"jsonrpc": "2.0", "result": 19, "id": 1}`,
		want: jtOne(jtResult(jtID(1), `19`))},
	{name: "spec result -19", give: `{"jsonrpc": "2.0", "result": -19, "id": 2}`,
		want: jtOne(jtResult(jtID(2), `-19`))},
	{name: "spec named 1", give: `{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`,
		want: jtOne(jtRequest(jtID(3), "subtract", `{"subtrahend": 23, "minuend": 42}`))},
	{name: "spec named 2", give: `{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}`,
		want: jtOne(jtRequest(jtID(4), "subtract", `{"minuend": 42, "subtrahend": 23}`))},
	{name: "spec notification params", give: `{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`,
		want: jtOne(jtNotify("update", `[1,2,3,4,5]`))},
	{name: "spec notification", give: `{"jsonrpc": "2.0", "method": "foobar"}`,
		want: jtOne(jtNotify("foobar", ""))},
	{name: "spec non-existent method", give: `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
		want: jtOne(jtRequest(jtRaw(`"1"`), "foobar", ""))},
	{name: "spec method not found reply", give: `{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}`,
		want: jtOne(jtError(jtRaw(`"1"`), CodeMethodNotFound, "Method not found", ""))},
	{name: "spec invalid JSON", give: `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
		want: jtParseError()},
	{name: "spec parse error reply", give: `{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`,
		want: jtOne(jtError(nullID, CodeParseError, "Parse error", ""))},
	{name: "spec invalid request object", give: `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
		want: jtOne(jtInvalid(nullID, `"method" must be a string`))},
	{name: "spec invalid request reply", give: `{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`,
		want: jtOne(jtError(nullID, CodeInvalidRequest, "Invalid Request", ""))},
	{name: "spec batch invalid JSON", give: `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]`, want: jtParseError()},
	{name: "spec empty array", give: `[]`, want: jtFatalMsg(CodeInvalidRequest, "empty batch")},
	{name: "spec empty array spaced", give: " [ \n ] ", want: jtFatal(CodeInvalidRequest)},
	{name: "spec invalid batch of one", give: `[1]`,
		want: jtBatch(jtInvalid(nullID, "not an object"))},
	{name: "spec invalid batch", give: `[1,2,3]`,
		want: jtBatch(jtInvalid(nullID, "not an object"), jtInvalid(nullID, "not an object"), jtInvalid(nullID, "not an object"))},
	{name: "spec mixed batch", give: `[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"} 
    ]`, want: jtBatch(
		jtRequest(jtRaw(`"1"`), "sum", `[1,2,4]`),
		jtNotify("notify_hello", `[7]`),
		jtRequest(jtRaw(`"2"`), "subtract", `[42,23]`),
		jtInvalid(nullID, `"jsonrpc" must be "2.0"`),
		jtRequest(jtRaw(`"5"`), "foo.get", `{"name": "myself"}`),
		jtRequest(jtRaw(`"9"`), "get_data", ""),
	)},
	{name: "spec all notifications", give: `[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]`, want: jtBatch(jtNotify("notify_sum", `[1,2,4]`), jtNotify("notify_hello", `[7]`))},
	{name: "spec batch reply", give: `[
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]`, want: jtBatch(
		jtResult(jtRaw(`"1"`), `7`),
		jtResult(jtRaw(`"2"`), `19`),
		jtError(nullID, CodeInvalidRequest, "Invalid Request", ""),
		jtError(jtRaw(`"5"`), CodeMethodNotFound, "Method not found", ""),
		jtResult(jtRaw(`"9"`), `["hello", 5]`),
	)},

	// Ids are kept as numbers when they are non-negative integers that fit a
	// uint64, else as their exact text.
	{name: "id string", give: jtObj(`"id":"abc","method":"m"`), want: jtOne(jtRequest(jtRaw(`"abc"`), "m", ""))},
	{name: "id string escaped", give: jtObj(`"id":"a\"b\u00e9","method":"m"`), want: jtOne(jtRequest(jtRaw(`"a\"b\u00e9"`), "m", ""))},
	{name: "id empty string", give: jtObj(`"id":"","method":"m"`), want: jtOne(jtRequest(jtRaw(`""`), "m", ""))},
	{name: "id fraction", give: jtObj(`"id":1.5,"method":"m"`), want: jtOne(jtRequest(jtRaw(`1.5`), "m", ""))},
	{name: "id negative", give: jtObj(`"id":-3,"method":"m"`), want: jtOne(jtRequest(jtRaw(`-3`), "m", ""))},
	{name: "id negative zero", give: jtObj(`"id":-0,"method":"m"`), want: jtOne(jtRequest(jtRaw(`-0`), "m", ""))},
	{name: "id zero", give: jtObj(`"id":0,"method":"m"`), want: jtOne(jtRequest(jtID(0), "m", ""))},
	{name: "id zero fraction", give: jtObj(`"id":0.0,"method":"m"`), want: jtOne(jtRequest(jtRaw(`0.0`), "m", ""))},
	{name: "id exponent", give: jtObj(`"id":1e3,"method":"m"`), want: jtOne(jtRequest(jtRaw(`1e3`), "m", ""))},
	{name: "id exponent upper", give: jtObj(`"id":2E+0,"method":"m"`), want: jtOne(jtRequest(jtRaw(`2E+0`), "m", ""))},
	{name: "id max uint64", give: jtObj(`"id":18446744073709551615,"method":"m"`),
		want: jtOne(jtRequest(jtID(math.MaxUint64), "m", ""))},
	{name: "id above uint64", give: jtObj(`"id":18446744073709551616,"method":"m"`),
		want: jtOne(jtRequest(jtRaw(`18446744073709551616`), "m", ""))},
	{name: "id far above uint64", give: jtObj(`"id":123456789012345678901234567890,"method":"m"`),
		want: jtOne(jtRequest(jtRaw(`123456789012345678901234567890`), "m", ""))},
	{name: "id null", give: jtObj(`"id":null,"method":"m"`), want: jtOne(jtRequest(nullID, "m", ""))},
	{name: "id spaced", give: "{ \"jsonrpc\" : \"2.0\" ,\n\t\"id\" :\r 7 , \"method\":\"m\" }", want: jtOne(jtRequest(jtID(7), "m", ""))},
	{name: "id object", give: jtObj(`"id":{},"method":"m"`), want: jtOne(jtInvalid(nullID, `"id"`))},
	{name: "id array", give: jtObj(`"id":[1],"method":"m"`), want: jtOne(jtInvalid(nullID, `"id"`))},
	{name: "id bool", give: jtObj(`"id":true,"method":"m"`), want: jtOne(jtInvalid(nullID, `"id"`))},
	{name: "id duplicate", give: jtObj(`"id":1,"method":"m","id":2`), want: jtOne(jtRequest(jtID(2), "m", ""))},

	// "jsonrpc"
	{name: "jsonrpc missing", give: `{"id":5,"method":"m"}`, want: jtOne(jtInvalid(jtID(5), `"jsonrpc" must be "2.0"`))},
	{name: "jsonrpc 1.0", give: `{"jsonrpc":"1.0","id":"x","method":"m"}`, want: jtOne(jtInvalid(jtRaw(`"x"`), `"jsonrpc" must be "2.0"`))},
	{name: "jsonrpc number", give: `{"jsonrpc":2.0,"id":5,"method":"m"}`, want: jtOne(jtInvalid(jtID(5), `"jsonrpc"`))},
	{name: "jsonrpc padded", give: `{"jsonrpc":"2.0 ","id":5,"method":"m"}`, want: jtOne(jtInvalid(jtID(5), `"jsonrpc"`))},
	{name: "jsonrpc escaped", give: `{"jsonrpc":"2\u002e0","id":5,"method":"m"}`, want: jtOne(jtRequest(jtID(5), "m", ""))},
	{name: "jsonrpc long escaped", give: `{"jsonrpc":"2\u002e0\u0030\u0030\u0030\u0030\u0030\u0030\u0030","id":5,"method":"m"}`,
		want: jtOne(jtInvalid(jtID(5), `"jsonrpc"`))},
	{name: "jsonrpc last wins", give: `{"jsonrpc":"1.0","jsonrpc":"2.0","method":"m"}`, want: jtOne(jtNotify("m", ""))},
	{name: "jsonrpc last wins invalid", give: `{"jsonrpc":"2.0","jsonrpc":"1.0","method":"m"}`, want: jtOne(jtInvalid(nullID, `"jsonrpc"`))},
	{name: "key escaped", give: `{"\u006asonrpc":"2.0","\u006Dethod":"m","i\u0064":1}`, want: jtOne(jtRequest(jtID(1), "m", ""))},
	{name: "key case matters", give: `{"jsonrpc":"2.0","Method":"m","ID":1}`, want: jtOne(jtInvalid(nullID, `"method"`))},
	{name: "unknown members ignored", give: jtObj(`"x":{"a":[1,{"b":null}],"c":"\ud83d\ude00"},"method":"m","id":1,"y":-1.5e-7`),
		want: jtOne(jtRequest(jtID(1), "m", ""))},
	{name: "empty object", give: `{}`, want: jtOne(jtInvalid(nullID, `"jsonrpc"`))},
	{name: "only jsonrpc", give: `{"jsonrpc":"2.0"}`, want: jtOne(jtInvalid(nullID, `"method"`))},

	// Methods.
	{name: "method null", give: jtObj(`"method":null,"id":1`), want: jtOne(jtInvalid(jtID(1), `"method" must be a string`))},
	{name: "method escaped ascii", give: jtObj(`"method":"\u0065cho","id":1`), want: jtOne(jtRequest(jtID(1), "echo", ""))},
	{name: "method escaped latin", give: jtObj(`"method":"\u00e9t\u00E9"`), want: jtOne(jtNotify("été", ""))},
	{name: "method surrogate pair", give: jtObj(`"method":"smile\ud83d\ude00"`), want: jtOne(jtNotify("smile😀", ""))},
	{name: "method lone high surrogate", give: jtObj(`"method":"\ud800x"`), want: jtOne(jtNotify("\uFFFDx", ""))},
	{name: "method lone low surrogate", give: jtObj(`"method":"\udc00"`), want: jtOne(jtNotify("\uFFFD", ""))},
	{name: "method high then bmp", give: jtObj(`"method":"\ud800\u0041"`), want: jtOne(jtNotify("\uFFFDA", ""))},
	{name: "method short escapes", give: jtObj(`"method":"a\/b\\c\"d\b\f\n\r\t"`), want: jtOne(jtNotify("a/b\\c\"d\b\f\n\r\t", ""))},
	{name: "method utf8", give: jtObj(`"method":"héllo, 世界"`), want: jtOne(jtNotify("héllo, 世界", ""))},
	{name: "method empty", give: jtObj(`"method":""`), want: jtOne(jtNotify("", ""))},
	{name: "method last wins", give: jtObj(`"method":"a","method":"b"`), want: jtOne(jtNotify("b", ""))},
	{name: "method wins over result", give: jtObj(`"method":"a","result":1,"id":1`), want: jtOne(jtRequest(jtID(1), "a", ""))},

	// Params.
	{name: "params object empty", give: jtObj(`"method":"m","params":{}`), want: jtOne(jtNotify("m", "{}"))},
	{name: "params array empty", give: jtObj(`"method":"m","params":[]`), want: jtOne(jtNotify("m", "[]"))},
	{name: "params spaced", give: jtObj(`"method":"m","params" : [ 1 , 2 ] ,"id":1`), want: jtOne(jtRequest(jtID(1), "m", "[ 1 , 2 ]"))},
	{name: "params string", give: jtObj(`"method":"m","params":"bar","id":1`), want: jtOne(jtInvalid(jtID(1), `"params" must be an array or an object`))},
	{name: "params null", give: jtObj(`"method":"m","params":null,"id":1`), want: jtOne(jtInvalid(jtID(1), `"params"`))},
	{name: "params number", give: jtObj(`"method":"m","params":1`), want: jtOne(jtInvalid(nullID, `"params"`))},

	// Responses.
	{name: "result null", give: jtObj(`"id":1,"result":null`), want: jtOne(jtResult(jtID(1), "null"))},
	{name: "result object", give: jtObj(`"id":1,"result":{"a": [true, false]}`), want: jtOne(jtResult(jtID(1), `{"a": [true, false]}`))},
	{name: "result without id", give: jtObj(`"result":1`), want: jtOne(jtInvalid(nullID, `"id"`))},
	{name: "result and error", give: jtObj(`"id":4,"result":1,"error":{"code":1,"message":"x"}`), want: jtOne(jtInvalid(jtID(4), `both`))},
	{name: "error with data", give: jtObj(`"id":1,"error":{"code":-32000,"message":"busy","data":{"retry":[1,2]}}`),
		want: jtOne(jtError(jtID(1), CodeUnavailable, "busy", `{"retry":[1,2]}`))},
	{name: "error with null data", give: jtObj(`"id":1,"error":{"data":null,"message":"m","code":7}`),
		want: jtOne(jtError(jtID(1), 7, "m", `null`))},
	{name: "error message escaped", give: jtObj(`"id":1,"error":{"code":1,"message":"a\"b\u00e9\n"}`),
		want: jtOne(jtError(jtID(1), 1, "a\"bé\n", ""))},
	{name: "error min int32", give: jtObj(`"id":1,"error":{"code":-2147483648,"message":""}`),
		want: jtOne(jtError(jtID(1), math.MinInt32, "", ""))},
	{name: "error max int32", give: jtObj(`"id":1,"error":{"code":2147483647,"message":""}`),
		want: jtOne(jtError(jtID(1), math.MaxInt32, "", ""))},
	{name: "error code too big", give: jtObj(`"id":1,"error":{"code":2147483648,"message":""}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error code too small", give: jtObj(`"id":1,"error":{"code":-2147483649,"message":""}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error code huge", give: jtObj(`"id":1,"error":{"code":100000000000000000000,"message":""}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error code fraction", give: jtObj(`"id":1,"error":{"code":1.5,"message":""}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error code exponent", give: jtObj(`"id":1,"error":{"code":1e2,"message":""}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error code string", give: jtObj(`"id":1,"error":{"code":"1","message":""}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error code missing", give: jtObj(`"id":1,"error":{"message":""}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error message missing", give: jtObj(`"id":1,"error":{"code":1}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error message number", give: jtObj(`"id":1,"error":{"code":1,"message":2}`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error not object", give: jtObj(`"id":1,"error":"oops"`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "error null", give: jtObj(`"id":1,"error":null`), want: jtOne(jtInvalid(jtID(1), `"error"`))},
	{name: "no method result or error", give: jtObj(`"id":1`), want: jtOne(jtInvalid(jtID(1), `"method"`))},

	// $timeout.
	{name: "timeout integer", give: jtObj(`"id":1,"method":"m","$timeout":1500`), want: jtOne(jtTimed(jtID(1), "m", "", 1500*time.Millisecond))},
	{name: "timeout fraction", give: jtObj(`"id":1,"method":"m","$timeout":1.5`), want: jtOne(jtTimed(jtID(1), "m", "", 1500*time.Microsecond))},
	{name: "timeout exponent", give: jtObj(`"id":1,"method":"m","$timeout":2.5e3`), want: jtOne(jtTimed(jtID(1), "m", "", 2500*time.Millisecond))},
	{name: "timeout negative exponent", give: jtObj(`"id":1,"method":"m","$timeout":15E-1`), want: jtOne(jtTimed(jtID(1), "m", "", 1500*time.Microsecond))},
	{name: "timeout nanosecond", give: jtObj(`"id":1,"method":"m","$timeout":0.000001`), want: jtOne(jtTimed(jtID(1), "m", "", 1))},
	{name: "timeout below nanosecond", give: jtObj(`"id":1,"method":"m","$timeout":0.0000001`), want: jtOne(jtTimed(jtID(1), "m", "", 1))},
	{name: "timeout far below nanosecond", give: jtObj(`"id":1,"method":"m","$timeout":1e-400`), want: jtOne(jtTimed(jtID(1), "m", "", 1))},
	{name: "timeout rounds up", give: jtObj(`"id":1,"method":"m","$timeout":0.0000011`), want: jtOne(jtTimed(jtID(1), "m", "", 2))},
	{name: "timeout zero", give: jtObj(`"id":1,"method":"m","$timeout":0`), want: jtOne(jtRequest(jtID(1), "m", ""))},
	{name: "timeout negative zero", give: jtObj(`"id":1,"method":"m","$timeout":-0.0e5`), want: jtOne(jtRequest(jtID(1), "m", ""))},
	{name: "timeout huge", give: jtObj(`"id":1,"method":"m","$timeout":1e30`), want: jtOne(jtTimed(jtID(1), "m", "", math.MaxInt64))},
	{name: "timeout just too big", give: jtObj(`"id":1,"method":"m","$timeout":9223372036854.775808`), want: jtOne(jtTimed(jtID(1), "m", "", math.MaxInt64))},
	{name: "timeout max", give: jtObj(`"id":1,"method":"m","$timeout":9223372036854.775807`), want: jtOne(jtTimed(jtID(1), "m", "", math.MaxInt64))},
	{name: "timeout many digits", give: jtObj(`"id":1,"method":"m","$timeout":1.00000000000000000000000000001`),
		want: jtOne(jtTimed(jtID(1), "m", "", time.Millisecond+1))},
	{name: "timeout leading zeros", give: jtObj(`"id":1,"method":"m","$timeout":000.5`), want: jtParseError()},
	{name: "timeout negative", give: jtObj(`"id":1,"method":"m","$timeout":-1`), want: jtOne(jtInvalid(jtID(1), `"$timeout" must be a non-negative number`))},
	{name: "timeout tiny negative", give: jtObj(`"id":1,"method":"m","$timeout":-1e-400`), want: jtOne(jtInvalid(jtID(1), `"$timeout"`))},
	{name: "timeout string", give: jtObj(`"id":1,"method":"m","$timeout":"5"`), want: jtOne(jtInvalid(jtID(1), `"$timeout"`))},
	{name: "timeout null", give: jtObj(`"id":1,"method":"m","$timeout":null`), want: jtOne(jtInvalid(jtID(1), `"$timeout"`))},
	{name: "timeout on notification ignored", give: jtObj(`"method":"m","$timeout":-1`), want: jtOne(jtNotify("m", ""))},
	{name: "timeout on response ignored", give: jtObj(`"id":1,"result":2,"$timeout":"x"`), want: jtOne(jtResult(jtID(1), "2"))},

	// $meta.
	{name: "meta request", give: jtObj(`"id":1,"method":"m","$meta":{"k":"v","tenant":"acme"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "k", "v", "tenant", "acme"))},
	{name: "meta notification", give: jtObj(`"method":"m","params":[1],"$meta":{"k":"v"}`),
		want: jtOne(jtMeta(jtNotify("m", "[1]"), "k", "v"))},
	{name: "meta before method", give: `{"$meta":{"k":"v"},"jsonrpc":"2.0","id":"x","method":"m"}`,
		want: jtOne(jtMeta(jtRequest(jtRaw(`"x"`), "m", ""), "k", "v"))},
	{name: "meta with timeout", give: jtObj(`"id":1,"method":"m","$timeout":5,"$meta":{"k":"v"}`),
		want: jtOne(jtMeta(jtTimed(jtID(1), "m", "", 5*time.Millisecond), "k", "v"))},
	{name: "meta empty", give: jtObj(`"id":1,"method":"m","$meta":{}`), want: jtOne(jtRequest(jtID(1), "m", ""))},
	{name: "meta empty spaced", give: jtObj(`"id":1,"method":"m","$meta": { } `), want: jtOne(jtRequest(jtID(1), "m", ""))},
	{name: "meta whitespace", give: jtObj(`"id":1,"method":"m","$meta": { "a" : "1" ,` + "\n\t" + `"b":"2" } `),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "a", "1", "b", "2"))},
	{name: "meta empty value", give: jtObj(`"id":1,"method":"m","$meta":{"k":""}`), want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "k", ""))},
	{name: "meta escapes", give: jtObj(`"id":1,"method":"m","$meta":{"a\"b\\c":"\n\t\u00e9\/","\ud83d\ude00":"\u0000"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "a\"b\\c", "\n\té/", "😀", "\x00"))},
	{name: "meta lone surrogate", give: jtObj(`"id":1,"method":"m","$meta":{"k\ud800":"\udc00x"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "k\uFFFD", "\uFFFDx"))},
	{name: "meta raw UTF-8", give: jtObj(`"id":1,"method":"m","$meta":{"ключ":"значение"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "ключ", "значение"))},
	{name: "meta duplicate key", give: jtObj(`"id":1,"method":"m","$meta":{"k":"1","j":"0","k":"2"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "k", "2", "j", "0"))},
	{name: "meta duplicate key by escape", give: jtObj(`"id":1,"method":"m","$meta":{"k":"1","\u006b":"2"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "k", "2"))},
	{name: "meta member twice", give: jtObj(`"id":1,"method":"m","$meta":{"a":"1"},"$meta":{"b":"2"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "b", "2"))},
	{name: "meta member escaped", give: jtObj(`"id":1,"method":"m","\u0024meta":{"a":"1"}`),
		want: jtOne(jtMeta(jtRequest(jtID(1), "m", ""), "a", "1"))},
	{name: "meta other case is unknown", give: jtObj(`"id":1,"method":"m","$Meta":5`), want: jtOne(jtRequest(jtID(1), "m", ""))},
	{name: "meta string", give: jtObj(`"id":1,"method":"m","$meta":"k=v"`), want: jtOne(jtInvalid(jtID(1), `"$meta" must be an object of strings`))},
	{name: "meta null", give: jtObj(`"id":1,"method":"m","$meta":null`), want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta array", give: jtObj(`"id":1,"method":"m","$meta":[["k","v"]]`), want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta number", give: jtObj(`"id":1,"method":"m","$meta":1`), want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta value number", give: jtObj(`"id":1,"method":"m","$meta":{"a":"1","n":2}`), want: jtOne(jtInvalid(jtID(1), `"$meta" must be an object of strings`))},
	{name: "meta value null", give: jtObj(`"id":1,"method":"m","$meta":{"n":null}`), want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta value object", give: jtObj(`"id":1,"method":"m","$meta":{"n":{"a":"b"}}`), want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta value array", give: jtObj(`"id":1,"method":"m","$meta":{"n":["a"]}`), want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta value bool", give: jtObj(`"id":1,"method":"m","$meta":{"n":true}`), want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta empty key", give: jtObj(`"id":1,"method":"m","$meta":{"":"v"}`), want: jtOne(jtInvalid(jtID(1), "metadata key is empty"))},
	{name: "meta on notification invalid", give: jtObj(`"method":"m","$meta":[]`), want: jtOne(jtInvalid(nullID, `"$meta"`))},
	{name: "meta bad, string id", give: jtObj(`"id":"s","method":"m","$meta":{"a":1}`), want: jtOne(jtInvalid(jtRaw(`"s"`), `"$meta"`))},
	{name: "meta bad syntax", give: jtObj(`"id":1,"method":"m","$meta":{"a":"1",}`), want: jtParseError()},
	{name: "meta bad syntax value", give: jtObj(`"id":1,"method":"m","$meta":{"a":tru}`), want: jtParseError()},
	{name: "meta on response ignored", give: jtObj(`"id":1,"result":2,"$meta":5`), want: jtOne(jtResult(jtID(1), "2"))},
	{name: "meta on error ignored", give: jtObj(`"id":1,"error":{"code":1,"message":"x"},"$meta":{"k":"v"}`), want: jtOne(jtError(jtID(1), 1, "x", ""))},
	{name: "meta on cancel ignored", give: jtObj(`"method":"$/cancelRequest","params":{"id":5},"$meta":{"k":"v"}`), want: jtOne(jtCancel(jtID(5)))},
	{name: "meta on cancel checked", give: jtObj(`"method":"$/cancelRequest","params":{"id":5},"$meta":{"k":5}`), want: jtOne(jtInvalid(nullID, `"$meta"`))},
	{name: "meta on shutdown ignored", give: jtObj(`"method":"$/shutdown","$meta":{"k":"v"}`), want: jtOne(jtShutdown(0, ""))},
	{name: "meta in batch", give: `[` + jtObj(`"id":1,"method":"m","$meta":{"k":"v"}`) + `,` + jtObj(`"id":2,"method":"m","$meta":{"k":1}`) + `,` + jtObj(`"id":3,"method":"m"`) + `]`,
		want: jtBatch(jtMeta(jtRequest(jtID(1), "m", ""), "k", "v"), jtInvalid(jtID(2), `"$meta"`), jtRequest(jtID(3), "m", ""))},
	{name: "meta deep value refused", give: jtObj(`"id":1,"method":"m","$meta":{"k":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`),
		want: jtOne(jtInvalid(jtID(1), `"$meta"`))},
	{name: "meta too deep", give: jtObj(`"id":1,"method":"m","$meta":{"k":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`),
		want: jtParseError()},

	// $/cancelRequest.
	{name: "cancel", give: jtObj(`"method":"$/cancelRequest","params":{"id":5}`), want: jtOne(jtCancel(jtID(5)))},
	{name: "cancel string id", give: jtObj(`"method":"$/cancelRequest","params":{"x":[1],"id":"abc"}`), want: jtOne(jtCancel(jtRaw(`"abc"`)))},
	{name: "cancel fraction id", give: jtObj(`"method":"$/cancelRequest","params":{"id":-1.5}`), want: jtOne(jtCancel(jtRaw(`-1.5`)))},
	{name: "cancel null id", give: jtObj(`"method":"$/cancelRequest","params":{"id":null}`), want: jtOne(jtCancel(nullID))},
	{name: "cancel escaped method", give: jtObj(`"method":"$\/cancelRequest","params":{"id":1}`), want: jtOne(jtCancel(jtID(1)))},
	{name: "cancel no params", give: jtObj(`"method":"$/cancelRequest"`), want: jtOne(jtInvalid(nullID, "cancelRequest"))},
	{name: "cancel no id", give: jtObj(`"method":"$/cancelRequest","params":{}`), want: jtOne(jtInvalid(nullID, "cancelRequest"))},
	{name: "cancel array params", give: jtObj(`"method":"$/cancelRequest","params":[5]`), want: jtOne(jtInvalid(nullID, "cancelRequest"))},
	{name: "cancel object id", give: jtObj(`"method":"$/cancelRequest","params":{"id":{"n":1}}`), want: jtOne(jtInvalid(nullID, `"id"`))},
	{name: "cancel as request", give: jtObj(`"id":9,"method":"$/cancelRequest","params":{"id":5}`),
		want: jtOne(jtRequest(jtID(9), "$/cancelRequest", `{"id":5}`))},
	{name: "cancel other case", give: jtObj(`"method":"$/CancelRequest","params":{"id":5}`), want: jtOne(jtNotify("$/CancelRequest", `{"id":5}`))},

	// $/shutdown.
	{name: "shutdown", give: jtObj(`"method":"$/shutdown","params":{"retryAfterMs":2500,"reason":"maintenance"}`),
		want: jtOne(jtShutdown(2500*time.Millisecond, "maintenance"))},
	{name: "shutdown no params", give: jtObj(`"method":"$/shutdown"`), want: jtOne(jtShutdown(0, ""))},
	{name: "shutdown empty params", give: jtObj(`"method":"$/shutdown","params":{}`), want: jtOne(jtShutdown(0, ""))},
	{name: "shutdown fraction", give: jtObj(`"method":"$/shutdown","params":{"retryAfterMs":0.5}`), want: jtOne(jtShutdown(500*time.Microsecond, ""))},
	{name: "shutdown escaped reason", give: jtObj(`"method":"$/shutdown","params":{"reason":"bye\n\u00e9"}`), want: jtOne(jtShutdown(0, "bye\né"))},
	{name: "shutdown negative", give: jtObj(`"method":"$/shutdown","params":{"retryAfterMs":-5}`), want: jtOne(jtInvalid(nullID, `"retryAfterMs"`))},
	{name: "shutdown retry string", give: jtObj(`"method":"$/shutdown","params":{"retryAfterMs":"5"}`), want: jtOne(jtInvalid(nullID, `"retryAfterMs"`))},
	{name: "shutdown reason number", give: jtObj(`"method":"$/shutdown","params":{"reason":5}`), want: jtOne(jtInvalid(nullID, `"reason"`))},
	{name: "shutdown array params", give: jtObj(`"method":"$/shutdown","params":[1000]`), want: jtOne(jtInvalid(nullID, "shutdown"))},
	{name: "shutdown as request", give: jtObj(`"id":1,"method":"$/shutdown"`), want: jtOne(jtRequest(jtID(1), "$/shutdown", ""))},

	// Messages that are not objects or arrays, and syntax errors.
	{name: "top string", give: `"hello"`, want: jtFatalMsg(CodeInvalidRequest, "neither an object nor an array")},
	{name: "top number", give: ` 42 `, want: jtFatal(CodeInvalidRequest)},
	{name: "top null", give: `null`, want: jtFatal(CodeInvalidRequest)},
	{name: "top true", give: `true`, want: jtFatal(CodeInvalidRequest)},
	{name: "top bad literal", give: `nul`, want: jtParseError()},
	{name: "top bad literal 2", give: `nulL`, want: jtParseError()},
	{name: "top bad number", give: `-`, want: jtParseError()},
	{name: "empty", give: ``, want: jtFatalMsg(CodeParseError, "unexpected end of input")},
	{name: "whitespace only", give: " \t\r\n", want: jtParseError()},
	{name: "form feed is not whitespace", give: "\f{}", want: jtParseError()},
	{name: "nbsp is not whitespace", give: "\u00a0{}", want: jtParseError()},
	{name: "byte order mark", give: "\ufeff{}", want: jtParseError()},
	{name: "unclosed object", give: `{`, want: jtParseError()},
	{name: "unclosed object after value", give: `{"a":1`, want: jtParseError()},
	{name: "unclosed string", give: `{"a`, want: jtParseError()},
	{name: "unclosed escape", give: `{"a\`, want: jtParseError()},
	{name: "trailing garbage", give: jtObj(`"method":"m"`) + ` x`, want: jtFatalMsg(CodeParseError, "after top-level value")},
	{name: "two objects", give: `{}{}`, want: jtParseError()},
	{name: "batch extra bracket", give: `[{}]]`, want: jtParseError()},
	{name: "trailing comma object", give: jtObj(`"method":"m",`), want: jtParseError()},
	{name: "trailing comma array", give: jtObj(`"method":"m","params":[1,]`), want: jtParseError()},
	{name: "trailing comma batch", give: `[{},]`, want: jtParseError()},
	{name: "leading comma batch", give: `[,{}]`, want: jtParseError()},
	{name: "unclosed batch", give: `[{}`, want: jtParseError()},
	{name: "unclosed batch comma", give: `[{},`, want: jtParseError()},
	{name: "missing colon", give: `{"jsonrpc" "2.0"}`, want: jtParseError()},
	{name: "missing comma", give: `{"jsonrpc":"2.0" "method":"m"}`, want: jtParseError()},
	{name: "single quotes", give: `{'jsonrpc':'2.0'}`, want: jtParseError()},
	{name: "unquoted key", give: `{jsonrpc:"2.0"}`, want: jtParseError()},
	{name: "non-string key", give: `{1:"2.0"}`, want: jtParseError()},
	{name: "control char in string", give: jtObj("\"method\":\"a\x01b\""), want: jtParseError()},
	{name: "newline in string", give: jtObj("\"method\":\"a\nb\""), want: jtParseError()},
	{name: "tab in string", give: jtObj("\"method\":\"a\tb\""), want: jtParseError()},
	{name: "invalid escape", give: jtObj(`"method":"a\xb"`), want: jtParseError()},
	{name: "short unicode escape", give: jtObj(`"method":"\u12"`), want: jtParseError()},
	{name: "bad unicode escape", give: jtObj(`"method":"\u12G4"`), want: jtParseError()},
	{name: "leading zero", give: jtObj(`"id":01,"method":"m"`), want: jtParseError()},
	{name: "leading plus", give: jtObj(`"id":+1,"method":"m"`), want: jtParseError()},
	{name: "bare decimal point", give: jtObj(`"id":1.,"method":"m"`), want: jtParseError()},
	{name: "no integer part", give: jtObj(`"id":.5,"method":"m"`), want: jtParseError()},
	{name: "empty exponent", give: jtObj(`"id":1e,"method":"m"`), want: jtParseError()},
	{name: "signed empty exponent", give: jtObj(`"id":1e+,"method":"m"`), want: jtParseError()},
	{name: "hex number", give: jtObj(`"id":0x10,"method":"m"`), want: jtParseError()},
	{name: "minus alone", give: jtObj(`"id":-,"method":"m"`), want: jtParseError()},
	{name: "NaN", give: jtObj(`"id":NaN,"method":"m"`), want: jtParseError()},
	{name: "Infinity", give: jtObj(`"id":-Infinity,"method":"m"`), want: jtParseError()},
	{name: "bad true", give: jtObj(`"id":1,"result":tru}`), want: jtParseError()},
	{name: "uppercase null", give: jtObj(`"id":1,"result":NULL`), want: jtParseError()},
	{name: "comment", give: jtObj(`"method":"m" /* hi */`), want: jtParseError()},

	// Nesting: the top-level value is level 1; 64 levels are allowed.
	{name: "depth 64", give: jtNestedParams(64), want: jtOne(jtNotify("m", strings.Repeat("[", 63)+strings.Repeat("]", 63)))},
	{name: "depth 65", give: jtNestedParams(65), want: jtFatalMsg(CodeParseError, "nesting too deep")},
	{name: "batch depth 64", give: strings.Repeat("[", 64) + strings.Repeat("]", 64), want: jtBatch(jtInvalid(nullID, "not an object"))},
	{name: "batch depth 65", give: strings.Repeat("[", 65) + strings.Repeat("]", 65), want: jtParseError()},
	{name: "object depth 65", give: jtObj(`"method":"m","x":` + strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 64)), want: jtParseError()},
	{name: "unclosed deep", give: strings.Repeat("[", 1000), want: jtParseError()},

	// Batches.
	{name: "batch of one", give: `[` + jtObj(`"id":1,"method":"m"`) + `]`, want: jtBatch(jtRequest(jtID(1), "m", ""))},
	{name: "batch mixed kinds", give: `[` + jtObj(`"id":1,"result":true`) + `, null, "x", [], ` +
		jtObj(`"method":"$/cancelRequest","params":{"id":1}`) + `]`,
		want: jtBatch(jtResult(jtID(1), "true"), jtInvalid(nullID, "not an object"), jtInvalid(nullID, "not an object"),
			jtInvalid(nullID, "not an object"), jtCancel(jtID(1)))},
	{name: "batch at limit", give: `[{},{},{}]`, maxBatch: 3,
		want: jtBatch(jtInvalid(nullID, `"jsonrpc"`), jtInvalid(nullID, `"jsonrpc"`), jtInvalid(nullID, `"jsonrpc"`))},
	{name: "batch over limit", give: `[{},{},{}]`, maxBatch: 2, want: jtFatalMsg(CodeInvalidRequest, "more than 2")},
	{name: "batch over limit then syntax error", give: `[{},{},{},}`, maxBatch: 2, want: jtParseError()},
	{name: "batch in batch", give: `[[{"jsonrpc":"2.0","method":"m"}]]`, want: jtBatch(jtInvalid(nullID, "not an object"))},
}

func TestDecodeJSON(t *testing.T) {
	tests := jsonDecodeTests
	var shared interner
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A used dst: decodeJSON must not let old contents through.
			dst := []message{jtError(jtID(99), 1, "stale", "[1]"), jtTimed(jtID(98), "stale", "{}", time.Hour)}
			for _, in := range []*interner{nil, &shared} {
				msgs, batch, fatal := decodeJSON([]byte(tt.give), dst, in, tt.maxBatch, testMeta)
				if tt.want.fatal != 0 {
					if fatal == nil {
						t.Fatalf("decodeJSON(%q) = %d messages, want fatal code %d", tt.give, len(msgs), tt.want.fatal)
					}
					if fatal.Code != tt.want.fatal || !strings.Contains(fatal.Message, tt.want.fatalMsg) {
						t.Fatalf("decodeJSON(%q) fatal = %v, want code %d with %q", tt.give, fatal, tt.want.fatal, tt.want.fatalMsg)
					}
					if len(msgs) != 0 || batch {
						t.Errorf("decodeJSON(%q) with fatal error: %d messages, batch %v, want none", tt.give, len(msgs), batch)
					}
					continue
				}
				if fatal != nil {
					t.Fatalf("decodeJSON(%q) fatal = %v", tt.give, fatal)
				}
				if batch != tt.want.batch {
					t.Errorf("batch = %v, want %v", batch, tt.want.batch)
				}
				if len(msgs) != len(tt.want.msgs) {
					t.Fatalf("decodeJSON(%q) = %d messages, want %d", tt.give, len(msgs), len(tt.want.msgs))
				}
				for i := range msgs {
					if d := jtDiff(msgs[i], tt.want.msgs[i]); d != "" {
						t.Errorf("message %d: %s", i, d)
					}
				}
			}
		})
	}
}

// Byte slices in decoded messages alias the input and cannot be appended to
// in place.
func TestDecodeJSONAliases(t *testing.T) {
	data := []byte(jtObj(`"id":1,"method":"m","params":[1,2]`) + "   ")
	msgs, _, fatal := decodeJSON(data, nil, nil, 0, testMeta)
	if fatal != nil {
		t.Fatal(fatal)
	}
	p := msgs[0].params
	if &p[0] != &data[bytes.Index(data, []byte("[1,2]"))] {
		t.Error("params is a copy, want a subslice of the input")
	}
	if cap(p) != len(p) {
		t.Errorf("cap(params) = %d, want %d", cap(p), len(p))
	}
}

func TestDecodeJSONInterns(t *testing.T) {
	var in interner
	a, _, _ := decodeJSON([]byte(jtObj(`"id":1,"method":"echo"`)), nil, &in, 0, testMeta)
	b, _, _ := decodeJSON([]byte(jtObj(`"id":2,"method":"ech\u006f"`)), nil, &in, 0, testMeta)
	if a[0].method != "echo" || b[0].method != "echo" {
		t.Fatalf("methods %q, %q", a[0].method, b[0].method)
	}
	if len(in.m) != 1 {
		t.Errorf("interner holds %d names, want 1", len(in.m))
	}
}

// Messages without metadata decode without allocating, as before "$meta"
// existed; so do those whose "$meta" is empty, or on a reply.
func TestDecodeJSONAllocs(t *testing.T) {
	for _, give := range []string{
		jtBenchRequest,
		jtObj(`"method":"echo","params":` + jtBenchParams),
		jtObj(`"id":17,"method":"echo","$meta":{}`),
		jtObj(`"id":17,"result":` + jtBenchParams + `,"$meta":{"k":"v"}`),
	} {
		data := []byte(give)
		var in interner
		dst := make([]message, 0, 1)
		allocs := testing.AllocsPerRun(100, func() {
			msgs, _, fatal := decodeJSON(data, dst, &in, 100, testMeta)
			if fatal != nil || len(msgs) != 1 || msgs[0].kind == kindInvalid {
				t.Fatal("decode failed")
			}
		})
		if allocs != 0 {
			t.Errorf("decodeJSON(%s): %v allocations per run, want 0", give, allocs)
		}
	}
	m := message{kind: kindRequest, id: jtID(17), method: "echo", params: []byte(jtBenchParams), timeout: time.Second}
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() { buf = appendJSON(buf[:0], &m) })
	if allocs != 0 {
		t.Errorf("appendJSON: %v allocations per run, want 0", allocs)
	}
}

func TestDecodeJSONMetadataBounds(t *testing.T) {
	lim := metaLimits{entries: 2, bytes: 10}
	tests := []struct {
		name    string
		meta    string
		want    Metadata
		refused string
	}{
		{name: "at both bounds", meta: `{"ab":"cde","fg":"hij"}`, want: Metadata{"ab": "cde", "fg": "hij"}},
		{name: "escapes count decoded", meta: `{"\u0061b":"\u00e9\u00e9\u00e9","f":"\n"}`, want: Metadata{"ab": "ééé", "f": "\n"}},
		{name: "duplicates count as one key", meta: `{"a":"1","a":"2","b":"3"}`, want: Metadata{"a": "2", "b": "3"}},
		{name: "one key too many", meta: `{"a":"","b":"","c":""}`, refused: "more than 2 entries"},
		{name: "one byte too many", meta: `{"ab":"cde","fg":"hijk"}`, refused: "more than 10 bytes"},
		{name: "escapes over", meta: `{"k":"\u00e9\u00e9\u00e9\u00e9\u00e9"}`, refused: "more than 10 bytes"},
		{name: "a duplicate counts its bytes again", meta: `{"ab":"cde","ab":"cdef"}`, refused: "more than 10 bytes"},
		{name: "over before a bad value", meta: `{"a":"","b":"","c":"","d":1}`, refused: "more than 2 entries"},
		{name: "bad value before over", meta: `{"a":1,"b":"","c":""}`, refused: "object of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, id := range []string{`"id":7,`, ""} {
				data := []byte(jtObj(id + `"method":"m","$meta":` + tt.meta))
				msgs, _, fatal := decodeJSON(data, nil, nil, 0, lim)
				if fatal != nil || len(msgs) != 1 {
					t.Fatalf("%s: fatal %v, %d messages", data, fatal, len(msgs))
				}
				var want message
				switch {
				case tt.refused != "" && id != "":
					want = jtInvalid(jtID(7), tt.refused)
				case tt.refused != "":
					want = jtInvalid(nullID, tt.refused) // answered with a null id
				case id != "":
					want = jtRequest(jtID(7), "m", "")
				default:
					want = jtNotify("m", "")
				}
				if tt.refused == "" {
					want.meta = tt.want
				}
				if d := jtDiff(msgs[0], want); d != "" {
					t.Errorf("%s: %s", data, d)
				}
			}
		})
	}

	// The defaults.
	var b strings.Builder
	for i := range DefaultMaxMetadata {
		fmt.Fprintf(&b, `"%02d":"",`, i)
	}
	b.WriteString(`"00":"` + strings.Repeat("v", DefaultMaxMetadataBytes-2*DefaultMaxMetadata-2) + `"`)
	at := jtObj(`"id":1,"method":"m","$meta":{` + b.String() + `}`)
	// The key "00" counts twice: 2 + 2 bytes.
	if msgs, _, _ := decodeJSON([]byte(at), nil, nil, 0, testMeta); msgs[0].kind != kindRequest || len(msgs[0].meta) != DefaultMaxMetadata {
		t.Fatalf("metadata at the default bounds: %+v", msgs[0].err)
	}
	over := strings.Replace(at, `"00":"v`, `"00":"vv`, 1)
	if msgs, _, _ := decodeJSON([]byte(over), nil, nil, 0, testMeta); msgs[0].kind != kindInvalid || msgs[0].id != jtID(1) {
		t.Fatalf("one byte over the default bound: kind %d", msgs[0].kind)
	}
	over = strings.Replace(at, `"00":"v`, `"64":"","00":"`, 1)
	if msgs, _, _ := decodeJSON([]byte(over), nil, nil, 0, testMeta); msgs[0].kind != kindInvalid || msgs[0].id != jtID(1) {
		t.Fatalf("one key over the default bound: kind %d", msgs[0].kind)
	}
}

// Metadata is copied out of the message: the buffer may be reused.
func TestDecodeJSONMetadataCopied(t *testing.T) {
	data := []byte(jtObj(`"method":"m","$meta":{"key":"value","esc\u0061ped":"\u0076alue"}`))
	msgs, _, _ := decodeJSON(data, nil, nil, 0, testMeta)
	for i := range data {
		data[i] = 'x'
	}
	if want := (Metadata{"key": "value", "escaped": "value"}); !maps.Equal(msgs[0].meta, want) {
		t.Fatalf("metadata %q after the message was overwritten, want %q", msgs[0].meta, want)
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		give message
		want string
	}{
		{name: "request", give: jtRequest(jtID(1), "subtract", `[42, 23]`),
			want: `{"jsonrpc":"2.0","id":1,"method":"subtract","params":[42, 23]}`},
		{name: "request no params", give: jtRequest(jtID(0), "ping", ""),
			want: `{"jsonrpc":"2.0","id":0,"method":"ping"}`},
		{name: "request max id", give: jtRequest(jtID(math.MaxUint64), "m", "{}"),
			want: `{"jsonrpc":"2.0","id":18446744073709551615,"method":"m","params":{}}`},
		{name: "request raw id", give: jtRequest(jtRaw(`"abc"`), "m", "[]"),
			want: `{"jsonrpc":"2.0","id":"abc","method":"m","params":[]}`},
		{name: "request null id", give: jtRequest(nullID, "m", ""),
			want: `{"jsonrpc":"2.0","id":null,"method":"m"}`},
		{name: "request timeout", give: jtTimed(jtID(2), "m", "[]", 1500*time.Millisecond),
			want: `{"jsonrpc":"2.0","id":2,"method":"m","params":[],"$timeout":1500}`},
		{name: "request timeout rounds up", give: jtTimed(jtID(2), "m", "", time.Microsecond),
			want: `{"jsonrpc":"2.0","id":2,"method":"m","$timeout":1}`},
		{name: "request timeout rounds up 2", give: jtTimed(jtID(2), "m", "", 1500*time.Millisecond+1),
			want: `{"jsonrpc":"2.0","id":2,"method":"m","$timeout":1501}`},
		{name: "request timeout max", give: jtTimed(jtID(2), "m", "", math.MaxInt64),
			want: `{"jsonrpc":"2.0","id":2,"method":"m","$timeout":9223372036855}`},
		{name: "request negative timeout omitted", give: jtTimed(jtID(2), "m", "", -time.Second),
			want: `{"jsonrpc":"2.0","id":2,"method":"m"}`},
		{name: "notification", give: jtNotify("update", `[1,2,3,4,5]`),
			want: `{"jsonrpc":"2.0","method":"update","params":[1,2,3,4,5]}`},
		{name: "notification ignores id and timeout", give: message{kind: kindNotification, id: jtID(3), method: "n", timeout: time.Second},
			want: `{"jsonrpc":"2.0","method":"n"}`},
		{name: "method escaped", give: jtNotify("a\"b\\c\n\r\t\b\f\x00\x1f\x7fé😀/<>&\u2028", ""),
			want: `{"jsonrpc":"2.0","method":"a\"b\\c\n\r\t\b\f\u0000\u001f` + "\x7fé😀/<>&\u2028" + `"}`},
		{name: "method invalid utf8", give: jtNotify("a\xffb\xe2\x82", ""),
			want: `{"jsonrpc":"2.0","method":"a\ufffdb\ufffd\ufffd"}`},
		{name: "result", give: jtResult(jtID(1), `19`), want: `{"jsonrpc":"2.0","id":1,"result":19}`},
		{name: "result nil", give: jtResult(jtRaw(`"x"`), ""), want: `{"jsonrpc":"2.0","id":"x","result":null}`},
		{name: "error", give: jtError(jtRaw(`"1"`), CodeMethodNotFound, "Method not found", ""),
			want: `{"jsonrpc":"2.0","id":"1","error":{"code":-32601,"message":"Method not found"}}`},
		{name: "error data", give: jtError(jtID(7), 42, `say "hi"`, `{"a":1}`),
			want: `{"jsonrpc":"2.0","id":7,"error":{"code":42,"message":"say \"hi\"","data":{"a":1}}}`},
		{name: "error nil", give: message{kind: kindError, id: nullID},
			want: `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":""}}`},
		{name: "invalid is an error reply", give: jtInvalid(jtID(3), `"jsonrpc" must be "2.0"`),
			want: `{"jsonrpc":"2.0","id":3,"error":{"code":-32600,"message":"\"jsonrpc\" must be \"2.0\""}}`},
		{name: "cancel", give: jtCancel(jtID(5)),
			want: `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":5}}`},
		{name: "cancel raw id", give: jtCancel(jtRaw(`-1.5`)),
			want: `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":-1.5}}`},
		{name: "shutdown", give: jtShutdown(2500*time.Millisecond+1, "going \"away\""),
			want: `{"jsonrpc":"2.0","method":"$/shutdown","params":{"retryAfterMs":2501,"reason":"going \"away\""}}`},
		{name: "shutdown zero", give: jtShutdown(0, ""),
			want: `{"jsonrpc":"2.0","method":"$/shutdown","params":{"retryAfterMs":0,"reason":""}}`},
		{name: "request meta", give: jtMeta(jtTimed(jtID(1), "m", "[]", time.Second), "trace-id", "4bf92f35", "tenant", "acme", "a", ""),
			want: `{"jsonrpc":"2.0","id":1,"method":"m","params":[],"$timeout":1000,"$meta":{"a":"","tenant":"acme","trace-id":"4bf92f35"}}`},
		{name: "notification meta", give: jtMeta(jtNotify("n", ""), "k", "v"),
			want: `{"jsonrpc":"2.0","method":"n","$meta":{"k":"v"}}`},
		{name: "meta escaped", give: jtMeta(jtNotify("n", ""), "a\"b", "\\\n\x01é😀", "\u2028", "</>"),
			want: `{"jsonrpc":"2.0","method":"n","$meta":{"a\"b":"\\\n\u0001é😀","` + "\u2028" + `":"</>"}}`},
		{name: "meta invalid utf8", give: jtMeta(jtNotify("n", ""), "k\xff", "\xfe\xfdv"),
			want: `{"jsonrpc":"2.0","method":"n","$meta":{"k\ufffd":"\ufffd\ufffdv"}}`},
		{name: "meta empty map omitted", give: jtMeta(jtRequest(jtID(1), "m", "")),
			want: `{"jsonrpc":"2.0","id":1,"method":"m"}`},
		{name: "meta only on calls", give: jtMeta(jtResult(jtID(1), "1"), "k", "v"),
			want: `{"jsonrpc":"2.0","id":1,"result":1}`},
		{name: "meta not on cancel", give: jtMeta(jtCancel(jtID(1)), "k", "v"),
			want: `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendJSON([]byte("prefix"), &tt.give)
			if string(got) != "prefix"+tt.want {
				t.Fatalf("appendJSON:\n got %s\nwant prefix%s", got, tt.want)
			}
			if !json.Valid(got[len("prefix"):]) {
				t.Errorf("output is not valid JSON")
			}
		})
	}
}

func TestAppendJSONUnknownKind(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("appendJSON did not panic on an unknown kind")
		}
	}()
	appendJSON(nil, &message{kind: 200})
}

// jsonAppendString must agree with encoding/json on what the string is.
func TestJSONAppendStringStd(t *testing.T) {
	strs := []string{"", "plain", "\x00\x01\x1f\x20\x7f", `"\/`, "é€😀", "\u2028\u2029", "\xff", "a\xc3", "\xed\xa0\x80", "\ufffd"}
	for c := range 256 {
		strs = append(strs, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z")
	}
	for _, s := range strs {
		enc := jsonAppendString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("jsonAppendString(%q) = %s: %v", s, enc, err)
		}
		want := string([]rune(s)) // each bad byte becomes U+FFFD
		if got != want {
			t.Errorf("jsonAppendString(%q) = %s, decodes to %q, want %q", s, enc, got, want)
		}
	}
}

// jtRoundTrip encodes m, decodes the result, and reports how it differs.
func jtRoundTrip(m message) (string, error) {
	enc := appendJSON(nil, &m)
	if !json.Valid(enc) {
		return "", fmt.Errorf("appendJSON wrote invalid JSON: %s", enc)
	}
	msgs, batch, fatal := decodeJSON(enc, nil, nil, 0, testMeta)
	if fatal != nil || batch || len(msgs) != 1 {
		return "", fmt.Errorf("decodeJSON(%s) = %d messages, batch %v, fatal %v", enc, len(msgs), batch, fatal)
	}
	got := msgs[0]
	// Durations travel in whole milliseconds, rounded up.
	if jsonCeilMillis(got.timeout) != jsonCeilMillis(m.timeout) || jsonCeilMillis(got.retryAfter) != jsonCeilMillis(m.retryAfter) {
		return "", fmt.Errorf("durations %v, %v came back as %v, %v (%s)", m.timeout, m.retryAfter, got.timeout, got.retryAfter, enc)
	}
	got.timeout, got.retryAfter = m.timeout, m.retryAfter
	if d := jtDiff(got, m); d != "" {
		return "", fmt.Errorf("%s: %s", enc, d)
	}
	return string(enc), nil
}

func TestJSONRoundTrip(t *testing.T) {
	for _, m := range []message{
		jtRequest(jtID(0), "m", ""),
		jtRequest(jtID(math.MaxUint64), "a/b.c", `{"k":[1,2,{"x":null}]}`),
		jtRequest(jtRaw(`"str id"`), "m", `[]`),
		jtRequest(jtRaw(`-1.5e3`), "m", `[]`),
		jtRequest(nullID, "m", `[]`),
		jtTimed(jtID(3), "slow", `[1]`, 1500*time.Millisecond),
		jtTimed(jtID(3), "slow", `[1]`, time.Nanosecond),
		jtTimed(jtID(3), "slow", `[1]`, math.MaxInt64),
		jtNotify("event", `{"a":"b"}`),
		jtNotify("ünïcödé \"quoted\" \\ \n\t\x01 😀", ""),
		jtResult(jtID(1), `null`),
		jtResult(jtID(1), `"text"`),
		jtResult(jtRaw(`"x"`), `[1,2,3]`),
		jtError(jtID(1), CodeMethodNotFound, "method not found", ""),
		jtError(nullID, CodeParseError, "parse error: \"bad\"", `{"offset":3}`),
		jtError(jtRaw(`1.5`), math.MinInt32, "", `null`),
		jtCancel(jtID(12)),
		jtCancel(jtRaw(`"abc"`)),
		jtCancel(nullID),
		jtShutdown(0, ""),
		jtShutdown(1500*time.Millisecond, "restart \"now\""),
		jtShutdown(time.Microsecond, "x"),
		jtMeta(jtRequest(jtID(4), "m", `[1]`), "k", "v"),
		jtMeta(jtTimed(jtRaw(`"id"`), "m", "", time.Second), "trace-id", "4bf92f35", "tenant", "acme", "empty", ""),
		jtMeta(jtNotify("n", `{}`), "a\"b\\c/", "\n\r\t\b\f\x00\x1f\x7f", "é😀\u2028", "</script>"),
		jtMeta(jtNotify("n", ""), strings.Repeat("k", 1000), strings.Repeat("v", 7000)),
	} {
		if _, err := jtRoundTrip(m); err != nil {
			t.Error(err)
		}
	}
}

const (
	jtBenchParams  = `["hello, world!",42,3.14159,true,null,{"key":"value","n":[1,2]}]`
	jtBenchRequest = `{"jsonrpc":"2.0","id":17,"method":"echo","params":` + jtBenchParams + `}`
)

func BenchmarkDecodeJSON(b *testing.B) {
	if len(jtBenchParams) != 64 {
		b.Fatalf("params are %d bytes, want 64", len(jtBenchParams))
	}
	data := []byte(jtBenchRequest)
	var in interner
	var dst []message
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		msgs, _, fatal := decodeJSON(data, dst, &in, 100, testMeta)
		if fatal != nil || len(msgs) != 1 || msgs[0].kind != kindRequest {
			b.Fatal("decode failed")
		}
		dst = msgs
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	m := message{kind: kindRequest, id: jtID(17), method: "echo", params: []byte(jtBenchParams)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(appendJSON(nil, &m))))
	for b.Loop() {
		buf = appendJSON(buf[:0], &m)
	}
}

// jtDepth is the deepest nesting of arrays and objects in valid JSON.
func jtDepth(data []byte) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

func FuzzDecodeJSON(f *testing.F) {
	for _, tt := range jsonDecodeTests {
		f.Add([]byte(tt.give))
	}
	f.Add([]byte(jtBenchRequest))
	f.Add([]byte(jtObj(`"id":1,"method":"m","$meta":{"a":"1","b":"\u00e9","a":"x","c":"ddd"}`)))
	f.Add([]byte(`[` + jtObj(`"method":"m","$meta":{"k":"v"}`) + `,` + jtObj(`"id":2,"method":"m","$meta":{"":"v"}`) + `]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxBatch = 16
		msgs, batch, fatal := decodeJSON(data, nil, nil, maxBatch, testMeta)

		// Cross-check the syntax against encoding/json, which has no depth
		// limit of 64. The transport lets through only valid UTF-8, which
		// neither checks.
		valid := json.Valid(data)
		switch {
		case !valid && (fatal == nil || fatal.Code != CodeParseError):
			t.Fatalf("json.Valid = false but decodeJSON: %d messages, fatal %v", len(msgs), fatal)
		case valid && fatal != nil && fatal.Code == CodeParseError && jtDepth(data) <= jsonMaxDepth:
			t.Fatalf("json.Valid = true, depth %d, but decodeJSON: %v", jtDepth(data), fatal)
		}
		if fatal != nil {
			if len(msgs) != 0 || batch {
				t.Fatalf("fatal %v with %d messages, batch %v", fatal, len(msgs), batch)
			}
			if fatal.Code != CodeParseError && fatal.Code != CodeInvalidRequest {
				t.Fatalf("fatal code %d", fatal.Code)
			}
			return
		}
		if len(msgs) == 0 || len(msgs) > maxBatch || (!batch && len(msgs) != 1) {
			t.Fatalf("%d messages, batch %v", len(msgs), batch)
		}

		// A reused dst and an interner change nothing.
		dst := []message{jtError(jtID(99), 1, "stale", "[1]"), jtTimed(jtID(98), "stale", "{}", time.Hour)}
		var in interner
		msgs2, batch2, fatal2 := decodeJSON(data, dst, &in, maxBatch, testMeta)
		if fatal2 != nil || batch2 != batch || len(msgs2) != len(msgs) {
			t.Fatalf("second decode: %d messages, batch %v, fatal %v", len(msgs2), batch2, fatal2)
		}
		for i := range msgs {
			if d := jtDiff(msgs2[i], msgs[i]); d != "" {
				t.Fatalf("second decode, message %d: %s", i, d)
			}
		}

		// Tighter metadata bounds refuse exactly the calls whose metadata
		// is over them, with the same id, and change nothing else.
		small := metaLimits{entries: 2, bytes: 16}
		msgs3, batch3, fatal3 := decodeJSON(data, nil, nil, maxBatch, small)
		if fatal3 != nil || batch3 != batch || len(msgs3) != len(msgs) {
			t.Fatalf("decode with small bounds: %d messages, batch %v, fatal %v", len(msgs3), batch3, fatal3)
		}
		for i := range msgs {
			m, m3 := msgs[i], msgs3[i]
			n := 0
			for k, v := range m.meta {
				n += len(k) + len(v)
			}
			switch over := len(m.meta) > small.entries || n > small.bytes; {
			case m.kind == kindInvalid:
				if m3.kind != kindInvalid || m3.id != m.id {
					t.Fatalf("message %d: invalid under the default bounds, %d (id %+v) under small ones", i, m3.kind, m3.id)
				}
			case (m.kind == kindRequest || m.kind == kindNotification) && over:
				if m3.kind != kindInvalid || m3.id != m.id || !strings.Contains(m3.err.Message, "metadata has more than") {
					t.Fatalf("message %d: metadata %q over small bounds, decoded as %d (%v)", i, m.meta, m3.kind, m3.err)
				}
			case len(m.meta) > 0 && m.kind != kindRequest && m.kind != kindNotification:
				t.Fatalf("message %d: kind %d has metadata", i, m.kind)
			default:
				// Duplicate keys count their bytes again, so a message
				// within the bounds may still be refused by them.
				if m3.kind == kindInvalid && strings.Contains(m3.err.Message, "bytes") {
					continue
				}
				if d := jtDiff(m3, m); d != "" {
					t.Fatalf("message %d under small bounds: %s", i, d)
				}
			}
		}

		if !batch && msgs[0].kind != kindInvalid && utf8.Valid(data) {
			jtCheckStd(t, data, &msgs[0])
		}

		for i, m := range msgs {
			if m.kind == kindInvalid {
				if m.err == nil || m.err.Code != CodeInvalidRequest {
					t.Fatalf("message %d: invalid with err %v", i, m.err)
				}
				// The error reply must be valid JSON.
				if enc := appendJSON(nil, &m); !json.Valid(enc) {
					t.Fatalf("message %d: error reply %s is not valid JSON", i, enc)
				}
				continue
			}
			if !utf8.Valid(data) {
				// Strings would come back with U+FFFD.
				continue
			}
			if _, err := jtRoundTrip(m); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	})
}

// jtCheckStd compares what decodeJSON made of a single valid object with
// what encoding/json makes of it.
func jtCheckStd(t *testing.T, data []byte, m *message) {
	var obj map[string]json.RawMessage // exact names; the last duplicate wins
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatalf("decodeJSON accepted an object that encoding/json rejects: %v", err)
	}
	str := func(raw json.RawMessage) string {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("unmarshal %s: %v", raw, err)
		}
		return s
	}
	if string(obj["jsonrpc"]) != `"2.0"` && str(obj["jsonrpc"]) != "2.0" {
		t.Fatalf(`"jsonrpc" is %s`, obj["jsonrpc"])
	}
	switch m.kind {
	case kindRequest, kindNotification:
		if got := str(obj["method"]); got != m.method {
			t.Fatalf("method %q, encoding/json says %q", m.method, got)
		}
		if p, ok := obj["params"]; ok != (m.params != nil) || !bytes.Equal(p, m.params) {
			t.Fatalf("params %q, encoding/json says %q", m.params, p)
		}
		if _, ok := obj["id"]; ok != (m.kind == kindRequest) {
			t.Fatalf("kind %d, id present: %v", m.kind, ok)
		}
		var md Metadata
		if raw, ok := obj["$meta"]; ok {
			if err := json.Unmarshal(raw, &md); err != nil {
				t.Fatalf("decodeJSON accepted \"$meta\" %s: %v", raw, err)
			}
		}
		if !maps.Equal(md, m.meta) {
			t.Fatalf("metadata %q, encoding/json says %q", m.meta, md)
		}
	case kindResult:
		if !bytes.Equal(obj["result"], m.result) {
			t.Fatalf("result %q, encoding/json says %q", m.result, obj["result"])
		}
	case kindError:
		var e struct {
			Code    int32           `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		// encoding/json matches names without regard to case; the codec
		// does not, so compare only when that cannot matter.
		var members map[string]json.RawMessage
		if err := json.Unmarshal(obj["error"], &members); err != nil {
			t.Fatalf(`"error" %s: %v`, obj["error"], err)
		}
		for name := range members {
			if name != "code" && name != "message" && name != "data" {
				return
			}
		}
		if err := json.Unmarshal(obj["error"], &e); err != nil {
			t.Fatalf(`"error" %s: %v`, obj["error"], err)
		}
		if e.Code != int32(m.err.Code) || e.Message != m.err.Message || !bytes.Equal(e.Data, m.err.Data) {
			t.Fatalf("error %+v, encoding/json says %+v", m.err, e)
		}
	}
}
