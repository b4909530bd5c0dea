package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	// The SQLite driver, to hold the log's write lock from another connection.
	_ "github.com/mattn/go-sqlite3"
)

// requireMountsEnv, when set (CI), makes the tests that mount file systems
// fail where they would skip.
const requireMountsEnv = "GOVLOG_REQUIRE_MOUNTS"

// skipMount skips a test that cannot mount here, or fails it when
// GOVLOG_REQUIRE_MOUNTS is set.
func skipMount(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireMountsEnv) != "" {
		t.Fatalf(requireMountsEnv+" is set, and "+format, args...)
	}
	t.Skipf(format, args...)
}

// mountTmpfs mounts a tmpfs of size (mount(8) syntax, e.g. 2m) on a new
// directory and unmounts it at the end of the test. It skips the test,
// loudly, where mounting is not permitted (fails with
// GOVLOG_REQUIRE_MOUNTS set).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		skipMount(t, "SKIPPED, NOT TESTED: this test mounts a tmpfs and needs Linux and root (GOOS %s, euid %d)", runtime.GOOS, os.Geteuid())
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		skipMount(t, "SKIPPED, NOT TESTED: mounting a tmpfs is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func remount(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}

// status returns the status of GET url.
func status(t *testing.T, url string) int {
	t.Helper()
	st, _, _, err := call(context.Background(), http.MethodGet, url, "", nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return st
}

// TestDiskFull runs govlogd on a 2 MiB tmpfs and fills it: submissions get
// 503 log_unavailable without an artifact, /readyz 503 and /healthz 200;
// once the tmpfs grows, appends resume by themselves within 20 s, every
// acknowledged entry is in the log, and govlog fsck passes.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "2m")
	data := filepath.Join(mnt, "data")
	d := startDaemon(t, data, "")
	v := d.logKey(t)
	ctx := context.Background()

	var acks []ack
	var cps []checkpoint
	var pad string
	submit := func(id string) (int, []byte) {
		body := decision(id, "allow", "", 0)
		// A bigger context fills the disk faster.
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if pad != "" {
			m["context"] = map[string]any{"pad": pad}
		}
		body, _ = json.Marshal(m)
		st, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
		if err != nil {
			t.Fatalf("POST %s: %v", id, err)
		}
		if st == http.StatusCreated {
			r, cp, _ := checkReceipt(t, resp, v, body)
			acks = append(acks, ack{id, r.Index, r.LeafHash})
			cps = append(cps, cp)
		}
		return st, resp
	}

	// Fill with 2 KB entries until one does not fit, then with small ones
	// until nothing fits: with a little room left a small write (such as
	// the readiness probe's) still succeeds while a batch does not.
	var full []byte
	for _, size := range []int{2000, 0} {
		pad = strings.Repeat("x", size)
		full = nil
		for i := 0; full == nil; i++ {
			if i > 5000 {
				t.Fatal("5000 submissions fit on a 2 MiB tmpfs: the disk never filled")
			}
			st, resp := submit(fmt.Sprintf("fill-%d-%05d", size, i))
			switch st {
			case http.StatusCreated:
			case http.StatusServiceUnavailable:
				full = resp
			default:
				t.Fatalf("POST while filling the disk: %d %s", st, resp)
			}
		}
	}
	if code := errorCode(t, full); code != "log_unavailable" {
		t.Fatalf("disk full: error code %q, want log_unavailable: %s", code, full)
	}
	if strings.Contains(string(full), "artifact") {
		t.Fatalf("disk full: the 503 carries an artifact: %s", full)
	}
	if len(acks) == 0 {
		t.Fatal("nothing was acknowledged before the disk filled")
	}
	t.Logf("disk full after %d acknowledged submissions", len(acks))
	// Readiness must not say yes to a full disk: after a failure the backend
	// wants free space on the file system, not only a successful probe.
	if st := status(t, d.url+"/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a full disk: %d, want 503", st)
	}
	if st := status(t, d.url+"/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz with a full disk: %d, want 200", st)
	}
	// Still full: still 503, never a receipt for something not durable.
	if st, resp := submit("still-full"); st != http.StatusServiceUnavailable {
		t.Fatalf("POST with a full disk: %d %s", st, resp)
	}

	remount(t, mnt, "64m")
	freed := time.Now()
	for i := 0; ; i++ {
		st, resp := submit(fmt.Sprintf("resume-%03d", i))
		if st == http.StatusCreated {
			break
		}
		if st != http.StatusServiceUnavailable {
			t.Fatalf("POST after freeing space: %d %s", st, resp)
		}
		if time.Since(freed) > 20*time.Second {
			t.Fatalf("appends did not resume within 20 s of freeing space: %s", resp)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("appends resumed %v after freeing space", time.Since(freed).Round(time.Millisecond))
	deadline := time.Now().Add(20 * time.Second)
	for status(t, d.url+"/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 503 20 s after appends resumed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 20 {
		if st, resp := submit(fmt.Sprintf("after-%03d", i)); st != http.StatusCreated {
			t.Fatalf("POST after recovery: %d %s", st, resp)
		}
	}
	verifyAcks(t, d.url, v, acks, cps)
	d.term(t, 20*time.Second)
	if code, out := govlog(t, t.TempDir(), nil, "fsck", "--data", data); code != 0 {
		t.Fatalf("govlog fsck after the disk-full episode: %d %s", code, out)
	}
}

// TestDataDirVanished removes the data directory under a running govlogd:
// submissions get 503 log_unavailable without an artifact (never a receipt
// for an entry written into a file no restart will see), /readyz 503,
// /healthz 200. Recovery needs the operator (restore and restart).
func TestDataDirVanished(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, data, "")
	v := d.logKey(t)
	ctx := context.Background()
	body := decision("before-0", "allow", "", 0)
	if st, resp, err := postJSON(ctx, d.url+"/v1/decisions", body); err != nil || st != http.StatusCreated {
		t.Fatalf("POST: %d %v %s", st, err, resp)
	}
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		st, resp, err := postJSON(ctx, d.url+"/v1/decisions", decision(fmt.Sprintf("after-%d", i), "allow", "", 0))
		if err != nil {
			t.Fatal(err)
		}
		if st != http.StatusServiceUnavailable || errorCode(t, resp) != "log_unavailable" || strings.Contains(string(resp), "artifact") {
			t.Fatalf("POST after the data directory vanished: %d %s", st, resp)
		}
	}
	if st := status(t, d.url+"/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after the data directory vanished: %d, want 503", st)
	}
	if st := status(t, d.url+"/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz after the data directory vanished: %d, want 200", st)
	}
	// Reads of what was committed still work (the open file serves them).
	if cp := latest(t, d.url, v); cp.Size != 2 { // the artifact key's entry and the decision
		t.Fatalf("checkpoint size %d after the data directory vanished, want 2", cp.Size)
	}
}

