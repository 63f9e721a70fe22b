package topic_test

import (
	"testing"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/topic"
)

// FuzzTopic checks that validation never panics, that its errors are
// short and printable, and that what it accepts behaves: a valid topic is
// a valid pattern without wildcards that matches and covers itself.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{"a", "a.b.c", "a..b", ".", "a.*", "a.>", ">", "a*", "a.>.b", "a b", "\xff", "caf\u00e9"} {
		f.Add(s)
	}
	small := topic.Limits{MaxLen: 8, MaxTokens: 3}
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range []topic.Limits{topic.DefaultLimits, small} {
			terr, perr := l.Topic(s), l.Pattern(s)
			for _, err := range []error{terr, perr} {
				if err != nil && (!utf8.ValidString(err.Error()) || len(err.Error()) > 250) {
					t.Fatalf("error for %q: %d bytes, valid UTF-8 %v: %s",
						s, len(err.Error()), utf8.ValidString(err.Error()), err)
				}
			}
			if terr == nil {
				if perr != nil {
					t.Fatalf("%q: valid topic, invalid pattern: %v", s, perr)
				}
				if topic.IsPattern(s) {
					t.Fatalf("%q: valid topic, IsPattern true", s)
				}
				if !topic.Match(s, s) {
					t.Fatalf("%q: valid topic, Match(t, t) false", s)
				}
			}
			if perr == nil {
				if (terr == nil) == topic.IsPattern(s) {
					t.Fatalf("%q: valid pattern, IsPattern %v but Topic: %v", s, topic.IsPattern(s), terr)
				}
				if !topic.Covers(s, s) || !topic.Covers(">", s) {
					t.Fatalf("%q: valid pattern, Covers(p, p) or Covers(>, p) false", s)
				}
				if len(s) > l.MaxLen && l.MaxLen > 0 {
					t.Fatalf("%q: valid pattern over MaxLen %d", s, l.MaxLen)
				}
			}
		}
	})
}

// FuzzMatch checks Match against refMatch on any strings, Covers against
// Match for concrete topics, and an Index of one pattern against Match.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"a.*", "a.b"}, {"a.>", "a.b.c"}, {">", "a"}, {"a.>", "a"}, {"*.b", "a.b"},
		{"a.b", "a.b"}, {"a.*.c", "a.b"}, {"", ""}, {"a.", "a."}, {"a.>.b", "a.>.b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, tp string) {
		got := topic.Match(pattern, tp)
		if want := refMatch(pattern, tp); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference %v", pattern, tp, got, want)
		}
		if !topic.IsPattern(tp) {
			if c := topic.Covers(pattern, tp); c != got {
				t.Fatalf("Covers(%q, %q) = %v, Match %v", pattern, tp, c, got)
			}
		}
		var ix topic.Index[int]
		ix.Add(pattern, 1)
		n := 0
		ix.Match(tp, func(int) { n++ })
		if n != map[bool]int{false: 0, true: 1}[got] {
			t.Fatalf("Index{%q}.Match(%q): %d calls, Match %v", pattern, tp, n, got)
		}
		if !ix.Remove(pattern, 1) || ix.Len() != 0 || ix.Nodes() != 0 {
			t.Fatalf("Index{%q}: Remove left %d pairs, %d nodes", pattern, ix.Len(), ix.Nodes())
		}
	})
}
