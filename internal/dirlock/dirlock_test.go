package dirlock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "govlogd")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, LockFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
	// A second lock, even from this process (another open file), fails
	// and names the holder.
	_, err = Acquire(dir, "govlog-witness")
	var he *HeldError
	if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v", err)
	}
	if he.PID != os.Getpid() || he.Program != "govlogd" || time.Since(he.Since) > time.Minute {
		t.Errorf("holder %+v", he)
	}
	if msg := err.Error(); !strings.Contains(msg, "govlogd (pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, dir) {
		t.Errorf("message %q does not name the holder and the directory", msg)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal("a second Release:", err)
	}
	l2, err := Acquire(dir, "govlog-witness")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

// TestReleasedByExit: a process killed while holding the lock does not
// block the next one, whatever its lock file says.
func TestReleasedByExit(t *testing.T) {
	if os.Getenv("DIRLOCK_HOLD") != "" {
		if _, err := Acquire(os.Getenv("DIRLOCK_HOLD"), "holder"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReleasedByExit$")
	cmd.Env = append(os.Environ(), "DIRLOCK_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("holder: %q %v", buf, err)
	}
	var he *HeldError
	if _, err := Acquire(dir, "second"); !errors.As(err, &he) || he.PID != cmd.Process.Pid || he.Program != "holder" {
		t.Fatalf("while the holder runs: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(dir, "second")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}

func TestAcquireMissingDir(t *testing.T) {
	if _, err := Acquire(filepath.Join(t.TempDir(), "nope"), "govlogd"); err == nil || errors.Is(err, ErrHeld) {
		t.Fatalf("Acquire on a missing directory: %v", err)
	}
}
