//go:build unix

package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within runs f, failing the test if it does not return in time: opening
// a FIFO for reading blocks until a writer comes, forever.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("still reading after 5s: blocked on the file")
		return nil
	}
}

// TestLogKeyFileRefused: a --log-key file that is a FIFO is refused at once
// (it blocked forever), one writable by the group or others too.
func TestLogKeyFileRefused(t *testing.T) {
	lg := newTestLog(t, "example.com/log", 1)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.vkey")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.vkey")
	if err := os.WriteFile(open, []byte(lg.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{fifo: "a named pipe, not a regular file", open: "0666"} {
		err := within(t, func() error { _, err := readLogKeys([]string{path}); return err })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readLogKeys(%s): %v; want an error saying %q", path, err, want)
		}
	}
}

// TestVerifierKeyFileReplaced: a witness.vkey that is a FIFO or writable by
// others is not read (it blocked forever) but written again.
func TestVerifierKeyFileReplaced(t *testing.T) {
	for name, spoil := range map[string]func(path string) error{
		"named pipe": func(path string) error {
			if err := os.Remove(path); err != nil {
				return err
			}
			return syscall.Mkfifo(path, 0o666)
		},
		"mode 0666": func(path string) error { return os.Chmod(path, 0o666) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := generateKey(dir, "witness.test/w1"); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, VerifierKeyFile)
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := spoil(path); err != nil {
				t.Fatal(err)
			}
			logger := slog.New(slog.DiscardHandler)
			if err := within(t, func() error { _, err := openKey(dir, "witness.test/w1", logger); return err }); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
				t.Fatalf("witness.vkey: %v %v", fi.Mode(), err)
			}
			if got, _ := os.ReadFile(path); string(got) != string(want) {
				t.Errorf("witness.vkey %q, want %q", got, want)
			}
		})
	}
}

// TestDataDirWarning: a data directory that others may enter is warned
// about, naming it and its mode.
func TestDataDirWarning(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := openKey(dir, "witness.test/w1", slog.New(slog.NewTextHandler(&out, nil))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "level=WARN") || !strings.Contains(out.String(), "dir="+dir+" mode=0755") {
		t.Errorf("no warning about the data directory:\n%s", out.String())
	}
}
