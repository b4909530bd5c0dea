// Package procstat reads a process's resident memory and open file
// descriptors from /proc (Linux), for the benchmark and soak reports.
package procstat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSSMiB returns the resident memory of process pid in MiB (VmRSS of
// /proc/PID/status), or 0 when it cannot be read (not Linux, or no such
// process).
func RSSMiB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// FDs counts the open file descriptors of a process.
type FDs struct {
	// Total counts them all, Sockets those that are sockets (network
	// connections and listeners).
	Total, Sockets int
}

// Files is the number of descriptors that are not sockets: files, pipes,
// and the like.
func (f FDs) Files() int { return f.Total - f.Sockets }

// OpenFDs counts the open file descriptors of process pid (the entries of
// /proc/PID/fd).
func OpenFDs(pid int) (FDs, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return FDs{}, fmt.Errorf("failed to count the open files of process %d: %w", pid, err)
	}
	f := FDs{Total: len(ents)}
	for _, e := range ents {
		// A descriptor closed since ReadDir is not counted as a socket.
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			f.Sockets++
		}
	}
	return f, nil
}

// CPUModel returns the CPU's model name from /proc/cpuinfo, or "" when it
// cannot be read.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return ""
}
