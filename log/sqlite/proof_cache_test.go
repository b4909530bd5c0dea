package sqlite

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/transparency-dev/merkle/proof"

	"github.com/govlog/govlog/log"
)

// The ephemeral node of a tree is rehashed once per snapshot and level
// and then taken from the snapshot: every proof in the latest tree, the
// first (which rehashes) and the next (which take it), inclusion and
// consistency alike, is the reference tree's, byte for byte; proofs in an
// older tree are unchanged.
func TestProofEphemeralCache(t *testing.T) {
	ctx := context.Background()
	b := openAt(t, tempDB(t), Options{})
	sign, _ := newSign(t)
	ref := newReference()
	appended := 0
	for _, tc := range []struct {
		size uint64 // the tree size appended to
	}{
		{1}, {2}, {3}, {7}, {255}, {256}, {257}, {300}, {511}, {513}, {1000},
	} {
		var batch []*log.Entry
		for ; uint64(appended) < tc.size; appended++ {
			batch = append(batch, decision(t, fmt.Sprintf("c-%d", appended), decisionOpts{}))
		}
		mustAppend(t, b, sign, batch...)
		for _, e := range batch {
			ref.add(e.Leaf)
		}
		size := tc.size
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if s := b.snap.Load(); s.eph.Load() != nil {
				t.Fatal("a new snapshot holds ephemeral nodes")
			}
			ephemeral := 0
			for pass := range 2 {
				for i := range size {
					got, err := b.InclusionProof(ctx, i, size)
					if err != nil {
						t.Fatal(err)
					}
					want, err := ref.tree.InclusionProof(i, size)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(slices32(got), want) {
						t.Fatalf("pass %d: inclusion of %d in %d differs from the reference", pass, i, size)
					}
					ref.checkInclusion(t, b, i, size)
					if nodes, _ := proof.Inclusion(i, size); pass == 0 {
						if _, eb, ee := nodes.Ephem(); ee-eb > 1 {
							ephemeral++
						}
					}
				}
				for _, from := range sample(1, size+1, 37) {
					ref.checkConsistency(t, b, from, size)
					if from > 1 {
						// A proof in an older tree: never from the cache.
						ref.checkInclusion(t, b, from/2, from)
					}
				}
			}
			if cached := b.snap.Load().eph.Load(); ephemeral > 0 && cached == nil {
				t.Errorf("%d proofs have an ephemeral node, none was kept", ephemeral)
			}
		})
	}
}
