package opatest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill OPA when the test binary dies (a
// panic or a timeout skips the cleanup).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
