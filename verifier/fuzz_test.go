package verifier_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
	"github.com/transparency-dev/formats/proof"
)

// FuzzReceipt checks that Receipt never panics, and that whatever it accepts
// is canonical: encoding what it verified gives back the very input, which
// verifies identically.
func FuzzReceipt(f *testing.F) {
	l := testlog.New(f)
	l.Grow(9)
	for _, ix := range [][2]uint64{{0, 1}, {0, 9}, {4, 9}, {8, 9}, {3, 4}} {
		f.Add([]byte(l.Receipt(ix[0], ix[1]).TLogProof))
	}
	f.Add([]byte(exampleTLogProof))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := verifier.Receipt(data, l.Verifier)
		if err != nil {
			if !wrapsOneSentinel(err) {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			return
		}
		again := proof.TLogProof{Index: v.Index, Hashes: v.InclusionProof, Checkpoint: v.Checkpoint.Note, ExtraData: v.Leaf}.Marshal()
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical tlog-proof:\n%q\nre-encodes as\n%q", data, again)
		}
		v2, err := verifier.Receipt(again, l.Verifier)
		if err != nil {
			t.Fatalf("the re-encoded tlog-proof fails: %v", err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("the re-encoded tlog-proof verifies as %+v, not %+v", v2, v)
		}
	})
}

// FuzzReceiptJSON checks that ReceiptJSON never panics and agrees with
// Receipt on the tlog_proof of whatever it accepts.
func FuzzReceiptJSON(f *testing.F) {
	l := testlog.New(f)
	l.Grow(5)
	for i := range uint64(5) {
		f.Add(testlog.ReceiptJSON(f, l.Receipt(i, 5)))
	}
	f.Add([]byte(`{"id":"d-1","id":"d-2"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := verifier.ReceiptJSON(data, l.Verifier)
		if err != nil {
			if !wrapsOneSentinel(err) {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			return
		}
		tp := proof.TLogProof{Index: v.Index, Hashes: v.InclusionProof, Checkpoint: v.Checkpoint.Note, ExtraData: v.Leaf}.Marshal()
		v2, err := verifier.Receipt(tp, l.Verifier)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("JSON receipt verified as %+v, its tlog_proof as %+v, %v", v, v2, err)
		}
	})
}
