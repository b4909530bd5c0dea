package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/govlog/govlog/log"
)

// fuzzLogSize is the size of the log FuzzQueryParams reads: more than a
// full tile, so that tile/0/000, a partial level-0 tile and tile/1/000.p/1
// all exist.
const fuzzLogSize = 300

// The endpoints of FuzzQueryParams and their parameters, in the order the
// fuzzer's values fill them.
var fuzzEndpoints = []struct {
	path   string
	params []string
}{
	{"/v1/proofs/inclusion", []string{"index", "leaf_hash", "tree_size"}},
	{"/v1/proofs/consistency", []string{"from", "to"}},
	{"/v1/entries", []string{"start", "count"}},
	{"/tile/", nil}, // the path after /tile/ is the first value
}

// queryLog is the log FuzzQueryParams reads, with what the test knows of
// it independently of the server: every leaf, its leaf hashes and an RFC
// 6962 tree of its own.
type queryLog struct {
	env    *env
	leaves [][]byte
	hashes [][32]byte
	first  map[[32]byte]uint64 // leaf hash → first index
	tree   *testonly.Tree
}

func newQueryLog(f *testing.F) *queryLog {
	env := newEnv(f, envOptions{})
	var items []string
	for i := range fuzzLogSize - 1 { // entry 0 is the artifact key's
		items = append(items, string(decision(fmt.Sprintf("q-%d", i), "deny", nil)))
	}
	if r := env.post("/v1/decisions/batch", []byte(`{"decisions":[`+strings.Join(items, ",")+`]}`)); r.status != http.StatusOK {
		f.Fatalf("batch: %s", r)
	}
	ql := &queryLog{env: env, first: map[[32]byte]uint64{}, tree: testonly.New(rfc6962.DefaultHasher)}
	for uint64(len(ql.leaves)) < fuzzLogSize {
		leaves, err := env.backend.Entries(context.Background(), uint64(len(ql.leaves)), MaxEntries)
		if err != nil {
			f.Fatal(err)
		}
		ql.leaves = append(ql.leaves, leaves...)
	}
	if len(ql.leaves) != fuzzLogSize {
		f.Fatalf("the log has %d entries, want %d", len(ql.leaves), fuzzLogSize)
	}
	for i, leaf := range ql.leaves {
		h := log.LeafHash(leaf)
		ql.hashes = append(ql.hashes, h)
		if _, ok := ql.first[h]; !ok {
			ql.first[h] = uint64(i)
		}
		ql.tree.AppendData(leaf)
	}
	cp, err := env.srv.log.Latest(context.Background())
	if err != nil || cp.Size != fuzzLogSize || !bytes.Equal(cp.Hash[:], ql.tree.Hash()) {
		f.Fatalf("the log's checkpoint %d %x is not the tree of its entries (%v)", cp.Size, cp.Hash, err)
	}
	return ql
}

// FuzzQueryParams sends arbitrary values of the query parameters of
// GET /v1/proofs/inclusion, /v1/proofs/consistency and /v1/entries, and
// arbitrary tile paths, to a log of 300 entries, and checks each answer
// against a model of API.md §4 and tlog-tiles:
//
//   - never a 5xx;
//   - the status is the one the model expects: 200 exactly when every
//     parameter is a canonical decimal (or a base64url SHA-256 for
//     leaf_hash) in range, 404 for an unknown leaf_hash and for a tile the
//     log does not have, 400 otherwise;
//   - every 4xx is a JSON error (invalid_request or not_found) whose
//     message names the parameter (or "query parameter" for a query that
//     does not parse), and tiles the path;
//   - every 200 is for the numbers that parsed, and verifies: inclusion
//     and consistency proofs against the test's own tree, entries and
//     tiles byte for byte against the log's leaves.
//
// The values are query-escaped unless raw is set (then '&', '=' and '%'
// in them make other queries). Bits 0 to 2 of present say which
// parameters are given; bit 3 appends extra as is. A leaf_hash "@<i>"
// stands for the base64url leaf hash of entry i mod 300, which the fuzzer
// could not guess.
func FuzzQueryParams(f *testing.F) {
	// One seed per endpoint here; the others are in
	// testdata/fuzz/FuzzQueryParams.
	f.Add(uint8(0), "", "@7", "100", uint8(0b110), false, "")
	f.Add(uint8(1), "1", "300", "", uint8(0b011), false, "")
	f.Add(uint8(2), "250", "1000", "", uint8(0b011), false, "")
	f.Add(uint8(3), "1/000.p/1", "", "", uint8(0), false, "")
	ql := newQueryLog(f)
	f.Fuzz(func(t *testing.T, endpoint uint8, a, b, c string, present uint8, raw bool, extra string) {
		ep := fuzzEndpoints[int(endpoint)%len(fuzzEndpoints)]
		values := []string{a, b, c}
		var parts []string
		for i, name := range ep.params {
			if present&(1<<i) == 0 {
				continue
			}
			v := values[i]
			if name == "leaf_hash" {
				v = ql.leafHashMacro(v)
			}
			if !raw {
				v = url.QueryEscape(v)
			}
			parts = append(parts, name+"="+v)
		}
		if present&8 != 0 {
			parts = append(parts, extra)
		}
		path, query := ep.path, strings.Join(parts, "&")
		if ep.params == nil {
			path += a
		}
		rec := ql.get(path, query)
		code, body := rec.Code, rec.Body.Bytes()
		if code >= 500 {
			t.Fatalf("GET %s?%s: %d %s", path, query, code, body)
		}
		var want int
		var check func(t *testing.T, body []byte)
		var names []string
		if ep.params == nil {
			want, check = ql.modelTile(path, query)
			names = []string{"tile", "query parameter"}
		} else {
			want, check = ql.model(ep.path, query)
			names = append(ep.params, "query parameter")
			if want == http.StatusNotFound {
				// An unknown leaf_hash: "failed to look up leaf hash …".
				names = []string{"leaf hash"}
			}
		}
		if code != want {
			t.Fatalf("GET %s?%s: %d, want %d: %s", path, query, code, want, body)
		}
		if code == http.StatusOK {
			check(t, body)
			return
		}
		checkQueryError(t, rec, names)
	})
}

