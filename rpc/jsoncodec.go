package rpc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the JSON-RPC 2.0 codec for WebSocket text messages. It is
// written by hand: decoding validates the JSON grammar in one pass, records
// where the members it cares about are, and slices raw values (params,
// result, error data) out of the input without copying. encoding/json is not
// used.

// jsonMaxDepth is how deeply arrays and objects may nest in one message,
// counting the top-level value as level 1. Deeper input is a parse error.
const jsonMaxDepth = 64

// Extension method names, and the member that carries a call's metadata.
const (
	jsonMetaMember     = "$meta"
	jsonStreamMember   = "$stream" // a request's stream credit
	jsonCancelMethod   = "$/cancelRequest"
	jsonShutdownMethod = "$/shutdown"
	jsonItemMethod     = "$/stream.item"   // one result of a stream: {"id", "item"}
	jsonCreditMethod   = "$/stream.credit" // more credit for a stream: {"id", "credit"}
)

// decodeJSON decodes one WebSocket text message holding JSON-RPC 2.0: a
// single object or a batch (array). dst is reused: results are appended to
// dst[:0]. in may be nil (then method names are allocated).
//
// fatal != nil means the whole message gets one error reply with id null:
// CodeParseError when data is not valid JSON (including trailing data and
// nesting deeper than 64 levels), CodeInvalidRequest for an empty batch, a
// top-level value that is neither an object nor an array, or a batch of more
// than maxBatch elements (maxBatch <= 0: no limit). msgs is empty and batch
// false when fatal != nil.
//
// Otherwise every element becomes one message; elements that are not valid
// requests, notifications or responses have kind kindInvalid, an err with
// CodeInvalidRequest, and the element's id when it could be read (else
// nullID). batch reports whether the top level was an array.
func decodeJSON(data []byte, dst []message, in *interner, maxBatch int, lim metaLimits) (msgs []message, batch bool, fatal *Error) {
	msgs = dst[:0]
	s := jsonScanner{data: data, meta: lim}
	s.ws()
	if s.pos >= len(data) {
		s.fail("unexpected end of input")
		return msgs, false, s.fatal()
	}
	switch data[s.pos] {
	case '{':
		var m message
		if !s.element(&m, in) || !s.end() {
			return msgs, false, s.fatal()
		}
		return append(msgs, m), false, nil
	case '[':
		s.pos++
		s.depth = 1
		s.ws()
		if s.pos < len(data) && data[s.pos] == ']' {
			s.pos++
			if !s.end() {
				return msgs, false, s.fatal()
			}
			return msgs, false, NewError(CodeInvalidRequest, "empty batch")
		}
		n := 0
		for {
			s.ws()
			if s.pos >= len(data) {
				s.fail("unexpected end of input")
				return msgs[:0], false, s.fatal()
			}
			switch {
			case maxBatch > 0 && n >= maxBatch:
				// Over the limit: only check the syntax.
				if !s.value() {
					return msgs[:0], false, s.fatal()
				}
			case data[s.pos] == '{':
				msgs = append(msgs, message{})
				if !s.element(&msgs[len(msgs)-1], in) {
					return msgs[:0], false, s.fatal()
				}
			default:
				if !s.value() {
					return msgs[:0], false, s.fatal()
				}
				msgs = append(msgs, message{kind: kindInvalid, id: nullID,
					err: NewError(CodeInvalidRequest, "batch element is not an object")})
			}
			n++
			s.ws()
			if s.pos >= len(data) {
				s.fail("unexpected end of input")
				return msgs[:0], false, s.fatal()
			}
			if data[s.pos] == ',' {
				s.pos++
				continue
			}
			if data[s.pos] != ']' {
				s.failChar("after batch element")
				return msgs[:0], false, s.fatal()
			}
			s.pos++
			break
		}
		if !s.end() {
			return msgs[:0], false, s.fatal()
		}
		if maxBatch > 0 && n > maxBatch {
			return msgs[:0], false, Errorf(CodeInvalidRequest, "batch has more than %d elements", maxBatch)
		}
		return msgs, true, nil
	default:
		if !s.value() || !s.end() {
			return msgs, false, s.fatal()
		}
		return msgs, false, NewError(CodeInvalidRequest, "message is neither an object nor an array")
	}
}

