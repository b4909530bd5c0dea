package log_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/govlog/govlog/log"
)

// TestProver checks every proof a Prover gives against the reference tree
// of transparency-dev/merkle, for appends of every shape at every edge of
// a tree: each new leaf in every tree size from its own up to the end.
func TestProver(t *testing.T) {
	factory := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	for _, begin := range []uint64{0, 1, 2, 3, 5, 8, 255, 256, 257, 1000} {
		for _, n := range []uint64{1, 2, 7, 256, 300} {
			t.Run(fmt.Sprintf("%d+%d", begin, n), func(t *testing.T) {
				ref := testonly.New(rfc6962.DefaultHasher)
				rng := factory.NewEmptyRange(0)
				leaf := func(i uint64) []byte { return fmt.Appendf(nil, "leaf %d", i) }
				for i := range begin {
					ref.AppendData(leaf(i))
					if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(leaf(i)), nil); err != nil {
						t.Fatal(err)
					}
				}
				p, err := log.NewProver(rng)
				if err != nil {
					t.Fatal(err)
				}
				for i := begin; i < begin+n; i++ {
					ref.AppendData(leaf(i))
					if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(leaf(i)), p.Visit); err != nil {
						t.Fatal(err)
					}
				}
				end := begin + n
				for i := begin; i < end; i++ {
					for _, size := range []uint64{i + 1, min(i+2, end), (i + 1 + end) / 2, end - 1, end} {
						if size <= i {
							continue
						}
						got, err := p.Proof(i, size)
						if err != nil {
							t.Fatalf("Proof(%d, %d): %v", i, size, err)
						}
						want, err := ref.InclusionProof(i, size)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(slices32(got), want) {
							t.Fatalf("Proof(%d, %d) = %x, want %x", i, size, got, want)
						}
					}
				}
				if _, err := p.Proof(end, end+1); err == nil {
					t.Error("Proof of a leaf not appended succeeded")
				}
				if begin > 0 {
					if _, err := p.Proof(begin-1, end); err == nil {
						t.Error("Proof of a leaf appended before the Prover succeeded")
					}
				}
			})
		}
	}
	if _, err := log.NewProver(factory.NewEmptyRange(3)); err == nil {
		t.Error("NewProver of a range that does not begin at 0 succeeded")
	}
}

func slices32(hs [][32]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}
