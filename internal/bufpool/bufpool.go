// Package bufpool recycles message buffers by size class, so that sending
// and receiving do not allocate (and keep the garbage collector busy) for
// every message.
//
// Buffers live in one sync.Pool per class: getting and putting are per-P and
// lock-free, and an idle process gives the memory back to the collector.
// A sync.Pool holds interface values, and putting a []byte in one would
// allocate its header each time, so buffers travel in *[]byte holders that
// are themselves recycled.
package bufpool

import "sync"

// sizes are the class capacities: 2^k + 2^(k-3) for k = 8..16, so that a
// message of a power-of-two payload plus a small envelope (4 KiB and a few
// header bytes, say) fits the class named after its payload. A buffer is at
// most 2.25 times the size asked for.
var sizes = [...]int{288, 576, 1152, 2304, 4608, 9216, 18432, 36864, 73728}

// MaxSize is the largest pooled capacity; larger buffers are allocated
// exactly and left to the collector.
const MaxSize = 73728

var (
	pools   [len(sizes)]sync.Pool // of *[]byte holding a buffer of the class
	holders = sync.Pool{New: func() any { return new([]byte) }}
)

// class returns the smallest class that holds n bytes, or -1.
func class(n int) int {
	for i, s := range sizes {
		if n <= s {
			return i
		}
	}
	return -1
}

// Get returns an empty buffer with room for at least n bytes.
func Get(n int) []byte {
	i := class(n)
	if i < 0 {
		return make([]byte, 0, n)
	}
	h, _ := pools[i].Get().(*[]byte)
	if h == nil {
		return make([]byte, 0, sizes[i])
	}
	b := *h
	*h = nil
	holders.Put(h)
	return b[:0]
}

// Put gives b back for reuse. The caller must not use b (or anything sliced
// from it) afterwards. Buffers that did not come from Get, or that grew, are
// left to the collector.
func Put(b []byte) {
	i := class(cap(b))
	if i < 0 || cap(b) != sizes[i] {
		return
	}
	h := holders.Get().(*[]byte)
	*h = b[:0]
	pools[i].Put(h)
}

// Grow returns a buffer holding b's bytes with room for at least n more,
// and puts b back.
func Grow(b []byte, n int) []byte {
	nb := append(Get(max(len(b)+n, 2*cap(b))), b...)
	Put(b)
	return nb
}

// Fit returns b if it is in the smallest class that holds its bytes, or else
// a copy in that class (b goes back), so that a buffer handed on does not pin
// more memory than its class allows. Past MaxSize, b is kept if it has at
// most an eighth of its length to spare; otherwise the bytes get a buffer of
// exactly their length.
func Fit(b []byte) []byte {
	i := class(len(b))
	if i >= 0 && cap(b) == sizes[i] || i < 0 && cap(b)-len(b) <= len(b)/8 {
		return b
	}
	var nb []byte
	if i < 0 {
		nb = make([]byte, len(b))
		copy(nb, b)
	} else {
		nb = append(Get(len(b)), b...)
	}
	Put(b)
	return nb
}

// Pooled reports whether b has the capacity of a class, so that Put keeps it.
func Pooled(b []byte) bool {
	i := class(cap(b))
	return i >= 0 && cap(b) == sizes[i]
}

// Recycler is a transport.Recycler that puts buffers back with Put.
type Recycler struct{}

// Recycle calls Put(b).
func (Recycler) Recycle(b []byte) { Put(b) }
