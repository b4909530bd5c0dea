package log_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/transparency-dev/formats/proof"

	"github.com/govlog/govlog/log"
)

// checkTLogProof checks that the receipt's tlog-proof is byte for byte what
// formats/proof.TLogProof.Marshal writes for the same evidence, and that
// the receipt's other proof fields are the same evidence.
func checkTLogProof(t testing.TB, index uint64, leaf []byte, note []byte, hashes [][32]byte) {
	t.Helper()
	want := proof.TLogProof{Index: index, Hashes: hashes, Checkpoint: note, ExtraData: leaf}.Marshal()
	r := log.NewReceipt("id", index, leaf, log.Checkpoint{Note: note}, hashes)
	if !bytes.Equal([]byte(r.TLogProof), want) {
		t.Fatalf("index %d, %d hashes, %d-byte leaf, %d-byte note: tlog_proof\n%q\nformats/proof\n%q", index, len(hashes), len(leaf), len(note), r.TLogProof, want)
	}
	if r.Checkpoint != string(note) || r.Index != index || !bytes.Equal(r.Entry, leaf) || len(r.InclusionProof) != len(hashes) {
		t.Fatalf("receipt fields: %+v", r)
	}
	for i := range hashes {
		if !bytes.Equal(r.InclusionProof[i], hashes[i][:]) {
			t.Fatalf("inclusion_proof[%d]", i)
		}
	}
	if lh := log.LeafHash(leaf); !bytes.Equal(r.LeafHash, lh[:]) {
		t.Fatal("leaf_hash")
	}
}

// TestTLogProofMarshal holds the receipt's hand-written tlog-proof to
// formats/proof on every proof length a log of up to 2^64 entries has,
// leaves from none (nil and empty) to 64 KiB, extreme indexes and notes
// of every shape, including empty and odd bytes.
func TestTLogProofMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hashes := make([][32]byte, 65)
	for i := range hashes {
		hashes[i] = sha256.Sum256(fmt.Append(nil, i))
	}
	notes := [][]byte{nil, {}, []byte("\n"), []byte("example.com/log\n1\nAAAA\n\n— example.com/log abc=\n"), []byte("\xff\x00é\u2028\n\n")}
	leaves := [][]byte{nil, {}, {0}, []byte(`{"v":1}`)}
	for _, n := range []int{1, 2, 3, 4, 5, 31, 32, 33, 700, 1000, 4096} {
		leaf := make([]byte, n)
		for i := range leaf {
			leaf[i] = byte(rng.Uint32())
		}
		leaves = append(leaves, leaf)
	}
	indexes := []uint64{0, 1, 9, 10, 99, 123_456, 1<<63 - 1, 1<<64 - 1}
	for range 6 {
		indexes = append(indexes, rng.Uint64()>>rng.UintN(64))
	}
	for _, index := range indexes {
		for _, note := range notes {
			for _, leaf := range leaves {
				for k := 0; k <= len(hashes); k++ {
					checkTLogProof(t, index, leaf, note, hashes[:k])
				}
			}
		}
	}
	big := bytes.Repeat([]byte{0xfb}, 65536)
	for _, k := range []int{0, 17, 64} {
		checkTLogProof(t, 1<<40, big, notes[3], hashes[:k])
	}
}

func FuzzTLogProofMarshal(f *testing.F) {
	f.Add(uint64(7), []byte(`{"v":1}`), false, []byte("example.com/log\n8\nabc=\n\n— x y\n"), uint8(20), uint8(3))
	f.Add(uint64(1<<64-1), []byte{}, true, []byte{}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, index uint64, leaf []byte, nilLeaf bool, note []byte, n, seed uint8) {
		if nilLeaf {
			leaf = nil
		}
		hashes := make([][32]byte, n%70)
		for i := range hashes {
			hashes[i] = sha256.Sum256([]byte{seed, byte(i)})
		}
		checkTLogProof(t, index, leaf, note, hashes)
	})
}
