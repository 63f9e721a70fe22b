package topic_test

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/internal/topic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTopic(t *testing.T) {
	tests := []struct {
		give string
		want string // error text, "" for valid
	}{
		{give: "a", want: ""},
		{give: "orders.eu.created", want: ""},
		{give: "a-b_c:d/e#f", want: ""},
		{give: "caf\u00e9.\u65e5\u672c.\U0001F600", want: ""},
		{give: "1.2.3", want: ""},
		{give: "", want: `topic "": empty`},
		{give: ".", want: `topic ".": empty token at byte 0`},
		{give: ".a", want: `topic ".a": empty token at byte 0`},
		{give: "a.", want: `topic "a.": empty token at byte 2`},
		{give: "a..b", want: `topic "a..b": empty token at byte 2`},
		{give: "a b", want: `topic "a b": invalid character ' ' at byte 1 (no spaces or control characters)`},
		{give: "a.\tb", want: `topic "a.\tb": invalid character '\t' at byte 2 (no spaces or control characters)`},
		{give: "a\x00", want: `topic "a\x00": invalid character '\x00' at byte 1 (no spaces or control characters)`},
		{give: "a\x7f", want: `topic "a\x7f": invalid character '\x7f' at byte 1 (no spaces or control characters)`},
		{give: "a\nb", want: `topic "a\nb": invalid character '\n' at byte 1 (no spaces or control characters)`},
		{give: "ab\xffc", want: `topic "ab\xffc": invalid UTF-8 at byte 2`},
		{give: "a.\xc3", want: `topic "a.\xc3": invalid UTF-8 at byte 2`},
		{give: "\xed\xa0\x80", want: `topic "\xed\xa0\x80": invalid UTF-8 at byte 0`}, // a surrogate
		{give: "a.*", want: `topic "a.*": wildcard '*' at byte 2 (a topic has no wildcards; a pattern may)`},
		{give: ">", want: `topic ">": wildcard '>' at byte 0 (a topic has no wildcards; a pattern may)`},
		{give: "a*", want: `topic "a*": invalid character '*' at byte 1 (* and > are wildcards, for patterns only)`},
		{give: "a.b>c", want: `topic "a.b>c": invalid character '>' at byte 3 (* and > are wildcards, for patterns only)`},
		{give: "a.>.b", want: `topic "a.>.b": wildcard '>' at byte 2 (a topic has no wildcards; a pattern may)`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			assertErr(t, "Topic", topic.DefaultLimits.Topic(tt.give), tt.want)
		})
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		give string
		want string // error text, "" for valid
	}{
		{give: "a", want: ""},
		{give: "a.b.c", want: ""},
		{give: "*", want: ""},
		{give: ">", want: ""},
		{give: "a.*", want: ""},
		{give: "*.b", want: ""},
		{give: "*.*.*", want: ""},
		{give: "a.>", want: ""},
		{give: "*.>", want: ""},
		{give: "a.*.c.>", want: ""},
		{give: "", want: `pattern "": empty`},
		{give: "a..>", want: `pattern "a..>": empty token at byte 2`},
		{give: "a.*.", want: `pattern "a.*.": empty token at byte 4`},
		{give: "a.* ", want: `pattern "a.* ": '*' at byte 2 inside the token "* " (a wildcard must be a whole token)`},
		{give: "a.*.b c", want: `pattern "a.*.b c": invalid character ' ' at byte 5 (no spaces or control characters)`},
		{give: "a*", want: `pattern "a*": '*' at byte 1 inside the token "a*" (a wildcard must be a whole token)`},
		{give: "*a.b", want: `pattern "*a.b": '*' at byte 0 inside the token "*a" (a wildcard must be a whole token)`},
		{give: "a.**", want: `pattern "a.**": '*' at byte 2 inside the token "**" (a wildcard must be a whole token)`},
		{give: "a.b>", want: `pattern "a.b>": '>' at byte 3 inside the token "b>" (a wildcard must be a whole token)`},
		{give: ">>", want: `pattern ">>": '>' at byte 0 inside the token ">>" (a wildcard must be a whole token)`},
		{give: "a.>.b", want: `pattern "a.>.b": ">" at byte 2 is not the last token`},
		{give: ">.>", want: `pattern ">.>": ">" at byte 0 is not the last token`},
		{give: "a.\xff.>", want: `pattern "a.\xff.>": invalid UTF-8 at byte 2`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			assertErr(t, "Pattern", topic.DefaultLimits.Pattern(tt.give), tt.want)
		})
	}
}

