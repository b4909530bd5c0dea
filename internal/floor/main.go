// Command floor serves the cheapest possible answer to a decision with
// govlogd's HTTP stack, to measure what a single decision costs the server
// before the log does anything: the floor of the figure `govlog bench`
// reports as server CPU per decision (docs/performance.md).
//
//	go run ./internal/floor --from http://127.0.0.1:8080 [--listen 127.0.0.1:8090] [--pprof 127.0.0.1:8091]
//
// It submits 100 decisions like the load generator's (70% allows, 30%
// denies) to the govlogd at --from, keeps their receipts (real ones: an
// allow's, with its artifact, is 4–5 KiB) and that log's GET /v1/log, then
// serves, on --listen, POST /v1/decisions through server.NewFloor: the
// router and middleware of govlogd, the request admitted and its body read
// as govlogd reads it, and the next of those receipts written back. The http.Server, its
// connection limit, the garbage collector's settings and the process
// metrics are govlogd's, so `govlog bench --url http://LISTEN -c 64` drives
// it exactly as it drives govlogd (every receipt verifies: they are real
// ones) and reports the floor's CPU per request as server CPU per decision.
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
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/govlog/govlog/internal/connlimit"
	"github.com/govlog/govlog/internal/loadgen"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
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
	h, err := server.NewFloor(reg, receipts, info)
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
	ln = connlimit.Wrap(ln, hs, connlimit.Config{Max: 4096, PerAddr: 1024})
	size := 0
	for _, r := range receipts {
		size += len(r)
	}
	fmt.Fprintf(os.Stderr, "floor: serving on %s %d receipts of %d bytes on average\n", ln.Addr(), len(receipts), size/len(receipts))
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
