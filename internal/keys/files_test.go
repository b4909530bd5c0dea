//go:build unix

package keys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// files are the files this package reads: each case writes a valid set
// into a new directory and returns the path of the one under test and the
// read that must accept it as it is.
var files = map[string]func(t *testing.T) (path string, read func() error){
	SignerFile:   keyFile(SignerFile),
	ArtifactFile: keyFile(ArtifactFile),
	VerifierFile: keyFile(VerifierFile),
	RetiredFile: func(t *testing.T) (string, func() error) {
		dir := generated(t)
		path := writeFile(t, filepath.Join(dir, RetiredFile), `{"keys":[]}`, 0o644)
		return path, func() error { _, err := Load(dir); return err }
	},
	"ReadConfig": func(t *testing.T) (string, func() error) {
		path := writeFile(t, filepath.Join(t.TempDir(), "tokens"), "ci abc\n", 0o644)
		return path, func() error { _, err := ReadConfig(path); return err }
	},
	"ReadPrivateFile": func(t *testing.T) (string, func() error) {
		path := writeFile(t, filepath.Join(t.TempDir(), "witness.key"), "secret\n", 0o600)
		return path, func() error { _, err := ReadPrivateFile(path); return err }
	},
	"TLS certificate": func(t *testing.T) (string, func() error) {
		cert, key, _ := selfSigned(t, t.TempDir())
		return cert, func() error { _, err := LoadTLS(cert, key); return err }
	},
	"TLS key": func(t *testing.T) (string, func() error) {
		cert, key, _ := selfSigned(t, t.TempDir())
		return key, func() error { _, err := LoadTLS(cert, key); return err }
	},
}

// secrets are the files of files that hold a secret.
var secrets = map[string]bool{SignerFile: true, ArtifactFile: true, "ReadPrivateFile": true, "TLS key": true}

func keyFile(name string) func(t *testing.T) (string, func() error) {
	return func(t *testing.T) (string, func() error) {
		dir := generated(t)
		return filepath.Join(dir, name), func() error { _, err := Load(dir); return err }
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

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

// TestNotRegular: a FIFO, a directory or a device where a file is read is
// refused at once, naming what it is, and never blocks. A symbolic link to
// a regular file is read.
func TestNotRegular(t *testing.T) {
	for name, setup := range files {
		for kind, replace := range map[string]func(t *testing.T, path string){
			"named pipe": func(t *testing.T, path string) {
				if err := syscall.Mkfifo(path, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			"directory": func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			},
			"device": func(t *testing.T, path string) {
				if err := os.Symlink(os.DevNull, path); err != nil {
					t.Fatal(err)
				}
			},
		} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				path, read := setup(t)
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				replace(t, path)
				err := within(t, read)
				if err == nil {
					t.Fatalf("read a %s", kind)
				}
				if !strings.Contains(err.Error(), "a "+kind+", not a regular file") {
					t.Errorf("error %q does not say it is a %s, not a regular file", err, kind)
				}
			})
		}
		t.Run(name+"/symbolic link", func(t *testing.T) {
			path, read := setup(t)
			target := filepath.Join(t.TempDir(), "target")
			if err := os.Rename(path, target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			if err := read(); err != nil {
				t.Fatalf("a symbolic link to the file: %v", err)
			}
		})
	}
}

// TestModes: no file read may be writable by the group or others, and a
// secret not readable by them either — the public ones included
// (log.vkey 0666 was accepted).
func TestModes(t *testing.T) {
	for name, setup := range files {
		for _, mode := range []os.FileMode{0o600, 0o400, 0o644, 0o640, 0o604, 0o664, 0o646, 0o666, 0o620, 0o602} {
			ok := mode&0o022 == 0 && (!secrets[name] || mode&0o077 == 0)
			t.Run(fmt.Sprintf("%s/%04o", name, mode), func(t *testing.T) {
				path, read := setup(t)
				if err := os.Chmod(path, mode); err != nil {
					t.Fatal(err)
				}
				err := read()
				switch {
				case ok && err != nil:
					t.Fatalf("mode %04o refused: %v", mode, err)
				case !ok && err == nil:
					t.Fatalf("mode %04o accepted", mode)
				case !ok && (!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("%04o", mode))):
					t.Errorf("error %q does not name the file and its mode", err)
				}
			})
		}
	}
}
