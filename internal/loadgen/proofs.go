package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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
	cp, err := r.checkpoint(ctx)
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
		if err := r.getJSON(ctx, fmt.Sprintf("/v1/entries?start=%d&count=1000", start), &page); err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			if e.Index < cp.Size {
				indices = append(indices, e.Index)
				hashes[e.Index] = log.LeafHash(e.Entry)
			}
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	treeSize := "&tree_size=" + strconv.FormatUint(cp.Size, 10)
	r.startCPU(ctx)
	start := time.Now()
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var buf []byte // the worker's answers, decoded out of it
			for ctx.Err() == nil && int(next.Add(1)) <= cfg.N {
				i := indices[rng.IntN(len(indices))]
				t0 := time.Now()
				var p proofAnswer
				body, err := r.get(ctx, "/v1/proofs/inclusion?index="+strconv.FormatUint(i, 10)+treeSize, &buf)
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
func (r *runner) checkpoint(ctx context.Context) (log.Checkpoint, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL+"/v1/checkpoint", nil)
	if err != nil {
		return log.Checkpoint{}, err
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("failed to fetch the checkpoint: %w", err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("failed to fetch the checkpoint: %w", err)
	}
	return log.OpenCheckpoint(text, r.cfg.LogKey)
}

func (r *runner) getJSON(ctx context.Context, path string, v any) error {
	var buf []byte
	body, err := r.get(ctx, path, &buf)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// get returns the body of a 200 answer to GET path, read into *buf (its
// capacity kept for the next answer).
func (r *runner) get(ctx context.Context, path string, buf *[]byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL+path, nil)
	if err != nil {
		return nil, err
	}
	if r.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readBody(resp, buf)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, errorCode(resp.StatusCode, body))
	}
	return body, nil
}
