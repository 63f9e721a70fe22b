package topic_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wsrpc/wsrpc/internal/topic"
)

type pair struct {
	pattern string
	v       int
}

// matches returns the values of ix matching tp, sorted.
func matches(ix *topic.Index[int], tp string) []int {
	var got []int
	ix.Match(tp, func(v int) { got = append(got, v) })
	slices.Sort(got)
	return got
}

func TestIndex(t *testing.T) {
	var ix topic.Index[int]
	ix.Add("a.b", 1)
	ix.Add("a.b", 2)
	ix.Add("a.b", 1) // already there
	ix.Add("a.*", 3)
	ix.Add("a.>", 4)
	ix.Add(">", 5)
	ix.Add("*.b", 6)
	ix.Add("a", 7)
	ix.Add("*.*.c", 8)
	if got := ix.Len(); got != 8 {
		t.Fatalf("Len() = %d, want 8", got)
	}
	tests := []struct {
		give string
		want []int
	}{
		{give: "a.b", want: []int{1, 2, 3, 4, 5, 6}},
		{give: "a.c", want: []int{3, 4, 5}},
		{give: "a", want: []int{5, 7}},
		{give: "a.b.c", want: []int{4, 5, 8}},
		{give: "x.b", want: []int{5, 6}},
		{give: "x.y.z", want: []int{5}},
	}
	for _, tt := range tests {
		if got := matches(&ix, tt.give); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if ix.Remove("a.b", 3) || ix.Remove("a.c", 1) || ix.Remove("a.*.c", 8) || ix.Remove("*", 3) {
		t.Error("Remove of a pair not there reported true")
	}
	if !ix.Remove("a.b", 1) || ix.Remove("a.b", 1) {
		t.Error("Remove(a.b, 1) twice: want true then false")
	}
	if got := matches(&ix, "a.b"); !slices.Equal(got, []int{2, 3, 4, 5, 6}) {
		t.Errorf("after Remove: Match(a.b) = %v", got)
	}
	for _, p := range []pair{{"a.b", 2}, {"a.*", 3}, {"a.>", 4}, {">", 5}, {"*.b", 6}, {"a", 7}, {"*.*.c", 8}} {
		if !ix.Remove(p.pattern, p.v) {
			t.Errorf("Remove(%q, %d) = false", p.pattern, p.v)
		}
	}
	if ix.Len() != 0 || ix.Nodes() != 0 {
		t.Errorf("emptied: Len() = %d, %d trie nodes; want 0, 0", ix.Len(), ix.Nodes())
	}
	if got := matches(&ix, "a.b"); len(got) != 0 {
		t.Errorf("emptied: Match(a.b) = %v", got)
	}
}

func TestIndexZeroValue(t *testing.T) {
	var ix topic.Index[string]
	ix.Match("a.b", func(string) { t.Error("empty index matched") })
	if ix.Remove("a.b", "x") || ix.Remove("a.*", "x") || ix.Len() != 0 {
		t.Error("empty index: Remove or Len")
	}
}

// TestIndexAgainstBruteForce adds and removes random pairs and checks
// every Match against a scan of all pairs with topic.Match.
func TestIndexAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		var ix topic.Index[int]
		ref := map[pair]bool{}
		for op := range 400 {
			p := pair{randPattern(r), r.IntN(4)}
			if r.IntN(3) == 0 {
				p.pattern = randTopic(r) // an exact topic
			}
			if r.IntN(5) < 3 {
				ix.Add(p.pattern, p.v)
				ref[p] = true
			} else if got := ix.Remove(p.pattern, p.v); got != ref[p] {
				t.Fatalf("round %d op %d: Remove(%q, %d) = %v, want %v", round, op, p.pattern, p.v, got, ref[p])
			} else {
				delete(ref, p)
			}
			if ix.Len() != len(ref) {
				t.Fatalf("round %d op %d: Len() = %d, want %d", round, op, ix.Len(), len(ref))
			}
			tp := randTopic(r)
			got := map[int]int{} // value → calls; a value may be added under several patterns
			ix.Match(tp, func(v int) { got[v]++ })
			want := map[int]int{}
			for q := range ref {
				if refMatch(q.pattern, tp) {
					want[q.v]++
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d op %d: Match(%q) = %v, want %v (pairs %v)", round, op, tp, got, want, ref)
			}
		}
		// Remove everything: the trie must be pruned back to its root.
		for p := range ref {
			if !ix.Remove(p.pattern, p.v) {
				t.Fatalf("round %d: Remove(%q, %d) = false", round, p.pattern, p.v)
			}
		}
		if ix.Len() != 0 || ix.Nodes() != 0 {
			t.Fatalf("round %d: emptied: Len() = %d, %d trie nodes", round, ix.Len(), ix.Nodes())
		}
	}
}

