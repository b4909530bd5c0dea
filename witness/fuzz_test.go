package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// The fuzz targets use fixed keys, so that the seeds under
// testdata/fuzz hold checkpoints that really verify: the log of the
// package documentation (key derived from 32 bytes of 0x01, leaves "leaf
// 0", "leaf 1", …) and the documentation's witness key (32 bytes of 0x02).
const (
	fuzzOrigin     = "example.com/govlog"
	fuzzWitnessKey = "PRIVATE+KEY+witness.example/w1+df1c0a35+BAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC"
	// fuzzCosigned is the size the witness has cosigned when each fuzzed
	// request arrives; fuzzNext is the size of the valid request sent
	// after it.
	fuzzCosigned = 5
	fuzzNext     = 8
)

// fixedTestLog is the log of the package documentation.
func fixedTestLog(t testing.TB) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)), fuzzOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: fuzzOrigin, signer: signer, vkey: vkey}
}

// encodeRequest writes an add-checkpoint body (old may be any uint64).
func encodeRequest(old uint64, proof [][]byte, cp []byte) []byte {
	r := request(0, proof, cp)
	return append(fmt.Appendf(nil, "old %d", old), r[len("old 0"):]...)
}

// FuzzParseRequest: whatever ParseRequest accepts re-encodes to the very
// body it was given (one encoding per request: canonical decimal, strict
// base64 of 32-byte hashes, at most 63 of them, a non-empty checkpoint);
// whatever it refuses is ErrMalformed, a 400.
func FuzzParseRequest(f *testing.F) {
	lg := fixedTestLog(f).grow(9)
	f.Add(encodeRequest(7, lg.proof(7, 9), lg.checkpoint(9)))
	f.Add(encodeRequest(0, nil, lg.checkpoint(9)))
	f.Add(encodeRequest(1, make64()[:63], lg.checkpoint(9)))
	f.Fuzz(func(t *testing.T, body []byte) {
		old, proof, cp, err := ParseRequest(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || status(err) != http.StatusBadRequest {
				t.Fatalf("a refusal that is not ErrMalformed (400): %v", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error message of %d bytes", len(err.Error()))
			}
			return
		}
		if len(proof) > MaxProofHashes || len(cp) == 0 {
			t.Fatalf("accepted %d proof lines and a checkpoint of %d bytes", len(proof), len(cp))
		}
		for i, h := range proof {
			if len(h) != 32 {
				t.Fatalf("proof hash %d has %d bytes", i, len(h))
			}
		}
		if again := encodeRequest(old, proof, cp); !bytes.Equal(again, body) {
			t.Fatalf("round trip:\n%q\n%q", body, again)
		}
	})
}

// fuzzWitness is a witness following the fixed log, with its state
// reset before each request.
type fuzzWitness struct {
	w        *Witness
	h        http.Handler
	lg       *testLog
	vkey     string // the witness's verifier key
	logV     note.Verifier
	cosigned state // the state after cosigning size fuzzCosigned
}

func newFuzzWitness(t testing.TB) *fuzzWitness {
	t.Helper()
	lg := fixedTestLog(t).grow(16)
	w, err := New(context.Background(), Config{Key: fuzzWitnessKey, Logs: []string{lg.vkey},
		Database: filepath.Join(t.TempDir(), "witness.db"), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	fw := &fuzzWitness{w: w, h: w.Handler(), lg: lg, vkey: w.VerifierKey()}
	if fw.logV, err = note.NewVerifier(lg.vkey); err != nil {
		t.Fatal(err)
	}
	// A valid request over real HTTP: 200 and a cosignature that verifies.
	srv := httptest.NewServer(fw.h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(request(0, nil, lg.checkpoint(fuzzCosigned))))
	if err != nil {
		t.Fatal(err)
	}
	cosig, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a valid first request: %d %q %v", resp.StatusCode, cosig, err)
	}
	checkCosignature(t, cosig, fw.vkey, lg.body(fuzzCosigned))
	if fw.cosigned, err = w.store.get(context.Background(), fuzzOrigin); err != nil {
		t.Fatal(err)
	}
	// The fuzzing checks how requests are handled, not durability: without
	// an fsync per write, a run sends thousands of requests rather than
	// hundreds. One connection, so that the pragma
	// holds for every statement.
	w.store.db.SetMaxOpenConns(1)
	if _, err := w.store.db.Exec("PRAGMA synchronous=OFF"); err != nil {
		t.Fatal(err)
	}
	return fw
}

// reset puts the state back to the checkpoint of size fuzzCosigned, if it
// moved (a read costs less than a synchronous write).
func (fw *fuzzWitness) reset(t *testing.T) {
	t.Helper()
	s := fw.cosigned
	now, err := fw.w.store.get(context.Background(), fuzzOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if now.size == s.size && now.hash == s.hash && bytes.Equal(now.checkpoint, s.checkpoint) {
		return
	}
	if _, err := fw.w.store.db.Exec(`UPDATE logs SET size = ?, hash = ?, checkpoint = ? WHERE origin = ?`,
		int64(s.size), s.hash[:], s.checkpoint, fuzzOrigin); err != nil {
		t.Fatal(err)
	}
}

// serve sends a request to the handler directly, so that a panic reaches
// the fuzzer instead of being recovered by net/http.
func (fw *fuzzWitness) serve(method, path, ctype string, body []byte) *httptest.ResponseRecorder {
	req := &http.Request{
		Method:     method,
		URL:        &url.URL{Path: path},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          "witness.example",
		RequestURI:    path,
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	fw.h.ServeHTTP(rec, req)
	return rec
}

// FuzzAddCheckpoint drives the witness's HTTP handler, on a real SQLite
// state that has cosigned the fixed log's checkpoint of size 5, with
// arbitrary methods, paths, content types and bodies. No answer is a 5xx;
// an add-checkpoint is answered with a status of tlog-witness (400, 403,
// 404, 409, 413, 422 or 200): a body ParseRequest refuses gets 400 (413
// when too large), 409 carries the cosigned size, 404 is for another
// origin, and a 200 is a cosignature that verifies on a checkpoint of the
// log, consistent with size 5, which the state then holds. After each
// fuzzed request, a valid one (5 to 8) must still get 200 and a verifying
// cosignature.
func FuzzAddCheckpoint(f *testing.F) {
	lg := fixedTestLog(f).grow(fuzzNext)
	f.Add("POST", "/add-checkpoint", "text/plain", request(fuzzCosigned, lg.proof(fuzzCosigned, fuzzNext), lg.checkpoint(fuzzNext)))
	f.Add("POST", "/add-checkpoint", "", append(request(fuzzCosigned, nil, lg.checkpoint(fuzzCosigned)), bytes.Repeat([]byte("x"), MaxBodyBytes)...))
	fw := newFuzzWitness(f)
	hash := sha256.Sum256([]byte(fuzzOrigin))
	cpPath := "/" + hex.EncodeToString(hash[:]) + "/checkpoint"
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		fw.reset(t)
		rec := fw.serve(method, path, ctype, body)
		code, resp := rec.Code, rec.Body.Bytes()
		if code >= 500 {
			t.Fatalf("%s %s: %d %q", method, path, code, resp)
		}
		switch {
		case method == http.MethodPost && path == "/add-checkpoint":
			fw.checkAdd(t, body, rec)
		case (method == http.MethodGet || method == http.MethodHead) && (path == "/" || path == cpPath):
			if code != http.StatusOK {
				t.Fatalf("%s %s: %d %q", method, path, code, resp)
			}
			if method == http.MethodGet && path == cpPath && !bytes.Equal(resp, fw.cosigned.checkpoint) {
				t.Fatalf("GET %s: %q, want the cosigned checkpoint", path, resp)
			}
		default:
			switch code {
			case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusMovedPermanently,
				http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			case http.StatusOK:
				// GET /<hash>/checkpoint of a log the witness does not
				// follow is a 404; only the routes above answer 200.
				t.Fatalf("%s %s: 200 %q", method, path, resp)
			default:
				t.Fatalf("%s %s: unexpected status %d %q", method, path, code, resp)
			}
		}

		// The witness still cosigns a valid request.
		fw.reset(t)
		rec = fw.serve(http.MethodPost, "/add-checkpoint", "text/plain",
			request(fuzzCosigned, lg.proof(fuzzCosigned, fuzzNext), lg.checkpoint(fuzzNext)))
		if rec.Code != http.StatusOK {
			t.Fatalf("after %s %s: a valid request gets %d %q", method, path, rec.Code, rec.Body)
		}
		checkCosignature(t, rec.Body.Bytes(), fw.vkey, lg.body(fuzzNext))
	})
}

// checkAdd checks the answer to a fuzzed add-checkpoint request.
func (fw *fuzzWitness) checkAdd(t *testing.T, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	code, resp := rec.Code, rec.Body.Bytes()
	if len(body) > MaxBodyBytes {
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("a body of %d bytes: %d %q", len(body), code, resp)
		}
		return
	}
	old, proof, checkpoint, err := ParseRequest(body)
	if err != nil {
		if code != http.StatusBadRequest {
			t.Fatalf("a malformed request (%v) gets %d %q", err, code, resp)
		}
		return
	}
	origin, _, hasOrigin := bytes.Cut(checkpoint, []byte("\n"))
	st, err := fw.w.store.get(context.Background(), fuzzOrigin)
	if err != nil {
		t.Fatal(err)
	}
	switch code {
	case http.StatusOK:
		// A checkpoint of the log, signed by it, that extends size 5.
		cp, n, err := log.ParseCheckpoint(checkpoint, log.CheckpointRules{Verifiers: note.VerifierList(fw.logV), Extensions: true})
		if err != nil || cp.Origin != fuzzOrigin || cp.Size < fuzzCosigned || cp.Size > uint64(fw.lg.size) ||
			cp.Hash != [32]byte(fw.lg.root(int64(cp.Size))) {
			t.Fatalf("cosigned a checkpoint that is not the log's (%v): %q", err, n.Text)
		}
		if old != fuzzCosigned || (cp.Size == fuzzCosigned) != (len(proof) == 0) {
			t.Fatalf("cosigned with old %d and %d proof hashes, from size %d to %d", old, len(proof), fuzzCosigned, cp.Size)
		}
		checkCosignature(t, resp, fw.vkey, n.Text)
		if st.size != cp.Size || st.hash != cp.Hash {
			t.Fatalf("after a 200 for size %d, the state is size %d", cp.Size, st.size)
		}
	case http.StatusConflict:
		if old == fuzzCosigned || string(resp) != fmt.Sprintf("%d\n", fuzzCosigned) ||
			rec.Header().Get("Content-Type") != "text/x.tlog.size" {
			t.Fatalf("409 for old %d: %q (%s)", old, resp, rec.Header().Get("Content-Type"))
		}
	case http.StatusNotFound:
		if !hasOrigin || string(origin) == fuzzOrigin {
			t.Fatalf("404 for a checkpoint of the log's origin: %q", resp)
		}
	case http.StatusBadRequest, http.StatusForbidden, http.StatusUnprocessableEntity:
		if hasOrigin && string(origin) != fuzzOrigin {
			t.Fatalf("%d for a checkpoint of an unknown origin %q (want 404): %q", code, origin, resp)
		}
	default:
		t.Fatalf("add-checkpoint: unexpected status %d %q", code, resp)
	}
	if code != http.StatusOK && (st.size != fuzzCosigned || st.hash != fw.cosigned.hash) {
		t.Fatalf("a %d changed the state to size %d", code, st.size)
	}
}
