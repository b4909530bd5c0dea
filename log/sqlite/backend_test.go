package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/govlog/govlog/log"
)

func TestEmptyLog(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	b := openAt(t, path, Options{})
	sign, verifier := newSign(t)

	_, err := b.Latest(ctx)
	wantErr(t, "Latest", err, log.ErrNotFound)
	_, err = b.Covering(ctx, 0)
	wantErr(t, "Covering", err, log.ErrNotFound)
	_, err = b.Entries(ctx, 0, 1)
	wantErr(t, "Entries", err, log.ErrOutOfRange)
	_, _, err = b.Lookup(ctx, log.KindDecision, "d-1")
	wantErr(t, "Lookup", err, log.ErrNotFound)
	_, err = b.LookupHash(ctx, log.LeafHash([]byte("x")))
	wantErr(t, "LookupHash", err, log.ErrNotFound)

	signs := 0
	counting := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		signs++
		return sign(size, hash)
	}
	res, cp, err := b.Append(ctx, nil, counting)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 0 || cp.Size != 0 || cp.Hash != log.EmptyRoot || signs != 1 {
		t.Fatalf("empty Append: %d results, size %d, root %x, %d signatures", len(res), cp.Size, cp.Hash, signs)
	}
	if _, err := log.OpenCheckpoint(cp.Note, verifier); err != nil {
		t.Fatalf("size-0 checkpoint does not verify: %v", err)
	}
	// Nothing new: no new signature, the same checkpoint.
	_, again, err := b.Append(ctx, []*log.Entry{}, counting)
	if err != nil {
		t.Fatal(err)
	}
	if signs != 1 || !bytes.Equal(again.Note, cp.Note) {
		t.Fatalf("second empty Append signed %d times, note %q", signs, again.Note)
	}
	if latest, err := b.Latest(ctx); err != nil || !bytes.Equal(latest.Note, cp.Note) {
		t.Fatalf("Latest = %v, %v", latest, err)
	}
	_, err = b.InclusionProof(ctx, 0, 0)
	wantErr(t, "InclusionProof", err, log.ErrOutOfRange)
	_, err = b.ConsistencyProof(ctx, 0, 0)
	wantErr(t, "ConsistencyProof", err, log.ErrOutOfRange)

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openAt(t, path, Options{})
	if latest, err := b.Latest(ctx); err != nil || !bytes.Equal(latest.Note, cp.Note) {
		t.Fatalf("Latest after reopen = %v, %v", latest, err)
	}
}

// TestTreeEverySize appends 600 entries in batches of 1, 2, 3, … entries
// and checks every checkpoint's root, and proofs at every size 1..600,
// against a reference tree.
func TestTreeEverySize(t *testing.T) {
	ctx := context.Background()
	b := openAt(t, tempDB(t), Options{TileCacheSize: 2})
	sign, verifier := newSign(t)
	ref := newReference()
	covering := make(map[uint64]log.Checkpoint)
	const n = 600
	for i, batchSize := 0, 1; i < n; batchSize++ {
		var batch []*log.Entry
		for ; len(batch) < batchSize && i < n; i++ {
			batch = append(batch, decision(t, fmt.Sprintf("d-%d", i), decisionOpts{}))
		}
		res, cp := mustAppend(t, b, sign, batch...)
		for j, r := range res {
			if r.Err != nil || r.Existing || r.Index != ref.tree.Size() {
				t.Fatalf("entry %d: index %d, existing %v, error %v", i-len(batch)+j, r.Index, r.Existing, r.Err)
			}
			ref.add(batch[j].Leaf)
		}
		if cp.Size != ref.tree.Size() || !bytes.Equal(cp.Hash[:], ref.tree.Hash()) {
			t.Fatalf("checkpoint size %d root %x, want size %d root %x", cp.Size, cp.Hash, ref.tree.Size(), ref.tree.Hash())
		}
		if _, err := log.OpenCheckpoint(cp.Note, verifier); err != nil {
			t.Fatalf("checkpoint of size %d does not verify: %v", cp.Size, err)
		}
		for _, r := range res {
			covering[r.Index] = cp
		}
	}
	for size := uint64(1); size <= n; size++ {
		for _, i := range sample(0, size, 61) {
			ref.checkInclusion(t, b, i, size)
		}
		for _, from := range sample(1, size+1, 59) {
			ref.checkConsistency(t, b, from, size)
		}
	}
	for i := range uint64(n) {
		cp, err := b.Covering(ctx, i)
		if err != nil || !bytes.Equal(cp.Note, covering[i].Note) {
			t.Fatalf("Covering(%d) = size %d, %v; want size %d", i, cp.Size, err, covering[i].Size)
		}
	}
	leaves, err := b.Entries(ctx, 250, 1000)
	if err != nil || len(leaves) != n-250 {
		t.Fatalf("Entries(250, 1000): %d leaves, %v", len(leaves), err)
	}
	for j, l := range leaves {
		if !bytes.Equal(l, ref.leaves[250+j]) {
			t.Fatalf("entry %d differs", 250+j)
		}
	}
	if b.cache.len() > 2 {
		t.Errorf("the tile cache holds %d tiles, its limit is 2", b.cache.len())
	}
}

// want is the expected result of one entry of a batch.
type want struct {
	err       error
	existing  bool
	index     uint64 // for existing: the original index
	violation string // for created: the violation recorded
}

