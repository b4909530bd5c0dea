package log_test

import (
	"bytes"
	"encoding/json"
	"github.com/govlog/govlog/internal/cputime"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govlog/govlog/log"
)

// encodingJSON is how encoding/json writes v for the server: HTML escaping
// off, without the trailing newline.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func checkReceiptJSON(t testing.TB, r *log.Receipt) {
	t.Helper()
	want := encodingJSON(t, r)
	prefix := []byte("prefix")
	got := r.AppendJSON(prefix)
	if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("AppendJSON\n%s\nencoding/json\n%s", got, want)
	}
}

func TestReceiptAppendJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "receipts", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no receipt vectors: %v", err)
	}
	for _, f := range files {
		var r log.Receipt
		readJSON(t, "receipts/"+filepath.Base(f), &r)
		checkReceiptJSON(t, &r)
		r.Artifact = "eyJhbGciOiJFZERTQSJ9.e30.c2ln"
		checkReceiptJSON(t, &r)
	}
	odd := "\x00\x01\b\f\n\r\t\x1f \x7f\"\\/<>&'\u2028\u2029\u0085\ufeff é€😀 \xff\xc0\xaf\xed\xa0\x80\xe2\x82 end"
	for _, r := range []*log.Receipt{
		{},
		{InclusionProof: [][]byte{}, LeafHash: []byte{}, Entry: []byte{}},
		{InclusionProof: [][]byte{nil, {}, {0}}},
		{ID: odd, Index: 1<<64 - 1, LeafHash: []byte{0xff, 0xfe}, Entry: []byte(odd), Checkpoint: odd, TLogProof: odd, Artifact: odd,
			InclusionProof: [][]byte{[]byte(strings.Repeat("\xfb", 32)), []byte("x")}},
		{ID: strings.Repeat("a", 5000), Checkpoint: strings.Repeat("\n", 5000)},
	} {
		checkReceiptJSON(t, r)
	}
}

func FuzzReceiptAppendJSON(f *testing.F) {
	f.Add("d-1", uint64(7), []byte{1, 2}, []byte(`{"v":1}`), "example.com/govlog\n8\nabc=\n\n— x y\n", []byte("hash"), uint8(3), "c2sp.org/tlog-proof@v1\n", "")
	f.Add("\u2028<&>\x00", uint64(0), []byte(nil), []byte{}, "\xff", []byte(nil), uint8(0), "", "a.b.c")
	f.Fuzz(func(t *testing.T, id string, index uint64, leafHash, entry []byte, checkpoint string, hash []byte, hashes uint8, tlogProof, artifact string) {
		r := &log.Receipt{ID: id, Index: index, LeafHash: leafHash, Entry: entry, Checkpoint: checkpoint, TLogProof: tlogProof, Artifact: artifact}
		if hashes > 0 {
			r.InclusionProof = make([][]byte, hashes%40)
			for i := range r.InclusionProof {
				if i%5 != 4 {
					r.InclusionProof[i] = hash
				}
			}
		}
		checkReceiptJSON(t, r)
	})
}

// BenchmarkReceiptJSON encodes the receipt of BenchmarkReceipt: by hand
// and with encoding/json.
func BenchmarkReceiptJSON(b *testing.B) {
	r := benchReceipt(b)
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		start := cputime.Process()
		for b.Loop() {
			buf = r.AppendJSON(buf[:0])
		}
		cputime.Report(b, start)
	})
	b.Run("encoding/json", func(b *testing.B) {
		start := cputime.Process()
		for b.Loop() {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(r); err != nil {
				b.Fatal(err)
			}
		}
		cputime.Report(b, start)
	})
}