// jsonScanner validates JSON and moves pos past what it has read. The first
// syntax error is kept: what (errMsg), where (errPos), and the offending byte
// (errChar) when there is one.
type jsonScanner struct {
	data    []byte
	pos     int
	depth   int
	errMsg  string
	errPos  int
	errChar int  // -1: none
	esc     bool // the last string str read has escapes
	meta    metaLimits
}

// swarSpecial reports whether one of the eight bytes of x is '"', '\\' or
// below 0x20: the bytes a JSON string cannot hold as they are.
func swarSpecial(x uint64) bool { return swarSpecialMask(x) != 0 }

// swarSpecialMask is nonzero when one of the eight bytes of x is '"', '\\'
// or below 0x20 (the classic "has byte less than n" and "has zero byte"
// tests, exact for whether any byte matches, though not for which). x ^
// 0x02 in every byte turns '"' (0x22) into 0x20 and keeps the control
// characters below 0x20 without bringing any other byte there, so one
// "less than 0x21" test finds both.
func swarSpecialMask(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	y := x ^ (lo * 0x02)
	less := (y - lo*0x21) & ^y & hi
	b := x ^ (lo * '\\')
	backslash := (b - lo) & ^b & hi
	return less | backslash
}

// plainRun returns how many bytes from the start of d, in whole words of
// eight, hold no '"', '\\' or control character: 32 bytes a step while
// they last, then 8.
func plainRun(d []byte) int {
	i := 0
	for ; i+32 <= len(d); i += 32 {
		w := d[i : i+32 : i+32]
		if swarSpecialMask(binary.LittleEndian.Uint64(w[0:8]))|swarSpecialMask(binary.LittleEndian.Uint64(w[8:16]))|
			swarSpecialMask(binary.LittleEndian.Uint64(w[16:24]))|swarSpecialMask(binary.LittleEndian.Uint64(w[24:32])) != 0 {
			break
		}
	}
	for ; i+8 <= len(d); i += 8 {
		if swarSpecialMask(binary.LittleEndian.Uint64(d[i:i+8])) != 0 {
			break
		}
	}
	return i
}

// plainPrefix returns how many bytes from the start of d are plain (no
// '"', '\\' or control character): the index of the first special byte,
// or len(d). Past the whole words of plainRun, the word holding that byte
// gives its place at once: in a word's mask the lowest flagged byte is
// always a true one (a false flag needs a borrow, which only a true match
// below it makes), so its trailing zeros count the plain bytes before it.
//
// The first word is tested alone first: most strings in a message (member
// names, methods, short values) end in it, and plainRun's 32-byte step
// would test four words to find that out.
func plainPrefix(d []byte) int {
	i := 0
	if len(d) >= 8 {
		if m := swarSpecialMask(binary.LittleEndian.Uint64(d)); m != 0 {
			return bits.TrailingZeros64(m) / 8
		}
		i = 8 + plainRun(d[8:])
		if i+8 <= len(d) {
			return i + bits.TrailingZeros64(swarSpecialMask(binary.LittleEndian.Uint64(d[i:i+8])))/8
		}
	}
	for i < len(d) && jsonStrPlain[d[i]] {
		i++
	}
	return i
}

// jsonStrPlain marks the bytes that stand for themselves inside a JSON
// string: everything but '"', '\\' and control characters.
var jsonStrPlain = func() (t [256]bool) {
	for i := 0x20; i < 256; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

func (s *jsonScanner) fail(msg string) {
	if s.errMsg == "" {
		s.errMsg, s.errPos, s.errChar = msg, s.pos, -1
	}
}

// failChar records an unexpected byte at s.pos (or the end of the input).
func (s *jsonScanner) failChar(context string) {
	if s.pos >= len(s.data) {
		s.fail("unexpected end of input")
		return
	}
	if s.errMsg == "" {
		s.errMsg, s.errPos, s.errChar = context, s.pos, int(s.data[s.pos])
	}
}

func (s *jsonScanner) fatal() *Error {
	switch {
	case s.errMsg == "":
		return Errorf(CodeParseError, "invalid JSON at offset %d", s.errPos)
	case s.errChar < 0:
		return Errorf(CodeParseError, "%s at offset %d", s.errMsg, s.errPos)
	case s.errChar < utf8.RuneSelf:
		return Errorf(CodeParseError, "invalid character %q %s at offset %d", rune(s.errChar), s.errMsg, s.errPos)
	default:
		return Errorf(CodeParseError, "invalid byte 0x%02x %s at offset %d", s.errChar, s.errMsg, s.errPos)
	}
}

// ws skips JSON whitespace.
func (s *jsonScanner) ws() {
	i, d := s.pos, s.data
	for i < len(d) && d[i] <= ' ' && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t') {
		i++
	}
	s.pos = i
}

