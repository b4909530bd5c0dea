package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/govlog/govlog/log"
)

// TestFileVanished: once the database file is removed or replaced under a
// running Backend, Append and Ready fail with log.ErrUnavailable instead of
// committing into a file no restart will see.
func TestFileVanished(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, dir string)
	}{
		{"directory removed", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"file replaced", func(t *testing.T, dir string) {
			path := filepath.Join(dir, "log.db")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			sign, _ := newSign(t)
			b := openAt(t, filepath.Join(dir, "log.db"), Options{})
			_, before := mustAppend(t, b, sign, decision(t, "d-1", decisionOpts{}))
			tc.do(t, dir)
			_, _, err := b.Append(ctx, []*log.Entry{decision(t, "d-2", decisionOpts{})}, sign)
			wantErr(t, "Append after the file vanished", err, log.ErrUnavailable)
			wantErr(t, "Ready after the file vanished", b.Ready(ctx), log.ErrUnavailable)
			if cp, err := b.Latest(ctx); err != nil || cp.Size != before.Size {
				t.Fatalf("Latest = %d, %v; want %d", cp.Size, err, before.Size)
			}
		})
	}
}