// leafHashMacro replaces "@<i>" by the base64url leaf hash of entry i.
func (ql *queryLog) leafHashMacro(v string) string {
	rest, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v
	}
	i, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return v
	}
	h := ql.hashes[i%uint64(len(ql.hashes))]
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// get serves a GET to the handler directly, so that a panic reaches the
// fuzzer.
func (ql *queryLog) get(path, query string) *httptest.ResponseRecorder {
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: path, RawQuery: query},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1,
		Header:     http.Header{},
		Body:       http.NoBody,
		Host:       "example.com",
		RequestURI: path + "?" + query,
	}
	rec := httptest.NewRecorder()
	ql.env.srv.ServeHTTP(rec, req)
	return rec
}

// checkQueryError checks a 4xx: a JSON error of the API whose message
// names one of names.
func checkQueryError(t *testing.T, rec *httptest.ResponseRecorder, names []string) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%d with Content-Type %q", rec.Code, ct)
	}
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%d with a body that is not a JSON error: %q", rec.Code, rec.Body)
	}
	wantCode := codeInvalidRequest
	if rec.Code == http.StatusNotFound {
		wantCode = codeNotFound
	}
	if e.Error.Code != wantCode || e.Error.Message == "" || len(e.Error.Message) > maxMessage+len("…") {
		t.Fatalf("%d with error %+v, want code %s", rec.Code, e.Error, wantCode)
	}
	for _, n := range names {
		if strings.Contains(e.Error.Message, n) {
			return
		}
	}
	t.Fatalf("the error %q names none of %q", e.Error.Message, names)
}

// modelQuery parses a query string as API.md says: name=value pairs
// separated by '&', each percent-decoded, each name one of allowed and
// given once. ok is false for any other query.
func modelQuery(raw string, allowed []string) (map[string]string, bool) {
	q := map[string]string{}
	if raw == "" {
		return q, true
	}
	for _, part := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if part == "" || err1 != nil || err2 != nil {
			return nil, false
		}
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if _, dup := q[name]; dup || !known {
			return nil, false
		}
		q[name] = value
	}
	return q, true
}

// modelUint parses a canonical decimal: digits only, no leading zero but
// for "0" itself, at most 2^64-1.
func modelUint(s string) (uint64, bool) {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if s[i] < '0' || s[i] > '9' || n > (^uint64(0)-uint64(d))/10 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}

// modelHash parses a SHA-256 hash in base64url, with or without padding.
func modelHash(s string) ([32]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil && len(b) == 32 {
			return [32]byte(b), true
		}
	}
	return [32]byte{}, false
}

