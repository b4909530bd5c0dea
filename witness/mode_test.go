//go:build unix

package witness

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileModes: the database and its -wal and -shm files are created
// 0600 whatever the umask.
func TestFileModes(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	path := filepath.Join(t.TempDir(), "witness.db")
	s, err := openStore(context.Background(), path, []string{"example.com/log"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(name), fi.Mode().Perm())
		}
	}
}
