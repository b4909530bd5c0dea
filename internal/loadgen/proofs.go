package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/govlog/govlog/log"
)

// RunProofs measures inclusion proof lookups: cfg.N requests of
// GET /v1/proofs/inclusion for entries sampled from the log, against its
// latest checkpoint, each proof verified against the checkpoint root.
func RunProofs(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.N <= 0 {
		return nil, fmt.Errorf("loadgen: proof lookups need N")
	}
	r, err := prepare(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	setup := r.ep.conn(ctx, setupTimeout)
	defer setup.close()
	cp, err := r.checkpoint(setup)
	if err != nil {
		return nil, err
	}
	if cp.Size == 0 {
		return nil, fmt.Errorf("the log is empty")
	}
	// Sample leaves from a few random pages: their hashes let every proof
	// be verified.
	var indices []uint64
	hashes := map[uint64][32]byte{}
	for range 8 {
		start := rand.Uint64N(cp.Size)
		var page struct {
			Entries []struct {
				Index uint64 `json:"index"`
				Entry []byte `json:"entry"`
			} `json:"entries"`
		}
		if err := getJSON(setup, fmt.Sprintf("/v1/entries?start=%d&count=1000", start), &page); err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			if e.Index < cp.Size {
				indices = append(indices, e.Index)
				hashes[e.Index] = log.LeafHash(e.Entry)
			}
		}
	}
	setup.close()
	var next atomic.Int64
	var wg sync.WaitGroup
	treeSize := "&tree_size=" + strconv.FormatUint(cp.Size, 10)
	r.startCPU(ctx)
	start := time.Now()
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng, c := rand.New(rand.NewPCG(uint64(w), 9)), r.ep.conn(ctx, requestTimeout)
			defer c.close()
			var buf []byte // the worker's answers, decoded out of it
			for ctx.Err() == nil && int(next.Add(1)) <= cfg.N {
				i := indices[rng.IntN(len(indices))]
				t0 := time.Now()
				var p proofAnswer
				body, err := c.get("/v1/proofs/inclusion?index="+strconv.FormatUint(i, 10)+treeSize, &buf)
				if err == nil {
					err = decodeProof(body, &p)
				}
				took := time.Since(t0)
				if err == nil {
					lh := hashes[i]
					err = proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, lh[:], p.Hashes, cp.Hash[:])
				}
				r.mu.Lock()
				r.rep.Requests++
				r.latencies = append(r.latencies, took)
				if err != nil {
					r.rep.VerifyFailures++
					if r.rep.FirstVerifyErr == "" {
						r.rep.FirstVerifyErr = err.Error()
					}
				} else {
					r.rep.Acknowledged++
				}
				r.mu.Unlock()
				r.answered(1)
			}
		}()
	}
	wg.Wait()
	return r.finish(time.Since(start)), ctx.Err()
}

// checkpoint fetches and verifies the latest checkpoint.
func (r *runner) checkpoint(c *conn) (log.Checkpoint, error) {
	var buf []byte
	text, err := c.get("/v1/checkpoint", &buf)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("failed to fetch the checkpoint: %w", err)
	}
	return log.OpenCheckpoint(text, r.cfg.LogKey)
}

func getJSON(c *conn, path string, v any) error {
	var buf []byte
	body, err := c.get(path, &buf)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}
