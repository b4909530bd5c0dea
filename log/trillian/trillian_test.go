package trillian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"github.com/govlog/govlog/log/trillian/trilliantest"
)

func TestConformance(t *testing.T) {
	e := need(t)
	logtest.Run(t, func(t *testing.T) logtest.Opener {
		tree := e.newTree(t)
		return func(t *testing.T) log.Backend { return e.open(t, tree) }
	})
}

// fixture appends directly to Backends, like the sequencer does.
type fixture struct {
	t    *testing.T
	sign log.SignFunc
	v    func(cp log.Checkpoint)

	mu   sync.Mutex
	tick int
}

func newFixture(t *testing.T) *fixture {
	s, v := logtest.Keys(t)
	f := &fixture{t: t}
	f.sign = func(size uint64, hash [32]byte) (log.Checkpoint, error) { return log.SignCheckpoint(s, size, hash) }
	f.v = func(cp log.Checkpoint) {
		t.Helper()
		opened, err := log.OpenCheckpoint(cp.Note, v)
		if err != nil || opened.Size != cp.Size || opened.Hash != cp.Hash {
			t.Fatalf("checkpoint of size %d does not verify: %v", cp.Size, err)
		}
	}
	return f
}

func baseTime() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// decision is a valid decision submission; extra is added to its JSON.
func (f *fixture) decision(id, outcome, extra string) *log.Submission {
	f.t.Helper()
	body := fmt.Sprintf(`{"id":%q,"outcome":%q,"decided_at":%q,"subject":"agent-7","action":"deploy","policy":{"id":"prod"}%s}`,
		id, outcome, baseTime().Format(time.RFC3339), extra)
	d, err := log.ParseDecision([]byte(body), baseTime())
	if err != nil {
		f.t.Fatalf("ParseDecision(%s): %v", body, err)
	}
	return log.DecisionSubmission(d, "alice")
}

// entries stamps submissions, each with a logged_at of its own.
func (f *fixture) entries(subs ...*log.Submission) []*log.Entry {
	f.t.Helper()
	out := make([]*log.Entry, len(subs))
	for i, s := range subs {
		f.mu.Lock()
		f.tick++
		at := baseTime().Add(time.Duration(f.tick) * time.Millisecond)
		f.mu.Unlock()
		e, err := log.NewEntry(s, at, 300*time.Second)
		if err != nil {
			f.t.Fatal(err)
		}
		out[i] = e
	}
	return out
}

func (f *fixture) append(b *Backend, subs ...*log.Submission) ([]log.AppendResult, log.Checkpoint) {
	f.t.Helper()
	res, cp, err := b.Append(context.Background(), f.entries(subs...), f.sign)
	if err != nil {
		f.t.Fatalf("Append: %v", err)
	}
	f.v(cp)
	return res, cp
}

// checkIncluded checks that leaf is at index in b's latest checkpoint.
func checkIncluded(t *testing.T, b *Backend, index uint64, leaf []byte) log.Checkpoint {
	t.Helper()
	ctx := context.Background()
	cp, err := b.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		t.Fatalf("InclusionProof(%d, %d): %v", index, cp.Size, err)
	}
	hashes := make([][]byte, len(p))
	for i := range p {
		hashes[i] = p[i][:]
	}
	lh := log.LeafHash(leaf)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, lh[:], hashes, cp.Hash[:]); err != nil {
		t.Fatalf("leaf %d is not in the checkpoint of size %d: %v", index, cp.Size, err)
	}
	got, err := b.Entries(ctx, index, 1)
	if err != nil || !bytes.Equal(got[0], leaf) {
		t.Fatalf("Entries(%d) = %v; want the leaf", index, err)
	}
	return cp
}