// TestReceiptAppendJSONTLogProof holds AppendJSON to encoding/json on
// receipts whose tlog_proof is NewReceipt's (the parts AppendJSON copies
// rather than escapes), and on every way it can stop being that: each
// byte of the tlog-proof flipped, the tlog-proof cut at each byte, and
// each other field changed after NewReceipt.
func TestReceiptAppendJSONTLogProof(t *testing.T) {
	odd := "\x00\n\"\\é\u2028\xff\xe2\x82"
	notes := []string{"", "\n", "example.com/log\n1\nAAAA\n\n— example.com/log abc=\n", odd, "c2sp.org/tlog-proof@v1\n"}
	leaves := [][]byte{nil, {}, []byte(`{"v":1}`), []byte(odd)}
	for n, note := range notes {
		for _, leaf := range leaves {
			for _, hashes := range []int{0, 1, 3} {
				proof := make([][32]byte, hashes)
				for i := range proof {
					proof[i][0], proof[i][31] = byte(i), '\n'
				}
				index := uint64(n * 1_000_003)
				r := log.NewReceipt(odd, index, leaf, log.Checkpoint{Note: []byte(note)}, proof)
				checkReceiptJSON(t, r)
				tp := r.TLogProof
				for i := range len(tp) + 1 {
					c := *r
					c.TLogProof = tp[:i]
					checkReceiptJSON(t, &c)
					if i < len(tp) {
						c.TLogProof = tp[:i] + string(tp[i]^1) + tp[i+1:]
						checkReceiptJSON(t, &c)
					}
				}
				for _, change := range []func(c *log.Receipt){
					func(c *log.Receipt) { c.Index++ },
					func(c *log.Receipt) { c.Entry = append(slicesClone(c.Entry), 'x') },
					func(c *log.Receipt) { c.Entry = nil },
					func(c *log.Receipt) { c.Entry = slicesClone(c.Entry) },
					func(c *log.Receipt) {
						if len(c.Entry) > 0 {
							c.Entry = slicesClone(c.Entry)
							c.Entry[len(c.Entry)/2] ^= 1
						}
					},
					func(c *log.Receipt) {
						if len(c.Entry) > 0 {
							c.Entry = c.Entry[:len(c.Entry)-1]
						}
					},
					func(c *log.Receipt) {
						if len(c.Entry) > 0 {
							c.Entry = c.Entry[1:]
						}
					},
					func(c *log.Receipt) { c.Checkpoint += "x" },
					func(c *log.Receipt) { c.Checkpoint = "" },
					func(c *log.Receipt) { c.InclusionProof = nil },
					func(c *log.Receipt) { c.InclusionProof = append(c.InclusionProof, nil) },
					func(c *log.Receipt) { c.InclusionProof = append(c.InclusionProof, []byte("x")) },
					func(c *log.Receipt) {
						if len(c.InclusionProof) > 0 {
							c.InclusionProof = append([][]byte{nil}, c.InclusionProof[1:]...)
						}
					},
					func(c *log.Receipt) {
						if len(c.InclusionProof) > 0 {
							c.InclusionProof = append([][]byte{c.InclusionProof[0][:31]}, c.InclusionProof[1:]...)
						}
					},
					func(c *log.Receipt) {
						if len(c.InclusionProof) > 0 {
							c.InclusionProof = append([][]byte{slicesClone(c.InclusionProof[0])}, c.InclusionProof[1:]...)
						}
					},
					func(c *log.Receipt) {
						if n := len(c.InclusionProof); n > 1 {
							swapped := append([][]byte{c.InclusionProof[n-1]}, c.InclusionProof[1:n-1]...)
							c.InclusionProof = append(swapped, c.InclusionProof[0])
						}
					},
					func(c *log.Receipt) {
						if n := len(c.InclusionProof); n > 0 {
							c.InclusionProof = c.InclusionProof[:n-1]
						}
					},
				} {
					c := *r
					change(&c)
					checkReceiptJSON(t, &c)
				}
			}
		}
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// FuzzReceiptAppendJSONTLogProof is FuzzReceiptAppendJSON on receipts
// made by NewReceipt, whose tlog-proof AppendJSON copies from the other
// fields, then one byte of the tlog-proof changed or the proof cut.
func FuzzReceiptAppendJSONTLogProof(f *testing.F) {
	f.Add("d-1", uint64(7), []byte(`{"v":1}`), "example.com/govlog\n8\nabc=\n\n— x y\n", []byte("hash"), uint8(3), uint16(0), byte(0), false)
	f.Add("\u2028", uint64(0), []byte(nil), "\xff\n", []byte{}, uint8(1), uint16(30), byte('\n'), true)
	f.Fuzz(func(t *testing.T, id string, index uint64, entry []byte, checkpoint string, hash []byte, hashes uint8, pos uint16, c byte, cut bool) {
		proof := make([][32]byte, hashes%40)
		for i := range proof {
			copy(proof[i][:], hash)
			proof[i][0] += byte(i)
		}
		r := log.NewReceipt(id, index, entry, log.Checkpoint{Note: []byte(checkpoint)}, proof)
		checkReceiptJSON(t, r)
		if p := int(pos); p < len(r.TLogProof) {
			if cut {
				r.TLogProof = r.TLogProof[:p]
			} else {
				r.TLogProof = r.TLogProof[:p] + string(c) + r.TLogProof[p+1:]
			}
			checkReceiptJSON(t, r)
		}
	})
}
