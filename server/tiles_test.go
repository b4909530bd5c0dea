package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/govlog/govlog/internal/testenv"
	"github.com/govlog/govlog/log"
)

// The fault-injecting test backend serves the tiles of the SQLite backend
// it wraps.

func (f *faultBackend) ReadTile(ctx context.Context, level, index uint64, width int) ([]byte, error) {
	return f.Backend.(log.TileReader).ReadTile(ctx, level, index, width)
}

func (f *faultBackend) ReadEntryBundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	return f.Backend.(log.TileReader).ReadEntryBundle(ctx, index, width)
}

// fill logs n decisions through the batch endpoint.
func (e *env) fill(prefix string, n int) {
	e.t.Helper()
	for done := 0; done < n; {
		k := min(n-done, MaxBatchItems)
		items := make([]json.RawMessage, k)
		for i := range items {
			items[i] = decision(fmt.Sprintf("%s-%d", prefix, done+i), "allow", nil)
		}
		body, _ := json.Marshal(map[string]any{"decisions": items})
		if r := e.post("/v1/decisions/batch", body); r.status != 200 {
			e.t.Fatalf("batch: %s", r)
		}
		done += k
	}
}

// httpTiles is an independent reader of the tiles API:
// golang.org/x/mod/sumdb/tlog, which authenticates every tile it reads
// against a tree hash.
type httpTiles struct {
	t   testing.TB
	url string
}

func (h *httpTiles) Height() int { return log.TileHeight }

func (h *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		// The Go checksum database names tiles tile/H/L/N; C2SP drops H.
		path := strings.Replace(t.Path(), fmt.Sprintf("tile/%d/", log.TileHeight), "tile/", 1)
		resp, err := http.Get(h.url + "/" + path)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, data)
		}
		out[i] = data
	}
	return out, nil
}