func TestLimits(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name   string
		limits topic.Limits
		give   string
		want   string
	}{
		{name: "len at default", give: strings.Repeat("a", 256), want: ""},
		{name: "len over default", give: strings.Repeat("a", 257),
			want: `topic "` + strings.Repeat("a", 64) + `"...: 257 bytes, over the limit of 256`},
		{name: "len at limit", limits: topic.Limits{MaxLen: 5}, give: "a.b.c", want: ""},
		{name: "len over limit", limits: topic.Limits{MaxLen: 4}, give: "a.b.c",
			want: `topic "a.b.c": 5 bytes, over the limit of 4`},
		{name: "tokens at default", give: strings.Repeat("a.", 15) + "a", want: ""},
		{name: "tokens over default", give: strings.Repeat("a.", 16) + "a",
			want: `topic "` + strings.Repeat("a.", 16) + `a": 17 tokens, over the limit of 16`},
		{name: "tokens at limit", limits: topic.Limits{MaxTokens: 2}, give: "a.b", want: ""},
		{name: "tokens over limit", limits: topic.Limits{MaxTokens: 2}, give: "a.b.c",
			want: `topic "a.b.c": 3 tokens, over the limit of 2`},
		{name: "negative means default", limits: topic.Limits{MaxLen: -1, MaxTokens: -1}, give: long,
			want: `topic "` + strings.Repeat("a", 64) + `"...: 300 bytes, over the limit of 256`},
		{name: "big limits", limits: topic.Limits{MaxLen: 1000, MaxTokens: 1000}, give: long, want: ""},
		{name: "clipped at a rune boundary", limits: topic.Limits{MaxLen: 1000},
			give: strings.Repeat("a", 63) + strings.Repeat("\u00e9", 10) + " ",
			want: `topic "` + strings.Repeat("a", 63) + `"...: invalid character ' ' at byte 83 (no spaces or control characters)`},
		{name: "long token clipped", limits: topic.Limits{MaxLen: 1000},
			give: "x." + long + "*",
			want: `topic "x.` + strings.Repeat("a", 62) + `"...: invalid character '*' at byte 302 (* and > are wildcards, for patterns only)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertErr(t, "Topic", tt.limits.Topic(tt.give), tt.want)
			want := strings.Replace(tt.want, "topic ", "pattern ", 1)
			if strings.Contains(want, "wildcards") {
				return // a different error as a pattern
			}
			assertErr(t, "Pattern", tt.limits.Pattern(tt.give), want)
		})
	}
}

func TestPatternInsideTokenClipped(t *testing.T) {
	long := strings.Repeat("b", 100)
	err := topic.Limits{MaxLen: 1000}.Pattern("a." + long + ">")
	want := `pattern "a.` + strings.Repeat("b", 62) + `"...: '>' at byte 102 inside the token "` +
		strings.Repeat("b", 64) + `"... (a wildcard must be a whole token)`
	assertErr(t, "Pattern", err, want)
}

func TestIsPattern(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: "a", want: false},
		{give: "a.b", want: false},
		{give: "", want: false},
		{give: "a*", want: false},
		{give: "a.b>", want: false},
		{give: "*", want: true},
		{give: ">", want: true},
		{give: "a.*", want: true},
		{give: "*.a", want: true},
		{give: "a.*.b", want: true},
		{give: "a.>", want: true},
		{give: "a.>.b", want: true}, // invalid, but has a wildcard token
	}
	for _, tt := range tests {
		if got := topic.IsPattern(tt.give); got != tt.want {
			t.Errorf("IsPattern(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	for _, s := range []string{"orders.eu.created", "caf\u00e9.\u65e5\u672c"} {
		if n := testing.AllocsPerRun(100, func() { _ = topic.DefaultLimits.Topic(s) }); n != 0 {
			t.Errorf("Topic(%q): %v allocations, want 0", s, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = topic.DefaultLimits.Pattern("orders.*.>") }); n != 0 {
		t.Errorf("Pattern: %v allocations, want 0", n)
	}
}

func assertErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want valid", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: valid, want %s", what, want)
	case want != "" && err.Error() != want:
		t.Errorf("%s:\n got %s\nwant %s", what, err, want)
	}
}