func TestIndexChurnDoesNotGrow(t *testing.T) {
	var ix topic.Index[int]
	ix.Add("keep.*", 0)
	base := ix.Nodes()
	for i := range 1000 {
		p := fmt.Sprintf("u%d.*.x%d.>", i, i)
		ix.Add(p, i)
		ix.Remove(p, i)
	}
	if got := ix.Nodes(); got != base {
		t.Errorf("after churn: %d trie nodes, want %d", got, base)
	}
}

func TestIndexMatchDoesNotAllocate(t *testing.T) {
	ix := benchIndex(1000)
	tests := []struct {
		give string
		want int // matches
	}{
		{give: "t1.s1.e1", want: 1},  // exact
		{give: "t3.x.e3", want: 1},   // t3.*.e3
		{give: "t4.s4.x.y", want: 1}, // t4.s4.>
		{give: "q.s5.e5", want: 1},   // *.s5.e5
		{give: "none.of.these", want: 0},
	}
	for _, tt := range tests {
		n := 0
		count := func(int) { n++ }
		if a := testing.AllocsPerRun(100, func() { ix.Match(tt.give, count) }); a != 0 {
			t.Errorf("Match(%q): %v allocations, want 0", tt.give, a)
		}
		if n != tt.want*101 { // AllocsPerRun runs it once more to warm up
			t.Errorf("Match(%q): %d matches in 101 runs, want %d each", tt.give, n, tt.want)
		}
	}
}

// benchIndex returns an Index of n patterns: half exact topics, the rest
// with "*" or ">" in various places, over many first tokens.
func benchIndex(n int) *topic.Index[int] {
	var ix topic.Index[int]
	for i, p := range benchPatterns(n) {
		ix.Add(p, i)
	}
	return &ix
}

func benchPatterns(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		a, b, c := i%97, i%13, i%7
		var p string
		switch i % 6 {
		case 0, 1, 2:
			p = fmt.Sprintf("t%d.s%d.e%d", a, b, i)
		case 3:
			p = fmt.Sprintf("t%d.*.e%d", a, c)
		case 4:
			p = fmt.Sprintf("t%d.s%d.>", a, b)
		case 5:
			p = fmt.Sprintf("*.s%d.e%d", b, i)
		}
		ps[i] = p
	}
	return ps
}

var benchTopics = []struct{ name, topic string }{
	{"exact", "t1.s1.e1"},      // an exact topic and wildcard patterns
	{"wildcard", "t3.s3.e3"},   // wildcard patterns only
	{"deep", "t5.s5.x.y.z.w"},  // a ">" pattern only
	{"nomatch", "zz.yy.xx.ww"}, // nothing
}

// BenchmarkIndexMatch matches topics against 10,000 patterns; its scan
// sub-benchmarks are the baseline of calling topic.Match on each pattern.
func BenchmarkIndexMatch(b *testing.B) {
	const n = 10000
	ix := benchIndex(n)
	for _, bt := range benchTopics {
		b.Run(bt.name, func(b *testing.B) {
			b.ReportAllocs()
			m := 0
			for b.Loop() {
				ix.Match(bt.topic, func(int) { m++ })
			}
			b.ReportMetric(float64(m)/float64(b.N), "matches/op")
		})
	}
	ps := benchPatterns(n)
	for _, bt := range benchTopics {
		b.Run("scan/"+bt.name, func(b *testing.B) {
			b.ReportAllocs()
			m := 0
			for b.Loop() {
				for _, p := range ps {
					if topic.Match(p, bt.topic) {
						m++
					}
				}
			}
			b.ReportMetric(float64(m)/float64(b.N), "matches/op")
		})
	}
}
