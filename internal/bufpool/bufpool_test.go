package bufpool

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGetHasRoomInTheSmallestClass(t *testing.T) {
	for _, tc := range []struct{ n, cap int }{
		{0, 288}, {1, 288}, {288, 288}, {289, 576}, {4096, 4608}, {4096 + 12, 4608},
		{4609, 9216}, {MaxSize, MaxSize}, {MaxSize + 1, MaxSize + 1}, {1 << 20, 1 << 20},
	} {
		b := Get(tc.n)
		if len(b) != 0 || cap(b) != tc.cap {
			t.Errorf("Get(%d): len %d cap %d, want 0 and %d", tc.n, len(b), cap(b), tc.cap)
		}
		if Pooled(b) != (tc.cap <= MaxSize) {
			t.Errorf("Pooled(Get(%d)) = %v", tc.n, Pooled(b))
		}
		Put(b)
	}
}

func TestPutKeepsOnlyClassBuffers(t *testing.T) {
	// None of these may come back from Get: their capacities are not a class's.
	for _, b := range [][]byte{nil, make([]byte, 0, 100), make([]byte, 0, 4096), make([]byte, 0, MaxSize+1)} {
		Put(b)
		if Pooled(b) {
			t.Errorf("cap %d reported pooled", cap(b))
		}
	}
	for range 100 {
		if b := Get(100); cap(b) != 288 {
			t.Fatalf("Get(100) returned cap %d", cap(b))
		}
	}
}

func TestGetReturnsEmptyRecycledBuffers(t *testing.T) {
	b := append(Get(10), "stale bytes"...)
	Put(b)
	for range 10 {
		c := Get(10)
		if len(c) != 0 {
			t.Fatalf("recycled buffer has length %d", len(c))
		}
		Put(c)
	}
}

func TestGrowKeepsTheBytes(t *testing.T) {
	b := append(Get(5), "hello"...)
	b = Grow(b[:cap(b)], 1)
	if cap(b) < 289 || !bytes.HasPrefix(b, []byte("hello")) || len(b) != 288 {
		t.Fatalf("Grow: len %d cap %d prefix %q", len(b), cap(b), b[:5])
	}
	big := Grow(make([]byte, MaxSize), 10)
	if len(big) != MaxSize || cap(big) < MaxSize+10 {
		t.Fatalf("Grow past MaxSize: len %d cap %d", len(big), cap(big))
	}
}

func TestFitMovesBytesToTheirClass(t *testing.T) {
	b := append(Get(9000), bytes.Repeat([]byte{7}, 100)...)
	f := Fit(b)
	if cap(f) != 288 || !bytes.Equal(f, bytes.Repeat([]byte{7}, 100)) {
		t.Fatalf("Fit: cap %d, bytes %v", cap(f), f[:3])
	}
	if g := Fit(f); &g[0] != &f[0] {
		t.Fatal("Fit copied a buffer already in its class")
	}
	large := make([]byte, MaxSize+5, 2*MaxSize)
	large[0] = 9
	lf := Fit(large)
	if len(lf) != MaxSize+5 || cap(lf) != MaxSize+5 || lf[0] != 9 {
		t.Fatalf("Fit past MaxSize: len %d cap %d", len(lf), cap(lf))
	}
	roomy := make([]byte, 80000, 80000+80000/8)
	if g := Fit(roomy); &g[0] != &roomy[0] {
		t.Fatal("Fit copied a large buffer with an eighth to spare")
	}
}
