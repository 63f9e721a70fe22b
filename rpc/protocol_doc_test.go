package rpc

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// These tests hold docs/PROTOCOL.md to the code: every binary hex dump, every
// tagged JSON example and the tables of kinds, error codes and limits are
// checked against the codecs. The formats they read are:
//
//   - a fenced block tagged "hex": one field per line, its bytes as hex pairs,
//     then "name: value" (integers in decimal, text as a Go-quoted string,
//     opaque bytes between backquotes). The nearest heading above the block
//     names the kind.
//   - a fenced block tagged "json" followed by attributes: kind=<kind> (one
//     message of that kind), batch kinds=<k1>,<k2>,... (a batch), or
//     fatal=<code> (one error for the whole message); optionally id=<JSON
//     id>, code=<n>, timeout=<Go duration>, retryAfter=<Go duration>,
//     reason=<Go-quoted string>, exact (appendJSON writes the block byte for
//     byte) and answered (the document shows, verbatim, the error reply the
//     runtime sends for this input).

const protocolDocPath = "../docs/PROTOCOL.md"

// protocolDocBlock is one fenced code block of the document.
type protocolDocBlock struct {
	info    string // the text after the opening fence
	heading string // the nearest heading above the block
	line    int    // line number of the opening fence
	body    string
}