// TestStorageLocked holds SQLite's write lock on the log from another
// process's connection (as a stray sqlite3 shell or a second writer
// would): submissions get 503 log_unavailable after the busy timeout,
// /healthz stays 200, and appends resume by themselves once the lock is
// released, with nothing acknowledged lost.
func TestStorageLocked(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, data, "")
	v := d.logKey(t)
	ctx := context.Background()
	var acks []ack
	var cps []checkpoint
	submit := func(id string) (int, []byte) {
		body := decision(id, "allow", "", 0)
		st, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
		if err != nil {
			t.Fatalf("POST %s: %v", id, err)
		}
		if st == http.StatusCreated {
			r, cp, _ := checkReceipt(t, resp, v, body)
			acks = append(acks, ack{id, r.Index, r.LeafHash})
			cps = append(cps, cp)
		}
		return st, resp
	}
	if st, resp := submit("before"); st != http.StatusCreated {
		t.Fatalf("POST: %d %s", st, resp)
	}

	db, err := sql.Open("sqlite3", "file:"+filepath.ToSlash(filepath.Join(data, "log.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := time.Now()
	st, resp := submit("locked")
	if st != http.StatusServiceUnavailable || errorCode(t, resp) != "log_unavailable" || strings.Contains(string(resp), "artifact") {
		t.Fatalf("POST while the log is locked: %d %s", st, resp)
	}
	t.Logf("503 after %v with the write lock held", time.Since(locked).Round(time.Millisecond))
	if st := status(t, d.url+"/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz while locked: %d", st)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	for i := 0; ; i++ {
		st, resp := submit(fmt.Sprintf("after-%d", i))
		if st == http.StatusCreated {
			break
		}
		if st != http.StatusServiceUnavailable || time.Since(released) > 20*time.Second {
			t.Fatalf("POST after releasing the lock (%v): %d %s", time.Since(released), st, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("appends resumed %v after the lock was released", time.Since(released).Round(time.Millisecond))
	verifyAcks(t, d.url, v, acks, cps)
}

// TestCrashPoints kills govlogd (SIGKILL, by itself, through the
// GOVLOG_TEST_CRASH_POINT hook of a govlogd built with -tags crashpoint)
// at exact points of a random batch under
// load: inside the batch's storage transaction before COMMIT, and after
// COMMIT before any submitter is answered. After each crash it restarts
// and checks that every acknowledged entry is at its index and every
// checkpoint issued is consistent with the new one; at the end govlog fsck
// checks the whole data directory. Rounds per point:
// GOVLOG_CRASH_POINT_ROUNDS (default 2).
func TestCrashPoints(t *testing.T) {
	rounds := 2
	if s := os.Getenv("GOVLOG_CRASH_POINT_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		rounds = n
	}
	data := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var acks []ack
	var cps []checkpoint
	for round := range rounds {
		for _, point := range []string{"before-commit", "after-commit"} {
			// Batch 1 of every start is the artifact key's entry (logged,
			// or resubmitted, before govlogd serves): the kill is in a
			// batch of the load, from batch 2 on.
			batch := 2 + rng.IntN(30)
			t.Setenv("GOVLOG_TEST_CRASH_POINT", point)
			t.Setenv("GOVLOG_TEST_CRASH_BATCH", strconv.Itoa(batch))
			d := startDaemonBin(t, crashpointGovlogd(t), data, "")
			os.Unsetenv("GOVLOG_TEST_CRASH_POINT")
			os.Unsetenv("GOVLOG_TEST_CRASH_BATCH")
			v := d.logKey(t)
			cps = append(cps, verifyAcks(t, d.url, v, acks, cps))
			ctx, cancel := context.WithCancel(context.Background())
			res := load(ctx, t, d.url, v, fmt.Sprintf("cp%02d-%s", round, point[:1]), 8)
			select {
			case <-d.exited:
			case <-time.After(60 * time.Second):
				cancel()
				t.Fatalf("govlogd did not crash at %s of batch %d", point, batch)
			}
			cancel()
			res.wait()
			if ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("govlogd exited with %v, not by SIGKILL at %s", d.cmd.ProcessState, point)
			}
			acks = append(acks, res.acks...)
			cps = append(cps, res.checkpoints...)
			t.Logf("round %d: killed at %s of batch %d; %d acknowledged before", round, point, batch, len(res.acks))
			if t.Failed() {
				return
			}
		}
	}
	d := startDaemon(t, data, "")
	cur := verifyAcks(t, d.url, d.logKey(t), acks, cps)
	if len(acks) == 0 {
		t.Fatal("nothing was acknowledged: the test proved nothing")
	}
	d.term(t, 20*time.Second)
	if code, out := govlog(t, t.TempDir(), nil, "fsck", "--data", data); code != 0 {
		t.Fatalf("govlog fsck after the crashes: %d %s", code, out)
	}
	t.Logf("%d crashes, %d acknowledged entries all present, log size %d", 2*rounds, len(acks), cur.Size)
}