// end reports whether only whitespace is left.
func (s *jsonScanner) end() bool {
	s.ws()
	if s.pos != len(s.data) {
		s.failChar("after top-level value")
		return false
	}
	return true
}

// value checks the value at s.pos (no leading whitespace) and moves past it.
func (s *jsonScanner) value() bool {
	if s.pos >= len(s.data) {
		s.fail("unexpected end of input")
		return false
	}
	switch c := s.data[s.pos]; c {
	case '"':
		return s.str()
	case '{':
		return s.object(nil)
	case '[':
		return s.array()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return s.number()
		}
		s.failChar("looking for beginning of value")
		return false
	}
}

func (s *jsonScanner) literal(lit string) bool {
	for i := 0; i < len(lit); i++ {
		if s.pos >= len(s.data) || s.data[s.pos] != lit[i] {
			s.failChar("in literal " + lit)
			return false
		}
		s.pos++
	}
	return true
}

// number checks a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i++
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		s.failChar("in numeric literal")
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			s.failChar("after decimal point in numeric literal")
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			s.failChar("in exponent of numeric literal")
			return false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return true
}

// str checks a string starting at s.pos (which is '"'). It sets s.esc.
func (s *jsonScanner) str() bool {
	d := s.data
	i := s.pos + 1
	s.esc = false
	for i < len(d) {
		// Plain bytes a word at a time: none is '"', '\\' or a control
		// character (bytes from 0x80 are plain; UTF-8 is checked apart).
		i += plainPrefix(d[i:])
		if i >= len(d) {
			break
		}
		c := d[i]
		if c == '"' {
			s.pos = i + 1
			return true
		}
		if c != '\\' {
			s.pos = i
			s.failChar("in string literal")
			return false
		}
		s.esc = true
		i++
		if i >= len(d) {
			break
		}
		switch d[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			i++
			for k := 0; k < 4; k++ {
				if i >= len(d) {
					s.pos = i
					s.fail("unexpected end of input")
					return false
				}
				if jsonUnhex(d[i]) < 0 {
					s.pos = i
					s.failChar("in \\u hexadecimal character escape")
					return false
				}
				i++
			}
		default:
			s.pos = i
			s.failChar("in string escape code")
			return false
		}
	}
	s.pos = len(d)
	s.fail("unexpected end of input")
	return false
}

// open enters an array or object at s.pos (its opening bracket), whose
// closing bracket is closer. empty reports an empty one, already left.
func (s *jsonScanner) open(closer byte) (empty, ok bool) {
	s.depth++
	if s.depth > jsonMaxDepth {
		s.fail("nesting too deep")
		return false, false
	}
	s.pos++
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == closer {
		s.pos++
		s.depth--
		return true, true
	}
	return false, true
}

// next reads what follows an element of an array or object: a comma (more
// elements follow) or closer (done, and the container is left).
func (s *jsonScanner) next(closer byte, after string) (done, ok bool) {
	s.ws()
	if s.pos >= len(s.data) {
		s.fail("unexpected end of input")
		return false, false
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return false, true
	case closer:
		s.pos++
		s.depth--
		return true, true
	}
	s.failChar(after)
	return false, false
}

func (s *jsonScanner) array() bool {
	if empty, ok := s.open(']'); empty || !ok {
		return ok
	}
	for {
		s.ws()
		if !s.value() {
			return false
		}
		if done, ok := s.next(']', "after array element"); done || !ok {
			return ok
		}
	}
}

// jsonSpan is where a member's value is in the input: data[start:end].
// end == 0 means the member is absent (a value never starts at offset 0
// inside an object).
type jsonSpan struct{ start, end int }

// Member names the codec looks at, in all the objects it decodes. One
// namespace serves all of them; each decoder reads only its own.
const (
	jfJSONRPC = iota
	jfID
	jfMethod
	jfParams
	jfResult
	jfError
	jfTimeout
	jfCode
	jfMessage
	jfData
	jfRetryAfter
	jfReason
	jfMeta
	jfStream
	jfItem
	jfCredit
	jfCount
)

type jsonFields [jfCount]jsonSpan