func readProtocolDoc(t *testing.T) (string, []protocolDocBlock) {
	t.Helper()
	data, err := os.ReadFile(protocolDocPath)
	if err != nil {
		t.Fatalf("read the protocol document: %v", err)
	}
	doc := string(data)
	var (
		blocks  []protocolDocBlock
		heading string
		cur     *protocolDocBlock
		body    []string
	)
	for i, line := range strings.Split(doc, "\n") {
		if cur != nil {
			if strings.TrimSpace(line) == "```" {
				cur.body = strings.Join(body, "\n")
				blocks = append(blocks, *cur)
				cur, body = nil, nil
				continue
			}
			body = append(body, line)
			continue
		}
		switch {
		case strings.HasPrefix(line, "```"):
			cur = &protocolDocBlock{info: strings.TrimSpace(strings.TrimPrefix(line, "```")), heading: heading, line: i + 1}
		case strings.HasPrefix(line, "#"):
			heading = line
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", protocolDocPath, cur.line)
	}
	return doc, blocks
}

var protocolKindNames = map[kind]string{
	kindInvalid:      "invalid",
	kindRequest:      "request",
	kindNotification: "notification",
	kindResult:       "result",
	kindError:        "error",
	kindCancel:       "cancel",
	kindShutdown:     "shutdown",
}

func protocolKindByName(name string) (kind, bool) {
	for k, n := range protocolKindNames {
		if n == name {
			return k, true
		}
	}
	return 0, false
}

func TestProtocolDocBinaryExamples(t *testing.T) {
	_, blocks := readProtocolDoc(t)
	seen := map[kind]int{}
	for _, b := range blocks {
		if b.info != "hex" {
			continue
		}
		where := protocolDocPath + ":" + strconv.Itoa(b.line)
		t.Run("line "+strconv.Itoa(b.line), func(t *testing.T) {
			data, want := protocolHexExample(t, b)
			if t.Failed() {
				return
			}
			seen[want.kind]++
			if name := protocolKindNames[want.kind]; !strings.Contains(strings.ToLower(b.heading), name) {
				t.Errorf("%s: a %s example under the heading %q", where, name, b.heading)
			}
			var got message
			if err := decodeBinary(data, &got, nil, testMeta); err != nil {
				t.Fatalf("%s: decodeBinary(% x): %v", where, data, err)
			}
			if d := protocolDiff(&got, &want); d != "" {
				t.Errorf("%s: decodeBinary gives a different message than the document describes: %s", where, d)
			}
			if enc := appendBinary(nil, &want); !bytes.Equal(enc, data) {
				t.Errorf("%s: appendBinary of the described message gives\n% x\nthe document shows\n% x", where, enc, data)
			}
		})
	}
	for k := kindRequest; k <= kindShutdown; k++ {
		if seen[k] == 0 {
			t.Errorf("the document has no hex example of a %s (kind %d)", protocolKindNames[k], k)
		}
	}
}

var protocolHexField = regexp.MustCompile(`^([a-z][a-z -]*[a-z]): (.*)$`)

// protocolHexExample reads a hex block: the bytes, and the message its field
// annotations describe. It checks that each line's bytes encode its value.
func protocolHexExample(t *testing.T, b protocolDocBlock) ([]byte, message) {
	t.Helper()
	var (
		all     []byte
		m       message
		textLen = -1 // announced by the last "... length" line, -1 if none pending
	)
	for i, line := range strings.Split(b.body, "\n") {
		where := protocolDocPath + ":" + strconv.Itoa(b.line+1+i)
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var lineBytes []byte
		n := 0
		for _, f := range fields {
			if len(f) != 2 {
				break
			}
			v, err := hex.DecodeString(f)
			if err != nil {
				break
			}
			lineBytes = append(lineBytes, v[0])
			n++
		}
		if n == 0 {
			t.Errorf("%s: a hex line without bytes: %q", where, line)
			continue
		}
		// The annotation starts after the n-th hex token.
		rest := line
		for range n {
			rest = strings.TrimLeft(rest, " \t")
			rest = rest[2:]
		}
		fm := protocolHexField.FindStringSubmatch(strings.TrimSpace(rest))
		if fm == nil {
			t.Errorf("%s: no \"field: value\" annotation in %q", where, line)
			continue
		}
		name, value := fm[1], fm[2]
		all = append(all, lineBytes...)
		intValue := func() int64 {
			tok, _, _ := strings.Cut(value, " ")
			v, err := strconv.ParseInt(tok, 10, 64)
			if err != nil {
				t.Errorf("%s: %s: %q is not an integer", where, name, tok)
			}
			return v
		}
		uvarintLine := func() uint64 {
			v := uint64(intValue())
			if enc := binary.AppendUvarint(nil, v); !bytes.Equal(enc, lineBytes) {
				t.Errorf("%s: %s %d is % x as a uvarint, the line shows % x", where, name, v, enc, lineBytes)
			}
			return v
		}
		textValue := func() string {
			q, err := strconv.QuotedPrefix(value)
			if err != nil {
				t.Errorf("%s: %s: want a quoted string, got %q", where, name, value)
				return ""
			}
			s, _ := strconv.Unquote(q)
			if s != string(lineBytes) {
				t.Errorf("%s: %s %q, but the line's bytes are %q", where, name, s, lineBytes)
			}
			if textLen >= 0 && textLen != len(lineBytes) {
				t.Errorf("%s: %s has %d bytes, its length field says %d", where, name, len(lineBytes), textLen)
			}
			textLen = -1
			return s
		}
		rawValue := func() []byte {
			if len(value) < 2 || value[0] != '`' || strings.IndexByte(value[1:], '`') < 0 {
				t.Errorf("%s: %s: want bytes between backquotes, got %q", where, name, value)
				return nil
			}
			raw := value[1 : 1+strings.IndexByte(value[1:], '`')]
			if raw != string(lineBytes) {
				t.Errorf("%s: %s `%s`, but the line's bytes are %q", where, name, raw, lineBytes)
			}
			return []byte(raw)
		}
		errOf := func() *Error {
			if m.err == nil {
				m.err = &Error{}
			}
			return m.err
		}
		switch name {
		case "kind":
			v := intValue()
			if len(lineBytes) != 1 || int64(lineBytes[0]) != v {
				t.Errorf("%s: kind %d, the line shows % x", where, v, lineBytes)
			}
			m.kind = kind(v)
		case "id":
			m.id = wireID{n: uvarintLine()}
		case "timeout":
			m.timeout = time.Duration(uvarintLine()) * time.Microsecond
		case "retry-after":
			m.retryAfter = time.Duration(uvarintLine()) * time.Millisecond
		case "method length", "message length":
			textLen = int(uvarintLine())
		case "method":
			m.method = textValue()
		case "message":
			errOf().Message = textValue()
		case "reason":
			m.reason = textValue()
		case "code":
			v := intValue()
			if enc := binary.AppendVarint(nil, v); !bytes.Equal(enc, lineBytes) {
				t.Errorf("%s: code %d is % x as a zigzag varint, the line shows % x", where, v, enc, lineBytes)
			}
			errOf().Code = Code(v)
		case "params":
			m.params = rawValue()
		case "result":
			m.result = rawValue()
		case "data":
			errOf().Data = rawValue()
		default:
			t.Errorf("%s: unknown field %q", where, name)
		}
	}
	if len(all) == 0 {
		t.Errorf("%s:%d: empty hex block", protocolDocPath, b.line)
	}
	return all, m
}

// protocolDiff describes how got differs from want, "" if it does not.
func protocolDiff(got, want *message) string {
	var d []string
	add := func(field string, g, w any) {
		d = append(d, field+": got "+strconv.Quote(protocolText(g))+", want "+strconv.Quote(protocolText(w)))
	}
	if got.kind != want.kind {
		add("kind", got.kind, want.kind)
	}
	if got.id != want.id {
		add("id", string(jsonAppendID(nil, got.id)), string(jsonAppendID(nil, want.id)))
	}
	if got.method != want.method {
		add("method", got.method, want.method)
	}
	if !bytes.Equal(got.params, want.params) {
		add("params", got.params, want.params)
	}
	if !bytes.Equal(got.result, want.result) {
		add("result", got.result, want.result)
	}
	if got.timeout != want.timeout {
		add("timeout", got.timeout, want.timeout)
	}
	if got.retryAfter != want.retryAfter {
		add("retry-after", got.retryAfter, want.retryAfter)
	}
	if got.reason != want.reason {
		add("reason", got.reason, want.reason)
	}
	switch {
	case (got.err == nil) != (want.err == nil):
		add("error", got.err, want.err)
	case got.err != nil:
		if got.err.Code != want.err.Code || got.err.Message != want.err.Message || !bytes.Equal(got.err.Data, want.err.Data) {
			add("error", got.err, want.err)
		}
	}
	return strings.Join(d, "; ")
}

func protocolText(v any) string {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	case kind:
		return protocolKindNames[v]
	case time.Duration:
		return v.String()
	case *Error:
		if v == nil {
			return "none"
		}
		return strconv.Itoa(int(v.Code)) + " " + strconv.Quote(v.Message) + " " + string(v.Data)
	}
	return "?"
}

