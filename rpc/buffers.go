package rpc

// Encode buffers are recycled: the transport hands a message's buffer back
// once its bytes are written, and the next encode reuses it. Free lists are
// buffered channels by size class (no allocation to put or get, unlike a
// sync.Pool of slices), bounded so that a burst does not pin memory.

var bufClasses = [...]int{512, 4096 + 512, 16 << 10, 64 << 10}

// freeBufs holds up to freePerClass idle buffers of each class.
const freePerClass = 256

var freeBufs = func() (f [len(bufClasses)]chan []byte) {
	for i := range f {
		f[i] = make(chan []byte, freePerClass)
	}
	return f
}()

// classOf returns the smallest class that holds n bytes, or -1.
func classOf(n int) int {
	for i, c := range bufClasses {
		if n <= c {
			return i
		}
	}
	return -1
}

// getBuf returns an empty buffer with room for n bytes.
func getBuf(n int) []byte {
	i := classOf(n)
	if i < 0 {
		return make([]byte, 0, n)
	}
	select {
	case b := <-freeBufs[i]:
		return b
	default:
		return make([]byte, 0, bufClasses[i])
	}
}

// recycler returns buffers to their class; it is the transport.Recycler of
// every message this package encodes.
type recycler struct{}

func (recycler) Recycle(b []byte) {
	i := classOf(cap(b))
	if i < 0 || cap(b) != bufClasses[i] {
		return // not one of ours, or grew: let the GC have it
	}
	select {
	case freeBufs[i] <- b[:0]:
	default:
	}
}