func jsonFieldIndex(name []byte) int {
	switch string(name) {
	case "jsonrpc":
		return jfJSONRPC
	case "id":
		return jfID
	case "method":
		return jfMethod
	case "params":
		return jfParams
	case "result":
		return jfResult
	case "error":
		return jfError
	case "$timeout":
		return jfTimeout
	case "code":
		return jfCode
	case "message":
		return jfMessage
	case "data":
		return jfData
	case "retryAfterMs":
		return jfRetryAfter
	case "reason":
		return jfReason
	case jsonMetaMember:
		return jfMeta
	case jsonStreamMember:
		return jfStream
	case "item":
		return jfItem
	case "credit":
		return jfCredit
	}
	return -1
}

// object checks an object starting at s.pos (which is '{'). When f is not
// nil, the values of known members are recorded in it; for a member that
// appears more than once, the last one wins.
func (s *jsonScanner) object(f *jsonFields) bool {
	if empty, ok := s.open('}'); empty || !ok {
		return ok
	}
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			s.failChar("looking for beginning of object key string")
			return false
		}
		keyStart := s.pos
		if !s.str() {
			return false
		}
		key, keyEsc := s.data[keyStart+1:s.pos-1], s.esc
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			s.failChar("after object key")
			return false
		}
		s.pos++
		s.ws()
		valStart := s.pos
		if !s.value() {
			return false
		}
		if f != nil {
			idx := -1
			if !keyEsc {
				idx = jsonFieldIndex(key)
			} else if len(key) <= 6*len("retryAfterMs") {
				var buf [16]byte
				if name, ok := jsonUnescape(buf[:0], key, len(buf)); ok {
					idx = jsonFieldIndex(name)
				}
			}
			if idx >= 0 {
				f[idx] = jsonSpan{valStart, s.pos}
			}
		}
		if done, ok := s.next('}', "after object key:value pair"); done || !ok {
			return ok
		}
	}
}

// element decodes one request object starting at s.pos (which is '{') into
// *m. It returns false only on a syntax error; a well-formed object that is
// not a valid message becomes kindInvalid.
func (s *jsonScanner) element(m *message, in *interner) bool {
	var f jsonFields
	if !s.object(&f) {
		return false
	}
	jsonClassify(s.data, &f, m, in, s.meta)
	return true
}

// jsonInvalid makes *m an invalid element with id id.
func jsonInvalid(m *message, id wireID, msg string) {
	*m = message{kind: kindInvalid, id: id, err: NewError(CodeInvalidRequest, msg)}
}

