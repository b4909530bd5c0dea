package verifier_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
	"golang.org/x/mod/sumdb/note"
)

func TestConsistency(t *testing.T) {
	l := testlog.New(t)
	l.Grow(40)
	for _, from := range []uint64{0, 1, 2, 3, 7, 8, 9, 16, 17, 31, 40} {
		for _, to := range []uint64{1, 2, 3, 8, 9, 15, 16, 17, 32, 33, 40} {
			if from > to {
				continue
			}
			t.Run(fmt.Sprintf("%d-%d", from, to), func(t *testing.T) {
				var p [][]byte
				if from > 0 && from < to {
					p = l.Consistency(from, to)
				}
				oldNote, newNote := l.Checkpoint(from).Note, l.Checkpoint(to).Note
				oldCp, newCp, err := verifier.Consistency(oldNote, newNote, p, l.Verifier)
				if err != nil {
					t.Fatal(err)
				}
				if oldCp.Size != from || newCp.Size != to || newCp.Hash != [32]byte(l.Tree.HashAt(to)) {
					t.Fatalf("got sizes %d and %d", oldCp.Size, newCp.Size)
				}
				// Every bit of every proof hash matters: all are flipped for
				// one pair of sizes, the first and last for the others.
				bits := []int{0, 255}
				if from == 7 && to == 33 {
					bits = nil
					for b := range 256 {
						bits = append(bits, b)
					}
				}
				for i := range p {
					for _, bit := range bits {
						mangled := make([][]byte, len(p))
						for j := range p {
							mangled[j] = bytes.Clone(p[j])
						}
						mangled[i][bit/8] ^= 1 << (bit % 8)
						_, _, err := verifier.Consistency(oldNote, newNote, mangled, l.Verifier)
						var ie *verifier.InconsistencyError
						if !errors.As(err, &ie) || !errors.Is(err, verifier.ErrInconsistent) {
							t.Fatalf("hash %d bit %d flipped: error %v, want an InconsistencyError", i, bit, err)
						}
					}
				}
			})
		}
	}
}

func TestConsistencyErrors(t *testing.T) {
	l := testlog.New(t)
	l.Grow(20)
	// fork is the same log with entry 12 replaced.
	fork := testlog.New(t)
	fork.Grow(12)
	fork.AddDecision(testlog.DecisionJSON(100))
	fork.Grow(20)

	cp := func(size uint64) []byte { return l.Checkpoint(size).Note }
	_, wrongKey, _ := testlog.NoteKey(t, testlog.Origin, 2)

	for _, tc := range []struct {
		name         string
		oldCp, newCp []byte
		proof        [][]byte
		key          note.Verifier
		want         error
		contains     string
		evidence     bool
	}{
		{name: "fork at the same size", oldCp: cp(15), newCp: fork.Checkpoint(15).Note, want: verifier.ErrInconsistent,
			contains: "two checkpoints of the same size have different root hashes", evidence: true},
		{name: "a fork after the old size is consistent with it", oldCp: cp(10), newCp: fork.Checkpoint(15).Note, proof: fork.Consistency(10, 15)},
		{name: "fork before the old size", oldCp: cp(14), newCp: fork.Checkpoint(15).Note, proof: fork.Consistency(14, 15),
			want: verifier.ErrInconsistent, contains: "does not lead to the checkpoint roots", evidence: true},
		{name: "proof of the fork", oldCp: cp(13), newCp: fork.Checkpoint(15).Note, proof: fork.Consistency(13, 15),
			want: verifier.ErrInconsistent, evidence: true},
		{name: "proof for other sizes", oldCp: cp(10), newCp: cp(15), proof: l.Consistency(11, 15),
			want: verifier.ErrInconsistent, evidence: true},
		{name: "proof one hash short", oldCp: cp(10), newCp: cp(15), proof: l.Consistency(10, 15)[1:],
			want: verifier.ErrInconsistent, contains: "malformed", evidence: true},
		{name: "empty proof", oldCp: cp(10), newCp: cp(15), want: verifier.ErrInconsistent, evidence: true},
		{name: "proof from size 0", oldCp: cp(0), newCp: cp(15), proof: l.Consistency(10, 15),
			want: verifier.ErrInconsistent, evidence: true},
		{name: "new smaller than old", oldCp: cp(15), newCp: cp(10), proof: l.Consistency(10, 15),
			want: verifier.ErrMalformed, contains: "smaller"},
		{name: "same size with a proof", oldCp: cp(15), newCp: cp(15), proof: l.Consistency(10, 15),
			want: verifier.ErrBadProof, contains: "must be empty"},
		{name: "short hash", oldCp: cp(10), newCp: cp(15), proof: [][]byte{make([]byte, 31)},
			want: verifier.ErrMalformed, contains: "31 bytes"},
		{name: "wrong key", oldCp: cp(10), newCp: cp(15), proof: l.Consistency(10, 15), key: wrongKey,
			want: verifier.ErrBadSignature, contains: "old checkpoint: bad signature: checkpoint is not signed by example.com/govlog"},
		{name: "new checkpoint not a note", oldCp: cp(10), newCp: []byte("example.com/govlog\n15\n"),
			want: verifier.ErrMalformed, contains: "new checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = l.Verifier
			}
			_, _, err := verifier.Consistency(tc.oldCp, tc.newCp, tc.proof, key)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !wrapsOneSentinel(err) {
				t.Fatalf("error %v does not wrap exactly %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", err, tc.contains)
			}
			var ie *verifier.InconsistencyError
			if errors.As(err, &ie) != tc.evidence {
				t.Fatalf("error %v: InconsistencyError %v, want %v", err, !tc.evidence, tc.evidence)
			}
			if tc.evidence {
				// The evidence verifies on its own: both notes are signed by
				// the log key.
				if !bytes.Equal(ie.Old.Note, tc.oldCp) || !bytes.Equal(ie.New.Note, tc.newCp) || len(ie.Proof) != len(tc.proof) {
					t.Fatalf("the evidence is not what was given")
				}
				for _, n := range [][]byte{ie.Old.Note, ie.New.Note} {
					if _, err := verifier.Checkpoint(n, l.Verifier); err != nil {
						t.Fatalf("evidence checkpoint: %v", err)
					}
				}
			}
		})
	}
}
