package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// runDaemonToExit runs govlogd on data with extra flags, expecting it to
// refuse to start, and returns its exit code and output.
func runDaemonToExit(t *testing.T, data string, extra ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--listen", "127.0.0.1:0", "--data", data, "--origin", "e2e.govlog.test/log"}, extra...)
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "govlogd"), args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// restoreDataDir makes a new data directory from a backup file and the
// keys of the original data directory, as docs/operations.md says.
func restoreDataDir(t *testing.T, keysFrom, backup string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"log.key", "log.vkey", "artifact.jwk"} {
		b, err := os.ReadFile(filepath.Join(keysFrom, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "log.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBackupRestore backs up a log with govlog backup under load, restores
// the copy into a new data directory, checks it with govlog fsck, and
// checks that govlogd refuses to serve it against a newer published
// checkpoint, serves it against an older one, and keeps appending
// consistently.
func TestBackupRestore(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	d := startDaemon(t, data, "")
	v := d.logKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := load(ctx, t, d.url, v, "bk", 8)
	time.Sleep(400 * time.Millisecond)
	backup := filepath.Join(work, "backup.db")
	code, out := govlog(t, work, nil, "backup", "--data", data, "--out", backup)
	if code != 0 {
		t.Fatalf("govlog backup: %d %s", code, out)
	}
	m := regexp.MustCompile(`tree size (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("govlog backup printed no tree size: %s", out)
	}
	bsize, _ := strconv.ParseUint(m[1], 10, 64)
	time.Sleep(400 * time.Millisecond)
	cancel()
	res.wait()
	pub := latest(t, d.url, v)
	d.term(t, 20*time.Second)
	if pub.Size <= bsize {
		t.Fatalf("the log did not grow after the backup (size %d, backup %d): the test proves nothing", pub.Size, bsize)
	}
	t.Logf("backup at size %d under load; the log went on to size %d (%d acknowledged)", bsize, pub.Size, len(res.acks))

	restored := restoreDataDir(t, data, backup)
	if code, out := govlog(t, work, nil, "fsck", "--data", restored); code != 0 || !strings.Contains(out, "ok: ") {
		t.Fatalf("govlog fsck of the restored copy: %d %s", code, out)
	}

	// The fork rule: the restored copy is older than the published log.
	pubFile := filepath.Join(work, "published.checkpoint")
	if err := os.WriteFile(pubFile, []byte(pub.text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = runDaemonToExit(t, restored, "--published-checkpoint", pubFile)
	if code == 0 || !strings.Contains(out, "smaller than the published checkpoint") {
		t.Fatalf("govlogd on an old copy with a newer published checkpoint: %d %s", code, out)
	}
	// The original still agrees with what it published.
	d = startDaemon(t, data, "", "--published-checkpoint", pubFile)
	d.term(t, 20*time.Second)

	// Against the last checkpoint the copy covers, it serves and appends.
	var older checkpoint
	var kept []ack
	for _, cp := range res.checkpoints {
		if cp.Size <= bsize && cp.Size > older.Size {
			older = cp
		}
	}
	for _, a := range res.acks {
		if a.index < bsize {
			kept = append(kept, a)
		}
	}
	if older.Size == 0 {
		t.Fatalf("no acknowledged checkpoint within the backup's size %d", bsize)
	}
	if err := os.WriteFile(pubFile, []byte(older.text), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, restored, "", "--published-checkpoint", pubFile)
	cur := verifyAcks(t, d2.url, v, kept, []checkpoint{older})
	if cur.Size != bsize {
		t.Fatalf("the restored log has size %d, the backup %d", cur.Size, bsize)
	}
	ctx, cancel = context.WithCancel(context.Background())
	res2 := load(ctx, t, d2.url, v, "after", 4)
	time.Sleep(300 * time.Millisecond)
	cancel()
	res2.wait()
	if len(res2.acks) == 0 {
		t.Fatal("the restored log acknowledged nothing")
	}
	settle(t, d2.url, v)
	verifyAcks(t, d2.url, v, append(kept, res2.acks...), append([]checkpoint{older}, res2.checkpoints...))
	d2.term(t, 20*time.Second)
	if code, out := govlog(t, work, nil, "fsck", "--data", restored); code != 0 {
		t.Fatalf("govlog fsck after appending to the restored copy: %d %s", code, out)
	}
}

// settle waits until the log's size stops changing: submissions whose
// clients gave up may still be committed after the load stopped.
func settle(t *testing.T, url string, v note.Verifier) {
	t.Helper()
	size := latest(t, url, v).Size
	for range 100 {
		time.Sleep(100 * time.Millisecond)
		next := latest(t, url, v).Size
		if next == size {
			return
		}
		size = next
	}
	t.Fatalf("the log is still growing (size %d) after the load stopped", size)
}
