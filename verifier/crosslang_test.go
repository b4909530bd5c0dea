package verifier_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/lestrrat-go/jwx/v2/jwk"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// TestVerifyVectors runs the verification vectors of testdata/verify, the
// cases the TypeScript (clients/ts) and Python (clients/python) verifiers
// run too, through the public Go API: every case must get its verdict.
//
// With GOVLOG_VERDICTS set to a file name, it also writes every case's
// verdict there, one "family<TAB>case<TAB>ok|fail" line each, as the
// TypeScript and Python vector tests do: make test-compare checks that the
// three files are the same.
func TestVerifyVectors(t *testing.T) {
	var (
		mu       sync.Mutex
		verdicts []string
	)
	if path := os.Getenv("GOVLOG_VERDICTS"); path != "" {
		t.Cleanup(func() {
			if err := os.WriteFile(path, []byte(strings.Join(verdicts, "")), 0o644); err != nil {
				t.Error(err)
			}
		})
	}
	for _, f := range []struct {
		family string
		run    func(c *vectors.VerifyCase, input []byte) error
	}{
		{"checkpoints", runCheckpoint},
		{"policies", runPolicy},
		{"proofs", runProof},
		{"consistency", runConsistency},
		{"receipts", runReceipt},
		{"artifacts", runArtifact},
		{"key-artifacts", runKeyArtifact},
		{"bundles", runBundle},
		{"entries", runEntry},
		{"jcs", runJCS},
	} {
		t.Run(f.family, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("..", "testdata", "verify", f.family+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var file struct {
				About string               `json:"about"`
				Cases []vectors.VerifyCase `json:"cases"`
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&file); err != nil {
				t.Fatal(err)
			}
			n := 0
			for i := range file.Cases {
				c := &file.Cases[i]
				for _, sub := range expand(t, f.family, c) {
					n++
					err := f.run(sub.c, sub.input)
					verdict := "ok"
					if err != nil {
						verdict = "fail"
					}
					mu.Lock()
					verdicts = append(verdicts, f.family+"\t"+sub.name+"\t"+verdict+"\n")
					mu.Unlock()
					switch {
					case sub.want == "ok" && err != nil:
						t.Errorf("%s: want ok, got %v", sub.name, err)
					case sub.want == "fail" && err == nil:
						t.Errorf("%s: want fail, verified", sub.name)
					}
				}
			}
			t.Logf("%d cases", n)
		})
	}
}

type subcase struct {
	name, want string
	input      []byte
	// c is the case, with the mangled field when Mangle.Field names one.
	c *vectors.VerifyCase
}

// expand returns a case and, when it has Mangle, its mangled copies.
func expand(t *testing.T, family string, c *vectors.VerifyCase) []subcase {
	t.Helper()
	input := primaryInput(family, c)
	out := []subcase{{c.Name, c.Want, input, c}}
	if c.Mangle == nil {
		return out
	}
	target := input
	if c.Mangle.Field != "" {
		if c.Mangle.Field != "key_receipt" || c.KeyReceipt == nil {
			t.Fatalf("%s: mangle of unknown field %q", c.Name, c.Mangle.Field)
		}
		target = []byte(*c.KeyReceipt)
	}
	sub := func(name string, m []byte) subcase {
		if c.Mangle.Field == "" {
			return subcase{name, "fail", m, c}
		}
		cc := *c
		cc.KeyReceipt = ptr(string(m))
		return subcase{name, "fail", input, &cc}
	}
	for i := range target {
		for _, x := range c.Mangle.XOR {
			m := bytes.Clone(target)
			m[i] ^= byte(x)
			out = append(out, sub(fmt.Sprintf("%s: byte %d xor 0x%02x", c.Name, i, x), m))
		}
		if c.Mangle.Delete {
			m := append(bytes.Clone(target[:i]), target[i+1:]...)
			out = append(out, sub(fmt.Sprintf("%s: byte %d deleted", c.Name, i), m))
		}
	}
	return out
}

