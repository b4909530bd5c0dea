package audit_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/audit"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// tiles serves a testlog.Log's tiles and entry bundles from memory, computed
// by an independent implementation (golang.org/x/mod/sumdb/tlog), with
// hooks to tamper with what is served.
type tiles struct {
	l      *testlog.Log
	stored []tlog.Hash
	n      int
	// tamper, when set, may change a resource before it is served.
	tamper func(id log.TileID, data []byte) []byte
}

func newTiles(l *testlog.Log) *tiles { return &tiles{l: l} }

func (s *tiles) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = s.stored[x]
	}
	return out, nil
}

func (s *tiles) sync(t testing.TB) {
	t.Helper()
	for ; s.n < len(s.l.Entries); s.n++ {
		hs, err := tlog.StoredHashes(int64(s.n), s.l.Entries[s.n].Leaf, s)
		if err != nil {
			t.Fatal(err)
		}
		s.stored = append(s.stored, hs...)
	}
}

func (s *tiles) get(t testing.TB, id log.TileID) []byte {
	t.Helper()
	s.sync(t)
	var data []byte
	if id.Entries {
		for i := range id.Width {
			var err error
			data, err = log.AppendEntryBundle(data, s.l.Entries[int(id.Index)*log.TileWidth+i].Leaf)
			if err != nil {
				t.Fatal(err)
			}
		}
	} else {
		var err error
		data, err = tlog.ReadTileData(tlog.Tile{H: log.TileHeight, L: int(id.Level), N: int64(id.Index), W: id.Width}, s)
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.tamper != nil {
		data = s.tamper(id, bytes.Clone(data))
	}
	return data
}

// audit runs an audit of the log up to the checkpoint cp, from prev (which
// goes through its binary encoding first), the way a client does.
func (s *tiles) audit(t testing.TB, cp log.Checkpoint, prev *audit.State, proof [][]byte) (*audit.Report, *audit.State) {
	t.Helper()
	if prev != nil {
		data, err := prev.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if prev, err = audit.UnmarshalState(data, s.l.Verifier); err != nil {
			t.Fatal(err)
		}
	}
	a, err := audit.New(s.l.Verifier, prev)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Begin(cp.Note, proof); err != nil {
		return a.Finish()
	}
	size := a.Checkpoint().Size
	for next := a.Next(); next < size; next = a.Next() {
		index := next / log.TileWidth
		w := log.TileHashes(size, 0, index)
		b := a.Scan(index, w, s.get(t, log.TileID{Entries: true, Index: index, Width: w}), s.get(t, log.TileID{Index: index, Width: w}))
		if err := a.Apply(b); err != nil {
			return a.Finish()
		}
	}
	for _, id := range a.PendingTiles() {
		a.CheckTile(id, s.get(t, id))
	}
	return a.Finish()
}

// problem returns the problems with code, in order.
func problems(ps []audit.Problem, code string) []audit.Problem {
	var out []audit.Problem
	for _, p := range ps {
		if p.Code == code {
			out = append(out, p)
		}
	}
	return out
}

func wantProblem(t *testing.T, ps []audit.Problem, code string, index int64, contains string) audit.Problem {
	t.Helper()
	for _, p := range problems(ps, code) {
		if index >= 0 && (p.Index == nil || *p.Index != uint64(index)) {
			continue
		}
		if !strings.Contains(p.Message, contains) {
			t.Errorf("%s: message %q does not say %q", code, p.Message, contains)
		}
		return p
	}
	t.Fatalf("no %s problem at index %d in %+v", code, index, ps)
	return audit.Problem{}
}

func TestAuditClean(t *testing.T) {
	l := testlog.New(t)
	l.GrowClean(600)
	s := newTiles(l)
	rep, st := s.audit(t, l.Checkpoint(600), nil, nil)
	if !rep.OK || st == nil || rep.FailureCount != 0 || len(rep.Failures) != 0 {
		t.Fatalf("a clean log fails the audit: %+v", rep.Failures)
	}
	if rep.Audited.Entries != 600 || rep.Totals.Entries != 600 || rep.Audited.Executions != 120 || rep.Audited.Decisions != 480 ||
		rep.Audited.Allows != 240 || rep.Audited.Denies != 240 || rep.Start != 0 {
		t.Fatalf("counts: %+v", rep.Audited)
	}
	if st.Checkpoint().Size != 600 || rep.Checkpoint.Size != 600 {
		t.Fatalf("state at %d", st.Checkpoint().Size)
	}

	// Incremental: only the new entries.
	l.GrowClean(70000 / 64)
	size := uint64(len(l.Entries))
	var served int
	s.tamper = func(id log.TileID, data []byte) []byte {
		if id.Entries {
			served += id.Width
		}
		return data
	}
	rep, st2 := s.audit(t, l.Checkpoint(size), st, l.Consistency(600, size))
	if !rep.OK || st2 == nil {
		t.Fatalf("incremental audit fails: %+v", rep.Failures)
	}
	if rep.Start != 600 || rep.Audited.Entries != size-600 || rep.Totals.Entries != size || rep.Previous.Size != 600 {
		t.Fatalf("incremental counts: start %d, audited %+v, totals %+v", rep.Start, rep.Audited, rep.Totals)
	}
	if served > int(size-600)+log.TileWidth {
		t.Fatalf("served %d entries for %d new ones", served, size-600)
	}
	// Nothing new.
	rep, st3 := s.audit(t, l.Checkpoint(size), st2, nil)
	if !rep.OK || st3 == nil || rep.Audited.Entries != 0 || rep.Totals.Entries != size {
		t.Fatalf("audit with nothing new: %+v %+v", rep.Audited, rep.Failures)
	}
	// The same, without the state: the same totals.
	rep, _ = s.audit(t, l.Checkpoint(size), nil, nil)
	if !rep.OK || rep.Totals != st3.Totals() {
		t.Fatalf("from scratch: %+v, incremental %+v", rep.Totals, st3.Totals())
	}
}

func TestAuditTamperedEntry(t *testing.T) {
	l := testlog.New(t)
	l.GrowClean(600)
	cp := l.Checkpoint(600)
	flip := func(data []byte, entry int) {
		// The byte after the entry's first '"' of its id value.
		off := 0
		for range entry {
			off += 2 + (int(data[off])<<8 | int(data[off+1]))
		}
		n := int(data[off])<<8 | int(data[off+1])
		e := data[off+2 : off+2+n]
		i := bytes.Index(e, []byte(`"id":"d-`)) + len(`"id":"d-`)
		e[i] ^= 1
	}
	t.Run("entry only", func(t *testing.T) {
		s := newTiles(l)
		s.tamper = func(id log.TileID, data []byte) []byte {
			if id.Entries && id.Index == 1 {
				flip(data, 300-256)
			}
			return data
		}
		rep, st := s.audit(t, cp, nil, nil)
		if rep.OK || st != nil {
			t.Fatal("a modified entry passes the audit")
		}
		p := wantProblem(t, rep.Failures, audit.ProblemLeafHashMismatch, 300, "entry 300 does not hash to its leaf hash in tile tile/0/001")
		if p.Evidence["entry_leaf_hash"] == p.Evidence["tile_leaf_hash"] || p.Evidence["entry"] == "" {
			t.Fatalf("evidence %v", p.Evidence)
		}
		wantProblem(t, rep.Failures, audit.ProblemRootMismatch, -1, "modified after they were logged")
	})
	t.Run("entry and its leaf hash", func(t *testing.T) {
		// A tamperer who also rewrites the level-0 tile is caught by the
		// level-1 tile and the root.
		s := newTiles(l)
		s.tamper = func(id log.TileID, data []byte) []byte {
			if id.Index != 1 || id.Level != 0 {
				return data
			}
			if id.Entries {
				flip(data, 300-256)
				return data
			}
			bundle := s.get(t, log.TileID{Entries: true, Index: 1, Width: id.Width})
			entries, err := log.ParseEntryBundle(bundle, id.Width)
			if err != nil {
				t.Fatal(err)
			}
			h := log.LeafHash(entries[300-256])
			copy(data[(300-256)*32:], h[:])
			return data
		}
		rep, st := s.audit(t, cp, nil, nil)
		if rep.OK || st != nil {
			t.Fatal("a modified entry and tile pass the audit")
		}
		wantProblem(t, rep.Failures, audit.ProblemTileMismatch, -1, "hash 1 of tile tile/1/000.p/2 is not the hash of entries 256 to 511")
		wantProblem(t, rep.Failures, audit.ProblemRootMismatch, -1, "do not hash to the root")
	})
	t.Run("tile only", func(t *testing.T) {
		s := newTiles(l)
		s.tamper = func(id log.TileID, data []byte) []byte {
			if !id.Entries && id.Level == 0 && id.Index == 2 {
				data[5*32] ^= 0x80
			}
			return data
		}
		rep, st := s.audit(t, cp, nil, nil)
		if rep.OK {
			t.Fatal("a modified tile passes the audit")
		}
		wantProblem(t, rep.Failures, audit.ProblemLeafHashMismatch, 512+5, "entry 517")
		if len(problems(rep.Failures, audit.ProblemRootMismatch)) != 0 || st == nil {
			t.Fatalf("the entries are right, the root must verify: %+v", rep.Failures)
		}
	})
	t.Run("truncated bundle", func(t *testing.T) {
		s := newTiles(l)
		s.tamper = func(id log.TileID, data []byte) []byte {
			if id.Entries && id.Index == 2 {
				return data[:len(data)-10]
			}
			return data
		}
		rep, st := s.audit(t, cp, nil, nil)
		if rep.OK || st != nil {
			t.Fatal("a truncated bundle passes the audit")
		}
		wantProblem(t, rep.Failures, audit.ProblemMalformedBundle, 512, "tile/entries/002.p/88")
	})
}

func TestAuditInconsistent(t *testing.T) {
	a := testlog.New(t)
	a.Grow(300)
	s := newTiles(a)
	_, st := s.audit(t, a.Checkpoint(300), nil, nil)
	if st == nil {
		t.Fatal("no state")
	}

	// b is a fork of a: the same key, the same first 200 entries.
	b := testlog.New(t)
	for _, e := range a.Entries[:200] {
		b.Append(e, nil)
	}
	for i := 200; i < 400; i++ {
		b.AddDecision(fmt.Appendf(nil, `{"id":"fork-%d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}}`, i))
	}
	bs := newTiles(b)

	t.Run("fork with the log's proof", func(t *testing.T) {
		rep, st2 := bs.audit(t, b.Checkpoint(400), st, b.Consistency(300, 400))
		if rep.OK || st2 != nil || rep.Inconsistency == nil {
			t.Fatalf("a fork passes: %+v", rep)
		}
		wantProblem(t, rep.Failures, audit.ProblemInconsistent, -1, "consistency proof from size 300 to 400 does not verify")
		// The evidence convinces a third party on its own.
		ev := rep.Inconsistency
		var proof [][]byte
		for _, h := range ev.Proof {
			proof = append(proof, mustB64(t, h))
		}
		_, _, err := verifier.Consistency([]byte(ev.OldCheckpoint), []byte(ev.NewCheckpoint), proof, a.Verifier)
		var ie *verifier.InconsistencyError
		if !errors.As(err, &ie) {
			t.Fatalf("the evidence does not prove a fork: %v", err)
		}
	})
	t.Run("fork without a proof", func(t *testing.T) {
		rep, st2 := bs.audit(t, b.Checkpoint(400), st, nil)
		if rep.OK || st2 != nil {
			t.Fatal("a fork passes")
		}
		wantProblem(t, rep.Failures, audit.ProblemRootMismatch, -1, "do not hash to the root of the checkpoint of size 400")
	})
	t.Run("same size", func(t *testing.T) {
		rep, _ := bs.audit(t, b.Checkpoint(300), st, nil)
		wantProblem(t, rep.Failures, audit.ProblemInconsistent, -1, "two checkpoints of size 300 with different root hashes")
		if rep.Inconsistency == nil || rep.Inconsistency.OldCheckpoint == rep.Inconsistency.NewCheckpoint {
			t.Fatalf("evidence %+v", rep.Inconsistency)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		rep, st2 := s.audit(t, a.Checkpoint(250), st, nil)
		if rep.OK || st2 != nil {
			t.Fatal("a rollback passes")
		}
		wantProblem(t, rep.Failures, audit.ProblemRollback, -1, "size 250, smaller than the size 300 audited before")
	})
	t.Run("another key", func(t *testing.T) {
		other, _, _ := testlog.NoteKey(t, testlog.Origin, 9)
		cp, err := log.SignCheckpoint(other, 300, [32]byte(a.Tree.HashAt(300)))
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := s.audit(t, cp, nil, nil)
		wantProblem(t, rep.Failures, audit.ProblemBadCheckpoint, -1, "not signed by")
	})
}

func TestAuditLineage(t *testing.T) {
	l := testlog.New(t)
	l.GrowClean(10) // d-0 allow, d-1 deny, d-2 allow, d-3 deny, x-4 of d-2, …
	dec := func(id, outcome, extra string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"outcome":%q,"decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}%s}`, id, outcome, extra)
	}
	l.AddDecision(dec("d-0", "deny", ""))                             // 10: repeats d-0
	l.AddDecision(dec("c-1", "allow", `,"parent_id":"d-2"`))          // 11: fine
	l.AddDecision(dec("c-2", "allow", `,"parent_id":"nope"`))         // 12: unknown parent
	l.AddDecision(dec("c-3", "allow", `,"parent_id":"x-4"`))          // 13: parent is an execution
	l.AddExecution("x-a", "d-1")                                      // 14: names a deny
	l.AddExecution("x-b", "nope")                                     // 15: names nothing
	l.AddExecution("x-4", "d-0")                                      // 16: repeats x-4
	l.AddDecision(dec("c-4", "allow", `,"parent_id":"c-5"`))          // 17: names a later decision
	l.AddDecision(dec("c-5", "allow", ""))                            // 18
	l.AddDecision(dec("s-1", "allow", `,"sequence":1`))               // 19
	l.AddDecision(dec("s-2", "allow", `,"sequence":2`))               // 20
	l.AddDecision(dec("s-5", "allow", `,"sequence":5`))               // 21
	l.AddDecision(dec("s-9", "allow", `,"sequence":9`))               // 22
	l.AddDecision(dec("s-2b", "allow", `,"sequence":2`))              // 23: repeats 2
	l.AddExecution("x-late", "c-1")                                   // 24: fine for now
	addExecutionAt(l, "x-late2", "c-1", testlog.Start.Add(time.Hour)) // 25: after authorized_until
	s := newTiles(l)
	size := uint64(len(l.Entries))
	rep, st := s.audit(t, l.Checkpoint(size), nil, nil)
	if rep.OK || st == nil {
		t.Fatalf("OK %v, state %v", rep.OK, st != nil)
	}
	wantProblem(t, rep.Failures, audit.ProblemDuplicateID, 10, `decision id "d-0" of entry 10 was already logged at entry 0`)
	wantProblem(t, rep.Failures, audit.ProblemUnknownParent, 12, `names parent "nope"`)
	wantProblem(t, rep.Failures, audit.ProblemUnknownParent, 13, `names parent "x-4"`)
	wantProblem(t, rep.Failures, audit.ProblemUnauthorized, 14, `a deny`)
	wantProblem(t, rep.Failures, audit.ProblemUnauthorized, 15, `not an earlier decision`)
	wantProblem(t, rep.Failures, audit.ProblemDuplicateID, 16, `execution id "x-4" of entry 16 was already logged at entry 4`)
	wantProblem(t, rep.Failures, audit.ProblemUnknownParent, 17, `names parent "c-5"`)
	wantProblem(t, rep.Failures, audit.ProblemDuplicateSequence, 23, `used sequence number 2 again`)
	if n := rep.FailureCount; n != 8 {
		t.Errorf("%d failures, want 8: %+v", n, rep.Failures)
	}
	wantProblem(t, rep.Findings, audit.FindingLateExecution, 25, `after decision "c-1" (entry 11) expired at`)
	// The executions of this log carry no artifact binding.
	for _, i := range []int64{4, 9, 24, 25} {
		wantProblem(t, rep.Findings, audit.FindingClaimWithoutArtifact, i, `carries no artifact binding`)
	}
	if rep.FindingCount != 5 {
		t.Errorf("findings %+v", rep.Findings)
	}
	if len(rep.SequenceGaps) != 1 {
		t.Fatalf("gaps %+v", rep.SequenceGaps)
	}
	g := rep.SequenceGaps[0]
	if g.Submitter != "anonymous" || g.Highest != 9 || g.Count != 5 || fmt.Sprint(g.Missing) != "[[3 4] [6 8]]" {
		t.Fatalf("gaps %+v", g)
	}

	// The next audit still fails (the failures are carried), and resolves
	// lineage into the audited part; filling the gaps closes them.
	l.AddDecision(dec("c-6", "allow", `,"parent_id":"c-5"`)) // 26: fine, parent audited before
	l.AddDecision(dec("s-3", "allow", `,"sequence":3`))      // 27
	l.AddDecision(dec("s-4", "allow", `,"sequence":4`))      // 28
	l.AddExecution("x-c", "c-6")                             // 29: fine
	l.AddDecision(dec("c-1", "allow", ""))                   // 30: repeats c-1 (audited before)
	size2 := uint64(len(l.Entries))
	rep, st2 := s.audit(t, l.Checkpoint(size2), st, l.Consistency(size, size2))
	if rep.OK || st2 == nil {
		t.Fatal("carried failures are forgotten")
	}
	if rep.FailureCount != 9 || len(problems(rep.Failures, audit.ProblemDuplicateID)) != 3 {
		t.Fatalf("failures %d: %+v", rep.FailureCount, rep.Failures)
	}
	wantProblem(t, rep.Failures, audit.ProblemDuplicateID, 30, `decision id "c-1" of entry 30 was already logged at entry 11`)
	earlier := 0
	for _, p := range rep.Failures {
		if p.Earlier {
			earlier++
		}
	}
	if earlier != 8 {
		t.Fatalf("%d earlier failures", earlier)
	}
	if len(rep.SequenceGaps) != 1 || fmt.Sprint(rep.SequenceGaps[0].Missing) != "[[6 8]]" {
		t.Fatalf("gaps %+v", rep.SequenceGaps)
	}
}

// addExecutionAt logs an execution report of decision id at loggedAt.
func addExecutionAt(l *testlog.Log, id, decisionID string, loggedAt time.Time) *log.Entry {
	l.T.Helper()
	x, err := log.ParseExecution(fmt.Appendf(nil, `{"id":%q,"decision_id":%q,"status":"succeeded","at":"2026-11-25T18:00:01Z"}`, id, decisionID), loggedAt)
	if err != nil {
		l.T.Fatal(err)
	}
	e, err := log.NewEntry(log.ExecutionSubmission(x, "runtime-1"), loggedAt, testlog.TTL)
	if err != nil {
		l.T.Fatal(err)
	}
	l.Append(e, nil)
	return e
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuditState(t *testing.T) {
	l := testlog.New(t)
	l.GrowClean(300)
	s := newTiles(l)
	_, st := s.audit(t, l.Checkpoint(300), nil, nil)
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.UnmarshalState(data, l.Verifier); err != nil {
		t.Fatal(err)
	}
	// Every byte matters.
	for i := 0; i < len(data); i += 1 + i/16 {
		bad := bytes.Clone(data)
		bad[i] ^= 1
		if _, err := audit.UnmarshalState(bad, l.Verifier); err == nil {
			t.Fatalf("a state with byte %d flipped is accepted", i)
		}
	}
	if _, err := audit.UnmarshalState(data[:len(data)-1], l.Verifier); err == nil {
		t.Fatal("a truncated state is accepted")
	}
	_, other, _ := testlog.NoteKey(t, testlog.Origin, 9)
	if _, err := audit.UnmarshalState(data, other); err == nil {
		t.Fatal("a state of another log's key is accepted")
	}
	_, otherName, _ := testlog.NoteKey(t, "example.com/other", 1)
	if _, err := audit.New(otherName, st); err == nil {
		t.Fatal("NewAudit takes the state of another log")
	}
}

// BenchmarkAudit replays a clean log of 4,096 entries (every fifth an
// execution report) from bundles and tiles fetched beforehand: the
// auditor's own cost per entry, without the network.
func BenchmarkAudit(b *testing.B) {
	const n = 4096
	l := testlog.New(b)
	l.GrowClean(n)
	s := newTiles(l)
	cp := l.Checkpoint(n)
	var bundles, tiles [][]byte
	for i := range n / log.TileWidth {
		bundles = append(bundles, s.get(b, log.TileID{Entries: true, Index: uint64(i), Width: log.TileWidth}))
		tiles = append(tiles, s.get(b, log.TileID{Index: uint64(i), Width: log.TileWidth}))
	}
	b.ReportAllocs()
	for b.Loop() {
		a, err := audit.New(l.Verifier, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Begin(cp.Note, nil); err != nil {
			b.Fatal(err)
		}
		for i := range bundles {
			if err := a.Apply(a.Scan(uint64(i), log.TileWidth, bundles[i], tiles[i])); err != nil {
				b.Fatal(err)
			}
		}
		if rep, _ := a.Finish(); !rep.OK {
			b.Fatalf("audit failed: %+v", rep.Failures)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
