package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// govlog runs the CLI binary and returns its exit code and output.
func govlog(t *testing.T, dir string, stdin []byte, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "govlog"), args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestCLIEndToEnd generates keys with govlog keygen, serves them with
// govlogd, submits with govlog submit and verifies offline with govlog
// verify; a tampered receipt fails with exit status 1.
func TestCLIEndToEnd(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	if code, out := govlog(t, work, nil, "keygen", "--name", "e2e.govlog.test/log", "--out", data); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	for _, f := range []string{"log.key", "artifact.jwk"} {
		st, err := os.Stat(filepath.Join(data, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, st.Mode())
		}
	}
	d := startDaemon(t, data, "")
	body := decision("cli-1", "allow", "", 0)
	if err := os.WriteFile(filepath.Join(work, "decision.json"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	vkey := filepath.Join(data, "log.vkey")
	if code, out := govlog(t, work, nil, "submit", "--url", d.url, "--log-key", vkey, "decision.json"); code != 0 {
		t.Fatalf("submit: %d %s", code, out)
	}
	// From standard input, with an explicit prefix.
	if code, out := govlog(t, work, decision("cli-2", "deny", "cli-1", 0), "submit", "--url", d.url, "--out", "second", "-"); code != 0 {
		t.Fatalf("submit from stdin: %d %s", code, out)
	}
	for _, proof := range []string{"cli-1.tlog-proof", "second.tlog-proof"} {
		code, out := govlog(t, work, nil, "verify", "--log-key", vkey, proof)
		if code != 0 || !strings.Contains(out, "cli-") {
			t.Fatalf("verify %s: %d %s", proof, code, out)
		}
	}
	// The receipt checks out in a stranger's hands only with the right key.
	if code, out := govlog(t, t.TempDir(), nil, "keygen", "--name", "e2e.govlog.test/log", "--out", filepath.Join(work, "other")); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	if code, _ := govlog(t, work, nil, "verify", "--log-key", filepath.Join(work, "other", "log.vkey"), "cli-1.tlog-proof"); code != 1 {
		t.Fatalf("verify with another key: exit %d, want 1", code)
	}
	// One flipped character in the entry: exit 1.
	proof, err := os.ReadFile(filepath.Join(work, "cli-1.tlog-proof"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(proof, []byte("extra ")) + 20
	proof[i] ^= 1
	os.WriteFile(filepath.Join(work, "tampered.tlog-proof"), proof, 0o644)
	if code, out := govlog(t, work, nil, "verify", "--log-key", vkey, "tampered.tlog-proof"); code != 1 {
		t.Fatalf("verify tampered: exit %d, want 1: %s", code, out)
	}
	if code, _ := govlog(t, work, nil, "verify"); code != 2 {
		t.Fatalf("verify without arguments: exit %d, want 2", code)
	}
}
