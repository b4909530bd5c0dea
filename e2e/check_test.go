package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	flog "github.com/transparency-dev/formats/log"
	tproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// These checks use the standard libraries directly, not govlog's verifier,
// so that they test the wire format the way an independent client would.

// receipt is the receipt JSON of the wire contract.
type receipt struct {
	ID             string   `json:"id"`
	Index          uint64   `json:"index"`
	LeafHash       []byte   `json:"leaf_hash"`
	Entry          []byte   `json:"entry"`
	Checkpoint     string   `json:"checkpoint"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	TLogProof      string   `json:"tlog_proof"`
	Artifact       string   `json:"artifact"`
}

type entry struct {
	AuthorizedUntil string          `json:"authorized_until"`
	Decision        json.RawMessage `json:"decision"`
	Execution       json.RawMessage `json:"execution"`
	LoggedAt        string          `json:"logged_at"`
	Submitter       string          `json:"submitter"`
	V               int             `json:"v"`
}

// checkpoint is an opened, verified checkpoint.
type checkpoint struct {
	flog.Checkpoint
	text string
}

func openCheckpoint(t *testing.T, text string, v note.Verifier) checkpoint {
	t.Helper()
	cp, _, _, err := flog.ParseCheckpoint([]byte(text), v.Name(), v)
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, text)
	}
	return checkpoint{Checkpoint: *cp, text: text}
}

// checkReceipt verifies a receipt completely and returns its checkpoint and
// entry. submitted, when set, is the decision or execution body that was
// submitted: the entry must hold its canonical form.
func checkReceipt(t *testing.T, body []byte, v note.Verifier, submitted []byte) (receipt, checkpoint, entry) {
	t.Helper()
	var r receipt
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("receipt is not JSON: %v: %s", err, body)
	}
	cp := openCheckpoint(t, r.Checkpoint, v)
	lh := rfc6962.DefaultHasher.HashLeaf(r.Entry)
	if !bytes.Equal(lh, r.LeafHash) {
		t.Fatalf("receipt %s: leaf_hash is not the hash of entry", r.ID)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, cp.Size, lh, r.InclusionProof, cp.Hash); err != nil {
		t.Fatalf("receipt %s: inclusion proof: %v", r.ID, err)
	}
	// The tlog-proof alone must carry the same evidence.
	var tp tproof.TLogProof
	if err := tp.Unmarshal([]byte(r.TLogProof)); err != nil {
		t.Fatalf("receipt %s: tlog_proof: %v", r.ID, err)
	}
	if tp.Index != r.Index || !bytes.Equal(tp.ExtraData, r.Entry) || string(tp.Checkpoint) != r.Checkpoint || len(tp.Hashes) != len(r.InclusionProof) {
		t.Fatalf("receipt %s: tlog_proof disagrees with the receipt fields", r.ID)
	}
	for i := range tp.Hashes {
		if !bytes.Equal(tp.Hashes[i][:], r.InclusionProof[i]) {
			t.Fatalf("receipt %s: tlog_proof hash %d differs", r.ID, i)
		}
	}
	canon, err := jcs.Transform(r.Entry)
	if err != nil || !bytes.Equal(canon, r.Entry) {
		t.Fatalf("receipt %s: entry is not RFC 8785 canonical: %s", r.ID, r.Entry)
	}
	var e entry
	if err := json.Unmarshal(r.Entry, &e); err != nil {
		t.Fatal(err)
	}
	if e.V != 1 || e.Submitter == "" || len(e.LoggedAt) != len("2006-01-02T15:04:05.000000000Z") {
		t.Fatalf("receipt %s: bad entry envelope: %s", r.ID, r.Entry)
	}
	if submitted != nil {
		want, err := jcs.Transform(submitted)
		if err != nil {
			t.Fatal(err)
		}
		got := e.Decision
		if got == nil {
			got = e.Execution
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("receipt %s: entry holds\n%s\nwant the canonical submission\n%s", r.ID, got, want)
		}
	}
	return r, cp, e
}

// checkArtifact verifies an allow decision's artifact against the JWKS and
// its binding to the receipt.
func checkArtifact(t *testing.T, jwks jwk.Set, origin string, r receipt, cp checkpoint, e entry) {
	t.Helper()
	msg, err := jws.Verify([]byte(r.Artifact), jws.WithKeySet(jwks, jws.WithRequireKid(true)))
	if err != nil {
		t.Fatalf("artifact of %s does not verify with the JWKS: %v", r.ID, err)
	}
	parsed, err := jws.Parse([]byte(r.Artifact))
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Signatures()[0].ProtectedHeaders()
	if h.Algorithm() != jwa.EdDSA || h.Type() != "govlog-authz+jwt" || h.KeyID() == "" {
		t.Fatalf("artifact header: alg %v typ %q kid %q", h.Algorithm(), h.Type(), h.KeyID())
	}
	var c struct {
		Iss, Sub, Jti, Action, Resource string
		Iat, Nbf, Exp                   int64
		Govlog                          struct {
			Index    uint64 `json:"index"`
			LeafHash string `json:"leaf_hash"`
			TreeSize uint64 `json:"tree_size"`
			RootHash string `json:"root_hash"`
		}
	}
	if err := json.Unmarshal(msg, &c); err != nil {
		t.Fatal(err)
	}
	var d struct{ ID, Subject, Action, Resource string }
	if err := json.Unmarshal(e.Decision, &d); err != nil {
		t.Fatal(err)
	}
	exp := mustTime(t, e.AuthorizedUntil).Unix()
	iat := mustTime(t, e.LoggedAt).Unix()
	switch {
	case c.Iss != origin, c.Sub != d.Subject, c.Jti != d.ID, c.Action != d.Action, c.Resource != d.Resource:
		t.Fatalf("artifact claims %+v do not match decision %+v", c, d)
	case c.Exp != exp, c.Iat != iat, c.Nbf != iat:
		t.Fatalf("artifact times iat %d nbf %d exp %d, entry logged_at %s authorized_until %s", c.Iat, c.Nbf, c.Exp, e.LoggedAt, e.AuthorizedUntil)
	case c.Govlog.Index != r.Index, c.Govlog.LeafHash != base64.StdEncoding.EncodeToString(r.LeafHash),
		c.Govlog.TreeSize != cp.Size, c.Govlog.RootHash != base64.StdEncoding.EncodeToString(cp.Hash):
		t.Fatalf("artifact binding %+v does not match receipt index %d checkpoint size %d", c.Govlog, r.Index, cp.Size)
	}
}

func fetchJWKS(t *testing.T, url string) jwk.Set {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), url+"/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// checkConsistent verifies that old is a prefix of the log at cur, with the
// server's consistency proof.
func checkConsistent(t *testing.T, url string, old, cur checkpoint) {
	t.Helper()
	if old.Size == 0 || old.Size == cur.Size {
		if old.Size == cur.Size && !bytes.Equal(old.Hash, cur.Hash) {
			t.Fatalf("two checkpoints of size %d with different roots:\n%s\n%s", old.Size, old.text, cur.text)
		}
		return
	}
	var p struct {
		From, To uint64
		Hashes   [][]byte
	}
	if st := getJSON(t, fmt.Sprintf("%s/v1/proofs/consistency?from=%d&to=%d", url, old.Size, cur.Size), &p); st != http.StatusOK {
		t.Fatalf("consistency proof %d→%d: status %d", old.Size, cur.Size, st)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cur.Size, p.Hashes, old.Hash, cur.Hash); err != nil {
		t.Fatalf("checkpoint %d is not consistent with %d: %v", old.Size, cur.Size, err)
	}
}

// replay downloads every entry up to cp.Size and checks that they hash to
// cp's root. It returns the entries.
func replay(t *testing.T, url string, cp checkpoint) [][]byte {
	t.Helper()
	var leaves [][]byte
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for uint64(len(leaves)) < cp.Size {
		var page struct {
			Entries []struct {
				Index uint64 `json:"index"`
				Entry []byte `json:"entry"`
			} `json:"entries"`
		}
		if st := getJSON(t, fmt.Sprintf("%s/v1/entries?start=%d&count=1000", url, len(leaves)), &page); st != 200 {
			t.Fatalf("entries from %d: status %d", len(leaves), st)
		}
		if len(page.Entries) == 0 {
			t.Fatalf("entries from %d: empty page below size %d", len(leaves), cp.Size)
		}
		for _, e := range page.Entries {
			if e.Index != uint64(len(leaves)) {
				t.Fatalf("entries: got index %d, want %d", e.Index, len(leaves))
			}
			if uint64(len(leaves)) < cp.Size {
				leaves = append(leaves, e.Entry)
				if err := r.Append(rfc6962.DefaultHasher.HashLeaf(e.Entry), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size == 0 {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	if !bytes.Equal(root, cp.Hash) {
		t.Fatalf("replayed %d entries to root %x, checkpoint says %x", cp.Size, root, cp.Hash)
	}
	return leaves
}

func latest(t *testing.T, url string, v note.Verifier) checkpoint {
	t.Helper()
	status, body, hdr, err := call(context.Background(), http.MethodGet, url+"/v1/checkpoint", "", nil)
	if err != nil || status != 200 {
		t.Fatalf("GET /v1/checkpoint: %d %v", status, err)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("GET /v1/checkpoint: Content-Type %q", ct)
	}
	return openCheckpoint(t, string(body), v)
}
