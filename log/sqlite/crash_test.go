package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/govlog/govlog/log"
)

// TestCrash appends in a child process that is killed (SIGKILL) right
// after its last Append returned, without closing the database: everything
// acknowledged must be there on reopen, WAL recovery included.
func TestCrash(t *testing.T) {
	if path := os.Getenv("GOVLOG_SQLITE_CRASH_DB"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "log.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), "GOVLOG_SQLITE_CRASH_DB="+path)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}
	acked, err := strconv.ParseUint(string(bytes.TrimSpace(out)), 10, 64)
	if err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	ctx := context.Background()
	b := openAt(t, path, Options{})
	cp, err := b.Latest(ctx)
	if err != nil || cp.Size != acked {
		t.Fatalf("Latest after the crash = size %d, %v; the child acknowledged %d", cp.Size, err, acked)
	}
	leaves, err := b.Entries(ctx, 0, int(acked))
	if err != nil || uint64(len(leaves)) != acked {
		t.Fatalf("Entries after the crash: %d, %v", len(leaves), err)
	}
	ref := newReference()
	ref.add(leaves...)
	if !bytes.Equal(ref.tree.Hash(), cp.Hash[:]) {
		t.Fatal("the entries after the crash do not hash to the checkpoint")
	}
	// The ids: the child merged the rows of its first 600 entries, the
	// others were in memory only (see pendingIDs).
	for i := range acked {
		id := fmt.Sprintf("d-%d-%d", i/300, i%300)
		if idx, _, err := b.Lookup(ctx, log.KindDecision, id); err != nil || idx != i {
			t.Fatalf("Lookup(%q) after the crash = %d, %v", id, idx, err)
		}
	}
	if p := b.snap.Load().ids; p.from != 600 {
		t.Fatalf("after the crash, ids rows for %d entries, want 600", p.from)
	}
	// The run filters, read again with their runs.
	if n := filterHoldsTable(t, b); n != 600 {
		t.Fatalf("after the crash, the run filters hold %d ids rows, want 600", n)
	}
	sign, _ := newSign(t)
	again := decision(t, "d-2-299", decisionOpts{}) // its row was in memory only
	merged := decision(t, "d-0-5", decisionOpts{})  // its row was merged
	e := decision(t, "after-crash", decisionOpts{})
	res, _ := mustAppend(t, b, sign, again, merged, e)
	if !res[0].Existing || res[0].Index != acked-1 {
		t.Fatalf("the resubmission of d-2-299 after the crash: %+v", res[0])
	}
	if !res[1].Existing || res[1].Index != 5 {
		t.Fatalf("the resubmission of d-0-5 after the crash: %+v", res[1])
	}
	if res[2].Index != acked {
		t.Fatalf("appended after the crash at %d, want %d", res[2].Index, acked)
	}
}

// crashChild appends three batches of 300, prints the acknowledged size and
// kills itself. The second batch crosses 500: it merges the ids and leaf
// hashes of the first 600 entries.
func crashChild(path string) {
	ctx := context.Background()
	b, err := Open(ctx, path, Options{HashMerge: 1000})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	t := &testing.T{}
	sign, _ := newSign(t)
	var cp log.Checkpoint
	for i := range 3 {
		var batch []*log.Entry
		for j := range 300 {
			batch = append(batch, decision(t, fmt.Sprintf("d-%d-%d", i, j), decisionOpts{}))
		}
		if _, cp, err = b.Append(ctx, batch, sign); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	fmt.Println(cp.Size)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
