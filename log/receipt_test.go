package log_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
	"github.com/transparency-dev/formats/proof"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// goldenLog is the log of the entry vectors, in order, with its golden
// checkpoint.
func goldenLog(t *testing.T) (*testonly.Tree, []vectors.Entry, log.Checkpoint) {
	t.Helper()
	_, v := testKeys(t)
	entries := entryVectors(t)
	tree := testonly.New(rfc6962.DefaultHasher)
	for _, e := range entries {
		tree.AppendData([]byte(e.Leaf))
	}
	cp, err := log.OpenCheckpoint(readFile(t, "checkpoints/golden.note"), v)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != tree.Size() || cp.Hash != [32]byte(tree.Hash()) {
		t.Fatalf("golden checkpoint (size %d, root %x) is not the tree of the entry vectors (%d, %x)", cp.Size, cp.Hash, tree.Size(), tree.Hash())
	}
	return tree, entries, cp
}

func inclusion(t *testing.T, tree *testonly.Tree, index, size uint64) [][32]byte {
	t.Helper()
	p, err := tree.InclusionProof(index, size)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][32]byte, len(p))
	for i := range p {
		out[i] = [32]byte(p[i])
	}
	return out
}

// verifyTLogProof checks a tlog-proof offline, as a third party would with
// formats and merkle, and returns the entry it proves.
func verifyTLogProof(t *testing.T, text []byte) ([]byte, log.Checkpoint) {
	t.Helper()
	_, v := testKeys(t)
	var tp proof.TLogProof
	if err := tp.Unmarshal(text); err != nil {
		t.Fatalf("tlog-proof does not parse: %v", err)
	}
	cp, err := log.OpenCheckpoint(tp.Checkpoint, v)
	if err != nil {
		t.Fatalf("tlog-proof checkpoint: %v", err)
	}
	lh := log.LeafHash(tp.ExtraData)
	hashes := make([][]byte, len(tp.Hashes))
	for i := range tp.Hashes {
		hashes[i] = tp.Hashes[i][:]
	}
	if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, tp.Index, cp.Size, lh[:], hashes, cp.Hash[:]); err != nil {
		t.Fatalf("tlog-proof of index %d in size %d does not verify: %v", tp.Index, cp.Size, err)
	}
	return tp.ExtraData, cp
}

func TestReceiptGolden(t *testing.T) {
	tree, entries, cp := goldenLog(t)
	for i, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			leaf := []byte(e.Leaf)
			p, err := log.ParseEntry(leaf)
			if err != nil {
				t.Fatal(err)
			}
			r := log.NewReceipt(p.ID, uint64(i), leaf, cp, inclusion(t, tree, uint64(i), tree.Size()))

			var want log.Receipt
			readJSON(t, "receipts/"+e.Name+".json", &want)
			if !bytes.Equal(encodingJSON(t, r), encodingJSON(t, &want)) {
				t.Fatalf("receipt\n%+v\nwant\n%+v", *r, want)
			}
			tlog := readFile(t, "receipts/"+e.Name+".tlog-proof")
			if r.TLogProof != string(tlog) {
				t.Fatalf("tlog_proof\n%s\nwant\n%s", r.TLogProof, tlog)
			}
			// The tlog-proof alone proves the entry.
			got, gcp := verifyTLogProof(t, tlog)
			if !bytes.Equal(got, leaf) || gcp.Size != cp.Size {
				t.Fatal("the tlog-proof proves another entry or checkpoint")
			}
			// The receipt's own fields say the same.
			lh := log.LeafHash(leaf)
			if r.ID != p.ID || r.Index != uint64(i) || !bytes.Equal(r.LeafHash, lh[:]) || !bytes.Equal(r.Entry, leaf) || r.Checkpoint != string(cp.Note) || r.Artifact != "" {
				t.Fatalf("receipt fields: %+v", r)
			}
			if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, cp.Size, r.LeafHash, r.InclusionProof, cp.Hash[:]); err != nil {
				t.Fatalf("inclusion_proof: %v", err)
			}
		})
	}
}

