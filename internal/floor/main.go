// Command floor serves the cheapest possible answer to a decision with
// govlogd's HTTP stack, to measure what a single decision costs the server
// before the log does anything: the floor of the figure `govlog bench`
// reports as server CPU per decision (docs/performance.md).
//
//	go run ./internal/floor --from http://127.0.0.1:8080 [--listen 127.0.0.1:8090] [--durable DIR] [--pprof 127.0.0.1:8091]
//
// It submits 100 decisions like the load generator's (70% allows, 30%
// denies) to the govlogd at --from, keeps their receipts (real ones: an
// allow's, with its artifact, is 4–5 KiB) and that log's GET /v1/log, then
// serves, on --listen, POST /v1/decisions through server.NewFloor: the
// router and middleware of govlogd, the request admitted and its body read
// as govlogd reads it, and the next of those receipts written back. The http.Server, its
// connection limit, the garbage collector's settings and the process
// metrics are govlogd's, so `govlog bench --url http://LISTEN -c 64
// --replayed-receipts` drives it exactly as it drives govlogd (every receipt
// verifies: they are real ones, of other decisions than the ones sent, which
// that flag accepts) and reports the floor's CPU per request as server CPU
// per decision.
//
// It also answers an inclusion-proof load (`govlog bench --proofs`) the
// same way: it reads that log's latest checkpoint, --proof-pages pages of
// 1,000 entries at random places, and the inclusion proof of each of
// those entries in the checkpoint's tree, and serves GET /v1/checkpoint,
// GET /v1/entries and GET /v1/proofs/inclusion from those bytes
// (server.FloorProofs): the load generator asks for the same proofs it
// asks govlogd for, and verifies every one.
//
// With --durable DIR it is the floor of a durable answer: each decision's
// handler waits, as govlogd's does, for a group commit (the bodies and
// their RFC 6962 leaf hashes written to a file in DIR with one pwrite,
// fsynced, one checkpoint of the new root signed per group), then signs
// its artifact, an allow's, before answering the receipt. What govlogd
// spends above it is its own work: parsing, the database, the receipt.
//
// --pprof serves the Go profiling endpoints (/debug/pprof/) on a listener
// of their own, as govlogd's --pprof does, to profile the floor and govlogd
// side by side under the same load.
//
// internal/benchreport runs it next to the closed-loop load.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/govlog/govlog/internal/connlimit"
	"github.com/govlog/govlog/internal/loadgen"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	from := fs.String("from", "", "base URL of a running govlogd to take a receipt and the log's description from (required)")
	listen := fs.String("listen", "127.0.0.1:8090", "loopback `address` to serve on")
	pprofAddr := fs.String("pprof", "", "serve Go profiling endpoints on this loopback `address` (default off)")
	durable := fs.String("durable", "", "answer each decision only after a group commit to a file in this `directory` (fsynced, one checkpoint signature per group) and its artifact's signature: the floor of a durable answer (default: answer at once)")
	proofPages := fs.Int("proof-pages", 8, "answer inclusion proofs of the entries of this many pages of 1,000 (0: no proof answers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 || *proofPages < 0 {
		return errors.New("usage: floor --from URL [--listen ADDRESS]")
	}
	// govlogd's garbage collector settings, unless set.
	server.SetRuntimeDefaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	receipts, info, err := sample(ctx, *from)
	if err != nil {
		return err
	}
	var proofs *server.FloorProofs
	if *proofPages > 0 {
		if proofs, err = sampleProofs(ctx, *from, *proofPages); err != nil {
			return err
		}
	}
	if *pprofAddr != "" {
		pln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("failed to listen on %s for pprof: %w", *pprofAddr, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: server.ReadHeaderTimeout}
		defer ps.Close()
		go ps.Serve(pln)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var commit func(context.Context, []byte, []byte) error
	if *durable != "" {
		g, err := newGroupCommit(ctx, *durable, receipts)
		if err != nil {
			return err
		}
		defer g.close()
		commit = g.commit
	}
	h, err := server.NewFloor(reg, receipts, info, commit, proofs)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// govlogd's http.Server, and its connection limit with its defaults
	// (cmd/govlogd: security.go).
	hs := server.NewHTTPServer(h, server.DefaultSubmitTimeout, slog.NewLogLogger(slog.NewTextHandler(os.Stderr, nil), slog.LevelWarn))
	ln = connlimit.Wrap(ln, hs, connlimit.Config{Max: 4096, PerAddr: 1024, CoalesceWrites: true})
	size := 0
	for _, r := range receipts {
		size += len(r)
	}
	fmt.Fprintf(os.Stderr, "floor: serving on %s %d receipts of %d bytes on average", ln.Addr(), len(receipts), size/len(receipts))
	if proofs != nil {
		fmt.Fprintf(os.Stderr, ", %d inclusion proofs in %d pages", len(proofs.Inclusion), len(proofs.Pages))
	}
	fmt.Fprintln(os.Stderr)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// sample submits decisions like the load generator's to the govlogd at
// base and returns their receipts and the log's GET /v1/log.
func sample(ctx context.Context, base string) (receipts [][]byte, info []byte, err error) {
	c := &http.Client{Timeout: 30 * time.Second}
	for _, body := range loadgen.Sample(fmt.Sprintf("floor-%d", time.Now().UnixNano()), 100) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/decisions", bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		receipt, err := do(c, req, http.StatusCreated)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to submit a sample decision: %w", err)
		}
		var r struct {
			TLogProof string `json:"tlog_proof"`
		}
		if err := json.Unmarshal(receipt, &r); err != nil || r.TLogProof == "" {
			return nil, nil, fmt.Errorf("the sample decision's answer is not a receipt: %.200s", receipt)
		}
		receipts = append(receipts, receipt)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/log", nil)
	if err != nil {
		return nil, nil, err
	}
	if info, err = do(c, req, http.StatusOK); err != nil {
		return nil, nil, fmt.Errorf("failed to read the log's description: %w", err)
	}
	return receipts, info, nil
}

