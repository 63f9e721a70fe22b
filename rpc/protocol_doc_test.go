package rpc

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
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
//     names the kind. The second line is always "ext length"; the lines up to
//     where the extension block ends are its entries: "tag", "entry length",
//     then for tag 1 "key length", "key" and "value" (a line that would have
//     no bytes, an empty key or value, is left out), for other tags "entry
//     data". Every length is checked against the lines it covers. A bare
//     "hex" block round-trips: decodeBinary gives the described message and
//     appendBinary gives the bytes. A word after "hex" says what a receiver
//     does with bytes the Go encoder does not write that way: "received"
//     (decoded as described: unknown entries skipped, or an ignorable kind
//     dropped), "answered" (an invalid request, whose error reply is another
//     hex block of the document), "dropped" (an invalid notification) or
//     "malformed" (a protocol error).
//   - a fenced block tagged "json" followed by attributes: kind=<kind> (one
//     message of that kind), batch kinds=<k1>,<k2>,... (a batch), or
//     fatal=<code> (one error for the whole message); optionally id=<JSON
//     id>, code=<n>, timeout=<Go duration>, retryAfter=<Go duration>,
//     reason=<Go-quoted string>, meta=<JSON object without spaces> (the
//     message's metadata; required when it has some), maxMetadata=<entries>,<bytes>
//     (the receiver's bound, default rpc.DefaultMaxMetadata and
//     rpc.DefaultMaxMetadataBytes), exact (appendJSON writes the block byte for
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
	kindPacked:       "packed",
	kindStreamItem:   "stream result",
	kindStreamCredit: "stream credit",
}

func protocolKindByName(name string) (kind, bool) {
	for k, n := range protocolKindNames {
		if n == name {
			return k, true
		}
	}
	return 0, false
}

// protocolHexModes are the words that may follow "hex" (see the top of the file).
var protocolHexModes = map[string]bool{"": true, "received": true, "answered": true, "dropped": true, "malformed": true, "packed": true}

// protocolHeadingName is the word a hex example's heading must contain.
func protocolHeadingName(k kind) string {
	switch name, ok := protocolKindNames[k]; {
	case ok && k != kindInvalid:
		return name
	case k >= kindFirstIgnorable:
		return "ignorable"
	}
	return "reserved"
}

func TestProtocolDocBinaryExamples(t *testing.T) {
	_, blocks := readProtocolDoc(t)
	seen := map[string]int{}
	var (
		dumps   = map[string]bool{} // the bytes of every hex block, as hex
		replies []string            // the error replies answered examples call for
	)
	for _, b := range blocks {
		tag, mode, _ := strings.Cut(b.info, " ")
		if tag != "hex" || mode == "packed" { // packed: TestProtocolDocPackedExamples
			continue
		}
		where := protocolDocPath + ":" + strconv.Itoa(b.line)
		t.Run("line "+strconv.Itoa(b.line), func(t *testing.T) {
			if !protocolHexModes[mode] {
				t.Fatalf("%s: unknown hex block mode %q", where, mode)
			}
			data, want, ex := protocolHexExample(t, b)
			if t.Failed() {
				return
			}
			dumps[hex.EncodeToString(data)] = true
			if name := protocolHeadingName(want.kind); !strings.Contains(strings.ToLower(b.heading), name) {
				t.Errorf("%s: a %s example under the heading %q", where, name, b.heading)
			}
			var got message
			err := decodeBinary(data, &got, nil, testMeta)
			if mode == "malformed" {
				if !errors.Is(err, errMalformed) {
					t.Errorf("%s: decodeBinary(% x) = %v, want a malformed message", where, data, err)
				}
				seen["malformed"]++
				return
			}
			if err != nil {
				t.Fatalf("%s: decodeBinary(% x): %v", where, data, err)
			}
			enc := appendBinary(nil, &want)
			switch mode {
			case "":
				if want.kind < kindRequest || want.kind > kindShutdown {
					t.Fatalf("%s: a round-trip example of kind %d, which the Go encoder never writes", where, want.kind)
				}
				if d := protocolDiff(&got, &want); d != "" {
					t.Errorf("%s: decodeBinary gives a different message than the document describes: %s", where, d)
				}
				if !bytes.Equal(enc, data) {
					t.Errorf("%s: appendBinary of the described message gives\n% x\nthe document shows\n% x", where, enc, data)
				}
				seen[protocolKindNames[want.kind]]++
				if len(want.meta) > 0 {
					seen["metadata "+protocolKindNames[want.kind]]++
				}
			case "received":
				if want.kind >= kindFirstIgnorable {
					if got.kind != kindIgnored {
						t.Errorf("%s: kind %d decoded as %s, want it ignored", where, want.kind, protocolKindNames[got.kind])
					}
					seen["ignorable"]++
				} else if d := protocolDiff(&got, &want); d != "" {
					t.Errorf("%s: decodeBinary gives a different message than the document describes: %s", where, d)
				}
				if bytes.Equal(enc, data) {
					t.Errorf("%s: the Go encoder writes these bytes: drop \"received\"", where)
				}
				if ex.unknownTags > 0 {
					seen["unknown tag"]++
				}
			case "answered", "dropped":
				if got.kind != kindInvalid || got.err == nil || got.err.Code != CodeInvalidRequest {
					t.Fatalf("%s: decoded as %s (%v), want an invalid %s", where, protocolKindNames[got.kind], got.err, protocolKindNames[want.kind])
				}
				if got.unanswerable != (mode == "dropped") || got.unanswerable != (want.kind == kindNotification) {
					t.Errorf("%s: a %s %s, unanswerable %v", where, mode, protocolKindNames[want.kind], got.unanswerable)
				}
				if mode == "answered" {
					if got.id != want.id {
						t.Errorf("%s: the refusal has id %d, the request %d", where, got.id.n, want.id.n)
					}
					replies = append(replies, hex.EncodeToString(appendBinary(nil, &message{kind: kindError, id: got.id, err: got.err})))
				}
				seen[mode]++
			}
		})
	}
	for i, r := range replies {
		if !dumps[r] {
			t.Errorf("answered example %d: the document shows no hex block of the reply the runtime sends: %s", i+1, r)
		}
	}
	for k := kindRequest; k <= kindShutdown; k++ {
		if seen[protocolKindNames[k]] == 0 {
			t.Errorf("the document has no hex example of a %s (kind %d)", protocolKindNames[k], k)
		}
	}
	for _, what := range []string{"metadata request", "metadata notification", "ignorable", "unknown tag", "answered", "dropped", "malformed"} {
		if seen[what] == 0 {
			t.Errorf("the document has no hex example of: %s", what)
		}
	}
}

