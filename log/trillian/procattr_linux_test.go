package trillian

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill a server when the test binary dies
// (a panic skips TestMain's cleanup).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
