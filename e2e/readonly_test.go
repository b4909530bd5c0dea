package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A file system cannot be remounted read-only while a process holds files
// open for writing on it (mount fails with EBUSY), and govlogd always
// holds its database open. The one way a data directory goes read-only
// under a running govlogd is the kernel's: ext4 mounted with
// errors=remount-ro turns read-only by itself on an I/O or metadata error,
// and stays so until it is unmounted and checked. TestDataDirReadOnly
// reproduces exactly that, on a small ext4 image on a loop device.

// ext4FS is an ext4 file system image mounted with errors=remount-ro.
type ext4FS struct {
	img, dir string
	// trigger is the sysfs file that raises a file system error.
	trigger string
}

// mountExt4 makes a 64 MiB ext4 image, mounts it on a new directory with
// errors=remount-ro and unmounts it at the end of the test. It skips the
// test, loudly, where that is not permitted or the tools are missing.
func mountExt4(t *testing.T) *ext4FS {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		skipMount(t, "SKIPPED, NOT TESTED: this test mounts an ext4 image and needs Linux and root (GOOS %s, euid %d)", runtime.GOOS, os.Geteuid())
	}
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipMount(t, "SKIPPED, NOT TESTED: %s is not installed: %v", tool, err)
		}
	}
	fs := &ext4FS{img: filepath.Join(t.TempDir(), "fs.img"), dir: filepath.Join(t.TempDir(), "mnt")}
	f, err := os.Create(fs.img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", fs.img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if err := os.Mkdir(fs.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", fs.img, fs.dir).CombinedOutput(); err != nil {
		skipMount(t, "SKIPPED, NOT TESTED: mounting an ext4 image on a loop device is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { fs.umount(t) })
	// /sys/fs/ext4/<device>/trigger_fs_error, the device found from the
	// directory's device number.
	var st syscall.Stat_t
	if err := syscall.Stat(fs.dir, &st); err != nil {
		t.Fatal(err)
	}
	link, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", unixMajor(st.Dev), unixMinor(st.Dev)))
	if err != nil {
		skipMount(t, "SKIPPED, NOT TESTED: cannot find the block device of the ext4 mount: %v", err)
	}
	fs.trigger = filepath.Join("/sys/fs/ext4", filepath.Base(link), "trigger_fs_error")
	if _, err := os.Stat(fs.trigger); err != nil {
		skipMount(t, "SKIPPED, NOT TESTED: the kernel cannot raise an ext4 error on demand: %v", err)
	}
	return fs
}

func unixMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func unixMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }

// fail raises a file system error: the kernel remounts it read-only.
func (fs *ext4FS) fail(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(fs.trigger, []byte("govlog e2e: the data directory goes read-only\n"), 0); err != nil {
		t.Fatalf("raising an ext4 error: %v", err)
	}
	probe := filepath.Join(fs.dir, "probe")
	err := os.WriteFile(probe, nil, 0o600)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("after the ext4 error, creating a file: %v, want EROFS", err)
	}
}

func (fs *ext4FS) umount(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("umount", fs.dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v: %s", fs.dir, err, out)
	}
}

// repair is what the operator does: unmount, e2fsck, mount again.
func (fs *ext4FS) repair(t *testing.T) {
	t.Helper()
	fs.umount(t)
	out, err := exec.Command("e2fsck", "-f", "-y", fs.img).CombinedOutput()
	// 0: no errors; 1: errors corrected (the error raised is recorded in
	// the superblock, and the journal is replayed).
	if code := exitCode(err); code != 0 && code != 1 {
		t.Fatalf("e2fsck: exit %d: %s", code, out)
	}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", fs.img, fs.dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting again: %v: %s", err, out)
	}
}