func (h *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// checkLogThroughTiles reads the whole log through the tiles API alone and
// checks every hash tile and entry bundle against the signed checkpoint.
func checkLogThroughTiles(t *testing.T, e *env) log.Checkpoint {
	t.Helper()
	r := e.get("/checkpoint")
	if r.status != 200 {
		t.Fatalf("GET /checkpoint: %s", r)
	}
	cp, err := log.OpenCheckpoint(r.body, e.verifier)
	if err != nil {
		t.Fatalf("the checkpoint does not verify: %v", err)
	}
	size := int64(cp.Size)
	hr := tlog.TileHashReader(tlog.Tree{N: size, Hash: tlog.Hash(cp.Hash)}, &httpTiles{t: t, url: e.url})
	root, err := tlog.TreeHash(size, hr)
	if err != nil || root != tlog.Hash(cp.Hash) {
		t.Fatalf("tlog.TreeHash through the tiles: %v, %v; the checkpoint says %x", root, err, cp.Hash)
	}
	idx := make([]int64, size)
	for i := range idx {
		idx[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leafHashes, err := hr.ReadHashes(idx)
	if err != nil {
		t.Fatalf("reading every leaf hash through tlog: %v", err)
	}
	// Every hash tile the tree has, as tlog computes it.
	stored := func(indexes []int64) ([]tlog.Hash, error) { return hr.ReadHashes(indexes) }
	for _, tile := range tlog.NewTiles(log.TileHeight, 0, size) {
		want, err := tlog.ReadTileData(tile, tlog.HashReaderFunc(stored))
		if err != nil {
			t.Fatal(err)
		}
		got := e.get("/" + log.TileID{Level: uint64(tile.L), Index: uint64(tile.N), Width: tile.W}.Path())
		if got.status != 200 || !bytes.Equal(got.body, want) {
			t.Fatalf("tile %v: %d, not the tile tlog computes", tile, got.status)
		}
	}
	// Every entry bundle: each entry hashes to its authenticated leaf hash.
	for n := int64(0); n*log.TileWidth < size; n++ {
		w := int(min(size-n*log.TileWidth, log.TileWidth))
		r := e.get("/" + log.TileID{Entries: true, Index: uint64(n), Width: w}.Path())
		if r.status != 200 {
			t.Fatalf("bundle %d: %s", n, r)
		}
		entries, err := log.ParseEntryBundle(r.body, w)
		if err != nil {
			t.Fatalf("bundle %d: %v", n, err)
		}
		for i, entry := range entries {
			j := n*log.TileWidth + int64(i)
			if tlog.RecordHash(entry) != leafHashes[j] {
				t.Fatalf("entry %d does not hash to its authenticated leaf hash", j)
			}
			if _, err := log.ParseEntry(entry); err != nil {
				t.Fatalf("entry %d: %v", j, err)
			}
		}
	}
	return cp
}

func TestTilesAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	// The log of size 1 (the artifact key's entry) has a checkpoint and
	// one partial tile.
	r := e.get("/checkpoint")
	if r.status != 200 || r.header.Get("Content-Type") != "text/plain; charset=utf-8" || r.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /checkpoint: %s %v", r, r.header)
	}
	if v1 := e.get("/v1/checkpoint"); !bytes.Equal(v1.body, r.body) {
		t.Fatalf("/checkpoint and /v1/checkpoint differ")
	}
	wantError(t, e.get("/tile/0/000.p/2"), 404, "not_found")

	for i, n := range []int{1, 255, 1, 300, 600} {
		e.fill(fmt.Sprintf("t%d-%d", i, n), n)
		cp := checkLogThroughTiles(t, e)
		t.Logf("checked a log of %d entries through the tiles API", cp.Size)
	}
}

func TestTilesHeaders(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.fill("h", 299) // with the key's entry: tile 0/000 full, 0/001.p/44, 1/000.p/1
	for _, tc := range []struct {
		path string
		size int
	}{
		{"/tile/0/000", 8192},
		{"/tile/0/001.p/44", 44 * 32},
		{"/tile/0/001.p/1", 32},
		{"/tile/0/000.p/255", 255 * 32},
		{"/tile/1/000.p/1", 32},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := e.get(tc.path)
			if r.status != 200 || len(r.body) != tc.size {
				t.Fatalf("%s: %d, %d bytes", tc.path, r.status, len(r.body))
			}
			if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
	for _, path := range []string{
		"/tile/0/001.p/45", "/tile/0/001", "/tile/0/002.p/1", "/tile/1/000", "/tile/1/000.p/2", "/tile/2/000.p/1",
		"/tile/entries/001.p/45", "/tile/entries/001", "/tile/entries/002.p/1",
		// Not tile paths.
		"/tile/", "/tile/0", "/tile/0/0", "/tile/00/000", "/tile/64/000", "/tile/0/x000/000", "/tile/0/000.p/0",
		"/tile/0/000.p/256", "/tile/entries/000.p/256", "/tile/data/000", "/tile/0/000.p/01",
	} {
		t.Run(path, func(t *testing.T) {
			r := e.get(path)
			wantError(t, r, 404, "not_found")
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("404 with Cache-Control %q", cc)
			}
		})
	}
	wantError(t, e.post("/tile/0/000", nil), 405, "method_not_allowed")
	wantError(t, e.get("/tile/0/000?x=1"), 400, "invalid_request")

	// HEAD is GET without a body.
	if r := e.do(http.MethodHead, "/tile/0/000", "", nil); r.status != 200 || len(r.body) != 0 || r.header.Get("Cache-Control") == "" {
		t.Fatalf("HEAD: %s %v", r, r.header)
	}

	// Entry bundles: gzip when asked for, the same bytes either way.
	plain := e.get("/tile/entries/001.p/44")
	if plain.status != 200 || plain.header.Get("Content-Encoding") != "" {
		t.Fatalf("bundle: %s", plain)
	}
	if _, err := log.ParseEntryBundle(plain.body, 44); err != nil {
		t.Fatal(err)
	}
	for _, ae := range []string{"gzip", "br, gzip;q=0.5", "*"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/tile/entries/001.p/44", nil)
		req.Header.Set("Accept-Encoding", ae)
		r := e.send(req)
		if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("Accept-Encoding %q: %d %v", ae, r.status, r.header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		unz, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unz, plain.body) {
			t.Fatalf("the gzipped bundle is not the bundle: %v", err)
		}
	}
	for _, ae := range []string{"identity", "gzip;q=0", "br", "*;q=0"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/tile/entries/001.p/44", nil)
		req.Header.Set("Accept-Encoding", ae)
		if r := e.send(req); r.header.Get("Content-Encoding") != "" || !bytes.Equal(r.body, plain.body) {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", ae, r.header.Get("Content-Encoding"))
		}
	}
	// Hash tiles are never compressed.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/tile/0/000", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	if r := e.send(req); r.header.Get("Content-Encoding") != "" {
		t.Fatalf("a hash tile was compressed")
	}
}

// noTiles is a backend that stores no tiles, as the Trillian backend.
type noTiles struct{ log.Backend }

// TestTilesDerived serves the tiles API of a backend without tiles: they
// are derived from its entries and proofs, and an independent reader
// checks them against the checkpoint.
func TestTilesDerived(t *testing.T) {
	tl := testenv.NewLog(t, testOrigin)
	k := tl.Keys
	lc := tl.Config()
	lc.Backend = noTiles{tl.Backend}
	l, err := log.New(context.Background(), lc)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Log: l, ArtifactKey: k.Artifact, VerifierKey: k.VerifierKey})
	if err != nil {
		t.Fatal(err)
	}
	hs := testenv.Serve(t, srv)
	e := &env{t: t, url: hs.URL, verifier: k.Verifier}
	wantError(t, e.get("/tile/0/000.p/2"), 404, "not_found") // beyond the key's entry
	for i, n := range []int{3, 300} {
		e.fill(fmt.Sprintf("d%d", i), n)
		checkLogThroughTiles(t, e)
	}
	r := e.get("/tile/1/000.p/1")
	if r.status != 200 || r.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("derived tile: %s %v", r, r.header)
	}
	wantError(t, e.get("/tile/1/000.p/2"), 404, "not_found")
}
