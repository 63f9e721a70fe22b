package rpc

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSwarSpecial holds the eight-bytes-at-a-time test to the byte table,
// for every byte value in every position, and for random words.
func TestSwarSpecial(t *testing.T) {
	check := func(b []byte) {
		t.Helper()
		want := false
		for _, c := range b {
			want = want || !jsonStrPlain[c]
		}
		if got := swarSpecial(binary.LittleEndian.Uint64(b)); got != want {
			t.Fatalf("swarSpecial(% x) = %v, want %v", b, got, want)
		}
	}
	for pos := range 8 {
		for v := range 256 {
			for _, fill := range []byte{'a', 0x80, 0xff, 0x21, 0x5d} {
				b := []byte{fill, fill, fill, fill, fill, fill, fill, fill}
				b[pos] = byte(v)
				check(b)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 8)
	for range 200000 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		check(b)
	}
}

// TestPlainRun holds the word-at-a-time run to the byte table: it stops at
// the word holding the first special byte, wherever that is.
func TestPlainRun(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 100 {
		d := make([]byte, n)
		for i := range d {
			d[i] = 'a' + byte(r.IntN(26))
		}
		for special := -1; special < n; special++ {
			for _, c := range []byte{'"', '\\', 0x00, 0x1f} {
				if special >= 0 {
					d[special] = c
				}
				first := n
				for i, c := range d {
					if !jsonStrPlain[c] {
						first = i
						break
					}
				}
				got := plainRun(d)
				if got%8 != 0 || got > first || first-got >= 8 && got+8 <= n {
					t.Fatalf("plainRun(%q) = %d; the first special byte is at %d", d, got, first)
				}
				if special >= 0 {
					d[special] = 'a'
				}
			}
		}
	}
}

// TestPlainPrefix holds plainPrefix to the byte table: it finds the first
// special byte exactly, wherever it is, with others after it or not.
func TestPlainPrefix(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := range 100 {
		d := make([]byte, n)
		for range 50 {
			for i := range d {
				d[i] = 'a' + byte(r.IntN(26))
				if r.IntN(12) == 0 { // specials and their neighbours in value, anywhere
					d[i] = []byte{'"', '\\', 0x00, 0x1f, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff}[r.IntN(12)]
				}
			}
			first := n
			for i, c := range d {
				if !jsonStrPlain[c] {
					first = i
					break
				}
			}
			if got := plainPrefix(d); got != first {
				t.Fatalf("plainPrefix(%q) = %d, want %d", d, got, first)
			}
		}
	}
}

func BenchmarkScanString(b *testing.B) {
	for _, n := range []int{64, 4096} {
		data := []byte(`"` + strings.Repeat("abcdefgh", n/8) + `"`)
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if !ValidJSON(data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