// primaryInput is the input of a case that Mangle changes.
func primaryInput(family string, c *vectors.VerifyCase) []byte {
	pick := func(s *string, raw []byte) []byte {
		if s != nil {
			return []byte(*s)
		}
		return raw
	}
	switch family {
	case "checkpoints", "policies":
		return pick(c.Checkpoint, c.CheckpointBase64)
	case "receipts":
		return pick(c.Receipt, c.ReceiptBase64)
	case "artifacts", "key-artifacts":
		return []byte(c.Token)
	case "entries":
		return pick(c.Leaf, c.LeafBase64)
	case "jcs":
		return pick(c.Input, c.InputBase64)
	}
	return nil
}

func runCheckpoint(c *vectors.VerifyCase, input []byte) error {
	key, err := note.NewVerifier(c.LogKey)
	if err != nil {
		return err
	}
	cp, err := verifier.Checkpoint(input, key)
	if err != nil {
		return err
	}
	return expectCheckpoint(c.Expect, cp)
}

func expectCheckpoint(e *vectors.Expect, cp log.Checkpoint) error {
	switch {
	case e == nil:
	case e.Origin != "" && e.Origin != cp.Origin:
		return fmt.Errorf("origin %q, want %q", cp.Origin, e.Origin)
	case e.Size != nil && *e.Size != cp.Size:
		return fmt.Errorf("size %d, want %d", cp.Size, *e.Size)
	case e.RootHash != "" && e.RootHash != base64.StdEncoding.EncodeToString(cp.Hash[:]):
		return fmt.Errorf("root hash %x, want %s", cp.Hash, e.RootHash)
	}
	return nil
}

func runPolicy(c *vectors.VerifyCase, input []byte) error {
	p, err := verifier.ParsePolicy([]byte(*c.Policy))
	if err != nil || input == nil {
		return err
	}
	key, err := note.NewVerifier(c.LogKey)
	if err != nil {
		return err
	}
	if _, err := verifier.Checkpoint(input, key); err != nil {
		return err
	}
	return p.Check(input)
}

