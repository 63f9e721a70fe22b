package main

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// The churn and soak modes run the server in this process and watch what
// the process holds. The clients they run here are either closed when the
// figures are compared (churn) or steady (soak), so what changes is the
// server's.

// resources are one reading of this process.
type resources struct {
	RSSKiB     int64  // resident set, from /proc/self/statm
	HeapInuse  uint64 // runtime.MemStats.HeapInuse
	Goroutines int
	FDs        int // entries of /proc/self/fd
}

// readResources reads everything; runtime.ReadMemStats stops the world
// briefly, so it is for samples, not for polling.
func readResources() (resources, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := resources{HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine()}
	var err error
	if r.RSSKiB, err = rssKiB(); err != nil {
		return r, err
	}
	r.FDs, err = countFDs()
	return r, err
}

// countFDs counts the open file descriptors of this process, the one used
// to list them included (so every count includes it the same way). It is
// a few system calls: cheap enough to poll every millisecond.
func countFDs() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// rssKiB is the resident set size: the second field of /proc/self/statm, in
// pages.
func rssKiB() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	fields := bytes.Fields(b)
	if len(fields) < 2 {
		return 0, errors.New("/proc/self/statm: too few fields")
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()) / 1024, nil
}

// ioSyscalls reads the read and write system calls a process made so far
// (syscr and syscw of /proc/PID/io, its threads together; pid "self" for
// this one), 0 where it cannot be read.
func ioSyscalls(pid string) (reads, writes int64) {
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			reads, _ = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return reads, writes
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