var created = want{}

func TestAppendChecks(t *testing.T) {
	type tc struct {
		name   string
		before [][]*log.Entry
		batch  []*log.Entry
		want   []want
	}
	d := func(id string, o decisionOpts) *log.Entry { return decision(t, id, o) }
	ex := func(id, decisionID string) *log.Entry { return execution(t, id, decisionID, "alice") }
	tcs := []tc{
		{"resubmission in a later batch",
			[][]*log.Entry{{d("a", decisionOpts{}), d("b", decisionOpts{})}},
			[]*log.Entry{d("b", decisionOpts{}), d("c", decisionOpts{})},
			[]want{{existing: true, index: 1}, created}},
		{"resubmission in the same batch",
			nil,
			[]*log.Entry{d("a", decisionOpts{}), d("a", decisionOpts{})},
			[]want{created, {existing: true, index: 0}}},
		{"other content",
			[][]*log.Entry{{d("a", decisionOpts{})}},
			[]*log.Entry{d("a", decisionOpts{action: "delete"})},
			[]want{{err: log.ErrIDConflict}}},
		{"other submitter",
			[][]*log.Entry{{d("a", decisionOpts{})}},
			[]*log.Entry{d("a", decisionOpts{submitter: "bob"})},
			[]want{{err: log.ErrIDConflict}}},
		{"conflict in the same batch",
			nil,
			[]*log.Entry{d("a", decisionOpts{}), d("a", decisionOpts{outcome: log.OutcomeDeny})},
			[]want{created, {err: log.ErrIDConflict}}},
		{"decision and execution namespaces",
			nil,
			[]*log.Entry{d("x", decisionOpts{}), ex("x", "x")},
			[]want{created, {violation: log.ViolationArtifactMissing}}},
		{"sequence conflict",
			[][]*log.Entry{{d("a", decisionOpts{sequence: 7})}},
			[]*log.Entry{d("b", decisionOpts{sequence: 7}), d("c", decisionOpts{sequence: 7, submitter: "bob"}), d("e", decisionOpts{sequence: 8})},
			[]want{{err: log.ErrSequenceConflict}, created, created}},
		{"sequence conflict in the same batch",
			nil,
			[]*log.Entry{d("a", decisionOpts{sequence: 1 << 52}), d("b", decisionOpts{sequence: 1 << 52})},
			[]want{created, {err: log.ErrSequenceConflict}}},
		{"resubmission with a sequence",
			[][]*log.Entry{{d("a", decisionOpts{sequence: 7})}},
			[]*log.Entry{d("a", decisionOpts{sequence: 7})},
			[]want{{existing: true, index: 0}}},
		{"refused sequence is free",
			[][]*log.Entry{{d("a", decisionOpts{})}},
			[]*log.Entry{d("a", decisionOpts{sequence: 3, action: "other"}), d("b", decisionOpts{sequence: 3})},
			[]want{{err: log.ErrIDConflict}, created}},
		{"parent",
			[][]*log.Entry{{d("p", decisionOpts{}), ex("e", "p")}},
			[]*log.Entry{d("c1", decisionOpts{parent: "p"}), d("c2", decisionOpts{parent: "nope"}), d("c3", decisionOpts{parent: "c1"}), d("c4", decisionOpts{parent: "e"})},
			[]want{created, {err: log.ErrUnknownParent}, created, {err: log.ErrUnknownParent}}},
		{"parent refused earlier in the batch",
			nil,
			[]*log.Entry{d("c1", decisionOpts{parent: "nope"}), d("c2", decisionOpts{parent: "c1"})},
			[]want{{err: log.ErrUnknownParent}, {err: log.ErrUnknownParent}}},
		{"deny parent",
			[][]*log.Entry{{d("p", decisionOpts{outcome: log.OutcomeDeny})}},
			[]*log.Entry{d("c", decisionOpts{parent: "p"})},
			[]want{{err: log.ErrParentDenied}}},
		{"executions",
			[][]*log.Entry{{d("a", decisionOpts{}), d("n", decisionOpts{outcome: log.OutcomeDeny})}},
			[]*log.Entry{ex("e1", "a"), ex("e2", "n"), ex("e3", "missing"),
				d("a2", decisionOpts{}), ex("e4", "a2"), d("n2", decisionOpts{outcome: log.OutcomeDeny}), ex("e5", "n2"), ex("e6", "e1")},
			[]want{{violation: log.ViolationArtifactMissing}, {violation: log.ViolationNotAuthorized}, {violation: log.ViolationUnknownDecision},
				created, {violation: log.ViolationArtifactMissing}, created, {violation: log.ViolationNotAuthorized}, {violation: log.ViolationUnknownDecision}}},
		{"execution resubmission",
			[][]*log.Entry{{d("a", decisionOpts{}), ex("e", "a")}},
			[]*log.Entry{ex("e", "a"), execution(t, "e", "a", "bob")},
			[]want{{existing: true, index: 1}, {err: log.ErrIDConflict}}},
		{"nothing new",
			[][]*log.Entry{{d("a", decisionOpts{})}},
			[]*log.Entry{d("a", decisionOpts{}), d("a", decisionOpts{action: "x"}), d("c", decisionOpts{parent: "nope"}), d("c2", decisionOpts{parent: "c"})},
			[]want{{existing: true, index: 0}, {err: log.ErrIDConflict}, {err: log.ErrUnknownParent}, {err: log.ErrUnknownParent}}},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b := openAt(t, tempDB(t), Options{})
			sign, _ := newSign(t)
			ref := newReference()
			var prev log.Checkpoint
			for _, batch := range append([][]*log.Entry{{}}, tc.before...) {
				res, cp := mustAppend(t, b, sign, batch...)
				for i, r := range res {
					if r.Err != nil || r.Existing {
						t.Fatalf("setup entry %d: %+v", i, r)
					}
					ref.add(r.Leaf)
				}
				prev = cp
			}
			signs := 0
			counting := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
				signs++
				return sign(size, hash)
			}
			res, cp := mustAppend(t, b, counting, tc.batch...)
			next := prev.Size
			for i, r := range res {
				w := tc.want[i]
				switch {
				case w.err != nil:
					if !errors.Is(r.Err, w.err) || r.Existing {
						t.Errorf("entry %d: %+v, want error %v", i, r, w.err)
					}
				case w.existing:
					if r.Err != nil || !r.Existing || r.Index != w.index || !bytes.Equal(r.Leaf, ref.leaves[w.index]) {
						t.Errorf("entry %d: %+v, want existing at %d", i, r, w.index)
					}
				default:
					leaf := tc.batch[i].Leaf
					if w.violation != "" {
						leaf = log.WithViolation(leaf, w.violation)
					}
					if r.Err != nil || r.Existing || r.Index != next || !bytes.Equal(r.Leaf, leaf) {
						t.Errorf("entry %d: %+v, want created at %d with violation %q", i, r, next, w.violation)
					}
					ref.add(leaf)
					next++
				}
			}
			if next == prev.Size {
				if signs != 0 || !bytes.Equal(cp.Note, prev.Note) {
					t.Errorf("nothing new, yet %d signatures and checkpoint size %d", signs, cp.Size)
				}
			} else if signs != 1 || cp.Size != next || !bytes.Equal(cp.Hash[:], ref.tree.Hash()) {
				t.Errorf("%d signatures, checkpoint size %d root %x, want size %d root %x", signs, cp.Size, cp.Hash, next, ref.tree.Hash())
			}
			// What was refused is not in the log; what was created is.
			for i, r := range res {
				e := tc.batch[i]
				idx, leaf, err := b.Lookup(ctx, e.Kind, e.ID)
				switch {
				case r.Err == nil:
					if err != nil || idx != r.Index || !bytes.Equal(leaf, r.Leaf) {
						t.Errorf("Lookup(%v %q) = %d, %v", e.Kind, e.ID, idx, err)
					}
				case errors.Is(r.Err, log.ErrIDConflict):
				default:
					if !errors.Is(err, log.ErrNotFound) {
						t.Errorf("refused %v %q: Lookup = %d, %v", e.Kind, e.ID, idx, err)
					}
				}
			}
		})
	}
}