// jsonClassify turns the members of a valid JSON object into a message.
func jsonClassify(data []byte, f *jsonFields, m *message, in *interner, lim metaLimits) {
	val := func(i int) []byte {
		sp := f[i]
		return data[sp.start:sp.end:sp.end]
	}
	id := nullID
	hasID := f[jfID].end != 0
	if hasID {
		var ok bool
		if id, ok = jsonParseID(val(jfID)); !ok {
			jsonInvalid(m, nullID, `"id" must be a string, a number or null`)
			return
		}
	}
	if f[jfJSONRPC].end == 0 {
		jsonInvalid(m, id, `"jsonrpc" must be "2.0"`)
		return
	}
	if v := val(jfJSONRPC); string(v) != `"2.0"` {
		var buf [8]byte
		if s, ok := jsonStringValue(buf[:0], v, len(buf)); !ok || string(s) != "2.0" {
			jsonInvalid(m, id, `"jsonrpc" must be "2.0"`)
			return
		}
	}

	if f[jfMethod].end == 0 {
		hasResult, hasError := f[jfResult].end != 0, f[jfError].end != 0
		switch {
		case !hasResult && !hasError:
			jsonInvalid(m, id, `"method", "result" or "error" is required`)
		case hasResult && hasError:
			jsonInvalid(m, id, `a response must not have both "result" and "error"`)
			m.response = true
		case !hasID:
			jsonInvalid(m, id, `a response must have an "id"`)
			m.response = true
		case hasResult:
			*m = message{kind: kindResult, id: id, result: val(jfResult)}
		default:
			e, ok := jsonDecodeError(val(jfError))
			if !ok {
				jsonInvalid(m, id, `"error" must be an object with an integer "code" and a string "message"`)
				m.response = true
				return
			}
			*m = message{kind: kindError, id: id, err: e}
		}
		return
	}

	v := val(jfMethod)
	if v[0] != '"' {
		jsonInvalid(m, id, `"method" must be a string`)
		return
	}
	var method string
	if raw := v[1 : len(v)-1]; bytes.IndexByte(raw, '\\') < 0 {
		method = in.intern(raw)
	} else {
		var buf [64]byte
		name, _ := jsonUnescape(buf[:0], raw, -1)
		method = in.intern(name)
	}
	var params []byte
	if f[jfParams].end != 0 {
		params = val(jfParams)
		if params[0] != '[' && params[0] != '{' {
			jsonInvalid(m, id, `"params" must be an array or an object`)
			return
		}
	}

	var meta Metadata
	if f[jfMeta].end != 0 {
		var why string
		if meta, why = jsonMetadata(val(jfMeta), lim); why != "" {
			jsonInvalid(m, id, why)
			return
		}
	}

	if hasID {
		var timeout time.Duration
		if f[jfTimeout].end != 0 {
			var ok bool
			if timeout, ok = jsonParseMillis(val(jfTimeout)); !ok {
				jsonInvalid(m, id, `"$timeout" must be a non-negative number`)
				return
			}
		}
		*m = message{kind: kindRequest, id: id, method: method, params: params, timeout: timeout, meta: meta}
		if f[jfStream].end != 0 {
			// A stream credit that is not a positive integer is ignored, as
			// an unknown member would be: the call is answered without a
			// stream.
			if c, ok := jsonParseID(val(jfStream)); ok && c.raw == "" && c.n > 0 {
				m.credit = c.n
			}
		}
		return
	}

	switch method {
	case jsonCancelMethod:
		var pf jsonFields
		if params == nil || params[0] != '{' {
			jsonInvalid(m, nullID, `"`+jsonCancelMethod+`" needs params {"id": ...}`)
			return
		}
		sub := jsonScanner{data: params}
		sub.object(&pf)
		if pf[jfID].end == 0 {
			jsonInvalid(m, nullID, `"`+jsonCancelMethod+`" needs params {"id": ...}`)
			return
		}
		sp := pf[jfID]
		cid, ok := jsonParseID(params[sp.start:sp.end])
		if !ok {
			jsonInvalid(m, nullID, `"id" must be a string, a number or null`)
			return
		}
		*m = message{kind: kindCancel, id: cid, method: jsonCancelMethod}
	case jsonItemMethod, jsonCreditMethod:
		jsonStreamFrame(m, method, params)
	case jsonShutdownMethod:
		*m = message{kind: kindShutdown, id: nullID, method: jsonShutdownMethod}
		if params == nil {
			return
		}
		if params[0] != '{' {
			jsonInvalid(m, nullID, `"`+jsonShutdownMethod+`" params must be an object`)
			return
		}
		var pf jsonFields
		sub := jsonScanner{data: params}
		sub.object(&pf)
		if sp := pf[jfRetryAfter]; sp.end != 0 {
			d, ok := jsonParseMillis(params[sp.start:sp.end])
			if !ok {
				jsonInvalid(m, nullID, `"retryAfterMs" must be a non-negative number`)
				return
			}
			m.retryAfter = d
		}
		if sp := pf[jfReason]; sp.end != 0 {
			r, ok := jsonStringValue(nil, params[sp.start:sp.end], -1)
			if !ok {
				jsonInvalid(m, nullID, `"reason" must be a string`)
				return
			}
			m.reason = string(r)
		}
	default:
		*m = message{kind: kindNotification, id: nullID, method: method, params: params, meta: meta}
	}
}

// jsonStreamFrame decodes a $/stream.item or $/stream.credit notification.
// One that is malformed is an unanswerable invalid notification (dropped
// and counted): a stream frame is never answered.
func jsonStreamFrame(m *message, method string, params []byte) {
	bad := func(why string) {
		*m = message{kind: kindInvalid, id: nullID, unanswerable: true, err: NewError(CodeInvalidRequest, `"`+method+`" `+why)}
	}
	if params == nil || params[0] != '{' {
		bad(`needs params {"id": ..., ...}`)
		return
	}
	var pf jsonFields
	sub := jsonScanner{data: params}
	sub.object(&pf)
	sp := pf[jfID]
	if sp.end == 0 {
		bad(`needs an "id"`)
		return
	}
	id, ok := jsonParseID(params[sp.start:sp.end])
	if !ok {
		bad(`"id" must be a string, a number or null`)
		return
	}
	if method == jsonItemMethod {
		it := pf[jfItem]
		if it.end == 0 {
			bad(`needs an "item"`)
			return
		}
		*m = message{kind: kindStreamItem, id: id, method: method, result: params[it.start:it.end]}
		return
	}
	cr := pf[jfCredit]
	if cr.end == 0 {
		bad(`needs a "credit"`)
		return
	}
	c, ok := jsonParseID(params[cr.start:cr.end])
	if !ok || c.raw != "" || c.n == 0 {
		bad(`"credit" must be a positive integer`)
		return
	}
	*m = message{kind: kindStreamCredit, id: id, method: method, credit: c.n}
}

