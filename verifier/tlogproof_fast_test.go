package verifier

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/transparency-dev/formats/proof"
)

// slowTLogProof is parseTLogProof without its fast path: the formats
// parser, then the canonical check.
func slowTLogProof(data []byte) (*proof.TLogProof, bool) {
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok || string(header) != tlogProofHeader {
		return nil, false
	}
	var extra []byte
	if b64, after, ok := bytes.Cut(rest, []byte("\n")); ok && bytes.HasPrefix(b64, []byte("extra ")) {
		var err error
		if extra, err = base64.StdEncoding.Strict().DecodeString(string(b64[len("extra "):])); err != nil {
			return nil, false
		}
		rest = after
	}
	var p proof.TLogProof
	if err := p.Unmarshal(append([]byte(tlogProofHeader+"\n"), rest...)); err != nil {
		return nil, false
	}
	p.ExtraData = extra
	if !bytes.Equal(p.Marshal(), data) {
		return nil, false
	}
	return &p, true
}

func sameTLogProof(t testing.TB, data []byte) bool {
	t.Helper()
	fast, ok := fastTLogProof(data)
	if !ok {
		return false
	}
	slow, sok := slowTLogProof(data)
	if !sok {
		t.Fatalf("fastTLogProof accepts what the full parser refuses:\n%q", data)
	}
	if fast.Index != slow.Index || !reflect.DeepEqual(fast.Hashes, slow.Hashes) ||
		!bytes.Equal(fast.Checkpoint, slow.Checkpoint) || !bytes.Equal(fast.ExtraData, slow.ExtraData) ||
		(fast.ExtraData == nil) != (slow.ExtraData == nil) {
		t.Fatalf("fastTLogProof and the full parser disagree on\n%q", data)
	}
	return true
}

func tlogProofSeeds() [][]byte {
	cp := []byte("example.com/govlog\n3\nE+KMQJwv8RpWkkBJ80Itp8JCfKRyrxPkMQIFnxKvSZ8=\n\n— example.com/govlog fwXkzTYQf1xXfkAsrJhwRhlqX8NDfvZCapxKR1MsNVRiSUQouXCJYvbT8Tr+JjRBHtjtzcxIRPGGHAB4UIPNC9JAKgQ=\n")
	var h [32]byte
	for i := range h {
		h[i] = byte(i * 7)
	}
	return [][]byte{
		proof.TLogProof{Index: 1, Hashes: [][32]byte{h, h}, Checkpoint: cp, ExtraData: []byte(`{"v":1}`)}.Marshal(),
		proof.TLogProof{Index: 0, Checkpoint: cp, ExtraData: []byte{}}.Marshal(),
		proof.TLogProof{Index: 1234567, Hashes: [][32]byte{h}, Checkpoint: cp}.Marshal(),
		proof.TLogProof{Index: 5, Hashes: [][32]byte{h}, Checkpoint: []byte("a\n\nb\n")}.Marshal(),
	}
}

func TestFastTLogProofAgrees(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, seed := range tlogProofSeeds() {
		if !sameTLogProof(t, seed) {
			t.Fatalf("the fast path refuses a canonical tlog-proof:\n%s", seed)
		}
		buf := make([]byte, len(seed))
		for i := range seed {
			for bit := range 8 {
				copy(buf, seed)
				buf[i] ^= 1 << bit
				sameTLogProof(t, buf)
			}
			sameTLogProof(t, append(append([]byte{}, seed[:i]...), seed[i+1:]...))
			for range 3 {
				c := []byte{'\r', '\n', '=', ' ', '0', 'A', 0x80}[rnd.IntN(7)]
				sameTLogProof(t, append(append(append([]byte{}, seed[:i]...), c), seed[i:]...))
			}
		}
	}
}

func FuzzFastTLogProof(f *testing.F) {
	for _, s := range tlogProofSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameTLogProof(t, data) })
}

// BenchmarkParseTLogProof compares the fast path with the formats parser
// and canonical check on a receipt of a 600-byte entry with a 24-hash
// proof (a log of some ten million entries).
func BenchmarkParseTLogProof(b *testing.B) {
	cp := []byte("example.com/govlog\n12345678\nE+KMQJwv8RpWkkBJ80Itp8JCfKRyrxPkMQIFnxKvSZ8=\n\n— example.com/govlog fwXkzTYQf1xXfkAsrJhwRhlqX8NDfvZCapxKR1MsNVRiSUQouXCJYvbT8Tr+JjRBHtjtzcxIRPGGHAB4UIPNC9JAKgQ=\n")
	hashes := make([][32]byte, 24)
	for i := range hashes {
		hashes[i][0] = byte(i)
	}
	data := proof.TLogProof{Index: 9876543, Hashes: hashes, Checkpoint: cp, ExtraData: bytes.Repeat([]byte("x"), 600)}.Marshal()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fastTLogProof(data); !ok {
				b.Fatal("not fast")
			}
		}
	})
	b.Run("formats", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := slowTLogProof(data); !ok {
				b.Fatal("refused")
			}
		}
	})
}