// protocolJSONAttrs splits "kind=request id=\"a b\" exact" into attributes;
// a bare word maps to "".
func protocolJSONAttrs(s string) (map[string]string, bool) {
	attrs := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		end := strings.IndexAny(s, " =")
		if end < 0 {
			attrs[s] = ""
			break
		}
		key := s[:end]
		if s[end] == ' ' {
			attrs[key] = ""
			s = s[end:]
			continue
		}
		s = s[end+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			// A Go-quoted string (reason), or a JSON string id, which is
			// also valid Go for the ids used in the document.
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, false
			}
			val, s = q, s[len(q):]
		} else {
			val, s, _ = strings.Cut(s, " ")
		}
		attrs[key] = val
	}
	return attrs, true
}

func TestProtocolDocJSONExamples(t *testing.T) {
	doc, blocks := readProtocolDoc(t)
	seen := map[string]int{}
	for _, b := range blocks {
		tag, attrText, _ := strings.Cut(b.info, " ")
		if tag != "json" {
			continue
		}
		where := protocolDocPath + ":" + strconv.Itoa(b.line)
		attrs, ok := protocolJSONAttrs(attrText)
		if !ok {
			t.Errorf("%s: cannot read the attributes %q", where, attrText)
			continue
		}
		text := strings.TrimSpace(b.body)
		msgs, batch, fatal := decodeJSON([]byte(text), nil, nil, DefaultMaxBatch, testMeta)
		switch {
		case attrs["fatal"] != "":
			want, _ := strconv.Atoi(attrs["fatal"])
			if fatal == nil || int(fatal.Code) != want {
				t.Errorf("%s: want one error %d for the whole message, got fatal %v, %d messages", where, want, fatal, len(msgs))
				continue
			}
			seen["fatal"]++
			if _, ok := attrs["answered"]; ok {
				reply := appendJSON(nil, &message{kind: kindError, id: nullID, err: fatal})
				if !strings.Contains(doc, string(reply)) {
					t.Errorf("%s: the document does not show the reply the runtime sends:\n%s", where, reply)
				}
			}
		case attrs["kinds"] != "":
			if _, ok := attrs["batch"]; !ok {
				t.Errorf("%s: kinds= without batch", where)
			}
			if fatal != nil || !batch {
				t.Errorf("%s: want a batch, got fatal %v, batch %v", where, fatal, batch)
				continue
			}
			names := strings.Split(attrs["kinds"], ",")
			var got []string
			for i := range msgs {
				got = append(got, protocolKindNames[msgs[i].kind])
			}
			if strings.Join(got, ",") != strings.Join(names, ",") {
				t.Errorf("%s: batch of %s, the document says %s", where, strings.Join(got, ","), strings.Join(names, ","))
			}
			seen["batch"]++
		case attrs["kind"] != "":
			want, ok := protocolKindByName(attrs["kind"])
			if !ok {
				t.Errorf("%s: unknown kind %q", where, attrs["kind"])
				continue
			}
			if fatal != nil || batch || len(msgs) != 1 {
				t.Errorf("%s: want one %s, got fatal %v, batch %v, %d messages", where, attrs["kind"], fatal, batch, len(msgs))
				continue
			}
			m := &msgs[0]
			if m.kind != want {
				t.Errorf("%s: decoded as %s (%v), the document says %s", where, protocolKindNames[m.kind], m.err, attrs["kind"])
				continue
			}
			seen[attrs["kind"]]++
			protocolCheckJSONAttrs(t, where, attrs, m)
			if _, ok := attrs["exact"]; ok {
				if enc := appendJSON(nil, m); string(enc) != text {
					t.Errorf("%s: appendJSON writes\n%s\nthe document shows\n%s", where, enc, text)
				}
			}
			if _, ok := attrs["answered"]; ok {
				reply := appendJSON(nil, m) // an invalid message encodes as its error reply
				if m.kind != kindInvalid || !strings.Contains(doc, string(reply)) {
					t.Errorf("%s: the document does not show the reply the runtime sends:\n%s", where, reply)
				}
			}
		default:
			t.Errorf("%s: a json block without kind=, batch kinds= or fatal=", where)
		}
	}
	for _, k := range []string{"request", "notification", "result", "error", "cancel", "shutdown", "invalid", "batch", "fatal"} {
		if seen[k] == 0 {
			t.Errorf("the document has no JSON example of %s", k)
		}
	}
}

