//go:build !linux

package trilliantest

import (
	"os/exec"
	"time"
)

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent: the cleanup stops the servers.
func dieWithParent(*exec.Cmd) {}

// cpuTime is 0 where /proc does not tell a process's CPU time.
func cpuTime(int) time.Duration { return 0 }
