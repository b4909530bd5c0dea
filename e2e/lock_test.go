package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondDaemonRefused starts a second govlogd on the data directory of
// a running one: it must exit with a non-zero status within a second,
// naming the first one's process id, and leave the first one serving.
func TestSecondDaemonRefused(t *testing.T) {
	data := t.TempDir()
	first := startDaemon(t, data, "")
	second := exec.Command(filepath.Join(binDir, "govlogd"), "--listen", "127.0.0.1:0", "--data", data)
	start := time.Now()
	out, err := second.CombinedOutput()
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("the second govlogd: %v\n%s", err, out)
	}
	if took > time.Second {
		t.Errorf("the second govlogd took %v to exit", took)
	}
	want := fmt.Sprintf("is in use by govlogd (pid %d, since ", first.cmd.Process.Pid)
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), data) {
		t.Errorf("the second govlogd does not name the first (%q):\n%s", want, out)
	}
	if st, body, err := postJSON(t.Context(), first.url+"/v1/decisions", decision("lock-1", "allow", "", 0)); err != nil || st != 201 {
		t.Fatalf("the first govlogd after the refusal: %d %s %v", st, body, err)
	}
	// Once the first is gone, the directory is free again, kill -9 or not.
	first.kill()
	startDaemon(t, data, "")
}
