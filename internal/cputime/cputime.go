// Package cputime measures the CPU time of the process for benchmarks:
// unlike wall time, the time a shared machine gives other processes does
// not count in it, so it is the steadier figure to compare two versions by.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process is the CPU time the process used so far (user and system, all
// threads: the benchmark's, the garbage collector's, the driver's).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report reports the process CPU time per operation of a benchmark that
// started at start (a Process value), as cpu-ns/op.
func Report(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(Process()-start)/float64(b.N), "cpu-ns/op")
}
