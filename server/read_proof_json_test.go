package server

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"github.com/govlog/govlog/internal/cputime"
	"testing"
)

func hashList(proof [][32]byte) [][]byte {
	out := make([][]byte, len(proof))
	for i := range proof {
		out[i] = proof[i][:]
	}
	return out
}

// TestProofJSON holds the hand-written proof answers to encoding/json
// (encodeJSON) on every proof length up to 64 and extreme numbers.
func TestProofJSON(t *testing.T) {
	proof := make([][32]byte, 65)
	for i := range proof {
		proof[i] = sha256.Sum256(fmt.Append(nil, i))
	}
	proof[3] = [32]byte{}
	for i := range proof[4] {
		proof[4][i] = 0xff
	}
	for _, n := range []uint64{0, 1, 9, 10, 123_456, 1<<63 - 1, 1<<64 - 1} {
		for k := 0; k <= len(proof); k++ {
			p := proof[:k]
			for _, c := range []struct {
				v      any
				a, b   string
				av, bv uint64
			}{
				{inclusionResponse{n, n / 2, hashList(p)}, `{"index":`, `,"tree_size":`, n, n / 2},
				{consistencyResponse{n / 3, n, hashList(p)}, `{"from":`, `,"to":`, n / 3, n},
			} {
				want, err := encodeJSON(c.v)
				if err != nil {
					t.Fatal(err)
				}
				got := appendProofJSON([]byte("x"), c.a, c.av, c.b, c.bv, p)
				if !bytes.Equal(got[1:], want) || got[0] != 'x' {
					t.Fatalf("appendProofJSON\n%s\nencoding/json\n%s", got[1:], want)
				}
			}
		}
	}
}

// BenchmarkProofJSON encodes the answer of an inclusion proof of 20
// hashes: by hand, and with encoding/json as before.
func BenchmarkProofJSON(b *testing.B) {
	proof := make([][32]byte, 20)
	for i := range proof {
		proof[i] = sha256.Sum256(fmt.Append(nil, i))
	}
	b.Run("append", func(b *testing.B) {
		var buf []byte
		start := cputime.Process()
		for b.Loop() {
			buf = appendProofJSON(buf[:0], `{"index":`, 123_456, `,"tree_size":`, 1_000_000, proof)
		}
		cputime.Report(b, start)
	})
	b.Run("encoding/json", func(b *testing.B) {
		start := cputime.Process()
		for b.Loop() {
			if _, err := encodeJSON(inclusionResponse{123_456, 1_000_000, hashList(proof)}); err != nil {
				b.Fatal(err)
			}
		}
		cputime.Report(b, start)
	})
}