func protocolCheckJSONAttrs(t *testing.T, where string, attrs map[string]string, m *message) {
	t.Helper()
	for key, val := range attrs {
		switch key {
		case "kind", "exact", "answered":
		case "id":
			if got := string(jsonAppendID(nil, m.id)); got != val {
				t.Errorf("%s: id %s, the document says %s", where, got, val)
			}
		case "code":
			want, _ := strconv.Atoi(val)
			if m.err == nil || int(m.err.Code) != want {
				t.Errorf("%s: error %v, the document says code %d", where, m.err, want)
			}
		case "timeout":
			if d, err := time.ParseDuration(val); err != nil || m.timeout != d {
				t.Errorf("%s: timeout %v, the document says %s", where, m.timeout, val)
			}
		case "retryAfter":
			if d, err := time.ParseDuration(val); err != nil || m.retryAfter != d {
				t.Errorf("%s: retry-after %v, the document says %s", where, m.retryAfter, val)
			}
		case "reason":
			if s, err := strconv.Unquote(val); err != nil || m.reason != s {
				t.Errorf("%s: reason %q, the document says %s", where, m.reason, val)
			}
		default:
			t.Errorf("%s: unknown attribute %q", where, key)
		}
	}
	if m.kind == kindInvalid && (m.err == nil || m.err.Code != CodeInvalidRequest) {
		t.Errorf("%s: an invalid message with error %v, want %d", where, m.err, CodeInvalidRequest)
	}
}

// protocolTableRows returns the cells of the Markdown table rows in doc whose first
// cell matches first.
func protocolTableRows(doc string, first *regexp.Regexp) [][]string {
	var rows [][]string
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if first.MatchString(cells[0]) {
			rows = append(rows, cells)
		}
	}
	return rows
}

// TestProtocolDocVarintExamples checks the "N → `hex`" examples of the
// uvarint and varint bullets of section 3.1.
func TestProtocolDocVarintExamples(t *testing.T) {
	doc, _ := readProtocolDoc(t)
	pair := regexp.MustCompile("(-?[0-9]+) → `([0-9a-f]{2}(?: [0-9a-f]{2})*)`")
	for _, tt := range []struct {
		bullet string
		encode func(s string) ([]byte, error)
	}{
		{"- **uvarint**", func(s string) ([]byte, error) {
			v, err := strconv.ParseUint(s, 10, 64)
			return binary.AppendUvarint(nil, v), err
		}},
		{"- **varint**", func(s string) ([]byte, error) {
			v, err := strconv.ParseInt(s, 10, 64)
			return binary.AppendVarint(nil, v), err
		}},
	} {
		i := strings.Index(doc, tt.bullet)
		if i < 0 {
			t.Errorf("no %q bullet in the document", tt.bullet)
			continue
		}
		text := doc[i+len(tt.bullet):]
		if end := strings.Index(text, "\n- "); end >= 0 {
			text = text[:end]
		}
		text = strings.Join(strings.Fields(text), " ")
		matches := pair.FindAllStringSubmatch(text, -1)
		if len(matches) < 3 {
			t.Errorf("%s: found %d examples, want at least 3", tt.bullet, len(matches))
		}
		for _, m := range matches {
			want, err := tt.encode(m[1])
			if err != nil {
				t.Errorf("%s: %s: %v", tt.bullet, m[1], err)
				continue
			}
			if got := strings.ReplaceAll(m[2], " ", ""); got != hex.EncodeToString(want) {
				t.Errorf("%s: %s is % x, the document says %s", tt.bullet, m[1], want, m[2])
			}
		}
	}
}