// TestReplicas runs two Backends (two govlogd replicas) on one tree.
func TestReplicas(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	tree := e.newTree(t)
	a, b := e.open(t, tree), e.open(t, tree)
	defer a.Close()
	defer b.Close()
	var cps []log.Checkpoint
	var cpMu sync.Mutex
	keep := func(cp log.Checkpoint) {
		cpMu.Lock()
		cps = append(cps, cp)
		cpMu.Unlock()
	}

	t.Run("duplicate sent to both lands once", func(t *testing.T) {
		for i := range 4 {
			id := fmt.Sprintf("dup-%d", i)
			sub := f.decision(id, log.OutcomeAllow, "")
			var (
				wg   sync.WaitGroup
				res  [2]log.AppendResult
				errs [2]error
			)
			for j, r := range []*Backend{a, b} {
				batch := f.entries(sub)
				wg.Go(func() {
					var out []log.AppendResult
					var cp log.Checkpoint
					out, cp, errs[j] = r.Append(ctx, batch, f.sign)
					if errs[j] == nil {
						res[j] = out[0]
						keep(cp)
					}
				})
			}
			wg.Wait()
			for j := range errs {
				if errs[j] != nil || res[j].Err != nil {
					t.Fatalf("%s on replica %d: %v %v", id, j, errs[j], res[j].Err)
				}
			}
			if res[0].Index != res[1].Index || !bytes.Equal(res[0].Leaf, res[1].Leaf) {
				t.Fatalf("%s: replicas disagree: index %d and %d", id, res[0].Index, res[1].Index)
			}
			if res[0].Existing == res[1].Existing {
				t.Fatalf("%s: Existing %v on both replicas, want it on exactly one", id, res[0].Existing)
			}
		}
		latest, err := a.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		leaves, err := b.Entries(ctx, 0, int(latest.Size))
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]int)
		for _, l := range leaves {
			p, err := log.ParseEntry(l)
			if err != nil {
				t.Fatal(err)
			}
			seen[p.ID]++
		}
		for i := range 4 {
			if id := fmt.Sprintf("dup-%d", i); seen[id] != 1 {
				t.Errorf("%s is in the log %d times, want once", id, seen[id])
			}
		}
	})

	t.Run("found on the other replica", func(t *testing.T) {
		res, cp := f.append(a, f.decision("x-1", log.OutcomeAllow, `,"sequence":7`))
		keep(cp)
		index, leaf, err := b.Lookup(ctx, log.KindDecision, "x-1")
		if err != nil || index != res[0].Index || !bytes.Equal(leaf, res[0].Leaf) {
			t.Fatalf("Lookup on the other replica = %d, %v; want %d", index, err, res[0].Index)
		}
		checkIncluded(t, b, index, leaf)
		if i, err := b.LookupHash(ctx, log.LeafHash(leaf)); err != nil || i != index {
			t.Fatalf("LookupHash on the other replica = %d, %v", i, err)
		}
		if c, err := b.Covering(ctx, index); err != nil || !bytes.Equal(c.Note, cp.Note) {
			t.Fatalf("Covering on the other replica: %v\n%s\nwant\n%s", err, c.Note, cp.Note)
		}
		// The other replica enforces the rules against it.
		res, cp = f.append(b,
			f.decision("x-1", log.OutcomeAllow, `,"sequence":7`), // resubmission
			f.decision("x-1", log.OutcomeDeny, ""),               // conflict
			f.decision("x-2", log.OutcomeAllow, `,"sequence":7`), // sequence taken
			f.decision("x-3", log.OutcomeAllow, `,"parent_id":"x-1"`),
		)
		keep(cp)
		if !res[0].Existing || res[0].Index != index {
			t.Errorf("resubmission on the other replica: %+v", res[0])
		}
		if !errors.Is(res[1].Err, log.ErrIDConflict) || !errors.Is(res[2].Err, log.ErrSequenceConflict) || res[3].Err != nil {
			t.Errorf("other replica's results: %v, %v, %v", res[1].Err, res[2].Err, res[3].Err)
		}
	})

	t.Run("consistent checkpoints", func(t *testing.T) {
		var wg sync.WaitGroup
		indices := make(map[uint64]string)
		var mu sync.Mutex
		errs := make(chan error, 2)
		for j, r := range []*Backend{a, b} {
			wg.Go(func() {
				for i := range 10 {
					subs := make([]*log.Submission, 1+i%4)
					for k := range subs {
						subs[k] = f.decision(fmt.Sprintf("c-%d-%d-%d", j, i, k), log.OutcomeAllow, "")
					}
					res, cp, err := r.Append(ctx, f.entries(subs...), f.sign)
					if err != nil {
						errs <- err
						return
					}
					keep(cp)
					mu.Lock()
					for k, x := range res {
						if x.Err != nil || x.Existing || x.Index >= cp.Size {
							errs <- fmt.Errorf("replica %d: result %+v with checkpoint size %d", j, x, cp.Size)
						}
						if other, ok := indices[x.Index]; ok {
							errs <- fmt.Errorf("index %d given to %s and %s", x.Index, other, subs[k].ID)
						}
						indices[x.Index] = subs[k].ID
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		la, err := a.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := b.Latest(ctx)
		if err != nil || !bytes.Equal(la.Note, lb.Note) {
			t.Fatalf("replicas' latest checkpoints differ: %v\n%s\n%s", err, la.Note, lb.Note)
		}
		// Every checkpoint either replica returned is one of the log's:
		// one root per size, each consistent with the latest.
		roots := make(map[uint64][32]byte)
		sort.Slice(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
		for _, cp := range cps {
			f.v(cp)
			if r, ok := roots[cp.Size]; ok && r != cp.Hash {
				t.Fatalf("two roots for size %d", cp.Size)
			}
			roots[cp.Size] = cp.Hash
			if cp.Size == 0 || cp.Size == la.Size {
				continue
			}
			p, err := b.ConsistencyProof(ctx, cp.Size, la.Size)
			if err != nil {
				t.Fatal(err)
			}
			hashes := make([][]byte, len(p))
			for i := range p {
				hashes[i] = p[i][:]
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp.Size, la.Size, hashes, cp.Hash[:], la.Hash[:]); err != nil {
				t.Fatalf("checkpoint of size %d is not consistent with the latest (%d): %v", cp.Size, la.Size, err)
			}
		}
		for index, id := range indices {
			i, leaf, err := a.Lookup(ctx, log.KindDecision, id)
			if err != nil || i != index {
				t.Fatalf("Lookup(%s) = %d, %v; want %d", id, i, err, index)
			}
			checkIncluded(t, b, i, leaf)
		}
	})
}

// TestCrashBetweenSteps interrupts Append between its steps, as a crash of
// the replica would, and checks what the log then holds and how the next
// Appends repair it.
func TestCrashBetweenSteps(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	b := e.open(t, e.newTree(t))
	defer b.Close()
	crash := errors.New("simulated crash")
	f.append(b, f.decision("first", log.OutcomeAllow, ""))

	t.Run("reserved, never queued", func(t *testing.T) {
		b.hooks.afterReserve = func() error { return crash }
		orig := f.entries(f.decision("r-1", log.OutcomeAllow, ""))
		_, _, err := b.Append(ctx, orig, f.sign)
		b.hooks.afterReserve = nil
		if !errors.Is(err, log.ErrUnavailable) {
			t.Fatalf("Append with a crash after the reservation: %v, want ErrUnavailable", err)
		}
		if _, _, err := b.Lookup(ctx, log.KindDecision, "r-1"); !errors.Is(err, log.ErrNotFound) {
			t.Fatalf("Lookup of a reserved id that is not in the tree: %v, want ErrNotFound", err)
		}
		// The id is taken, as if appended.
		res, _ := f.append(b, f.decision("r-1", log.OutcomeDeny, ""))
		if !errors.Is(res[0].Err, log.ErrIDConflict) {
			t.Fatalf("other content for a reserved id: %+v, want ErrIDConflict", res[0])
		}
		// An identical resubmission queues the stored leaf and gets it.
		res, cp := f.append(b, f.decision("r-1", log.OutcomeAllow, ""))
		if res[0].Err != nil || !res[0].Existing || !bytes.Equal(res[0].Leaf, orig[0].Leaf) {
			t.Fatalf("resubmission after the crash: %+v; want Existing with the original leaf", res[0])
		}
		if res[0].Index >= cp.Size {
			t.Fatalf("index %d is not covered by the checkpoint of size %d", res[0].Index, cp.Size)
		}
		checkIncluded(t, b, res[0].Index, orig[0].Leaf)
		if i, _, err := b.Lookup(ctx, log.KindDecision, "r-1"); err != nil || i != res[0].Index {
			t.Fatalf("Lookup after the repair = %d, %v", i, err)
		}
	})

	t.Run("parent reserved, never queued", func(t *testing.T) {
		b.hooks.afterReserve = func() error { return crash }
		parent := f.entries(f.decision("p-1", log.OutcomeAllow, ""))
		_, _, err := b.Append(ctx, parent, f.sign)
		b.hooks.afterReserve = nil
		if !errors.Is(err, log.ErrUnavailable) {
			t.Fatal(err)
		}
		res, _ := f.append(b, f.decision("p-2", log.OutcomeAllow, `,"parent_id":"p-1"`))
		if res[0].Err != nil {
			t.Fatalf("child of a reserved parent: %v", res[0].Err)
		}
		pi, leaf, err := b.Lookup(ctx, log.KindDecision, "p-1")
		if err != nil || !bytes.Equal(leaf, parent[0].Leaf) {
			t.Fatalf("the parent is not in the log after its child: %v", err)
		}
		if pi >= res[0].Index {
			t.Fatalf("parent at %d, child at %d: the parent must come first", pi, res[0].Index)
		}
		checkIncluded(t, b, pi, leaf)
	})

	t.Run("parent and child reserved, never queued", func(t *testing.T) {
		b.hooks.afterReserve = func() error { return crash }
		orig := f.entries(
			f.decision("pc-1", log.OutcomeAllow, ""),
			f.decision("pc-2", log.OutcomeAllow, `,"parent_id":"pc-1"`),
			f.decision("pc-3", log.OutcomeAllow, `,"parent_id":"pc-2"`),
		)
		_, _, err := b.Append(ctx, orig, f.sign)
		b.hooks.afterReserve = nil
		if !errors.Is(err, log.ErrUnavailable) {
			t.Fatal(err)
		}
		// Only the grandchild is resubmitted: its parent and grandparent,
		// reserved but never queued, must land before it.
		res, _ := f.append(b, f.decision("pc-3", log.OutcomeAllow, `,"parent_id":"pc-2"`), f.decision("pc-4", log.OutcomeDeny, ""))
		if res[0].Err != nil || !res[0].Existing || !bytes.Equal(res[0].Leaf, orig[2].Leaf) {
			t.Fatalf("resubmission of the grandchild: %+v", res[0])
		}
		var prev int64 = -1
		for i, id := range []string{"pc-1", "pc-2", "pc-3"} {
			idx, leaf, err := b.Lookup(ctx, log.KindDecision, id)
			if err != nil || !bytes.Equal(leaf, orig[i].Leaf) {
				t.Fatalf("Lookup(%s) after the grandchild's resubmission: %v", id, err)
			}
			if int64(idx) <= prev {
				t.Fatalf("%s at %d, after its parent at %d: parents must come first", id, idx, prev)
			}
			prev = int64(idx)
			checkIncluded(t, b, idx, leaf)
		}
	})

	t.Run("queued, no checkpoint", func(t *testing.T) {
		b.hooks.afterQueue = func() error { return crash }
		orig := f.entries(f.decision("q-1", log.OutcomeAllow, ""))
		before, _ := b.Latest(ctx)
		_, _, err := b.Append(ctx, orig, f.sign)
		b.hooks.afterQueue = nil
		if !errors.Is(err, log.ErrUnavailable) {
			t.Fatal(err)
		}
		// Trillian integrates the leaf, but no checkpoint covers it: it is
		// not visible.
		time.Sleep(200 * time.Millisecond)
		if _, _, err := b.Lookup(ctx, log.KindDecision, "q-1"); !errors.Is(err, log.ErrNotFound) {
			t.Fatalf("Lookup of a leaf no checkpoint covers: %v, want ErrNotFound", err)
		}
		if latest, _ := b.Latest(ctx); latest.Size != before.Size {
			t.Fatalf("the latest checkpoint moved from %d to %d", before.Size, latest.Size)
		}
		if _, err := b.Entries(ctx, before.Size, 1); !errors.Is(err, log.ErrOutOfRange) {
			t.Fatalf("Entries beyond the latest checkpoint: %v, want ErrOutOfRange", err)
		}
		// The next batch's checkpoint covers it.
		res, cp := f.append(b, f.decision("q-2", log.OutcomeAllow, ""))
		if res[0].Index != before.Size+1 || cp.Size != before.Size+2 {
			t.Fatalf("next append at %d with size %d; want %d and %d", res[0].Index, cp.Size, before.Size+1, before.Size+2)
		}
		i, leaf, err := b.Lookup(ctx, log.KindDecision, "q-1")
		if err != nil || i != before.Size || !bytes.Equal(leaf, orig[0].Leaf) {
			t.Fatalf("Lookup(q-1) = %d, %v; want %d", i, err, before.Size)
		}
		res, _ = f.append(b, f.decision("q-1", log.OutcomeAllow, ""))
		if !res[0].Existing || res[0].Index != before.Size {
			t.Fatalf("resubmission of q-1: %+v", res[0])
		}
	})
}

// TestFailClosed stops Trillian and cuts the database under a Backend: it
// fails with ErrUnavailable, and resumes by itself once they are back.
func TestFailClosed(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	// Servers of their own, on a database of their own: no other signer
	// integrates this test's tree while its signer is down.
	dsn := e.newDatabase(t)
	srv, err := trilliantest.StartServers(e.Bin, dsn, trilliantest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	conn, err := dial(srv.LogRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tree, err := createTree(tctx, conn, "govlog-failclosed")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := newProxy(t, cfg.Addr)
	cfg.Addr = db.addr
	b, err := Open(ctx, Config{Addr: srv.LogRPC, TreeID: tree, DSN: cfg.FormatDSN(),
		PollInterval: testPollInterval, IntegrationTimeout: 2 * time.Second, RPCTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, first := f.append(b, f.decision("before", log.OutcomeAllow, ""))

	unavailable := func(what string) {
		t.Helper()
		_, _, err := b.Append(ctx, f.entries(f.decision("while-down", log.OutcomeAllow, "")), f.sign)
		if !errors.Is(err, log.ErrUnavailable) {
			t.Fatalf("Append while %s: %v, want ErrUnavailable", what, err)
		}
		if err := b.Ready(ctx); !errors.Is(err, log.ErrUnavailable) {
			t.Fatalf("Ready while %s: %v, want ErrUnavailable", what, err)
		}
	}
	resumes := func(what, id string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for b.Ready(ctx) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("Ready still failing 20s after %s: %v", what, b.Ready(ctx))
			}
			time.Sleep(100 * time.Millisecond)
		}
		res, cp := f.append(b, f.decision(id, log.OutcomeAllow, ""))
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		checkIncluded(t, b, res[0].Index, res[0].Leaf)
		if err := b.checkConsistent(ctx, first, root{size: cp.Size, hash: cp.Hash}); err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
	}

	t.Run("Trillian down", func(t *testing.T) {
		srv.KillSigner()
		srv.KillServer()
		unavailable("Trillian is down")
		if err := srv.StartServer(); err != nil {
			t.Fatal(err)
		}
		if err := srv.StartSigner(); err != nil {
			t.Fatal(err)
		}
		resumes("Trillian restarted", "after-trillian")
	})

	t.Run("signer down", func(t *testing.T) {
		srv.KillSigner()
		unavailable("the signer is down")
		if err := srv.StartSigner(); err != nil {
			t.Fatal(err)
		}
		resumes("the signer restarted", "after-signer")
		// What was queued while the signer was down is logged once.
		res, _ := f.append(b, f.decision("while-down", log.OutcomeAllow, ""))
		if res[0].Err != nil || !res[0].Existing {
			t.Fatalf("resubmission of the entry queued while the signer was down: %+v", res[0])
		}
	})

	t.Run("database down", func(t *testing.T) {
		db.cut()
		unavailable("the database is down")
		if _, err := b.Latest(ctx); !errors.Is(err, log.ErrUnavailable) {
			t.Fatalf("Latest while the database is down: %v, want ErrUnavailable", err)
		}
		db.restore(t)
		resumes("the database came back", "after-db")
	})
}

// TestOpenFork opens storage whose latest checkpoint Trillian's tree does
// not match: ErrFork.
func TestOpenFork(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	db, err := sql.Open("mysql", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		name string
		// size of the forged checkpoint, relative to the real one
		delta int
	}{
		{"same size, other root", 0},
		{"larger than the tree", 5},
		{"smaller, inconsistent", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := e.newTree(t)
			b := e.open(t, tree)
			_, cp := f.append(b, f.decision("a", log.OutcomeAllow, ""), f.decision("b", log.OutcomeDeny, ""), f.decision("c", log.OutcomeAllow, ""))
			b.Close()
			size := uint64(int(cp.Size) + tt.delta)
			forged, err := f.sign(size, sha256.Sum256([]byte("another tree")))
			if err != nil {
				t.Fatal(err)
			}
			if tt.delta < 0 {
				// An earlier checkpoint is replaced; the latest is the
				// forged one once the real latest is gone.
				if _, err := db.ExecContext(ctx, "DELETE FROM govlog_checkpoints WHERE tree_id = ? AND size >= ?", tree, size); err != nil {
					t.Fatal(err)
				}
			} else if _, err := db.ExecContext(ctx, "DELETE FROM govlog_checkpoints WHERE tree_id = ? AND size = ?", tree, size); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, sqlInsertCheckpoint, tree, size, forged.Hash[:], forged.Note); err != nil {
				t.Fatal(err)
			}
			b, err = Open(ctx, Config{Addr: e.Servers.LogRPC, TreeID: tree, DSN: e.DSN})
			if err == nil {
				b.Close()
			}
			if !errors.Is(err, log.ErrFork) {
				t.Fatalf("Open on a forged checkpoint of size %d: %v, want ErrFork", size, err)
			}
		})
	}
}

// TestAppendReceipts checks the inclusion proofs Append returns for its
// submitters' receipts against Trillian's proofs, and the checkpoint it
// returns against the first stored checkpoint covering each entry: on
// one replica, after another replica appended a little (the compact range
// catches up by reading leaves), and a lot (it is rebuilt from a proof),
// and without the compact range (the proofs are Trillian's, verified).
func TestAppendReceipts(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	tree := e.newTree(t)
	a, other := e.open(t, tree), e.open(t, tree)
	defer a.Close()
	defer other.Close()
	n := 0
	batch := func(k int) []*log.Submission {
		subs := make([]*log.Submission, k)
		for i := range subs {
			n++
			subs[i] = f.decision(fmt.Sprintf("rc-%d", n), log.OutcomeAllow, "")
		}
		return subs
	}
	check := func(t *testing.T, res []log.AppendResult, cp log.Checkpoint) {
		t.Helper()
		for _, r := range res {
			p := r.Proof
			if p == nil {
				t.Fatalf("no proof of entry %d in size %d", r.Index, cp.Size)
			}
			resp, err := a.client.GetInclusionProof(ctx, &trillian.GetInclusionProofRequest{LogId: tree, LeafIndex: int64(r.Index), TreeSize: int64(cp.Size)})
			if err != nil {
				t.Fatal(err)
			}
			want := resp.GetProof().GetHashes()
			if len(p) != len(want) {
				t.Fatalf("proof of entry %d in size %d has %d hashes, Trillian's %d", r.Index, cp.Size, len(p), len(want))
			}
			for i := range p {
				if !bytes.Equal(p[i][:], want[i]) {
					t.Fatalf("proof of entry %d in size %d differs from Trillian's at hash %d", r.Index, cp.Size, i)
				}
			}
			stored, err := scanCheckpoint(a.db.QueryRowContext(ctx, sqlCovering, tree, r.Index))
			if err != nil || !bytes.Equal(cp.Note, stored.Note) {
				t.Fatalf("entry %d: Append returned the checkpoint of size %d, the first stored to cover it is of size %d (%v)", r.Index, cp.Size, stored.Size, err)
			}
		}
	}
	t.Run("one replica", func(t *testing.T) {
		for _, k := range []int{1, 1, 3, 7, 16, 2} {
			res, cp := f.append(a, batch(k)...)
			check(t, res, cp)
		}
	})
	t.Run("after a little from another replica", func(t *testing.T) {
		f.append(other, batch(5)...)
		f.append(other, batch(9)...)
		res, cp := f.append(a, batch(4)...)
		check(t, res, cp)
	})
	t.Run("after a lot from another replica", func(t *testing.T) {
		for range 5 {
			f.append(other, batch(maxCatchUp/4+1)...)
		}
		res, cp := f.append(a, batch(6)...)
		check(t, res, cp)
	})
	t.Run("reopened", func(t *testing.T) {
		a.Close()
		a = e.open(t, tree)
		res, cp := f.append(a, batch(3)...)
		check(t, res, cp)
	})
	t.Run("without the compact range", func(t *testing.T) {
		a.hooks.noRange = true
		defer func() { a.hooks.noRange = false }()
		f.append(other, batch(2)...)
		res, cp := f.append(a, batch(5)...)
		check(t, res, cp)
	})
}