var protocolHexField = regexp.MustCompile(`^([a-z][a-z -]*[a-z]): (.*)$`)

// protocolHexExtra is what a hex block says beyond the message.
type protocolHexExtra struct {
	unknownTags int // entries of tags other than metadata
}

// protocolHexExample reads a hex block: the bytes, and the message its field
// annotations describe. It checks that each line's bytes encode its value,
// and that every length covers the lines it should.
func protocolHexExample(t *testing.T, b protocolDocBlock) ([]byte, message, protocolHexExtra) {
	t.Helper()
	var (
		all     []byte
		m       message
		ex      protocolHexExtra
		textLen = -1 // announced by the last "... length" line, -1 if none pending

		extEnd    = -1 // offset where the extension block ends, once "ext length" is read
		extDone   bool // a field after the block has been read
		entryEnd  = -1 // offset where the current entry ends
		entryTag  uint64
		key       string // the current metadata entry's key
		keyOpen   bool   // a metadata entry whose key was read and not yet stored
		lastWhere string
	)
	closeEntry := func(where string, at int) {
		if keyOpen { // no value line: the value is empty
			m.meta[key] = ""
			keyOpen = false
		}
		if entryEnd >= 0 && at != entryEnd {
			t.Errorf("%s: the entry's length says it ends at byte %d, its lines end at %d", where, entryEnd, at)
		}
		entryEnd = -1
	}
	closeExt := func(where string, at int) {
		if extDone {
			return
		}
		extDone = true
		closeEntry(where, at)
		if extEnd >= 0 && at != extEnd {
			t.Errorf("%s: the ext length says the block ends at byte %d, its entries end at %d", where, extEnd, at)
		}
	}
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
		start := len(all)
		all = append(all, lineBytes...)
		lastWhere = where
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
		quoted := func() string {
			q, err := strconv.QuotedPrefix(value)
			if err != nil {
				t.Errorf("%s: %s: want a quoted string, got %q", where, name, value)
				return ""
			}
			s, _ := strconv.Unquote(q)
			if s != string(lineBytes) {
				t.Errorf("%s: %s %q, but the line's bytes are %q", where, name, s, lineBytes)
			}
			return s
		}
		textValue := func() string {
			s := quoted()
			if textLen != len(lineBytes) {
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

		// Where the line may be: the kind first, then the ext length, the
		// block's entries, then the kind's fields.
		switch name {
		case "kind":
			if start != 0 {
				t.Errorf("%s: the kind is not the first byte", where)
			}
		case "ext length":
			if start != 1 {
				t.Errorf("%s: the ext length does not follow the kind byte", where)
			}
		case "tag", "entry length", "key length", "key", "value", "entry data":
			if extEnd < 0 || extDone {
				t.Errorf("%s: %s outside the extension block", where, name)
			} else if len(all) > extEnd {
				t.Errorf("%s: %s runs past the end of the extension block (byte %d)", where, name, extEnd)
			}
			if name != "tag" && entryEnd < 0 && name != "entry length" {
				t.Errorf("%s: %s before the entry's length", where, name)
			}
		default:
			if extEnd < 0 {
				t.Errorf("%s: %s before the ext length", where, name)
			}
			closeExt(where, start)
		}
		if textLen >= 0 && name != "key" && name != "method" && name != "message" && name != "value" {
			if textLen > 0 {
				t.Errorf("%s: the text announced by the length before has no line", where)
			}
			textLen = -1 // an empty text has no line
		}

		switch name {
		case "kind":
			v := intValue()
			if len(lineBytes) != 1 || int64(lineBytes[0]) != v {
				t.Errorf("%s: kind %d, the line shows % x", where, v, lineBytes)
			}
			m.kind = kind(v)
		case "ext length":
			extEnd = len(all) + int(uvarintLine())
		case "tag":
			closeEntry(where, start)
			entryTag = uvarintLine()
			if entryTag != extMetadata {
				ex.unknownTags++
			}
		case "entry length":
			entryEnd = len(all) + int(uvarintLine())
			if extEnd >= 0 && entryEnd > extEnd {
				t.Errorf("%s: the entry would end at byte %d, after its block (%d)", where, entryEnd, extEnd)
			}
		case "key length":
			if entryTag != extMetadata {
				t.Errorf("%s: a key in an entry of tag %d", where, entryTag)
			}
			textLen = int(uvarintLine())
			if m.meta == nil {
				m.meta = Metadata{}
			}
			key, keyOpen = "", true
		case "key":
			key = textValue()
		case "value":
			if !keyOpen {
				t.Errorf("%s: a value without a key length before it", where)
			}
			if textLen > 0 {
				t.Errorf("%s: the key announced before has no line", where)
			}
			textLen = -1
			if m.meta == nil {
				m.meta = Metadata{}
			}
			m.meta[key] = quoted()
			keyOpen = false
		case "entry data":
			if entryTag == extMetadata {
				t.Errorf("%s: entry data in a metadata entry: write key length, key and value", where)
			}
			rawValue()
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
			m.reason = quoted()
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
		case "payload": // the body of a kind this runtime does not know
			rawValue()
		default:
			t.Errorf("%s: unknown field %q", where, name)
		}
	}
	if len(all) == 0 {
		t.Errorf("%s:%d: empty hex block", protocolDocPath, b.line)
		return all, m, ex
	}
	closeExt(lastWhere, len(all))
	if textLen > 0 {
		t.Errorf("%s: the text announced by the last length has no line", lastWhere)
	}
	return all, m, ex
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
	if !sameMetadata(got.meta, want.meta) {
		add("metadata", got.meta, want.meta)
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
	case Metadata:
		b, _ := json.Marshal(v)
		return string(b)
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
		lim := testMeta
		if v, ok := attrs["maxMetadata"]; ok {
			e, by, _ := strings.Cut(v, ",")
			var err1, err2 error
			lim.entries, err1 = strconv.Atoi(e)
			lim.bytes, err2 = strconv.Atoi(by)
			if err1 != nil || err2 != nil {
				t.Errorf("%s: maxMetadata=%s, want <entries>,<bytes>", where, v)
				continue
			}
		}
		msgs, batch, fatal := decodeJSON([]byte(text), nil, nil, DefaultMaxBatch, lim)
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
			if len(m.meta) > 0 {
				seen["metadata "+attrs["kind"]]++
			}
			if _, ok := attrs["maxMetadata"]; ok {
				seen["over the metadata bound"]++
			}
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
	for _, k := range []string{"request", "notification", "result", "error", "cancel", "shutdown", "invalid", "batch", "fatal",
		"metadata request", "metadata notification", "over the metadata bound"} {
		if seen[k] == 0 {
			t.Errorf("the document has no JSON example of %s", k)
		}
	}
}

func protocolCheckJSONAttrs(t *testing.T, where string, attrs map[string]string, m *message) {
	t.Helper()
	for key, val := range attrs {
		switch key {
		case "kind", "exact", "answered", "maxMetadata":
		case "meta":
			var want Metadata
			if err := json.Unmarshal([]byte(val), &want); err != nil || len(want) == 0 {
				t.Errorf("%s: meta=%s is not a JSON object of strings with members (%v)", where, val, err)
			} else if !sameMetadata(m.meta, want) {
				t.Errorf("%s: metadata %s, the document says %s", where, protocolText(m.meta), val)
			}
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
	if _, ok := attrs["meta"]; !ok && len(m.meta) > 0 {
		t.Errorf("%s: the message has metadata %s, the document says none (add meta=)", where, protocolText(m.meta))
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
	var rowOf [256]string // the first row that covers each kind byte
	for _, row := range protocolTableRows(doc, regexp.MustCompile(`^0x[0-9a-f]{2}(?:–0x[0-9a-f]{2})?$`)) {
		lo, _ := strconv.ParseUint(row[0][2:4], 16, 8)
		hi := lo
		if len(row[0]) > 4 {
			hi, _ = strconv.ParseUint(row[0][len(row[0])-2:], 16, 8)
		}
		if len(row) < 2 || hi < lo {
			t.Errorf("kind table row %q: want a kind byte or a range, and a name", row)
			continue
		}
		for v := lo; v <= hi; v++ {
			b := byte(v)
			if rowOf[b] != "" {
				t.Errorf("kind table rows %q and %q both cover 0x%02x", rowOf[b], row[0], b)
			}
			rowOf[b] = row[0]
			// A frame of that kind with an empty extension block and no
			// fields: a receiver tells the three ranges apart by the kind alone.
			var m message
			err := decodeBinary([]byte{b, 0}, &m, nil, testMeta)
			name, known := protocolKindNames[kind(b)]
			switch {
			case row[1] == "reserved" && !known:
				if !errors.Is(err, errMalformed) {
					t.Errorf("kind table: 0x%02x is reserved, but decodeBinary gives %v, want a malformed message", b, err)
				}
			case row[1] == "ignorable" && !known:
				if err != nil || m.kind != kindIgnored {
					t.Errorf("kind table: 0x%02x is ignorable, but decodeBinary gives %v, %s", b, err, protocolKindNames[m.kind])
				}
			case known && kind(b) != kindInvalid && name == row[1] && lo == hi:
			default:
				t.Errorf("kind table row %q: kind byte 0x%02x is %q in the code", row, b, name)
			}
		}
	}
	for v := 1; v < 256; v++ {
		if rowOf[v] == "" {
			t.Errorf("the kind table has no row for 0x%02x (%s)", v, protocolKindNames[kind(v)])
		}
	}
	if rowOf[0] != "" {
		t.Errorf("the kind table has a row for 0x00, which is no kind")
	}
	var m message
	if err := decodeBinary([]byte{0, 0}, &m, nil, testMeta); !errors.Is(err, errMalformed) {
		t.Errorf("kind 0x00: decodeBinary gives %v, want a malformed message", err)
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
		"rpc.DefaultMaxMetadata":             DefaultMaxMetadata,
		"rpc.DefaultMaxMetadataBytes":        DefaultMaxMetadataBytes,
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

// TestProtocolDocPackedExamples checks the "hex packed" examples: their
// bytes decode into notifications, and packing those notifications as the
// Go encoder does gives exactly the bytes shown.
func TestProtocolDocPackedExamples(t *testing.T) {
	_, blocks := readProtocolDoc(t)
	n := 0
	for _, b := range blocks {
		if b.info != "hex packed" {
			continue
		}
		n++
		where := protocolDocPath + ":" + strconv.Itoa(b.line)
		var data []byte
		for _, line := range strings.Split(b.body, "\n") {
			for _, f := range strings.Fields(line) {
				v, err := hex.DecodeString(f)
				if len(f) != 2 || err != nil {
					break
				}
				data = append(data, v...)
			}
		}
		msgs, batch, err := binaryWire{}.decode(data, nil, &interner{}, decodeLimits{meta: testMeta})
		if err != nil || !batch || len(msgs) < 2 {
			t.Fatalf("%s: decode(% x) = %d messages, batch %v, %v; want two or more notifications", where, data, len(msgs), batch, err)
		}
		var parts []transport.Message
		for _, m := range msgs {
			if m.kind != kindNotification {
				t.Fatalf("%s: a packed %s", where, protocolKindNames[m.kind])
			}
			parts = append(parts, transport.Message{Data: appendBinary(nil, &m)})
		}
		if got := (binaryPacker{}).Pack(nil, parts); !bytes.Equal(got, data) {
			t.Errorf("%s: packing the notifications gives\n% x\nthe document shows\n% x", where, got, data)
		}
	}
	if n == 0 {
		t.Fatal("docs/PROTOCOL.md has no packed example")
	}
}