func TestProtocolDocKindTable(t *testing.T) {
	doc, _ := readProtocolDoc(t)
	seen := map[kind]bool{}
	for _, row := range protocolTableRows(doc, regexp.MustCompile(`^0x[0-9a-f]{2}$`)) {
		v, _ := strconv.ParseUint(row[0][2:], 16, 8)
		if len(row) < 2 || protocolKindNames[kind(v)] != row[1] || kind(v) == kindInvalid {
			t.Errorf("kind table row %q: kind byte %s is %q in the code", row, row[0], protocolKindNames[kind(v)])
			continue
		}
		seen[kind(v)] = true
	}
	for k := kindRequest; k <= kindShutdown; k++ {
		if !seen[k] {
			t.Errorf("the kind table has no row for %s (0x%02x)", protocolKindNames[k], byte(k))
		}
	}
}

func TestProtocolDocErrorCodes(t *testing.T) {
	doc, _ := readProtocolDoc(t)
	seen := map[Code]bool{}
	for _, row := range protocolTableRows(doc, regexp.MustCompile(`^-3[0-9]{4}$`)) {
		v, _ := strconv.Atoi(row[0])
		c := Code(v)
		if len(row) < 2 || c.String() != row[1] {
			t.Errorf("error table row %q: code %d is %q in the code", row, v, c)
			continue
		}
		seen[c] = true
	}
	for c := range codeNames {
		if !seen[c] {
			t.Errorf("the error table has no row for %d (%s)", int32(c), c)
		}
	}
}

func TestProtocolDocLimits(t *testing.T) {
	doc, _ := readProtocolDoc(t)
	want := map[string]int64{
		"transport.DefaultReadLimit":         transport.DefaultReadLimit,
		"rpc.DefaultMaxInFlight":             DefaultMaxInFlight,
		"rpc.DefaultMaxBatch":                DefaultMaxBatch,
		"transport.DefaultHeartbeatInterval": int64(transport.DefaultHeartbeatInterval),
		"transport.DefaultPongTimeout":       int64(transport.DefaultPongTimeout),
		"transport.DefaultWriteTimeout":      int64(transport.DefaultWriteTimeout),
		"transport.DefaultHandshakeTimeout":  int64(transport.DefaultHandshakeTimeout),
		"transport.DefaultMaxQueuedBytes":    transport.DefaultMaxQueuedBytes,
		"transport.DefaultMessageTimeout":    int64(transport.DefaultMessageTimeout),
		"rpc.DefaultMaxBacklog":              DefaultMaxBacklog,
		"rpc.DefaultMaxBacklogBytes":         DefaultMaxBacklogBytes,
	}
	constant := regexp.MustCompile("`((?:rpc|transport)\\.Default[A-Za-z]+)`")
	value := regexp.MustCompile(`^(\d+)(?: (s|bytes))?\b`)
	seen := map[string]bool{}
	for _, row := range protocolTableRows(doc, regexp.MustCompile(`.`)) {
		for i, cell := range row {
			cm := constant.FindStringSubmatch(cell)
			if cm == nil || i == 0 {
				continue
			}
			name := cm[1]
			w, ok := want[name]
			if !ok {
				t.Errorf("limits table: unknown constant %s", name)
				continue
			}
			vm := value.FindStringSubmatch(row[i-1])
			if vm == nil {
				t.Errorf("limits table: the default of %s is %q, want a number", name, row[i-1])
				continue
			}
			got, _ := strconv.ParseInt(vm[1], 10, 64)
			if vm[2] == "s" {
				got *= int64(time.Second)
			}
			if got != w {
				t.Errorf("limits table: %s is %q in the document, %d in the code", name, row[i-1], w)
			}
			seen[name] = true
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the limits table has no row for %s", name)
		}
	}
}
