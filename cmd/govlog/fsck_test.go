package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
)

// writeDataDir creates a data directory with keys and a log.db of n
// decisions, appended 100 at a time.
func writeDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := keys.Generate(dir, "example.com/fsck"); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The id and leaf-hash rows of the newest entries wait in memory and
	// are merged in bulk: with merges of 200 every row of a log of 300 is
	// written.
	b, err := sqlite.Open(ctx, filepath.Join(dir, dbFile), sqlite.Options{HashMerge: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sign := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(k.Signer, size, hash)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var batch []*log.Entry
	for i := range n {
		body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("d-%d", i), "outcome": "allow",
			"decided_at": now.Format(time.RFC3339), "subject": "s", "action": "a", "policy": map[string]any{"id": "p"}})
		d, err := log.ParseDecision(body, now)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(log.DecisionSubmission(d, "alice"), now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, e)
		if len(batch) == 100 || i == n-1 {
			if _, _, err := b.Append(ctx, batch, sign); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	return dir
}

func TestFsckAndBackup(t *testing.T) {
	dir := writeDataDir(t, 300)
	code, out, errOut := runGovlog("fsck", "--data", dir)
	if code != 0 || !strings.Contains(out, "ok: ") || !strings.Contains(out, "tree size 300") {
		t.Fatalf("fsck: %d %q %q", code, out, errOut)
	}
	copyPath := filepath.Join(t.TempDir(), "backup.db")
	code, out, errOut = runGovlog("backup", "--data", dir, "--out", copyPath)
	if code != 0 || !strings.Contains(out, "tree size 300") || !strings.Contains(out, "holds no keys") {
		t.Fatalf("backup: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runGovlog("backup", "--data", dir, "--out", copyPath); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("backup onto an existing file: %d %q", code, errOut)
	}
	if code, out, errOut := runGovlog("fsck", "--data", dir, "--db", copyPath); code != 0 || !strings.Contains(out, "tree size 300") {
		t.Fatalf("fsck of the backup: %d %q %q", code, out, errOut)
	}

	// A corrupt index: exit status 1, the problem named.
	db, err := sql.Open("sqlite3", "file:"+filepath.ToSlash(copyPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM ids WHERE id = 'd-123'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errOut = runGovlog("fsck", "--data", dir, "--db", copyPath)
	if code != 1 || !strings.Contains(errOut, `entry 123 (decision "d-123") is missing from the id index`) {
		t.Fatalf("fsck of a corrupt copy: %d %q", code, errOut)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fsck without --data", []string{"fsck"}, 2, "--data is required"},
		{"backup without --out", []string{"backup", "--data", dir}, 2, "--data and --out are required"},
		{"fsck without keys", []string{"fsck", "--data", t.TempDir()}, 1, "verifier key"},
		{"fsck without a database", []string{"fsck", "--data", dir, "--db", filepath.Join(dir, "nope.db")}, 1, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runGovlog(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("%d %q, want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}
