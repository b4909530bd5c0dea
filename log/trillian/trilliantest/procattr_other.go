//go:build !linux

package trilliantest

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent: the cleanup stops the servers.
func dieWithParent(*exec.Cmd) {}
