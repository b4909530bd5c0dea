package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// The loads profiled, in the order of the report's columns.
const (
	loadSingle = "single"
	loadFill   = "fill"
	loadClaims = "claims"
	loadProofs = "proofs"
)

var loadOrder = []string{loadSingle, loadFill, loadClaims, loadProofs}

// profileFile is the name of a load's CPU profile, next to report.md.
func profileFile(backend, load string) string {
	return "cpu-" + backend + "-" + load + ".pb.gz"
}

// A part is where some of the server's CPU goes. Each sample of a CPU
// profile is classified by its stack, read from the leaf (the function
// the CPU was in) towards the root: the first function whose name starts
// with one of a part's prefixes decides, the parts tried in the order of
// parts for each function. Generic code (the runtime's memmove, sha256,
// encoding/json, context, sync) matches no prefix, so it counts for the
// code that called it. A sample none of whose functions match counts as
// other.
type part struct {
	Name     string
	Prefixes []string
}

// Part names, in the order of the report's table.
const (
	partHTTP     = "HTTP: net/http, echo, socket I/O"
	partEd25519  = "Ed25519: artifact and checkpoint signatures, artifact verification"
	partCommit   = "storage: SQLite `COMMIT` (WAL writes, fsync, checkpoint)"
	partStorage  = "storage: statements, tiles, search postings (Trillian: its gRPC client, MariaDB)"
	partRules    = "rule book: judging against the log's facts"
	partReceipts = "receipts and JSON answers"
	partParse    = "parsing and canonicalization"
	partRuntime  = "allocation, garbage collection, scheduler"
	partOther    = "other (govlog's own code: handlers, the submit path, metrics)"
)

const (
	govlog = "github.com/govlog/govlog/"
	glog   = govlog + "log."
	gsrv   = govlog + "server."
)

// parts lists the prefixes. Storage is split after classification: a
// storage sample with database/sql's (*Tx).Commit on its stack is COMMIT.
var parts = []part{
	{partRuntime, []string{
		"runtime.mallocgc", "runtime.newobject", "runtime.growslice", "runtime.makeslice", "runtime.makemap",
		"runtime.gc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.sweepone", "runtime.markroot",
		"runtime.mcall", "runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.goschedImpl",
		"runtime.gopreempt_m", "runtime.wakep", "runtime.startm", "runtime.stopm", "runtime.netpoll",
		"runtime.sysmon", "runtime.mstart", "runtime.newstack", "runtime.morestack", "runtime.goready",
		"runtime.ready", "runtime.gopark", "runtime.goexit0",
	}},
	{partEd25519, []string{"crypto/ed25519.", "crypto/internal/fips140/ed25519.", "crypto/internal/fips140/edwards25519"}},
	{partStorage, []string{
		"github.com/mattn/go-sqlite3.", "database/sql.", govlog + "log/sqlite.", govlog + "log/trillian.",
		"github.com/google/trillian/", "google.golang.org/grpc", "github.com/go-sql-driver/mysql.",
		glog + "EntryTerms", glog + "TermOf", glog + "(*Summary)", glog + "Summarize",
	}},
	{partRules, []string{glog + "Judge", glog + "judge", glog + "(*Facts)", glog + "verifyArtifact"}},
	{partReceipts, []string{
		glog + "(*Log).receipt", glog + "newReceipt", glog + "tlogProof", glog + "(*Receipt)", glog + "(*Prover)",
		gsrv + "writeReceipt", gsrv + "writeJSON", gsrv + "encodeJSON", gsrv + "appendProofJSON", gsrv + "writeProof",
	}},
	{partParse, []string{
		glog + "Parse", glog + "parse", glog + "(*canonicalizer)", glog + "(*validator)", glog + "read",
		glog + "decodeArtifactHeader", glog + "NewEntry", glog + "(*ArtifactClaims)", "github.com/gowebpki/jcs.", gsrv + "readJSON", gsrv + "splitBatch", gsrv + "(*batchScanner)",
	}},
	{partHTTP, []string{"net/http.", "net/textproto.", "net.", "internal/poll.", "github.com/labstack/echo/"}},
	{partOther, []string{govlog}},
}