// TestReceiptJSON checks the receipt's wire shape: field names, standard
// base64, artifact only when set.
func TestReceiptJSON(t *testing.T) {
	tree, entries, cp := goldenLog(t)
	leaf := []byte(entries[0].Leaf)
	r := log.NewReceipt("d-1", 0, leaf, cp, inclusion(t, tree, 0, tree.Size()))
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"checkpoint", "entry", "id", "inclusion_proof", "index", "leaf_hash", "tlog_proof"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("receipt fields %v, want %v", keys, want)
	}
	if m["entry"] != base64.StdEncoding.EncodeToString(leaf) {
		t.Fatal("entry is not standard base64 of the leaf")
	}
	lh := log.LeafHash(leaf)
	if m["leaf_hash"] != base64.StdEncoding.EncodeToString(lh[:]) {
		t.Fatal("leaf_hash is not standard base64")
	}
	if m["index"] != float64(0) {
		t.Fatalf("index %v", m["index"])
	}
	r.Artifact = "header.payload.signature"
	raw, _ = json.Marshal(r)
	if !bytes.Contains(raw, []byte(`"artifact":"header.payload.signature"`)) {
		t.Fatalf("artifact missing: %s", raw)
	}
	// A receipt for a tree of one entry has an empty, not null, proof.
	one := testonly.New(rfc6962.DefaultHasher)
	one.AppendData(leaf)
	s, _ := testKeys(t)
	cp1, err := log.SignCheckpoint(s, 1, [32]byte(one.Hash()))
	if err != nil {
		t.Fatal(err)
	}
	r1 := log.NewReceipt("d-1", 0, leaf, cp1, nil)
	raw, _ = json.Marshal(r1)
	if !bytes.Contains(raw, []byte(`"inclusion_proof":[]`)) {
		t.Fatalf("a proof without hashes is not []: %s", raw)
	}
	verifyTLogProof(t, []byte(r1.TLogProof))
}

// TestReceiptEverySize checks receipts of every index in trees of sizes 1
// to 40, and that a wrong index or hash makes them fail.
func TestReceiptEverySize(t *testing.T) {
	s, _ := testKeys(t)
	tree := testonly.New(rfc6962.DefaultHasher)
	var leaves [][]byte
	for size := uint64(1); size <= 40; size++ {
		leaf := fmt.Appendf(nil, `{"n":%d}`, size)
		leaves = append(leaves, leaf)
		tree.AppendData(leaf)
		cp, err := log.SignCheckpoint(s, size, [32]byte(tree.Hash()))
		if err != nil {
			t.Fatal(err)
		}
		for i := range size {
			p := inclusion(t, tree, i, size)
			r := log.NewReceipt(fmt.Sprint(i), i, leaves[i], cp, p)
			got, _ := verifyTLogProof(t, []byte(r.TLogProof))
			if !bytes.Equal(got, leaves[i]) {
				t.Fatalf("size %d index %d: wrong entry", size, i)
			}
			// Tampered receipts fail.
			if size > 1 {
				var tp proof.TLogProof
				if err := tp.Unmarshal([]byte(r.TLogProof)); err != nil {
					t.Fatal(err)
				}
				lh := log.LeafHash(tp.ExtraData)
				if mproof.VerifyInclusion(rfc6962.DefaultHasher, (i+1)%size, size, lh[:], r.InclusionProof, cp.Hash[:]) == nil {
					t.Fatalf("size %d: the proof of %d verifies for index %d", size, i, (i+1)%size)
				}
				other := log.LeafHash(leaves[(i+1)%size])
				if mproof.VerifyInclusion(rfc6962.DefaultHasher, i, size, other[:], r.InclusionProof, cp.Hash[:]) == nil {
					t.Fatalf("size %d index %d: the proof verifies another leaf", size, i)
				}
			}
		}
	}
}

// TestReceiptLargestEntry checks the receipt of an entry of the largest
// size. Its tlog-proof's extra line is longer than the 64 KiB line limit
// of formats/proof's parser (v0.1.1 reads lines with a default
// bufio.Scanner), so this checks the text against the standard encoding
// instead of parsing it; entries up to 49,146 bytes parse.
func TestReceiptLargestEntry(t *testing.T) {
	s, _ := testKeys(t)
	now := vectors.NowTime()
	overhead := len(`{"decision":,"logged_at":"2026-11-25T18:00:00.000000000Z","submitter":"anonymous","v":1}`)
	for _, n := range []int{49146, log.MaxEntryBytes} {
		d, err := log.ParseDecision(bigDecisionBody(t, n-overhead), now)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), now, time.Second)
		if err != nil || len(e.Leaf) != n {
			t.Fatalf("entry of %d bytes: %v", len(e.Leaf), err)
		}
		lh := log.LeafHash(e.Leaf)
		cp, err := log.SignCheckpoint(s, 1, lh)
		if err != nil {
			t.Fatal(err)
		}
		r := log.NewReceipt("d", 0, e.Leaf, cp, nil)
		want := "c2sp.org/tlog-proof@v1\nextra " + base64.StdEncoding.EncodeToString(e.Leaf) + "\nindex 0\n\n" + string(cp.Note)
		if r.TLogProof != want {
			t.Fatalf("tlog_proof of a %d-byte entry is not the C2SP encoding", n)
		}
		if n <= 49146 {
			got, _ := verifyTLogProof(t, []byte(r.TLogProof))
			if !bytes.Equal(got, e.Leaf) {
				t.Fatal("wrong entry")
			}
		}
		if strings.Count(r.TLogProof, "\n") != 9 {
			t.Fatalf("tlog_proof has %d lines", strings.Count(r.TLogProof, "\n"))
		}
	}
}