// model returns the status a query of a proof or entries endpoint must
// get and, for a 200, the check of its body.
func (ql *queryLog) model(path, raw string) (int, func(*testing.T, []byte)) {
	const n = fuzzLogSize
	var params []string
	for _, ep := range fuzzEndpoints {
		if ep.path == path {
			params = ep.params
		}
	}
	q, ok := modelQuery(raw, params)
	if !ok {
		return http.StatusBadRequest, nil
	}
	// num returns a parameter: absent, or present and valid, or bad.
	num := func(name string) (v uint64, has, bad bool) {
		s, has := q[name]
		if !has {
			return 0, false, false
		}
		v, ok := modelUint(s)
		return v, true, !ok
	}
	switch path {
	case "/v1/proofs/inclusion":
		index, hasIndex, badIndex := num("index")
		size, hasSize, badSize := num("tree_size")
		hs, hasHash := q["leaf_hash"]
		hash, okHash := modelHash(hs)
		if badIndex || (hasHash && !okHash) || hasIndex == hasHash || badSize {
			return http.StatusBadRequest, nil
		}
		if !hasSize {
			size = n
		}
		if size > n {
			return http.StatusBadRequest, nil
		}
		if hasHash {
			i, found := ql.first[hash]
			if !found {
				return http.StatusNotFound, nil
			}
			index = i
		}
		if index >= size {
			return http.StatusBadRequest, nil
		}
		return http.StatusOK, func(t *testing.T, body []byte) {
			var r inclusionResponse
			decodeStrict(t, body, &r)
			if r.Index != index || r.TreeSize != size {
				t.Fatalf("inclusion proof of %d in %d, want %d in %d", r.Index, r.TreeSize, index, size)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, ql.hashes[index][:], r.Hashes, ql.tree.HashAt(size)); err != nil {
				t.Fatalf("the inclusion proof of %d in %d does not verify: %v", index, size, err)
			}
		}
	case "/v1/proofs/consistency":
		from, hasFrom, badFrom := num("from")
		to, hasTo, badTo := num("to")
		if badFrom || badTo || !hasFrom || !hasTo || from == 0 || from > to || to > n {
			return http.StatusBadRequest, nil
		}
		return http.StatusOK, func(t *testing.T, body []byte) {
			var r consistencyResponse
			decodeStrict(t, body, &r)
			if r.From != from || r.To != to {
				t.Fatalf("consistency proof from %d to %d, want %d to %d", r.From, r.To, from, to)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, to, r.Hashes, ql.tree.HashAt(from), ql.tree.HashAt(to)); err != nil {
				t.Fatalf("the consistency proof from %d to %d does not verify: %v", from, to, err)
			}
		}
	default: // entries
		start, hasStart, badStart := num("start")
		count, hasCount, badCount := num("count")
		if badStart || !hasStart || badCount || (hasCount && count < 1) || start >= n {
			return http.StatusBadRequest, nil
		}
		if !hasCount || count > MaxEntries {
			count = MaxEntries
		}
		end := start + min(count, n-start)
		return http.StatusOK, func(t *testing.T, body []byte) {
			var r entriesResponse
			decodeStrict(t, body, &r)
			if uint64(len(r.Entries)) != end-start {
				t.Fatalf("%d entries from %d, want %d", len(r.Entries), start, end-start)
			}
			for i, e := range r.Entries {
				if e.Index != start+uint64(i) || !bytes.Equal(e.Entry, ql.leaves[e.Index]) {
					t.Fatalf("entry %d of the answer is not leaf %d", i, start+uint64(i))
				}
			}
		}
	}
}

// modelTile returns the status GET path?query must get, path being under
// /tile/, and for a 200 the check of its body: the tile's hashes, or the
// bundle's entries, from the test's own tree.
func (ql *queryLog) modelTile(path, query string) (int, func(*testing.T, []byte)) {
	if query != "" {
		if _, ok := modelQuery(query, nil); !ok {
			return http.StatusBadRequest, nil
		}
	}
	id, err := log.ParseTilePath(strings.TrimPrefix(path, "/"))
	if err != nil || "/"+id.Path() != path {
		return http.StatusNotFound, nil
	}
	// The nodes at level 8L are the roots of the complete subtrees of
	// 256^L leaves; the tile holds nodes 256N to 256N+W-1.
	shift := 8 * id.Level
	if shift >= 64 {
		return http.StatusNotFound, nil
	}
	nodes := uint64(fuzzLogSize) >> shift
	first := id.Index * 256
	if id.Index > (^uint64(0))/256 || first >= nodes || nodes-first < uint64(id.Width) {
		return http.StatusNotFound, nil
	}
	return http.StatusOK, func(t *testing.T, body []byte) {
		if id.Entries {
			leaves, err := log.ParseEntryBundle(body, id.Width)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for i, leaf := range leaves {
				if !bytes.Equal(leaf, ql.leaves[first+uint64(i)]) {
					t.Fatalf("%s: entry %d is not leaf %d", path, i, first+uint64(i))
				}
			}
			return
		}
		var want []byte
		for k := first; k < first+uint64(id.Width); k++ {
			want = append(want, ql.subtree(k<<shift, 1<<shift)...)
		}
		if !bytes.Equal(body, want) {
			t.Fatalf("%s: %d bytes that are not the tree's hashes", path, len(body))
		}
	}
}

// subtree is the root hash of the n leaves from start (n a power of 2).
func (ql *queryLog) subtree(start, n uint64) []byte {
	if n == 1 {
		return ql.hashes[start][:]
	}
	return rfc6962.DefaultHasher.HashChildren(ql.subtree(start, n/2), ql.subtree(start+n/2, n/2))
}

func decodeStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("answer %q: trailing data", body)
	}
}