// jsonMetadata reads the "$meta" member (a valid JSON value): an object
// whose values are strings, within lim. why says what is wrong with it.
func jsonMetadata(v []byte, lim metaLimits) (md Metadata, why string) {
	if v[0] != '{' {
		return nil, `"` + jsonMetaMember + `" must be an object of strings`
	}
	mb := metaBuilder{lim: lim}
	s := jsonScanner{data: v}
	if empty, _ := s.open('}'); empty {
		return nil, ""
	}
	var kbuf, vbuf []byte
	for {
		s.ws()
		start := s.pos
		s.str()
		key, esc := v[start+1:s.pos-1], s.esc
		if esc {
			kbuf, _ = jsonUnescape(kbuf[:0], key, -1)
			key = kbuf
		}
		s.ws()
		s.pos++ // ':'
		s.ws()
		if v[s.pos] != '"' {
			return nil, `"` + jsonMetaMember + `" must be an object of strings`
		}
		start = s.pos
		s.str()
		val := v[start+1 : s.pos-1]
		if s.esc {
			vbuf, _ = jsonUnescape(vbuf[:0], val, -1)
			val = vbuf
		}
		if !utf8.Valid(key) || !utf8.Valid(val) {
			return nil, `"` + jsonMetaMember + `" holds a string that is not UTF-8`
		}
		mb.add(key, val)
		if mb.over != "" {
			return nil, mb.over
		}
		if done, _ := s.next('}', ""); done {
			return mb.md, ""
		}
	}
}

// jsonParseID reads a valid JSON value as an id: false when it is not a
// string, a number or null.
func jsonParseID(v []byte) (wireID, bool) {
	switch c := v[0]; {
	case c == '"':
		return wireID{raw: string(v)}, true
	case c == 'n':
		return nullID, true
	case c >= '0' && c <= '9':
		if len(v) > 1 && c == '0' {
			break // 0.5, 0e1
		}
		var n uint64
		for _, c := range v {
			if c < '0' || c > '9' {
				return wireID{raw: string(v)}, true
			}
			d := uint64(c - '0')
			if n > (math.MaxUint64-d)/10 {
				return wireID{raw: string(v)}, true
			}
			n = n*10 + d
		}
		return wireID{n: n}, true
	case c == '-':
	default:
		return wireID{}, false
	}
	return wireID{raw: string(v)}, true
}

// jsonDecodeError reads the "error" member of a response.
func jsonDecodeError(v []byte) (*Error, bool) {
	if v[0] != '{' {
		return nil, false
	}
	var f jsonFields
	sub := jsonScanner{data: v}
	sub.object(&f)
	if f[jfCode].end == 0 || f[jfMessage].end == 0 {
		return nil, false
	}
	code, ok := jsonParseInt32(v[f[jfCode].start:f[jfCode].end])
	if !ok {
		return nil, false
	}
	msg, ok := jsonStringValue(nil, v[f[jfMessage].start:f[jfMessage].end], -1)
	if !ok {
		return nil, false
	}
	e := &Error{Code: Code(code), Message: string(msg)}
	if sp := f[jfData]; sp.end != 0 {
		e.Data = v[sp.start:sp.end:sp.end]
	}
	return e, true
}

// jsonParseInt32 reads a valid JSON number that must be an integer (no
// fraction, no exponent) within int32.
func jsonParseInt32(v []byte) (int32, bool) {
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 10 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, false
	}
	return int32(n), true
}

