package server

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time the process used so far (user and system, all
// threads: the benchmark's and the garbage collector's).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation of a benchmark that
// started at start: unlike ns/op, time the machine gave other processes
// does not count in it.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