// TestDataDirReadOnly: the file system of the data directory turns
// read-only under load (the kernel's errors=remount-ro). Every submission
// gets 503 log_unavailable with a JSON error and no artifact; /readyz 503,
// /healthz 200; the identical resubmission of an acknowledged decision
// still gets its original receipt (200), and /readyz stays 503 after it; a
// batch of an acknowledged and a new decision gets 503, or 200 with the
// receipt and log_unavailable when its items reach storage apart; reads of
// what was logged (checkpoint, entries, receipts, proofs, tiles) all work.
// The operator's recovery (stop, e2fsck, mount, start with
// --published-checkpoint set to the last checkpoint issued) loses nothing
// acknowledged before the fault: every receipt's entry is at its index,
// every checkpoint issued is consistent with the new one, appends resume,
// govlog fsck passes. The one exception is the kernel's: a batch whose
// fdatasync raced with the error may be acknowledged and then lost (Linux
// returns success to it; reproducible without govlog). Then govlogd
// refuses to start on the shorter log with --published-checkpoint rather
// than fork from what it published, and only entries acknowledged while
// the fault struck are missing.
func TestDataDirReadOnly(t *testing.T) {
	fs := mountExt4(t)
	data := filepath.Join(fs.dir, "data")
	d := startDaemon(t, data, "")
	v := d.logKey(t)
	ctx := context.Background()

	// Decisions whose receipts are kept byte for byte.
	type kept struct{ body, receipt []byte }
	var before []kept
	for i := range 5 {
		body := decision(fmt.Sprintf("ro-before-%d", i), "allow", "", 0)
		st, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
		if err != nil || st != http.StatusCreated {
			t.Fatalf("POST: %d %v %s", st, err, resp)
		}
		checkReceipt(t, resp, v, body)
		before = append(before, kept{body, resp})
	}

	lctx, cancel := context.WithCancel(ctx)
	res := load(lctx, t, d.url, v, "ro-load", 8)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res.mu.Lock()
		n := len(res.acks)
		res.mu.Unlock()
		if n >= 100 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("only %d submissions acknowledged in 30 s of load", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The acknowledgements received before the fault: their fdatasync
	// returned before it.
	res.mu.Lock()
	durable := len(res.acks)
	res.mu.Unlock()
	fs.fail(t)
	// The load runs on for a moment against the read-only file system.
	time.Sleep(300 * time.Millisecond)
	cancel()
	res.wait()
	acks, cps := res.acks, res.checkpoints
	if res.statuses[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("no 503 under load after the file system went read-only: %v", res.statuses)
	}
	t.Logf("under load: %d acknowledged, statuses %v", len(acks), res.statuses)

	// Every new submission: 503 log_unavailable, JSON, no artifact.
	for i := range 3 {
		st, body, hdr, err := call(ctx, http.MethodPost, d.url+"/v1/decisions", "application/json",
			decision(fmt.Sprintf("ro-after-%d", i), "allow", "", 0))
		if err != nil {
			t.Fatal(err)
		}
		if st != http.StatusServiceUnavailable || errorCode(t, body) != "log_unavailable" ||
			!strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || bytes.Contains(body, []byte("artifact")) {
			t.Fatalf("POST on a read-only data directory: %d %q %s", st, hdr.Get("Content-Type"), body)
		}
	}
	var allowID string
	if err := json.Unmarshal(before[0].body, &struct {
		ID *string `json:"id"`
	}{&allowID}); err != nil {
		t.Fatal(err)
	}
	execution := fmt.Appendf(nil, `{"id":"ro-exec-1","decision_id":%q,"status":"succeeded","at":%q,"runtime":"rt-1"}`,
		allowID, time.Now().UTC().Format(time.RFC3339))
	if st, body, _ := postJSON(ctx, d.url+"/v1/executions", execution); st != http.StatusServiceUnavailable || errorCode(t, body) != "log_unavailable" {
		t.Fatalf("POST execution on a read-only data directory: %d %s", st, body)
	}
	// What was acknowledged is acknowledged again: no write needed.
	for _, k := range before {
		st, body, _ := postJSON(ctx, d.url+"/v1/decisions", k.body)
		if st != http.StatusOK || !bytes.Equal(body, k.receipt) {
			t.Fatalf("resubmission on a read-only data directory: %d, same receipt %v\n%s", st, bytes.Equal(body, k.receipt), body)
		}
	}
	// Those wrote nothing: readiness still says no.
	if st := status(t, d.url+"/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after resubmissions on a read-only data directory: %d, want 503", st)
	}
	batch := fmt.Appendf(nil, `{"decisions":[%s,%s]}`, before[1].body, decision("ro-batch-new", "deny", "", 0))
	// The two items go to the log concurrently: in one storage batch, whose
	// write fails, both fail and the whole request is 503 (nothing
	// acknowledged); in two, the acknowledged one gets its receipt.
	st, body, _ := postJSON(ctx, d.url+"/v1/decisions/batch", batch)
	var out struct{ Results []json.RawMessage }
	switch {
	case st == http.StatusServiceUnavailable && errorCode(t, body) == "log_unavailable":
		t.Logf("batch: 503, its items were in one failed storage batch")
	case st == http.StatusOK && json.Unmarshal(body, &out) == nil && len(out.Results) == 2:
		if !bytes.Equal(out.Results[0], bytes.TrimSpace(before[1].receipt)) {
			t.Fatalf("batch item 0 (acknowledged before): not its original receipt:\n%s", out.Results[0])
		}
		if code := errorCode(t, out.Results[1]); code != "log_unavailable" {
			t.Fatalf("batch item 1 (new): %s", out.Results[1])
		}
	default:
		t.Fatalf("batch on a read-only data directory: %d %s", st, body)
	}

	if st := status(t, d.url+"/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a read-only data directory: %d, want 503", st)
	}
	if st := status(t, d.url+"/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz on a read-only data directory: %d, want 200", st)
	}
	// Reads: receipts by id, then entries, consistency proofs and tiles of
	// everything acknowledged.
	for _, k := range before {
		var r receipt
		json.Unmarshal(k.receipt, &r)
		st, got, _, err := call(ctx, http.MethodGet, d.url+"/v1/decisions/"+r.ID, "", nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("GET /v1/decisions/%s on a read-only data directory: %d %v %s", r.ID, st, err, got)
		}
		checkReceipt(t, got, v, k.body)
	}
	cur := verifyAcks(t, d.url, v, acks, cps)
	t.Logf("read-only: %d acknowledged entries read back, log size %d", len(acks), cur.Size)
	// The tlog-tiles API: the level-0 hash tile holds every leaf hash of
	// the first acknowledged entries, and inclusion proofs are served.
	tile := "/tile/0/000"
	if cur.Size < 256 {
		tile = fmt.Sprintf("/tile/0/000.p/%d", cur.Size)
	}
	st, hashes, _, err := call(ctx, http.MethodGet, d.url+tile, "", nil)
	if err != nil || st != http.StatusOK || len(hashes) != 32*int(min(cur.Size, 256)) {
		t.Fatalf("GET %s on a read-only data directory: %d %v, %d bytes", tile, st, err, len(hashes))
	}
	for _, a := range acks {
		if a.index < 256 && !bytes.Equal(hashes[32*a.index:32*a.index+32], a.leafHash) {
			t.Fatalf("GET %s: leaf hash %d is not the acknowledged one", tile, a.index)
		}
		if st := getJSON(t, fmt.Sprintf("%s/v1/proofs/inclusion?index=%d&tree_size=%d", d.url, a.index, cur.Size), nil); st != http.StatusOK {
			t.Fatalf("inclusion proof of %d on a read-only data directory: %d", a.index, st)
		}
	}
	// Still read-only: still 503, the size does not move.
	if st, body, _ := postJSON(ctx, d.url+"/v1/decisions", decision("ro-still-1", "deny", "", 0)); st != http.StatusServiceUnavailable {
		t.Fatalf("POST still read-only: %d %s", st, body)
	}
	if again := latest(t, d.url, v); again.Size != cur.Size {
		t.Fatalf("the log grew from %d to %d on a read-only file system", cur.Size, again.Size)
	}

	// What a monitor or a witness holds: the last checkpoint issued.
	published := filepath.Join(t.TempDir(), "published")
	if err := os.WriteFile(published, []byte(cur.text), 0o600); err != nil {
		t.Fatal(err)
	}

	// The kernel does not let an errored ext4 file system be remounted
	// read-write: the operator stops govlogd, checks the file system and
	// starts govlogd again. A clean exit, within the shutdown timeout.
	d.term(t, 20*time.Second)
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("govlogd exited with %d after SIGTERM on a read-only data directory:\n%s", code, d.stderr.String())
	}
	fs.repair(t)
	code, fsckOut := govlog(t, t.TempDir(), nil, "fsck", "--data", data)
	m := regexp.MustCompile(`tree size (\d+),`).FindStringSubmatch(fsckOut)
	if code != 0 || m == nil {
		t.Fatalf("govlog fsck after the repair: %d %s", code, fsckOut)
	}
	stored, _ := strconv.ParseUint(m[1], 10, 64)
	if stored < cur.Size {
		// Linux can acknowledge an fdatasync that races with the error
		// (the journal is aborted before the file system is flagged
		// read-only) and then lose its data: a batch committed at that
		// instant may be gone after e2fsck, with the checkpoint that
		// covered it already issued. Only such a batch may be missing,
		// and govlogd, told the last checkpoint it published, refuses to
		// sign a tree that would fork from it.
		for _, a := range acks[:durable] {
			if a.index >= stored {
				t.Fatalf("LOST: %s at index %d, acknowledged before the fault, is beyond the repaired log's size %d", a.id, a.index, stored)
			}
		}
		lost := 0
		for _, a := range acks[durable:] {
			if a.index >= stored {
				lost++
			}
		}
		t.Logf("the kernel lost the last %d entries (%d acknowledged as the fault struck); published size %d, stored %d",
			cur.Size-stored, lost, cur.Size, stored)
		refuses(t, fmt.Sprintf("refusing to start: the stored log has size %d, smaller than the published checkpoint's %d", stored, cur.Size),
			"--listen", "127.0.0.1:0", "--data", data, "--origin", "e2e.govlog.test/log", "--published-checkpoint", published)
		d = startDaemon(t, data, "")
		verifyAcks(t, d.url, v, acks[:durable], cps[:durable])
		for _, k := range before {
			if st, body, _, _ := call(ctx, http.MethodGet, d.url+"/v1/decisions/"+idOf(t, k.body), "", nil); st != http.StatusOK {
				t.Fatalf("GET a decision acknowledged before the fault, after the repair: %d %s", st, body)
			}
		}
		return
	}
	d = startDaemon(t, data, "", "--published-checkpoint", published)
	verifyAcks(t, d.url, v, acks, append(cps, cur))
	for _, k := range before {
		st, body, _ := postJSON(ctx, d.url+"/v1/decisions", k.body)
		if st != http.StatusOK || !bytes.Equal(body, k.receipt) {
			t.Fatalf("resubmission after the repair: %d, same receipt %v", st, bytes.Equal(body, k.receipt))
		}
	}
	for i := range 10 {
		body := decision(fmt.Sprintf("ro-repaired-%d", i), "allow", "", 0)
		st, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
		if err != nil || st != http.StatusCreated {
			t.Fatalf("POST after the repair: %d %v %s", st, err, resp)
		}
		checkReceipt(t, resp, v, body)
	}
	d.term(t, 20*time.Second)
	if code, out := govlog(t, t.TempDir(), nil, "fsck", "--data", data); code != 0 {
		t.Fatalf("govlog fsck after the read-only episode: %d %s", code, out)
	}
}