var jsonPow10 = [...]uint64{
	1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

// jsonParseMillis reads a valid JSON value that must be a non-negative
// number of milliseconds (fractions and exponents allowed) as a duration,
// rounded up to the nanosecond; durations too long for time.Duration are
// clamped to its maximum. Negative zero is zero.
func jsonParseMillis(v []byte) (time.Duration, bool) {
	i := 0
	neg := v[0] == '-'
	if neg {
		i++
	}
	if i >= len(v) || v[i] < '0' || v[i] > '9' {
		return 0, false
	}
	var (
		mant    uint64 // the first 19 significant digits
		exp10   int    // value = mant * 10^exp10 (+ dropped digits)
		inexact bool   // non-zero digits were dropped
		nonzero bool
	)
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		d := uint64(v[i] - '0')
		nonzero = nonzero || d != 0
		if mant < 1e18 {
			mant = mant*10 + d
		} else {
			exp10++
			inexact = inexact || d != 0
		}
	}
	if i < len(v) && v[i] == '.' {
		for i++; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
			d := uint64(v[i] - '0')
			nonzero = nonzero || d != 0
			if mant < 1e18 {
				mant = mant*10 + d
				exp10--
			} else {
				inexact = inexact || d != 0
			}
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		eneg := false
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			eneg = v[i] == '-'
			i++
		}
		e := 0
		for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
			if e < 1e6 {
				e = e*10 + int(v[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp10 += e
	}
	if i != len(v) {
		return 0, false
	}
	if !nonzero {
		return 0, true
	}
	if neg {
		return 0, false
	}
	// nanoseconds = mant * 10^(exp10+6), rounded up.
	var ns uint64
	switch p := exp10 + 6; {
	case p >= len(jsonPow10):
		return math.MaxInt64, true
	case p >= 0:
		mul := jsonPow10[p]
		if mant > math.MaxInt64/mul {
			return math.MaxInt64, true
		}
		ns = mant * mul
		if inexact {
			ns++
		}
	case -p >= len(jsonPow10):
		ns = 1 // a positive value below a nanosecond
	default:
		div := jsonPow10[-p]
		ns = mant / div
		if mant%div != 0 || inexact {
			ns++
		}
	}
	if ns > math.MaxInt64 {
		return math.MaxInt64, true
	}
	return time.Duration(ns), true
}

func jsonUnhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// jsonStringValue appends the text of v, a valid JSON value that must be a
// string, to dst. See jsonUnescape for limit.
func jsonStringValue(dst, v []byte, limit int) ([]byte, bool) {
	if v[0] != '"' {
		return dst, false
	}
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		if limit >= 0 && len(raw) > limit {
			return dst, false
		}
		return append(dst, raw...), true
	}
	return jsonUnescape(dst, raw, limit)
}

// jsonUnescape appends the text of raw, the inside of a valid JSON string,
// to dst. A \u escape of a lone surrogate becomes U+FFFD. When limit >= 0
// and the text is longer than limit bytes, it returns false.
func jsonUnescape(dst, raw []byte, limit int) ([]byte, bool) {
	n0 := len(dst)
	for i := 0; i < len(raw); {
		if limit >= 0 && len(dst)-n0 > limit {
			return dst, false
		}
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := jsonHex4(raw[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by an escaped low one is one
				// character; anything else is a lone surrogate.
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2 := utf16.DecodeRune(r, jsonHex4(raw[i+3:])); r2 != utf8.RuneError {
						r = r2
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
		i++
	}
	if limit >= 0 && len(dst)-n0 > limit {
		return dst, false
	}
	return dst, true
}

// jsonHex4 reads 4 hex digits (known to be valid).
func jsonHex4(b []byte) rune {
	return rune(jsonUnhex(b[0])<<12 | jsonUnhex(b[1])<<8 | jsonUnhex(b[2])<<4 | jsonUnhex(b[3]))
}

// appendJSON appends the JSON-RPC 2.0 encoding of m (one object, no batch
// brackets) to buf. Raw params, results and error data are written as they
// are; the caller guarantees they are valid JSON. Strings that are not valid
// UTF-8 have the bad bytes replaced by U+FFFD, so the output is always a
// valid text message. kindInvalid is written as the error reply it calls for
// (m.id, m.err). It panics on an unknown kind.
func appendJSON(buf []byte, m *message) []byte {
	buf = append(buf, `{"jsonrpc":"2.0"`...)
	switch m.kind {
	case kindRequest, kindNotification:
		if m.kind == kindRequest {
			buf = append(buf, `,"id":`...)
			buf = jsonAppendID(buf, m.id)
		}
		buf = append(buf, `,"method":`...)
		buf = jsonAppendString(buf, m.method)
		if m.params != nil {
			buf = append(buf, `,"params":`...)
			buf = append(buf, m.params...)
		}
		if m.kind == kindRequest && m.timeout > 0 {
			buf = append(buf, `,"$timeout":`...)
			buf = strconv.AppendInt(buf, jsonCeilMillis(m.timeout), 10)
		}
		if m.kind == kindRequest && m.credit > 0 {
			buf = append(buf, `,"`+jsonStreamMember+`":`...)
			buf = strconv.AppendUint(buf, m.credit, 10)
		}
		if len(m.meta) > 0 {
			buf = append(buf, `,"`+jsonMetaMember+`":`...)
			for i, k := range sortedKeys(m.meta) {
				if i == 0 {
					buf = append(buf, '{')
				} else {
					buf = append(buf, ',')
				}
				buf = jsonAppendString(buf, k)
				buf = append(buf, ':')
				buf = jsonAppendString(buf, m.meta[k])
			}
			buf = append(buf, '}')
		}
	case kindResult:
		buf = append(buf, `,"id":`...)
		buf = jsonAppendID(buf, m.id)
		buf = append(buf, `,"result":`...)
		if m.result == nil {
			buf = append(buf, "null"...)
		} else {
			buf = append(buf, m.result...)
		}
	case kindError, kindInvalid:
		buf = append(buf, `,"id":`...)
		buf = jsonAppendID(buf, m.id)
		e := m.err
		if e == nil {
			e = &Error{Code: CodeInternalError}
		}
		buf = append(buf, `,"error":{"code":`...)
		buf = strconv.AppendInt(buf, int64(e.Code), 10)
		buf = append(buf, `,"message":`...)
		buf = jsonAppendString(buf, e.Message)
		if e.Data != nil {
			buf = append(buf, `,"data":`...)
			buf = append(buf, e.Data...)
		}
		buf = append(buf, '}')
	case kindCancel:
		buf = append(buf, `,"method":"`+jsonCancelMethod+`","params":{"id":`...)
		buf = jsonAppendID(buf, m.id)
		buf = append(buf, '}')
	case kindStreamItem: // as StreamWriter.Send writes it too (jsonItemHead)
		buf = append(buf, `,"method":"`+jsonItemMethod+`","params":{"id":`...)
		buf = jsonAppendID(buf, m.id)
		buf = append(buf, jsonItemMember...)
		if m.result == nil {
			buf = append(buf, "null"...)
		} else {
			buf = append(buf, m.result...)
		}
		buf = append(buf, '}')
	case kindStreamCredit:
		buf = append(buf, `,"method":"`+jsonCreditMethod+`","params":{"id":`...)
		buf = jsonAppendID(buf, m.id)
		buf = append(buf, `,"credit":`...)
		buf = strconv.AppendUint(buf, m.credit, 10)
		buf = append(buf, '}')
	case kindShutdown:
		buf = append(buf, `,"method":"`+jsonShutdownMethod+`","params":{"retryAfterMs":`...)
		buf = strconv.AppendInt(buf, jsonCeilMillis(max(m.retryAfter, 0)), 10)
		buf = append(buf, `,"reason":`...)
		buf = jsonAppendString(buf, m.reason)
		buf = append(buf, '}')
	default:
		panic(fmt.Sprintf("rpc: appendJSON: unknown message kind %d", m.kind))
	}
	return append(buf, '}')
}

// A stream result's JSON-RPC message around its id and item, as
// appendJSON writes it: StreamWriter.Send writes it in parts.
const (
	jsonItemHead   = `{"jsonrpc":"2.0","method":"` + jsonItemMethod + `","params":{"id":`
	jsonItemMember = `,"item":`
)

var jsonItemTail = []byte("}}")

// jsonCeilMillis is d in whole milliseconds, rounded up.
func jsonCeilMillis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return ms
}

func jsonAppendID(buf []byte, id wireID) []byte {
	if id.raw != "" {
		return append(buf, id.raw...)
	}
	return strconv.AppendUint(buf, id.n, 10)
}

const jsonHexDigits = "0123456789abcdef"

// jsonAppendString appends s as a JSON string.
func jsonAppendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', jsonHexDigits[c>>4], jsonHexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// jsonValid reports whether b is one JSON value (with optional surrounding
// whitespace), using the same scanner as the decoder: several times faster
// than encoding/json.Valid and without allocations.
func jsonValid(b []byte) bool {
	if !utf8.Valid(b) { // it goes out in a text frame
		return false
	}
	s := jsonScanner{data: b}
	s.ws()
	return s.value() && s.end()
}
