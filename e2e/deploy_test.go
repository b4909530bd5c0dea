package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// staticBinaries builds, once, the static binaries of the image the way
// deploy/Dockerfile does: with deploy/build-static.sh. The linker warns
// when a static binary would still load something at run time (NSS,
// dlopen): that fails the build here.
func staticBinaries(t *testing.T) string {
	t.Helper()
	return buildOnce(t, "static", "./deploy/build-static.sh", filepath.Join(binDir, "static"))
}

// TestDockerfileBinaries builds the binaries as deploy/Dockerfile does
// (there is no container engine here) and checks that they are static
// and run: govlogd serves on an empty directory, like the image's, and the
// static govlog verifies the receipt it gets.
func TestDockerfileBinaries(t *testing.T) {
	dockerfile, err := os.ReadFile("../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^RUN \./deploy/build-static\.sh /out/usr/local/bin`).Match(dockerfile) {
		t.Fatal("deploy/Dockerfile no longer builds with deploy/build-static.sh: this test would not test it")
	}
	dir := staticBinaries(t)
	for _, name := range []string{"govlogd", "govlog", "govlog-witness", "govlog-gate"} {
		f, err := elf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is not static: it has a %v program header", name, p.Type)
			}
		}
		f.Close()
		out, err := exec.Command(filepath.Join(dir, name), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), name+" github.com/govlog/govlog ") {
			t.Errorf("%s --version: %v %s", name, err, out)
		}
	}
	d := startDaemonBin(t, filepath.Join(dir, "govlogd"), filepath.Join(t.TempDir(), "var-lib-govlog"), "")
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "d.json"), decision("static-1", "allow", "", 0), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"submit", "--url", d.url, "--log-key", filepath.Join(d.data, "log.vkey"), "d.json"},
		{"verify", "--log-key", filepath.Join(d.data, "log.vkey"), "static-1.tlog-proof"},
		{"fsck", "--data", d.data},
	} {
		cmd := exec.Command(filepath.Join(dir, "govlog"), args...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("static govlog %s: %v\n%s", args[0], err, out)
		}
	}
}

// TestSystemdUnit checks deploy/govlogd.service with systemd-analyze: the
// unit verifies (with ExecStart pointing at a real binary), and its
// hardening rates "OK" or better (exposure below 2.0 of 10). Without
// systemd-analyze it is skipped, unless GOVLOG_REQUIRE_SYSTEMD is set (CI
// installs systemd).
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("GOVLOG_REQUIRE_SYSTEMD") != "" {
			t.Fatalf("systemd-analyze not found and GOVLOG_REQUIRE_SYSTEMD is set: %v", err)
		}
		t.Skip("systemd-analyze not found (install systemd, or set GOVLOG_REQUIRE_SYSTEMD to fail instead)")
	}
	unit, err := os.ReadFile("../deploy/govlogd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n", "\nStateDirectory=govlog\n", "\nUser=govlog\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	// systemd-analyze verify requires ExecStart's binary to exist.
	bin := filepath.Join(binDir, "govlogd")
	text := strings.ReplaceAll(string(unit), "ExecStart=/usr/local/bin/govlogd ", "ExecStart="+bin+" ")
	path := filepath.Join(t.TempDir(), "govlogd.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for govlogd\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level >= 2.0 {
		t.Errorf("exposure level %v, want below 2.0:\n%s", level, out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
}