func TestAppendIncompleteEntry(t *testing.T) {
	b := openAt(t, tempDB(t), Options{})
	sign, _ := newSign(t)
	for _, batch := range [][]*log.Entry{{nil}, {{}}, {{Submission: &log.Submission{Kind: 9, ID: "x"}, Leaf: []byte("{}")}}} {
		if _, _, err := b.Append(context.Background(), batch, sign); err == nil {
			t.Errorf("Append(%+v) succeeded", batch)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, _ := newSign(t)
	ref := newReference()
	var checkpoints []log.Checkpoint
	appendN := func(b *Backend, from, n int) {
		var batch []*log.Entry
		for i := from; i < from+n; i++ {
			batch = append(batch, decision(t, fmt.Sprintf("d-%d", i), decisionOpts{sequence: uint64(i + 1)}))
		}
		_, cp := mustAppend(t, b, sign, batch...)
		for _, e := range batch {
			ref.add(e.Leaf)
		}
		checkpoints = append(checkpoints, cp)
	}
	b, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(b, 0, 200)
	appendN(b, 200, 100) // crosses the first tile boundary
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	for round, n := range []int{1, 255, 300} {
		b = openAt(t, path, Options{})
		latest, err := b.Latest(ctx)
		if err != nil || !bytes.Equal(latest.Note, checkpoints[len(checkpoints)-1].Note) {
			t.Fatalf("round %d: Latest = size %d, %v", round, latest.Size, err)
		}
		size := ref.tree.Size()
		for _, i := range sample(0, size, 37) {
			ref.checkInclusion(t, b, i, size)
			idx, leaf, err := b.Lookup(ctx, log.KindDecision, fmt.Sprintf("d-%d", i))
			if err != nil || idx != i || !bytes.Equal(leaf, ref.leaves[i]) {
				t.Fatalf("Lookup(d-%d) = %d, %v", i, idx, err)
			}
			if got, err := b.LookupHash(ctx, log.LeafHash(ref.leaves[i])); err != nil || got != i {
				t.Fatalf("LookupHash(entry %d) = %d, %v", i, got, err)
			}
		}
		for _, cp := range checkpoints {
			ref.checkConsistency(t, b, max(cp.Size, 1), size)
		}
		// The sequence index survived: a reused sequence is refused.
		res, _ := mustAppend(t, b, sign, decision(t, "reuse", decisionOpts{sequence: 1}))
		wantErr(t, "reused sequence", res[0].Err, log.ErrSequenceConflict)
		// The rebuilt tree extends correctly.
		appendN(b, int(size), n)
		if got := checkpoints[len(checkpoints)-1]; !bytes.Equal(got.Hash[:], ref.tree.Hash()) {
			t.Fatalf("round %d: root after reopen and append is %x, want %x", round, got.Hash, ref.tree.Hash())
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "missing", "log.db"), Options{}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	if _, err := Open(ctx, tempDB(t), Options{ReadConns: -1}); err == nil {
		t.Error("Open with negative ReadConns succeeded")
	}
	garbage := tempDB(t)
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, garbage, Options{}); err == nil {
		t.Error("Open of a file that is not a database succeeded")
	}
	newer := tempDB(t)
	b := openAt(t, newer, Options{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tamper(t, newer, "PRAGMA user_version = 99")
	if _, err := Open(ctx, newer, Options{}); err == nil {
		t.Error("Open of a newer schema succeeded")
	}
}

// tamper runs statements on the database file with a connection of its own.
func tamper(t testing.TB, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestOpenDetectsFork(t *testing.T) {
	ctx := context.Background()
	sign, _ := newSign(t)
	// A log of 600 entries, in batches of 100: tiles 0/0 and 0/1 full,
	// 0/2 with 88 hashes, 1/0 with 2.
	var leaves [][]byte
	build := func(t *testing.T) string {
		path := tempDB(t)
		b, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		leaves = nil
		for i := 0; i < 600; i += 100 {
			var batch []*log.Entry
			for j := i; j < i+100; j++ {
				batch = append(batch, decision(t, fmt.Sprintf("d-%d", j), decisionOpts{}))
				leaves = append(leaves, batch[len(batch)-1].Leaf)
			}
			mustAppend(t, b, sign, batch...)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	other, err := sign(600, [32]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	small, err := sign(500, [32]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stmts func() []string
		msg   string
	}{
		{"leaf in the last tile", func() []string {
			l := bytes.Replace(leaves[599], []byte("deploy"), []byte("delete"), 1)
			return []string{fmt.Sprintf("UPDATE entries SET leaf = x'%x' WHERE idx = 599", l)}
		}, "entry 599 does not match"},
		{"first leaf of the last tile", func() []string {
			return []string{fmt.Sprintf("UPDATE entries SET leaf = x'%x' WHERE idx = 512", leaves[511])}
		}, "entry 512 does not match"},
		{"leaf hash in the partial tile", func() []string {
			return []string{"UPDATE tiles SET hashes = substr(hashes, 1, 320) || x'00' || substr(hashes, 322) WHERE level = 0 AND idx = 2"}
		}, "root hash"},
		{"level-1 tile hash", func() []string {
			return []string{"UPDATE tiles SET hashes = x'00' || substr(hashes, 2) WHERE level = 1 AND idx = 0"}
		}, "root hash"},
		{"checkpoint root", func() []string {
			return []string{fmt.Sprintf("UPDATE checkpoints SET note = x'%x' WHERE size = 600", other.Note)}
		}, "root hash"},
		{"checkpoint size", func() []string {
			return []string{fmt.Sprintf("UPDATE checkpoints SET note = x'%x' WHERE size = 600", small.Note)}
		}, "is for size 500"},
		{"checkpoint note", func() []string {
			return []string{"UPDATE checkpoints SET note = x'00' WHERE size = 600"}
		}, "checkpoint stored for size 600"},
		{"latest checkpoint lost", func() []string {
			return []string{"DELETE FROM checkpoints WHERE size = 600"}
		}, "tile 0/1 holds 8192 bytes"},
		{"all checkpoints lost", func() []string {
			return []string{"DELETE FROM checkpoints"}
		}, "no checkpoint"},
		// (A hole in the middle is govlog fsck's to find: Open reads the
		// index bounds only, not every row.)
		{"first entry missing", func() []string {
			return []string{"DELETE FROM entries WHERE idx = 0"}
		}, "entries 1 to 599, the checkpoint has size 600"},
		{"extra entry", func() []string {
			return []string{"INSERT INTO entries (idx, leaf) VALUES (600, x'00')"}
		}, "entries 0 to 600, the checkpoint has size 600"},
		{"last entry missing", func() []string {
			return []string{"DELETE FROM entries WHERE idx = 599"}
		}, "entries 0 to 598"},
		{"missing tile", func() []string {
			return []string{"DELETE FROM tiles WHERE level = 1"}
		}, "tile 1/0 of the tree of size 600 is missing"},
		{"truncated tile", func() []string {
			return []string{"UPDATE tiles SET hashes = substr(hashes, 1, 87*32) WHERE level = 0 AND idx = 2"}
		}, "needs 88 hashes"},
		{"short full tile", func() []string {
			// Read with the leaf hashes not in the leaf-hash index yet.
			return []string{"UPDATE tiles SET hashes = substr(hashes, 1, 32) WHERE level = 0 AND idx = 0"}
		}, "full tile 0/0 holds 32 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := build(t)
			tamper(t, path, tc.stmts()...)
			b, err := Open(ctx, path, Options{})
			if tc.msg == "" {
				// A full tile that no check of Open reads: the proofs
				// that need it fail instead.
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer b.Close()
				_, err := b.InclusionProof(ctx, 0, 600)
				wantErr(t, "InclusionProof through the short tile", err, log.ErrUnavailable)
				return
			}
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			wantErr(t, "Open", err, log.ErrFork)
			if !bytes.Contains([]byte(err.Error()), []byte(tc.msg)) {
				t.Errorf("Open: %v; want a message containing %q", err, tc.msg)
			}
		})
	}
}

func TestFailureRecovery(t *testing.T) {
	ctx := context.Background()
	type setup struct {
		b    *Backend
		sign log.SignFunc
		ref  *reference
	}
	newSetup := func(t *testing.T, opts Options) *setup {
		s := &setup{b: openAt(t, tempDB(t), opts), ref: newReference()}
		s.sign, _ = newSign(t)
		for i := range 3 {
			e := decision(t, fmt.Sprintf("pre-%d", i), decisionOpts{})
			mustAppend(t, s.b, s.sign, e)
			s.ref.add(e.Leaf)
		}
		return s
	}
	// check appends batch, which must all be new at the next indices.
	check := func(t *testing.T, s *setup, batch ...*log.Entry) {
		t.Helper()
		res, cp := mustAppend(t, s.b, s.sign, batch...)
		for i, r := range res {
			if r.Err != nil || r.Existing || r.Index != s.ref.tree.Size() {
				t.Fatalf("entry %d: %+v, want created at %d", i, r, s.ref.tree.Size())
			}
			s.ref.add(batch[i].Leaf)
		}
		if cp.Size != s.ref.tree.Size() || !bytes.Equal(cp.Hash[:], s.ref.tree.Hash()) {
			t.Fatalf("checkpoint size %d root %x, want %d %x", cp.Size, cp.Hash, s.ref.tree.Size(), s.ref.tree.Hash())
		}
	}

	t.Run("locked by another connection", func(t *testing.T) {
		s := newSetup(t, Options{BusyTimeout: 50e6})
		db, err := sql.Open("sqlite3", "file:"+s.b.pathForTest(t)+"?_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		lock, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := decision(t, "d-1", decisionOpts{})
		_, _, err = s.b.Append(ctx, []*log.Entry{e}, s.sign)
		wantErr(t, "Append while locked", err, log.ErrUnavailable)
		wantErr(t, "Ready while locked", s.b.Ready(ctx), log.ErrUnavailable)
		// Readers are not blocked by the lock.
		if cp, err := s.b.Latest(ctx); err != nil || cp.Size != 3 {
			t.Fatalf("Latest while locked = %d, %v", cp.Size, err)
		}
		s.ref.checkInclusion(t, s.b, 1, 3)
		if _, err := s.b.Entries(ctx, 0, 3); err != nil {
			t.Fatalf("Entries while locked: %v", err)
		}
		if err := lock.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := s.b.Ready(ctx); err != nil {
			t.Fatalf("Ready after unlock: %v", err)
		}
		check(t, s, e)
	})

	t.Run("commit fails", func(t *testing.T) {
		s := newSetup(t, Options{})
		s.b.hooks.beforeCommit = func() error { return errors.New("disk on fire") }
		e := decision(t, "d-1", decisionOpts{})
		_, _, err := s.b.Append(ctx, []*log.Entry{e}, s.sign)
		wantErr(t, "Append", err, log.ErrUnavailable)
		if _, _, err := s.b.Lookup(ctx, log.KindDecision, "d-1"); !errors.Is(err, log.ErrNotFound) {
			t.Fatalf("the failed entry is visible: %v", err)
		}
		s.b.hooks.beforeCommit = nil
		if err := s.b.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		check(t, s, e, decision(t, "d-2", decisionOpts{}))
	})

	t.Run("error after commit", func(t *testing.T) {
		s := newSetup(t, Options{})
		s.b.hooks.afterCommit = func() error { return errors.New("lost the reply") }
		e := decision(t, "d-1", decisionOpts{})
		_, _, err := s.b.Append(ctx, []*log.Entry{e}, s.sign)
		wantErr(t, "Append", err, log.ErrUnavailable)
		s.b.hooks.afterCommit = nil
		// The batch did commit: the next Append reloads and finds it.
		res, cp := mustAppend(t, s.b, s.sign, e, decision(t, "d-2", decisionOpts{}))
		if !res[0].Existing || res[0].Index != 3 || res[1].Existing || res[1].Index != 4 || cp.Size != 5 {
			t.Fatalf("after an ambiguous commit: %+v, size %d", res, cp.Size)
		}
		if err := s.b.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
	})

	t.Run("sign fails", func(t *testing.T) {
		s := newSetup(t, Options{})
		e := decision(t, "d-1", decisionOpts{})
		_, _, err := s.b.Append(ctx, []*log.Entry{e}, func(uint64, [32]byte) (log.Checkpoint, error) {
			return log.Checkpoint{}, errors.New("no key")
		})
		wantErr(t, "Append", err, log.ErrUnavailable)
		_, _, err = s.b.Append(ctx, []*log.Entry{e}, func(size uint64, _ [32]byte) (log.Checkpoint, error) {
			return s.sign(size, [32]byte{}) // the wrong root
		})
		wantErr(t, "Append with a wrong checkpoint", err, log.ErrUnavailable)
		check(t, s, e)
	})

	t.Run("another writer", func(t *testing.T) {
		s := newSetup(t, Options{})
		other := openAt(t, s.b.pathForTest(t), Options{})
		e := decision(t, "d-1", decisionOpts{})
		res, cp := mustAppend(t, other, s.sign, e)
		if res[0].Index != 3 || cp.Size != 4 {
			t.Fatalf("the other writer appended at %d, size %d", res[0].Index, cp.Size)
		}
		s.ref.add(e.Leaf)
		// The first one's state is stale: it refuses, then reloads.
		e2 := decision(t, "d-2", decisionOpts{})
		_, _, err := s.b.Append(ctx, []*log.Entry{e2}, s.sign)
		wantErr(t, "Append on a stale state", err, log.ErrUnavailable)
		check(t, s, e2)
		if res, _ := mustAppend(t, s.b, s.sign, e); !res[0].Existing || res[0].Index != 3 {
			t.Fatalf("the other writer's entry: %+v", res[0])
		}
	})

	t.Run("context canceled", func(t *testing.T) {
		s := newSetup(t, Options{})
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		e := decision(t, "d-1", decisionOpts{})
		_, _, err := s.b.Append(canceled, []*log.Entry{e}, s.sign)
		wantErr(t, "Append", err, log.ErrUnavailable)
		check(t, s, e)
	})
}

// pathForTest returns the database file of an open backend.
func (b *Backend) pathForTest(t testing.TB) string {
	t.Helper()
	var seq int
	var name, file string
	if err := b.rdb.QueryRow("PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestReadsBoundedByCheckpoint reads between COMMIT and the publication of
// the new state: nothing of the batch may be visible yet.
func TestReadsBoundedByCheckpoint(t *testing.T) {
	ctx := context.Background()
	b := openAt(t, tempDB(t), Options{})
	sign, _ := newSign(t)
	first := decision(t, "d-0", decisionOpts{})
	mustAppend(t, b, sign, first)
	e := decision(t, "d-1", decisionOpts{})
	var checked bool
	b.hooks.afterCommit = func() error {
		checked = true
		if cp, err := b.Latest(ctx); err != nil || cp.Size != 1 {
			t.Errorf("Latest = %d, %v", cp.Size, err)
		}
		if _, _, err := b.Lookup(ctx, log.KindDecision, "d-1"); !errors.Is(err, log.ErrNotFound) {
			t.Errorf("Lookup of the uncovered entry: %v", err)
		}
		if _, err := b.LookupHash(ctx, log.LeafHash(e.Leaf)); !errors.Is(err, log.ErrNotFound) {
			t.Errorf("LookupHash of the uncovered entry: %v", err)
		}
		if _, err := b.Entries(ctx, 1, 1); !errors.Is(err, log.ErrOutOfRange) {
			t.Errorf("Entries of the uncovered entry: %v", err)
		}
		if leaves, err := b.Entries(ctx, 0, 5); err != nil || len(leaves) != 1 {
			t.Errorf("Entries(0, 5) = %d leaves, %v", len(leaves), err)
		}
		if _, err := b.Covering(ctx, 1); !errors.Is(err, log.ErrNotFound) {
			t.Errorf("Covering of the uncovered entry: %v", err)
		}
		if _, err := b.InclusionProof(ctx, 1, 2); !errors.Is(err, log.ErrOutOfRange) {
			t.Errorf("InclusionProof of the uncovered entry: %v", err)
		}
		return nil
	}
	mustAppend(t, b, sign, e)
	if !checked {
		t.Fatal("the hook did not run")
	}
	if idx, _, err := b.Lookup(ctx, log.KindDecision, "d-1"); err != nil || idx != 1 {
		t.Fatalf("Lookup after publication = %d, %v", idx, err)
	}
}

func TestOutOfRange(t *testing.T) {
	ctx := context.Background()
	b := openAt(t, tempDB(t), Options{})
	sign, _ := newSign(t)
	var batch []*log.Entry
	for i := range 10 {
		batch = append(batch, decision(t, fmt.Sprintf("d-%d", i), decisionOpts{}))
	}
	mustAppend(t, b, sign, batch...)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"inclusion index = size", errOf(b.InclusionProof(ctx, 5, 5)), log.ErrOutOfRange},
		{"inclusion size > latest", errOf(b.InclusionProof(ctx, 0, 11)), log.ErrOutOfRange},
		{"consistency from 0", errOf(b.ConsistencyProof(ctx, 0, 5)), log.ErrOutOfRange},
		{"consistency from > to", errOf(b.ConsistencyProof(ctx, 6, 5)), log.ErrOutOfRange},
		{"consistency to > latest", errOf(b.ConsistencyProof(ctx, 5, 11)), log.ErrOutOfRange},
		{"entries at size", errOf(b.Entries(ctx, 10, 1)), log.ErrOutOfRange},
		{"covering at size", errOf(b.Covering(ctx, 10)), log.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.err, tc.want) })
	}
	if p, err := b.ConsistencyProof(ctx, 10, 10); err != nil || len(p) != 0 {
		t.Errorf("ConsistencyProof(10, 10) = %d hashes, %v", len(p), err)
	}
	if l, err := b.Entries(ctx, 8, 100); err != nil || len(l) != 2 {
		t.Errorf("Entries(8, 100) = %d leaves, %v", len(l), err)
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestLookupHash(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	b := openAt(t, path, Options{ReadConns: 1, HashMerge: 100}) // runs [0, 100), [100, 200), [200, 300)
	sign, _ := newSign(t)
	var leaves [][]byte
	for i := 0; i < 300; i += 100 {
		var batch []*log.Entry
		for j := i; j < i+100; j++ {
			batch = append(batch, decision(t, fmt.Sprintf("d-%d", j), decisionOpts{}))
			leaves = append(leaves, batch[len(batch)-1].Leaf)
		}
		mustAppend(t, b, sign, batch...)
	}
	for i, l := range leaves {
		if got, err := b.LookupHash(ctx, log.LeafHash(l)); err != nil || got != uint64(i) {
			t.Fatalf("LookupHash(entry %d) = %d, %v", i, got, err)
		}
	}
	// A hash that shares the 8-byte prefix of entry 5 but is not a leaf.
	h := log.LeafHash(leaves[5])
	h[31] ^= 1
	_, err := b.LookupHash(ctx, h)
	wantErr(t, "LookupHash of a near miss", err, log.ErrNotFound)
	// A colliding prefix row at an earlier index of the run: the tile
	// tells them apart.
	real := log.LeafHash(leaves[270])
	tamper(t, path, fmt.Sprintf("INSERT INTO leaf_hashes (run, prefix, idx) VALUES (200, %d, 203), (200, %d, 290)", hashPrefix(real), hashPrefix(real)))
	if got, err := b.LookupHash(ctx, real); err != nil || got != 270 {
		t.Fatalf("LookupHash with a colliding prefix = %d, %v", got, err)
	}
}

// TestConcurrentReaders appends while readers check that everything they
// see is covered by a checkpoint and proves against it.
func TestConcurrentReaders(t *testing.T) {
	ctx := context.Background()
	b := openAt(t, tempDB(t), Options{ReadConns: 2, TileCacheSize: 1})
	sign, _ := newSign(t)
	const batches, per = 40, 16
	var entries [][]*log.Entry
	for i := range batches {
		var batch []*log.Entry
		for j := range per {
			batch = append(batch, decision(t, fmt.Sprintf("d-%d-%d", i, j), decisionOpts{}))
		}
		entries = append(entries, batch)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 3 {
		wg.Go(func() {
			for n := 0; !done.Load() || n < 5; n++ {
				if err := readOnce(ctx, b, uint64(r*7+n)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, batch := range entries {
		mustAppend(t, b, sign, batch...)
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// readOnce checks one snapshot of the log as a reader sees it.
func readOnce(ctx context.Context, b *Backend, n uint64) error {
	cp, err := b.Latest(ctx)
	if errors.Is(err, log.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cp.Size == 0 {
		return nil
	}
	idx := n % cp.Size
	leaves, err := b.Entries(ctx, idx, 1000)
	if err != nil {
		return err
	}
	if uint64(len(leaves)) < cp.Size-idx {
		return fmt.Errorf("Entries(%d) returned %d leaves, the checkpoint has %d", idx, len(leaves), cp.Size)
	}
	p, err := b.InclusionProof(ctx, idx, cp.Size)
	if err != nil {
		return err
	}
	lh := log.LeafHash(leaves[0])
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, lh[:], slices32(p), cp.Hash[:]); err != nil {
		return fmt.Errorf("inclusion of %d in %d: %w", idx, cp.Size, err)
	}
	cov, err := b.Covering(ctx, idx)
	if err != nil {
		return err
	}
	if cov.Size <= idx || cov.Size > cp.Size {
		return fmt.Errorf("Covering(%d) has size %d, latest %d", idx, cov.Size, cp.Size)
	}
	if cov.Size > 1 {
		c, err := b.ConsistencyProof(ctx, cov.Size, cp.Size)
		if err != nil {
			return err
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cov.Size, cp.Size, slices32(c), cov.Hash[:], cp.Hash[:]); err != nil {
			return fmt.Errorf("consistency %d to %d: %w", cov.Size, cp.Size, err)
		}
	}
	if got, err := b.LookupHash(ctx, lh); err != nil || got != idx {
		return fmt.Errorf("LookupHash(entry %d) = %d, %v", idx, got, err)
	}
	return nil
}

// TestStorageSize measures the database size per entry: at most the raw
// entry bytes × 1.2 + 100 bytes per entry without the search index, and
// the search index at most 25% more (measured side by side). The log is
// a full range of the search index: the postings of a partial one are
// held in memory, not stored.
func TestStorageSize(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 16,384 entries twice")
	}
	const n = 1 << rangeBits
	raw, without := storageSize(t, n, true)
	_, with := storageSize(t, n, false)
	limit := raw*12/10 + 100*n
	t.Logf("%d entries, %d raw bytes (%.0f B/entry): database %d bytes without the search index (%.0f B/entry, %.0f B/entry over raw), limit %d; "+
		"%d bytes with it (%.0f B/entry more, +%.1f%%)",
		n, raw, float64(raw)/n, without, float64(without)/n, float64(without-raw)/n, limit,
		with, float64(with-without)/n, 100*float64(with-without)/float64(without))
	if without > limit {
		t.Errorf("database is %d bytes without the search index, the limit is %d", without, limit)
	}
	if with > without*125/100 {
		t.Errorf("the search index costs %d bytes, more than 25%% of %d", with-without, without)
	}
}

// storageSize appends n 500-byte entries to a new log, with or without
// the search index, and returns the raw entry bytes and the file size.
func storageSize(t *testing.T, n int, noSearch bool) (raw, size int64) {
	path := tempDB(t)
	b, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.hooks.noSearchIndex = noSearch
	sign, _ := newSign(t)
	const batchSize, entrySize = 256, 500
	for i := 0; i < n; i += batchSize {
		var batch []*log.Entry
		for j := i; j < i+batchSize; j++ {
			e := entryOfSize(t, j, entrySize)
			raw += int64(len(e.Leaf))
			batch = append(batch, e)
		}
		mustAppend(t, b, sign, batch...)
	}
	if err := b.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw, fi.Size()
}

// TestBatchShapes appends batches of every size around the statement
// shapes (1, 2, 4, … 128 rows, split or padded), each half resubmissions
// of the previous batch and half new entries with sequences, and checks
// every result and every stored row.
func TestBatchShapes(t *testing.T) {
	b := openAt(t, tempDB(t), Options{})
	sign, _ := newSign(t)
	var prev []*log.Entry
	next, seq := 0, uint64(0)
	var size uint64
	for _, n := range []int{1, 2, 3, 5, 64, 127, 128, 129, 255, 256, 300} {
		batch := append([]*log.Entry(nil), prev[:min(len(prev), n/2)]...)
		for len(batch) < n {
			seq++
			batch = append(batch, decision(t, fmt.Sprintf("s-%d", next), decisionOpts{sequence: seq, submitter: fmt.Sprintf("sub-%d", next%3)}))
			next++
		}
		res, _ := mustAppend(t, b, sign, batch...)
		fresh := 0
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("batch of %d, entry %d: %v", n, i, r.Err)
			}
			if wantExisting := i < min(len(prev), n/2); r.Existing != wantExisting {
				t.Fatalf("batch of %d, entry %d: existing %v", n, i, r.Existing)
			}
			if !r.Existing {
				if r.Index != size+uint64(fresh) {
					t.Fatalf("batch of %d, entry %d: index %d, want %d", n, i, r.Index, size+uint64(fresh))
				}
				fresh++
			}
			idx, leaf, err := b.Lookup(context.Background(), log.KindDecision, batch[i].ID)
			if err != nil || idx != r.Index || !bytes.Equal(leaf, batch[i].Leaf) {
				t.Fatalf("batch of %d, entry %d: Lookup = %d, %v; want %d", n, i, idx, err, r.Index)
			}
			if got, err := b.LookupHash(context.Background(), log.LeafHash(batch[i].Leaf)); err != nil || got != r.Index {
				t.Fatalf("batch of %d, entry %d: LookupHash = %d, %v; want %d", n, i, got, err, r.Index)
			}
		}
		size += uint64(fresh)
		// The same sequences under new ids conflict: the sequence rows
		// were all written, however the batch was split.
		again := make([]*log.Entry, 0, n)
		for i, e := range batch {
			if res[i].Existing {
				continue
			}
			k, _ := e.SequenceKey()
			again = append(again, decision(t, "again-"+e.ID, decisionOpts{sequence: k.Sequence, submitter: k.Submitter}))
		}
		res, _ = mustAppend(t, b, sign, again...)
		for i, r := range res {
			if !errors.Is(r.Err, log.ErrSequenceConflict) {
				t.Fatalf("batch of %d, reused sequence %d: %v", n, i, r.Err)
			}
		}
		prev = batch[len(batch)-fresh:]
	}
}

// TestLeafHashMerge checks LookupHash on every entry while the newest
// entries' leaf-hash rows wait in memory and after they are merged, across
// reopenings (which find the entries without rows again), and that fsck
// accepts the result.
func TestLeafHashMerge(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	opts := Options{HashMerge: 100}
	b, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][]byte
	check := func(when string) {
		t.Helper()
		for i, leaf := range leaves {
			if got, err := b.LookupHash(ctx, log.LeafHash(leaf)); err != nil || got != uint64(i) {
				t.Fatalf("%s: LookupHash(entry %d) = %d, %v", when, i, got, err)
			}
		}
		if _, err := b.LookupHash(ctx, [32]byte{1}); !errors.Is(err, log.ErrNotFound) {
			t.Fatalf("%s: LookupHash of an unknown hash: %v", when, err)
		}
	}
	var rows []int
	for k, n := range []int{1, 40, 58, 1, 99, 100, 250, 3, 7, 130} {
		batch := make([]*log.Entry, n)
		for i := range batch {
			batch[i] = decision(t, fmt.Sprintf("m-%d-%d", k, i), decisionOpts{})
			leaves = append(leaves, batch[i].Leaf)
		}
		mustAppend(t, b, sign, batch...)
		check(fmt.Sprintf("after batch %d", k))
		var stored int
		if err := b.rdb.QueryRowContext(ctx, `SELECT count(*) FROM leaf_hashes`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, stored)
		if k%3 == 2 {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err = Open(ctx, path, opts); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("reopened after batch %d", k))
			if p := b.snap.Load().pending; p.from != uint64(stored) {
				t.Fatalf("reopened after batch %d: %d entries in the leaf-hash index, found %d", k, stored, p.from)
			}
		}
	}
	// Rows are written by the batch that crosses 50, 150, 250, …: half a
	// merge away from the multiples of 100.
	if want := []int{0, 0, 99, 99, 199, 299, 549, 552, 552, 689}; !slices.Equal(rows, want) {
		t.Errorf("leaf_hashes rows after each batch: %v, want %v", rows, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
}