func idOf(t *testing.T, body []byte) string {
	t.Helper()
	var d struct{ ID string }
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// remountReadOnly remounts a file system read-only (nothing may hold a
// file open for writing on it).
func remountReadOnly(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		// Writable again, so that the tmpfs unmounts like the others.
		exec.Command("mount", "-o", "remount,rw", dir).Run()
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestStartOnReadOnlyDataDir: govlogd refuses to start on a data directory
// on a read-only file system: exit status 1, at once, with one line naming
// the directory and saying read-only, nothing served, nothing changed;
// once the file system is read-write again it serves the log as it was.
// The same for a new data directory (no keys yet), and for a data
// directory to create under a read-only one.
func TestStartOnReadOnlyDataDir(t *testing.T) {
	mnt := mountTmpfs(t, "16m")
	data := filepath.Join(mnt, "data")
	d := startDaemon(t, data, "")
	v := d.logKey(t)
	body := decision("ro-start-1", "allow", "", 0)
	st, receipt, err := postJSON(context.Background(), d.url+"/v1/decisions", body)
	if err != nil || st != http.StatusCreated {
		t.Fatalf("POST: %d %v %s", st, err, receipt)
	}
	d.term(t, 20*time.Second)
	files := dirNames(t, data)
	remountReadOnly(t, mnt)

	start := time.Now()
	out := refuses(t, "govlogd: the data directory "+data+" is on a read-only file system: ",
		"--listen", "127.0.0.1:0", "--data", data, "--origin", "e2e.govlog.test/log")
	took := time.Since(start)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
		t.Errorf("more than the one line of the refusal:\n%s", out)
	}
	if took > 10*time.Second {
		t.Errorf("refusing took %v", took)
	}
	if got := dirNames(t, data); !slices.Equal(got, files) {
		t.Fatalf("the data directory changed: %v, was %v", got, files)
	}
	t.Logf("refused in %v: %s", took.Round(time.Millisecond), strings.TrimSpace(out))

	// A new data directory: the keys cannot be generated.
	fresh := mountTmpfs(t, "1m")
	remountReadOnly(t, fresh)
	refuses(t, "govlogd: the data directory "+fresh+" is on a read-only file system: ",
		"--listen", "127.0.0.1:0", "--data", fresh, "--origin", "e2e.govlog.test/log")
	// A data directory to create under a read-only one.
	sub := filepath.Join(fresh, "data")
	refuses(t, "govlogd: failed to create the data directory: mkdir "+sub+": read-only file system",
		"--listen", "127.0.0.1:0", "--data", sub, "--origin", "e2e.govlog.test/log")

	// Read-write again: the log as it was.
	if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount read-write: %v: %s", err, out)
	}
	d = startDaemon(t, data, "")
	if cp := latest(t, d.url, v); cp.Size != 2 { // the artifact key's entry and the decision
		t.Fatalf("log size %d after the read-only start, want 2", cp.Size)
	}
	st, again, _ := postJSON(context.Background(), d.url+"/v1/decisions", body)
	if st != http.StatusOK || !bytes.Equal(again, receipt) {
		t.Fatalf("resubmission: %d, same receipt %v", st, bytes.Equal(again, receipt))
	}
}
