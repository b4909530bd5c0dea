package server

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/govlog/govlog/internal/cputime"
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

// proofWriter is an http.ResponseWriter that keeps only the status and
// the body, reused across requests: what BenchmarkGetInclusion counts is
// the handler's work, not a recorder's.
type proofWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *proofWriter) Header() http.Header         { return w.h }
func (w *proofWriter) WriteHeader(status int)      { w.status = status }
func (w *proofWriter) Write(b []byte) (int, error) { w.body = append(w.body, b...); return len(b), nil }

// BenchmarkGetInclusion serves GET /v1/proofs/inclusion through the
// server's handler (router, middleware, query, the proof from a real
// SQLite log of 1,024 entries, its answer), without a connection: the part
// of a proof's cost that is govlogd's own rather than net/http's.
func BenchmarkGetInclusion(b *testing.B) {
	e := newEnv(b, envOptions{})
	const n = 1024
	for batch := range n / 256 {
		var items [][]byte
		for i := range 256 {
			items = append(items, decision(fmt.Sprintf("bench-proof-%d-%d", batch, i), "allow", nil))
		}
		r := e.post("/v1/decisions/batch", []byte(`{"decisions":[`+string(bytes.Join(items, []byte(",")))+`]}`))
		if r.status != http.StatusOK {
			b.Fatalf("batch: %s", r)
		}
	}
	reqs := make([]*http.Request, 64)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/proofs/inclusion?index=%d&tree_size=%d", (i*397)%n, n), nil)
	}
	w := &proofWriter{h: http.Header{}}
	i := 0
	start := cputime.Process()
	for b.Loop() {
		clear(w.h)
		w.body = w.body[:0]
		e.srv.ServeHTTP(w, reqs[i%len(reqs)])
		if w.status != http.StatusOK {
			b.Fatalf("%d %s", w.status, w.body)
		}
		i++
	}
	cputime.Report(b, start)
}
