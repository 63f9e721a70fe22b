package topic_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/internal/topic"
)

// refMatch is the obvious Match, on split tokens: the reference the
// tests and FuzzMatch compare topic.Match with.
func refMatch(pattern, t string) bool {
	ps, ts := strings.Split(pattern, "."), strings.Split(t, ".")
	for i, p := range ps {
		if p == ">" && i == len(ps)-1 {
			return len(ts) > i
		}
		if i >= len(ts) || (p != "*" && p != ts[i]) {
			return false
		}
	}
	return len(ps) == len(ts)
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a.b", "a.b", true},
		{"a.b", "a", false},
		{"a", "a.b", false},
		{"a.b", "a.c", false},
		{"ab", "a", false},
		{"a", "ab", false},
		{"a.b", "a.bc", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*.b", "a.b", true},
		{"*.b", "a.c", false},
		{"*.*", "a.b", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"a.>", "a", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "b.c", false},
		{"a.>", "ab.c", false},
		{"*.>", "a", false},
		{"*.>", "a.b", true},
		{"a.*.>", "a.b.c.d", true},
		{"a.*.>", "a.b", false},
		{"chat.*.x", "chat.room.x", true},
		// Invalid inputs: the same rule on the pieces, no panic.
		{"a.>.b", "a.>.b", true},
		{"a.>.b", "a.x.b", false},
		{"", "", true},
		{">", "", true},
		{"*", "", true},
		{"a.", "a.", true},
		{"a.", "a", false},
		{"a.*", "a.", true},
		{"a.>", "a.", true},
	}
	for _, tt := range tests {
		if got := topic.Match(tt.pattern, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.topic, got, tt.want)
		}
		if got := refMatch(tt.pattern, tt.topic); got != tt.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v (the reference is wrong)", tt.pattern, tt.topic, got, tt.want)
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		outer, inner string
		want         bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a.b", "a", false},
		{"a", "a.b", false},
		{"*", "a", true},
		{"*", "*", true},
		{"*", ">", false},
		{"a", "*", false},
		{"a", ">", false},
		{">", "a", true},
		{">", "*", true},
		{">", ">", true},
		{">", "a.b.c", true},
		{">", "*.>", true},
		{"chat.>", "chat.*.x", true},
		{"chat.>", "chat.>", true},
		{"chat.>", "chat.*", true},
		{"chat.>", "chat", false},
		{"chat.>", ">", false},
		{"chat.>", "*.x", false},
		{"chat.*", "chat.>", false},
		{"chat.*", "chat.x", true},
		{"chat.*", "chat.*", true},
		{"chat.*", "chat.x.y", false},
		{"chat.*.x", "chat.*.x", true},
		{"chat.*.x", "chat.a.x", true},
		{"chat.*.x", "chat.a.y", false},
		{"chat.*.x", "chat.>", false},
		{"chat.*.>", "chat.a.>", true},
		{"chat.*.>", "chat.>", false},
		{"chat.a.>", "chat.*.>", false},
		{"*.*", "*.>", false},
		{"*.>", "*.*", true},
		{"*.>", "*.*.>", true},
		{"*.*.>", "*.>", false},
		{"a.*", "a.b>", true}, // not a pattern's ">": one token
	}
	for _, tt := range tests {
		if got := topic.Covers(tt.outer, tt.inner); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.outer, tt.inner, got, tt.want)
		}
	}
}

// randPattern returns a valid pattern of 1 to 4 tokens from a small
// alphabet, so that random patterns often overlap.
func randPattern(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	toks := make([]string, n)
	for i := range toks {
		switch x := r.IntN(10); {
		case x < 2:
			toks[i] = "*"
		case x < 3 && i == n-1:
			toks[i] = ">"
		default:
			toks[i] = string(rune('a' + r.IntN(3)))
		}
	}
	return strings.Join(toks, ".")
}

// randTopic returns a concrete topic of 1 to 5 tokens from the alphabet of
// randPattern and one more letter.
func randTopic(r *rand.Rand) string {
	toks := make([]string, 1+r.IntN(5))
	for i := range toks {
		toks[i] = string(rune('a' + r.IntN(4)))
	}
	return strings.Join(toks, ".")
}

// witnesses returns concrete topics matched by pattern p, its wildcards
// replaced by a token ("zz") that no random pattern has: "*" by one, ">"
// by one and by eight. If some topic matched by p is not matched by a
// pattern q, one of these is not matched by q.
func witnesses(p string) []string {
	one := strings.ReplaceAll(p, "*", "zz")
	if !strings.HasSuffix(p, ">") {
		return []string{one}
	}
	one = strings.TrimSuffix(one, ">")
	return []string{one + "zz", one + strings.Repeat("zz.", 7) + "zz"}
}

// TestCoversMeansMatchImplies checks Covers against its definition on
// random valid patterns: Covers(outer, inner) exactly when every topic
// inner matches is matched by outer.
func TestCoversMeansMatchImplies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		outer, inner := randPattern(r), randPattern(r)
		want := true
		for _, w := range witnesses(inner) {
			if !topic.Match(inner, w) {
				t.Fatalf("witness %q of %q does not match it", w, inner)
			}
			want = want && topic.Match(outer, w)
		}
		if got := topic.Covers(outer, inner); got != want {
			t.Fatalf("Covers(%q, %q) = %v, want %v", outer, inner, got, want)
		}
		// And on concrete topics Covers is Match.
		tp := randTopic(r)
		if got, want := topic.Covers(outer, tp), topic.Match(outer, tp); got != want {
			t.Fatalf("Covers(%q, %q) = %v, Match = %v", outer, tp, got, want)
		}
		// Sound: inner's topics, wildcards filled at random, match outer.
		if topic.Covers(outer, inner) {
			for range 4 {
				if tp := fill(r, inner); !topic.Match(outer, tp) {
					t.Fatalf("Covers(%q, %q) but Match(%q, %q) is false", outer, inner, outer, tp)
				}
			}
		}
	}
}

// fill returns a random topic matched by pattern p.
func fill(r *rand.Rand, p string) string {
	toks := strings.Split(p, ".")
	var out []string
	for _, tok := range toks {
		switch tok {
		case "*":
			out = append(out, string(rune('a'+r.IntN(5))))
		case ">":
			for range 1 + r.IntN(3) {
				out = append(out, string(rune('a'+r.IntN(5))))
			}
		default:
			out = append(out, tok)
		}
	}
	return strings.Join(out, ".")
}

func TestMatchAgreesWithReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		p, tp := randPattern(r), randTopic(r)
		if got, want := topic.Match(p, tp), refMatch(p, tp); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference %v", p, tp, got, want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	var sink bool
	n := testing.AllocsPerRun(100, func() {
		sink = topic.Match("orders.*.>", "orders.eu.created.today") &&
			topic.Covers("orders.>", "orders.*.created")
	})
	if n != 0 {
		t.Errorf("Match and Covers: %v allocations, want 0", n)
	}
	_ = sink
}