// commitFuncs mark a storage sample as COMMIT.
var commitFuncs = []string{"database/sql.(*Tx).Commit", "github.com/mattn/go-sqlite3.(*SQLiteTx).Commit"}

// partOrder is the order of the report's rows.
var partOrder = []string{partHTTP, partEd25519, partCommit, partStorage, partRules, partReceipts, partParse, partRuntime, partOther}

// breakdown is a CPU profile classified by part.
type breakdown struct {
	// File is the profile's file name, next to report.md.
	File string
	// Seconds is the CPU time the profile sampled, Window its duration.
	Seconds float64
	Window  time.Duration
	// Share is each part's fraction of the sampled CPU time.
	Share map[string]float64
}

// classify returns the part of a stack, given leaf first.
func classify(stack []string) string {
	for _, fn := range stack {
		for _, p := range parts {
			for _, pre := range p.Prefixes {
				if strings.HasPrefix(fn, pre) {
					if p.Name == partStorage && hasAny(stack, commitFuncs) {
						return partCommit
					}
					return p.Name
				}
			}
		}
	}
	return partOther
}

func hasAny(stack, prefixes []string) bool {
	for _, fn := range stack {
		for _, pre := range prefixes {
			if strings.HasPrefix(fn, pre) {
				return true
			}
		}
	}
	return false
}

// classifyProfile reads a CPU profile (as /debug/pprof/profile serves it)
// and sums its samples' CPU time by part.
func classifyProfile(data []byte) (*breakdown, error) {
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("failed to parse the CPU profile: %w", err)
	}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("not a CPU profile (no cpu/nanoseconds samples)")
	}
	b := &breakdown{Window: time.Duration(p.DurationNanos), Share: map[string]float64{}}
	var total float64
	var stack []string
	for _, s := range p.Sample {
		stack = stack[:0]
		for _, loc := range s.Location {
			for _, l := range loc.Line { // innermost (inlined) first
				if l.Function != nil {
					stack = append(stack, l.Function.Name)
				}
			}
		}
		v := float64(s.Value[vi])
		b.Share[classify(stack)] += v
		total += v
	}
	if total == 0 {
		return nil, fmt.Errorf("the CPU profile has no samples")
	}
	for k, v := range b.Share {
		b.Share[k] = v / total
	}
	b.Seconds = total / 1e9
	return b, nil
}

// profiler takes a CPU profile of the govlogd at addr (its --pprof
// listener) for a window, in the background, and writes it to path.
type profiler struct {
	path string
	done chan error
}

func startProfile(ctx context.Context, addr string, window time.Duration, path string) *profiler {
	p := &profiler{path: path, done: make(chan error, 1)}
	secs := max(int((window+time.Second-1)/time.Second), 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
		if err != nil {
			p.done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			p.done <- fmt.Errorf("failed to take a CPU profile: %w", err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
		}
		if err == nil {
			data, err = scrub(data)
		}
		if err != nil {
			p.done <- fmt.Errorf("failed to take a CPU profile: %w", err)
			return
		}
		p.done <- os.WriteFile(path, data, 0o644)
	}()
	return p
}

// scrub drops the directories of the machine the profile was taken on
// from it: the binaries' (its mappings) and any absolute source file name
// (govlogd is built with -trimpath, so there should be none).
func scrub(data []byte) ([]byte, error) {
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	for _, m := range p.Mapping {
		if m.File != "" && filepath.IsAbs(m.File) {
			m.File = filepath.Base(m.File)
		}
	}
	for _, f := range p.Function {
		if filepath.IsAbs(f.Filename) {
			f.Filename = filepath.Base(f.Filename)
		}
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// wait waits for the profile and classifies it.
func (p *profiler) wait() (*breakdown, error) {
	if err := <-p.done; err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p.path)
	if err != nil {
		return nil, err
	}
	b, err := classifyProfile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	b.File = filepath.Base(p.path)
	return b, nil
}
