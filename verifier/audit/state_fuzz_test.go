package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier/audit"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// FuzzAuditState feeds arbitrary files to UnmarshalAuditState, either as
// they come or framed as a state file (magic, header length, header, id,
// authorization and claim tables, and checksum), so that the fuzzer gets past the checksum. It never
// panics, refuses with a "failed to read the audit state" error, and a
// state it accepts
//
//   - re-marshals to a file that parses back, whose encoding is a fixed
//     point (marshalled again it is the same bytes, and parses to a
//     deeply equal state);
//   - is the same state as its re-encoding: an audit from either, to the
//     same checkpoint and to a larger one, gives the same report;
//   - gives sane reports: a failure count no smaller than the failures
//     listed, OK exactly when it is 0, totals that count every entry, and
//     sequence gaps that are sorted, disjoint ranges between 1 and the
//     highest number, counted right.
//
// The seeds are states of a test log with lineage failures, sequence
// numbers and an authorization used, revoked and claimed (added here, framed and not) and mangled ones
// (testdata/fuzz/FuzzAuditState).
func FuzzAuditState(f *testing.F) {
	l := testlog.New(f)
	l.GrowClean(10)
	dec := func(id, extra string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}%s}`, id, extra)
	}
	l.AddDecision(dec("d-0", ""))                      // 10: repeats d-0
	l.AddDecision(dec("c-1", `,"parent_id":"nope"`))   // 11: unknown parent
	l.AddDecision(dec("s-1", `,"sequence":1`))         // 12
	l.AddDecision(dec("s-5", `,"sequence":5`))         // 13
	l.AddDecision(dec("s-9", `,"sequence":9`))         // 14
	l.AddExecution("x-b", "nope")                      // 15: names nothing
	l.AddDecision(dec("s-3", `,"sequence":3`))         // 16
	l.AddDecision(dec("s-5b", `,"sequence":5`))        // 17: repeats 5
	l.AddDecision(dec("s-big", `,"sequence":1000000`)) // 18
	l.AddDecision(dec("s-2", `,"sequence":2`))         // 19
	// An authorization with an executor, used, revoked, claimed after
	// its revocation and ended: the state keeps it and the claim.
	j := judgedOn(f, l) // 20: the artifact key
	at := testlog.Start.Add(time.Minute)
	art := j.allow("g-1", `,"max_executions":2,"executor":"rt"`)           // 21
	j.add(j.report("rt", "g-c1", "g-1", "started", art, "", at))           // 22
	j.add(j.revocation("g-r", "g-1"))                                      // 23
	j.add(j.report("rt", "g-c2", "g-1", "started", art, "", at))           // 24: revoked
	j.add(j.report("rt", "g-c1-done", "g-1", "succeeded", "", "g-c1", at)) // 25
	l.GrowClean(300)
	const size = 300
	s := newTiles(l)
	var prev *audit.State
	for _, n := range []uint64{0, 3, 12, 17, 20, 23, 25, 256, 299} {
		var proof [][]byte
		if prev != nil && prev.Checkpoint().Size > 0 {
			proof = l.Consistency(prev.Checkpoint().Size, n)
		}
		_, st := s.audit(f, l.Checkpoint(n), prev, proof)
		if st == nil {
			f.Fatalf("no state at size %d", n)
		}
		data, err := st.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, []byte{}, false)
		header, ids := splitState(f, data)
		f.Add(header, ids, true)
		prev = st
	}
	final := l.Checkpoint(size)
	// The consistency proofs to the final size (l is not for use inside
	// the fuzz function: it fails f).
	proofs := make([][][]byte, size)
	for n := uint64(1); n < size; n++ {
		proofs[n] = l.Consistency(n, size)
	}

	f.Fuzz(func(t *testing.T, header, ids []byte, framed bool) {
		data := header
		if framed {
			data = frameState(header, ids)
		} else if len(ids) > 0 {
			return // the same as header ‖ ids, unframed
		}
		st, err := audit.UnmarshalState(data, l.Verifier)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "failed to read the audit state") {
				t.Fatalf("error %q", msg)
			}
			return
		}
		// The header is one JSON object that counts the id table's records.
		hdr, table := splitState(t, data)
		var h struct {
			IDs    uint64
			Auths  uint64 `json:"authorizations"`
			Claims uint64
		}
		d := json.NewDecoder(bytes.NewReader(hdr))
		if err := d.Decode(&h); err != nil || d.InputOffset() != int64(len(hdr)) {
			t.Fatalf("a header with data after its object is accepted (%v): %q", err, hdr)
		}
		if n := uint64(len(table)); h.IDs > n/32 || h.Auths > n/48 || h.Claims > n/32 || h.IDs*32+h.Auths*48+h.Claims*32 != n {
			t.Fatalf("a header of %d ids, %d authorizations and %d claims for %d bytes of records", h.IDs, h.Auths, h.Claims, n)
		}
		m1, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("an accepted state does not marshal: %v", err)
		}
		st2, err := audit.UnmarshalState(m1, l.Verifier)
		if err != nil {
			t.Fatalf("a re-marshalled state does not parse: %v", err)
		}
		m2, err := st2.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m1, m2) {
			t.Fatalf("marshalling is not a fixed point:\n%q\n%q", m1, m2)
		}
		st3, err := audit.UnmarshalState(m2, l.Verifier)
		if err != nil || !reflect.DeepEqual(st2, st3) {
			t.Fatalf("the same encoding parses to another state (%v)", err)
		}
		if st.Checkpoint().Size != st2.Checkpoint().Size || !bytes.Equal(st.Checkpoint().Note, st2.Checkpoint().Note) ||
			st.Totals() != st2.Totals() {
			t.Fatal("the re-marshalled state has another checkpoint or totals")
		}

		// Audits from the state and from its re-encoding, to the same
		// checkpoint and to the log's latest one.
		from := st.Checkpoint().Size
		for _, to := range []log.Checkpoint{st.Checkpoint(), final} {
			var proof [][]byte
			if from > 0 && to.Size > from {
				proof = proofs[from]
			}
			a, err := audit.UnmarshalState(data, l.Verifier)
			if err != nil {
				t.Fatal(err)
			}
			rep, next := s.audit(t, to, a, proof)
			rep2, _ := s.audit(t, to, st2, proof)
			if !reflect.DeepEqual(rep, rep2) {
				t.Fatalf("audits from a state and from its re-encoding differ:\n%+v\n%+v", rep, rep2)
			}
			checkReport(t, rep)
			if next == nil {
				t.Fatalf("the audit from a state of size %d to %d gives no state: %+v", from, to.Size, rep.Failures)
			}
			if tot := rep.Totals; tot.Entries != to.Size {
				t.Fatalf("totals %+v for a tree of %d entries", tot, to.Size)
			}
		}
	})
}

// checkReport checks that an audit report is consistent with itself.
func checkReport(t *testing.T, rep *audit.Report) {
	t.Helper()
	if rep.FailureCount < uint64(len(rep.Failures)) || rep.OK != (rep.FailureCount == 0) {
		t.Fatalf("OK %v with %d failures, %d listed", rep.OK, rep.FailureCount, len(rep.Failures))
	}
	tot := rep.Totals
	if tot.Decisions > tot.Entries || tot.Executions > tot.Entries-tot.Decisions || tot.Allows > tot.Decisions ||
		tot.Allows+tot.Denies != tot.Decisions {
		t.Fatalf("totals %+v", tot)
	}
	for _, g := range rep.SequenceGaps {
		var count uint64
		for i, m := range g.Missing {
			// Sorted, with a number present between two ranges.
			if m[0] < 1 || (i > 0 && m[0] <= g.Missing[i-1][1]+1) || m[0] > m[1] || m[1] >= g.Highest {
				t.Fatalf("submitter %q: missing ranges %v up to %d", g.Submitter, g.Missing, g.Highest)
			}
			count += m[1] - m[0] + 1
		}
		if g.Count == 0 || g.Count < count || (len(g.Missing) < 100 && g.Count != count) {
			t.Fatalf("submitter %q: %d missing, ranges %v", g.Submitter, g.Count, g.Missing)
		}
	}
}

// stateMagic starts an encoded audit state.
const stateMagic = "govlog-audit-state/v2\n"

// splitState returns the JSON header and the tables of an encoded state.
func splitState(t testing.TB, data []byte) (header, ids []byte) {
	t.Helper()
	rest := data[len(stateMagic) : len(data)-sha256.Size]
	n := binary.BigEndian.Uint32(rest)
	return rest[4 : 4+n], rest[4+n:]
}

// frameState encodes a state file of a header and an id table.
func frameState(header, ids []byte) []byte {
	out := append([]byte(stateMagic), binary.BigEndian.AppendUint32(nil, uint32(len(header)))...)
	out = append(append(out, header...), ids...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...)
}