func decodeHashes(in []string) ([][]byte, error) {
	out := [][]byte{}
	for _, s := range in {
		h, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func runProof(c *vectors.VerifyCase, _ []byte) error {
	proof, err := decodeHashes(c.Proof)
	if err != nil {
		return err
	}
	hashes, err := decodeHashes([]string{c.LeafHash, c.Root, c.Root1, c.Root2})
	if err != nil {
		return err
	}
	switch c.Type {
	case "inclusion":
		return mproof.VerifyInclusion(rfc6962.DefaultHasher, *c.Index, *c.Size, hashes[0], proof, hashes[1])
	case "consistency":
		return mproof.VerifyConsistency(rfc6962.DefaultHasher, *c.Size1, *c.Size2, proof, hashes[2], hashes[3])
	}
	return fmt.Errorf("unknown proof type %q", c.Type)
}

func runConsistency(c *vectors.VerifyCase, _ []byte) error {
	key, err := note.NewVerifier(c.LogKey)
	if err != nil {
		return err
	}
	proof, err := decodeHashes(c.Proof)
	if err != nil {
		return err
	}
	_, _, err = verifier.Consistency([]byte(c.Old), []byte(c.New), proof, key)
	return err
}

func runReceipt(c *vectors.VerifyCase, input []byte) error {
	key, err := note.NewVerifier(c.LogKey)
	if err != nil {
		return err
	}
	var v *verifier.Verified
	switch c.Format {
	case "tlog-proof":
		v, err = verifier.Receipt(input, key)
	case "json":
		v, err = verifier.ReceiptJSON(input, key)
	default:
		return fmt.Errorf("unknown receipt format %q", c.Format)
	}
	if err != nil {
		return err
	}
	e := c.Expect
	if e == nil {
		return nil
	}
	switch {
	case e.Index != nil && *e.Index != v.Index:
		return fmt.Errorf("index %d, want %d", v.Index, *e.Index)
	case e.Kind != "" && e.Kind != v.Entry.Kind.String():
		return fmt.Errorf("kind %v, want %s", v.Entry.Kind, e.Kind)
	case e.ID != "" && e.ID != v.Entry.ID:
		return fmt.Errorf("id %q, want %q", v.Entry.ID, e.ID)
	case e.LeafHash != "" && e.LeafHash != base64.StdEncoding.EncodeToString(v.LeafHash[:]):
		return fmt.Errorf("leaf hash %x, want %s", v.LeafHash, e.LeafHash)
	}
	return expectCheckpoint(&vectors.Expect{Size: e.Size, RootHash: e.RootHash}, v.Checkpoint)
}

func runArtifact(c *vectors.VerifyCase, input []byte) error {
	key, err := note.NewVerifier(c.LogKey)
	if err != nil {
		return err
	}
	set, err := jwk.Parse([]byte(c.JWKS))
	if err != nil {
		return err
	}
	now := time.Unix(c.Now, 0)
	var claims *log.ArtifactClaims
	if a := c.Authorize; a != nil {
		cl, err := client.New("http://127.0.0.1:1", client.WithLogKey(key), client.WithJWKS(set), client.WithAudience(c.Audience))
		if err != nil {
			return err
		}
		want := client.Authorization{Action: a.Action, Resource: a.Resource, Subject: a.Subject, Now: now}
		if c.Receipt != nil {
			want.Receipt = []byte(*c.Receipt)
		}
		if claims, err = cl.VerifyArtifact(context.Background(), string(input), want); err != nil {
			return err
		}
	} else {
		opts := artifact.Options{Origin: key.Name(), Audience: c.Audience, Now: now}
		if c.Receipt != nil {
			if opts.Receipt, err = verifier.Receipt([]byte(*c.Receipt), key); err != nil {
				return err
			}
		}
		if claims, err = artifact.Verify(string(input), set, opts); err != nil {
			return err
		}
	}
	return checkClaims(c, claims)
}

// checkClaims compares an artifact's claims with those a case expects,
// if any.
func checkClaims(c *vectors.VerifyCase, claims *log.ArtifactClaims) error {
	if c.Expect == nil || c.Expect.Claims == "" {
		return nil
	}
	p, err := claims.Payload()
	if err != nil {
		return err
	}
	if string(p) != c.Expect.Claims {
		return fmt.Errorf("claims %s, want %s", p, c.Expect.Claims)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func runBundle(c *vectors.VerifyCase, _ []byte) error {
	key, err := note.NewVerifier(c.LogKey)
	if err != nil {
		return err
	}
	var policy *verifier.Policy
	if c.Policy != nil {
		if policy, err = verifier.ParsePolicy([]byte(*c.Policy)); err != nil {
			return err
		}
	}
	r, err := verifier.Bundle(strings.NewReader(*c.Bundle), key, policy, nil)
	if err != nil {
		return err
	}
	if e := c.Expect; e != nil {
		if e.Entries != nil && uint64(r.Entries) != *e.Entries {
			return fmt.Errorf("%d entries, want %d", r.Entries, *e.Entries)
		}
		return expectCheckpoint(&vectors.Expect{Size: e.Size}, r.Checkpoint)
	}
	return nil
}

func runKeyArtifact(c *vectors.VerifyCase, input []byte) error {
	key, err := note.NewVerifier(c.LogKey)
	if err != nil {
		return err
	}
	opts := artifact.KeyBoundOptions{Options: artifact.Options{Audience: c.Audience, Now: time.Unix(c.Now, 0)}}
	if c.Policy != nil {
		if opts.Policy, err = verifier.ParsePolicy([]byte(*c.Policy)); err != nil {
			return err
		}
	}
	if a := c.Authorize; a != nil {
		opts.Expect = &artifact.Expected{Action: a.Action, Resource: a.Resource, Subject: a.Subject}
	}
	claims, _, err := artifact.VerifyKeyBound(string(input), []byte(*c.KeyReceipt), key, opts)
	if err != nil {
		return err
	}
	return checkClaims(c, claims)
}

func runEntry(c *vectors.VerifyCase, input []byte) error {
	pe, err := log.ParseEntry(input)
	if err != nil {
		return err
	}
	if c.Expect == nil {
		return nil
	}
	if pe.Kind.String() != c.Expect.Kind || pe.ID != c.Expect.ID {
		return fmt.Errorf("entry %v %q, want %s %q", pe.Kind, pe.ID, c.Expect.Kind, c.Expect.ID)
	}
	return nil
}

func runJCS(c *vectors.VerifyCase, input []byte) error {
	out, err := jcs.Transform(input)
	if err != nil {
		return err
	}
	if c.Canonical != nil && string(out) != *c.Canonical {
		return fmt.Errorf("canonical %s, want %s", out, *c.Canonical)
	}
	return nil
}
