package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"time"
)

// rssPeak samples this process's resident set (VmRSS in /proc/self/status)
// and its Go heap every interval on a goroutine of its own, from its start
// until stop, keeping the highest readings. It also resets the kernel's high-water mark
// (VmHWM, by writing 5 to /proc/self/clear_refs) at the start, so that
// stop can report the exact peak, which a sample may miss, where the kernel
// allows it.
type rssPeak struct {
	stopc  chan struct{}
	done   chan struct{}
	peak   int64 // KiB, written by the sampler, read after done
	heap   heapPeak
	hwmOK  bool // VmHWM was reset at the start
	errMsg string
}

// vmStatus reads the VmRSS and VmHWM lines of /proc/self/status, in KiB.
func vmStatus() (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	rss, hwm = -1, -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var v *int64
		switch string(name) {
		case "VmRSS":
			v = &rss
		case "VmHWM":
			v = &hwm
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, 0, fmt.Errorf("/proc/self/status: %s: %q", name, rest)
		}
		if *v, err = strconv.ParseInt(string(f[0]), 10, 64); err != nil {
			return 0, 0, err
		}
	}
	if rss < 0 || hwm < 0 {
		return 0, 0, fmt.Errorf("/proc/self/status: no VmRSS or VmHWM")
	}
	return rss, hwm, nil
}

// vmRSS is VmRSS alone, in KiB.
func vmRSS() (int64, error) {
	rss, _, err := vmStatus()
	return rss, err
}

// startRSSPeak starts sampling.
func startRSSPeak(interval time.Duration) (*rssPeak, error) {
	rss, err := vmRSS()
	if err != nil {
		return nil, err
	}
	p := &rssPeak{stopc: make(chan struct{}), done: make(chan struct{}), peak: rss}
	p.hwmOK = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	p.heap.sample()
	go p.sample(interval) // owned: stop waits for it
	return p, nil
}

func (p *rssPeak) sample(interval time.Duration) {
	defer close(p.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stopc:
			return
		case <-t.C:
		}
		rss, err := vmRSS()
		if err != nil {
			p.errMsg = err.Error()
			return
		}
		p.peak = max(p.peak, rss)
		p.heap.sample()
	}
}

// heapPeak is the highest Go heap figures sampled (runtime/metrics, which
// does not stop the world).
type heapPeak struct {
	live, objects uint64 // bytes
	s             [2]metrics.Sample
}

func (h *heapPeak) sample() {
	h.s[0].Name, h.s[1].Name = "/gc/heap/live:bytes", "/memory/classes/heap/objects:bytes"
	metrics.Read(h.s[:])
	if h.s[0].Value.Kind() == metrics.KindUint64 {
		h.live = max(h.live, h.s[0].Value.Uint64())
	}
	if h.s[1].Value.Kind() == metrics.KindUint64 {
		h.objects = max(h.objects, h.s[1].Value.Uint64())
	}
}

func (h *heapPeak) liveMiB() float64    { return float64(h.live) / (1 << 20) }
func (h *heapPeak) objectsMiB() float64 { return float64(h.objects) / (1 << 20) }

// stop ends the sampling and returns the highest sample and the kernel's
// high-water mark since the start (-1 when it could not be reset), in KiB,
// and the highest heap figures.
func (p *rssPeak) stop() (sampled, hwm int64, heap heapPeak, err error) {
	close(p.stopc)
	<-p.done
	if p.errMsg != "" {
		return 0, 0, p.heap, fmt.Errorf("sample RSS: %s", p.errMsg)
	}
	rss, h, err := vmStatus()
	if err != nil {
		return 0, 0, p.heap, err
	}
	p.heap.sample()
	sampled = max(p.peak, rss)
	if !p.hwmOK {
		h = -1
	}
	return sampled, h, p.heap, nil
}