// sampleProofs reads the latest checkpoint of the govlogd at base, pages
// of its entries at random places (as the load generator does), and the
// inclusion proof of each of those entries in the checkpoint's tree, with
// the query the load generator sends.
func sampleProofs(ctx context.Context, base string, pages int) (*server.FloorProofs, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		return do(c, req, http.StatusOK)
	}
	text, err := get("/v1/checkpoint")
	if err != nil {
		return nil, fmt.Errorf("failed to read the checkpoint: %w", err)
	}
	cp, _, err := log.ParseCheckpoint(text, log.CheckpointRules{})
	if err != nil {
		return nil, fmt.Errorf("failed to read the checkpoint: %w", err)
	}
	if cp.Size == 0 {
		return nil, errors.New("the log is empty: no proofs to answer")
	}
	p := &server.FloorProofs{Checkpoint: text, Inclusion: map[string][]byte{}}
	var queries []string
	for range pages {
		page, err := get(fmt.Sprintf("/v1/entries?start=%d&count=1000", rand.Uint64N(cp.Size)))
		if err != nil {
			return nil, fmt.Errorf("failed to read entries: %w", err)
		}
		var v struct {
			Entries []struct {
				Index uint64 `json:"index"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(page, &v); err != nil {
			return nil, fmt.Errorf("failed to read entries: %w", err)
		}
		p.Pages = append(p.Pages, page)
		for _, e := range v.Entries {
			if q := fmt.Sprintf("index=%d&tree_size=%d", e.Index, cp.Size); e.Index < cp.Size && p.Inclusion[q] == nil {
				p.Inclusion[q] = []byte{}
				queries = append(queries, q)
			}
		}
	}
	// The proofs, from a few connections at once.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(queries); i = int(next.Add(1)) - 1 {
				b, err := get("/v1/proofs/inclusion?" + queries[i])
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					p.Inclusion[queries[i]] = b
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("failed to read the inclusion proofs: %w", err)
	}
	return p, nil
}

func do(c *http.Client, req *http.Request, want int) ([]byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL, resp.Status, b)
	}
	return b, nil
}
