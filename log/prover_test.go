package log_test

import (
	"fmt"
	"reflect"
	"sync"
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

// TestProverConcurrent proves an append's leaves from goroutines at once
// (Proof may be called from any goroutine once the append is done), in
// trees of two sizes, against the reference tree.
func TestProverConcurrent(t *testing.T) {
	factory := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	ref := testonly.New(rfc6962.DefaultHasher)
	rng := factory.NewEmptyRange(0)
	leaf := func(i uint64) []byte { return fmt.Appendf(nil, "leaf %d", i) }
	const begin, end = 1001, 1500
	var p *log.Prover
	for i := range uint64(end) {
		if i == begin {
			var err error
			if p, err = log.NewProver(rng); err != nil {
				t.Fatal(err)
			}
		}
		ref.AppendData(leaf(i))
		var visit compact.VisitFn
		if p != nil {
			visit = p.Visit
		}
		if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(leaf(i)), visit); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := uint64(begin + g); i < end; i += 2 {
				for _, size := range []uint64{end, end - 1} {
					if i >= size {
						continue
					}
					got, err := p.Proof(i, size)
					if err != nil {
						t.Errorf("Proof(%d, %d): %v", i, size, err)
						return
					}
					want, err := ref.InclusionProof(i, size)
					if err != nil {
						t.Error(err)
						return
					}
					if !reflect.DeepEqual(slices32(got), want) {
						t.Errorf("Proof(%d, %d) = %x, want %x", i, size, got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkProver proves each leaf of an append of 1,000 to a tree of
// 100,000 in the grown tree, as a backend does for the receipts of a
// batch: the time is per proof.
func BenchmarkProver(b *testing.B) {
	factory := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := factory.NewEmptyRange(0)
	hash := func(i uint64) []byte { return rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "leaf %d", i)) }
	const begin, n = 100_000, 1000
	for i := range uint64(begin) {
		if err := rng.Append(hash(i), nil); err != nil {
			b.Fatal(err)
		}
	}
	p, err := log.NewProver(rng)
	if err != nil {
		b.Fatal(err)
	}
	for i := range uint64(n) {
		if err := rng.Append(hash(begin+i), p.Visit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; b.Loop(); k++ {
		if _, err := p.Proof(begin+uint64(k%n), begin+n); err != nil {
			b.Fatal(err)
		}
	}
}
