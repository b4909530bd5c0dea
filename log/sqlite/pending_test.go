package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// idRowCount is the number of rows of the ids table.
func idRowCount(t *testing.T, b *Backend) int {
	t.Helper()
	var n int
	if err := b.rdb.QueryRowContext(context.Background(), `SELECT count(*) FROM ids`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIDMerge checks, while the newest entries' ids rows wait in memory,
// after they are merged and across reopenings: Lookup of every entry,
// resubmissions and conflicts of ids held only in memory, lineage through
// a parent held only in memory, a repeated id inside a batch, which rows
// are written when, and that fsck accepts the result.
func TestIDMerge(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	opts := Options{HashMerge: 100}
	b, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	var (
		entries []*log.Entry
		leaves  [][]byte // as logged (an execution report may carry a violation)
	)
	check := func(when string) {
		t.Helper()
		for i, e := range entries {
			idx, leaf, err := b.Lookup(ctx, e.Kind, e.ID)
			if err != nil || idx != uint64(i) || !bytes.Equal(leaf, leaves[i]) {
				t.Fatalf("%s: Lookup(%q) = %d, %v; want entry %d", when, e.ID, idx, err, i)
			}
		}
		if _, _, err := b.Lookup(ctx, log.KindDecision, "nobody"); !errors.Is(err, log.ErrNotFound) {
			t.Fatalf("%s: Lookup of an unknown id: %v", when, err)
		}
		// An id logged as a decision is not an execution report's.
		if len(entries) > 0 {
			if _, _, err := b.Lookup(ctx, log.KindExecution, entries[0].ID); !errors.Is(err, log.ErrNotFound) {
				t.Fatalf("%s: Lookup of a decision's id as an execution: %v", when, err)
			}
		}
	}
	var (
		rows      []int
		lastAllow string
	)
	for k, n := range []int{1, 40, 58, 1, 99, 100, 250, 3, 7, 130, 5} {
		var batch []*log.Entry
		for i := range n {
			o := decisionOpts{}
			if i%5 == 1 {
				o.outcome = log.OutcomeDeny
			}
			if i%5 == 2 && lastAllow != "" {
				// A child of an allow of an earlier batch, whose row is
				// mostly in memory.
				o.parent = lastAllow
			}
			e := decision(t, fmt.Sprintf("m-%d-%d", k, i), o)
			if i%5 == 3 {
				e = execution(t, fmt.Sprintf("x-%d-%d", k, i), fmt.Sprintf("m-%d-%d", k, i-3), "alice")
			}
			batch = append(batch, e)
		}
		fresh := len(batch)
		// A repeat of an entry of the batch, and of the batch before.
		batch = append(batch, batch[0])
		if len(entries) > 0 {
			batch = append(batch, entries[len(entries)-1])
		}
		res, _ := mustAppend(t, b, sign, batch...)
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("batch %d, entry %d: %v", k, i, r.Err)
			}
			if r.Existing != (i >= fresh) {
				t.Fatalf("batch %d, entry %d: Existing = %v", k, i, r.Existing)
			}
		}
		if r := res[fresh]; r.Index != res[0].Index {
			t.Fatalf("batch %d: the repeat inside the batch is entry %d, the original %d", k, r.Index, res[0].Index)
		}
		if len(entries) > 0 {
			if r := res[fresh+1]; r.Index != uint64(len(entries)-1) {
				t.Fatalf("batch %d: the repeat of the previous batch's last entry is entry %d, want %d", k, r.Index, len(entries)-1)
			}
		}
		entries = append(entries, batch[:fresh]...)
		lastAllow = batch[0].ID
		for _, r := range res[:fresh] {
			leaves = append(leaves, r.Leaf)
		}
		check(fmt.Sprintf("after batch %d", k))
		rows = append(rows, idRowCount(t, b))
		if k%3 == 2 {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err = Open(ctx, path, opts); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("reopened after batch %d", k))
			if p := b.snap.Load().ids; p.from != uint64(rows[k]) || p.next() != uint64(len(entries)) {
				t.Fatalf("reopened after batch %d: %d entries in the id index, %d in all; found [%d, %d) pending", k, rows[k], len(entries), p.from, p.next())
			}
		}
	}
	// Rows are written with the leaf hashes', by the batch that crosses
	// 50, 150, 250, …
	if want := []int{0, 0, 99, 99, 199, 299, 549, 552, 552, 689, 689}; !slices.Equal(rows, want) {
		t.Errorf("ids rows after each batch: %v, want %v", rows, want)
	}

	// Against an id held in memory only: another decision is refused, a
	// child of a deny too, and an unknown parent.
	last := len(entries) - 1
	if r := b.snap.Load().ids; uint64(last) < r.from {
		t.Fatalf("entry %d is in the id index; the test needs it in memory", last)
	}
	deny := entries[last-3] // i%5 == 1 of the last batch: a deny
	for _, tc := range []struct {
		e    *log.Entry
		want error
	}{
		{decision(t, entries[last].ID, decisionOpts{action: "other"}), log.ErrIDConflict},
		{decision(t, "child-of-deny", decisionOpts{parent: deny.ID}), log.ErrParentDenied},
		{decision(t, "child-of-nobody", decisionOpts{parent: "nobody"}), log.ErrUnknownParent},
	} {
		res, _ := mustAppend(t, b, sign, tc.e)
		if !errors.Is(res[0].Err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.e.ID, res[0].Err, tc.want)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// TestIDMergeFails checks that a merge whose commit fails leaves every
// row where a reader finds it, and that the next append merges them.
func TestIDMergeFails(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	b := openAt(t, path, Options{HashMerge: 100})
	var entries []*log.Entry
	add := func(n int) ([]log.AppendResult, error) {
		var batch []*log.Entry
		for range n {
			batch = append(batch, decision(t, fmt.Sprintf("f-%d", len(entries)+len(batch)), decisionOpts{}))
		}
		res, _, err := b.Append(ctx, batch, sign)
		if err == nil {
			entries = append(entries, batch...)
		}
		return res, err
	}
	if _, err := add(40); err != nil {
		t.Fatal(err)
	}
	b.hooks.beforeCommit = func() error { return errors.New("injected") }
	if _, err := add(20); err == nil { // crosses 50: the merge
		t.Fatal("the append with a failing commit succeeded")
	}
	b.hooks.beforeCommit = nil
	for i, e := range entries {
		if idx, _, err := b.Lookup(ctx, e.Kind, e.ID); err != nil || idx != uint64(i) {
			t.Fatalf("after the failed merge: Lookup(%q) = %d, %v", e.ID, idx, err)
		}
	}
	if n := idRowCount(t, b); n != 0 {
		t.Fatalf("after the failed merge: %d ids rows", n)
	}
	if _, err := add(20); err != nil {
		t.Fatal(err)
	}
	if n := idRowCount(t, b); n != 60 {
		t.Fatalf("after the merge: %d ids rows, want 60", n)
	}
	for i, e := range entries {
		if idx, _, err := b.Lookup(ctx, e.Kind, e.ID); err != nil || idx != uint64(i) {
			t.Fatalf("after the merge: Lookup(%q) = %d, %v", e.ID, idx, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// toV3 rewrites the log at path in the layout of schema version 3: ids
// keyed by (kind, id), leaf_hashes by (prefix, idx), no runs, and an
// empty search_terms (version 5 indexes the entries again anyway).
func toV3(t *testing.T, path string) {
	t.Helper()
	for _, q := range []string{
		`CREATE TABLE ids3 (kind INTEGER NOT NULL, id TEXT NOT NULL, idx INTEGER NOT NULL, allow INTEGER NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID`,
		`INSERT INTO ids3 SELECT kind, id, idx, allow FROM ids`,
		`DROP TABLE ids`,
		`ALTER TABLE ids3 RENAME TO ids`,
		`CREATE TABLE leaf_hashes3 (prefix INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (prefix, idx)) WITHOUT ROWID`,
		`INSERT INTO leaf_hashes3 SELECT prefix, idx FROM leaf_hashes`,
		`DROP TABLE leaf_hashes`,
		`ALTER TABLE leaf_hashes3 RENAME TO leaf_hashes`,
		`DROP TABLE id_runs`,
		`DROP TABLE hash_runs`,
		`DROP TABLE run_filters`,
		`DROP TABLE search_postings`,
		`CREATE TABLE search_terms (rng INTEGER NOT NULL, term INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (rng, term, idx)) WITHOUT ROWID`,
		`PRAGMA user_version = 3`,
	} {
		sqlExec(t, path, q)
	}
}

// TestMigrateFromV3 opens logs in the layout of schema version 3: the
// migration makes runs of 16,384 entries of their rows, Open builds the
// runs' filters, and lookups, appends, merges and fsck work on the result.
// One log has the rows of a prefix of the entries, as version 3 wrote
// them; the other has every entry's ids row, as the versions before it
// that wrote each batch's ids rows with the batch.
func TestMigrateFromV3(t *testing.T) {
	for _, every := range []bool{false, true} {
		t.Run(fmt.Sprintf("every id=%v", every), func(t *testing.T) {
			ctx := context.Background()
			path, key := buildLog(t, 650) // HashMerge 200: rows for 561 entries
			b := openAt(t, path, Options{HashMerge: 200})
			pending := b.snap.Load().ids
			if pending.from == 650 {
				t.Fatal("the test log has every ids row already")
			}
			from := pending.from
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			toV3(t, path)
			if every {
				// buildLog: every tenth entry an execution report, the
				// others decisions, 3 mod 10 a deny.
				for i := from; i < 650; i++ {
					r := idRow{log.EntryID{Kind: log.KindDecision, ID: fmt.Sprintf("d-%d", i)}, pendingID{idx: i, allow: i%10 != 3}}
					if i%10 == 9 {
						r = idRow{log.EntryID{Kind: log.KindExecution, ID: fmt.Sprintf("x-%d", i)}, pendingID{idx: i}}
					}
					sqlExec(t, path, `INSERT INTO ids (kind, id, idx, allow) VALUES (?, ?, ?, ?)`, int64(r.Kind), r.ID, int64(r.idx), r.allow)
				}
				from = 650
			}
			b = openAt(t, path, Options{HashMerge: 200})
			s := b.snap.Load()
			if p := s.ids; p.from != from || p.next() != 650 {
				t.Fatalf("the migrated log opened with ids [%d, %d) pending, want [%d, 650)", p.from, p.next(), from)
			}
			if got := filterHoldsTable(t, b); got != int(from) {
				t.Fatalf("%d ids rows in runs, want %d", got, from)
			}
			for i := range 650 {
				id := fmt.Sprintf("d-%d", i)
				kind := log.KindDecision
				if i%10 == 9 {
					id, kind = fmt.Sprintf("x-%d", i), log.KindExecution
				}
				if idx, _, err := b.Lookup(ctx, kind, id); err != nil || idx != uint64(i) {
					t.Fatalf("Lookup(%q) = %d, %v", id, idx, err)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Check(ctx, path, key.v, nil); err != nil {
				t.Fatalf("Check of the migrated log: %v", err)
			}
			b = openAt(t, path, Options{HashMerge: 200})
			var batch []*log.Entry
			for i := range 150 { // 800 crosses 700 = 3.5 × 200: a merge
				batch = append(batch, decision(t, fmt.Sprintf("new-%d", i), decisionOpts{}))
			}
			batch = append(batch, decision(t, "d-42", decisionOpts{})) // a resubmission of an entry on disk
			res, _ := mustAppend(t, b, key.sign, batch...)
			for i, r := range res {
				if r.Err != nil {
					t.Fatalf("entry %d: %v", i, r.Err)
				}
			}
			if r := res[len(res)-1]; !r.Existing || r.Index != 42 {
				t.Fatalf("the resubmission of d-42: %+v", r)
			}
			if p := b.snap.Load().ids; p.from != 800 || idRowCount(t, b) != 800 {
				t.Fatalf("after the merge: %d rows, pending from %d", idRowCount(t, b), p.from)
			}
			for i, e := range batch[:150] {
				if idx, _, err := b.Lookup(ctx, e.Kind, e.ID); err != nil || idx != uint64(650+i) {
					t.Fatalf("Lookup(%q) = %d, %v", e.ID, idx, err)
				}
				if idx, err := b.LookupHash(ctx, log.LeafHash(res[i].Leaf)); err != nil || idx != uint64(650+i) {
					t.Fatalf("LookupHash(entry %d) = %d, %v", 650+i, idx, err)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Check(ctx, path, key.v, nil); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

// TestCheckPendingIDs checks fsck on a log whose newest entries have no
// ids rows: it passes, and an id repeated among them is found.
func TestCheckPendingIDs(t *testing.T) {
	ctx := context.Background()
	path, key := buildLog(t, 650) // HashMerge 200: rows for 561 entries
	if _, err := Check(ctx, path, key.v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
	sqlExec(t, path, `UPDATE entries SET leaf = (SELECT leaf FROM entries WHERE idx = 637) WHERE idx = 638`)
	if _, err := Check(ctx, path, key.v, nil); err == nil || !strings.Contains(err.Error(), `entry 638 repeats the decision "d-637" of entry 637`) {
		t.Fatalf("Check of a log with a repeated id: %v", err)
	}
}

// TestMergeCrossed checks where the held-back rows are merged: half a merge
// size past its multiples, and never on a search range's fill (a multiple
// of 1<<rangeBits), whatever the merge size.
func TestMergeCrossed(t *testing.T) {
	const r = 1 << rangeBits
	for _, h := range []uint64{64, 100, r / 2, r, 2 * r, 4 * r} {
		var points []uint64
		for size := uint64(1); size <= 8*r+1; size++ {
			if mergeCrossed(h, size-1, size) {
				points = append(points, size)
			}
		}
		offset := min(h, r) / 2
		if len(points) == 0 || points[0] != offset {
			t.Fatalf("merge size %d: first merge at %v, want %d", h, points[:min(len(points), 1)], offset)
		}
		for i, p := range points {
			if p != offset+uint64(i)*h {
				t.Fatalf("merge size %d: merge %d at %d, want %d", h, i, p, offset+uint64(i)*h)
			}
			if p%r == 0 {
				t.Fatalf("merge size %d: a merge at %d, a search range's fill", h, p)
			}
		}
		// A batch that jumps over several points merges once; one that
		// stops short of the next point does not.
		if !mergeCrossed(h, 0, 3*h) || mergeCrossed(h, offset, offset+h-1) {
			t.Fatalf("merge size %d: crossing over several points or short of one answered wrongly", h)
		}
	}
}

// TestPendingAuthorization: the authorization an allow's pending ids row
// holds (what prefetch gives the rule book for an allow without a row) is
// the one the rule book reads from the allow's leaf: the same decided_at,
// authorized_until (whole seconds, as the leaf holds it), max_executions,
// executor and leaf hash. A deny, an execution report, and a row rebuilt
// at Open hold none (the leaf is read then).
func TestPendingAuthorization(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, _ := newSign(t)
	b := openAt(t, path, Options{})
	loggedAt := testTime.Add(1234567890 * time.Nanosecond) // not a whole second
	var batch []*log.Entry
	for i, extra := range []map[string]any{
		{},
		{"max_executions": 3},
		{"executor": "spiffe://prod.example/ns/runtime/sa/exec-1"},
		{"max_executions": 1, "executor": "exec-2"},
	} {
		d := map[string]any{"id": fmt.Sprintf("a-%d", i), "outcome": "allow", "decided_at": "2026-01-02T03:04:05.123456789Z",
			"subject": "agent-7", "action": "deploy", "policy": map[string]any{"id": "p"}}
		maps.Copy(d, extra)
		body, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := log.ParseDecision(body, loggedAt)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(log.DecisionSubmission(parsed, "alice"), loggedAt, 90*time.Second+time.Duration(i)*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, e)
	}
	batch = append(batch, decision(t, "d-deny", decisionOpts{outcome: log.OutcomeDeny}), execution(t, "x-1", "a-0", "bob"))
	mustAppend(t, b, sign, batch...)
	ids := b.snap.Load().ids
	for _, e := range batch {
		r, ok := ids.lookup(e.EntryID(), math.MaxUint64)
		if !ok {
			t.Fatalf("%v: no pending row", e.EntryID())
		}
		if e.Kind != log.KindDecision || !e.Allow {
			if r.auth != nil {
				t.Errorf("%v: a pending authorization %+v for an entry that is not an allow", e.EntryID(), r.auth)
			}
			continue
		}
		_, leaf, err := b.Lookup(ctx, e.Kind, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		p, err := log.ParseEntry(leaf)
		if err != nil {
			t.Fatal(err)
		}
		want := log.Authorization{DecidedAt: p.Decision.DecidedAt, AuthorizedUntil: p.AuthorizedUntil,
			MaxExecutions: max(p.Decision.MaxExecutions, 1), Executor: p.Decision.Executor, LeafHash: log.LeafHash(leaf)}
		got := r.auth
		if got == nil || !got.DecidedAt.Equal(want.DecidedAt) || !got.AuthorizedUntil.Equal(want.AuthorizedUntil) ||
			got.MaxExecutions != want.MaxExecutions || got.Executor != want.Executor || got.LeafHash != want.LeafHash ||
			got.Uses != 0 || got.Revoked || got.Entries != nil || got.Dirty {
			t.Errorf("%s: pending authorization %+v, the leaf's %+v", e.ID, got, want)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openAt(t, path, Options{})
	if r, ok := b.snap.Load().ids.lookup(batch[0].EntryID(), math.MaxUint64); !ok || r.auth != nil {
		t.Errorf("after Open: %+v, %v; want the row without an authorization", r, ok)
	}
}
