package verifier_test

import (
	"bytes"
	"testing"

	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// TestReceiptVerifier checks that the batch verifier, with its signature
// cache, accepts and refuses exactly what Receipt does, with the same
// receipts mangled (two bits of every byte) after the cache is warm.
func TestReceiptVerifier(t *testing.T) {
	l := testlog.New(t)
	l.GrowClean(20)
	rv := verifier.NewReceiptVerifier(l.Verifier)
	_, otherKey, _ := testlog.NoteKey(t, testlog.Origin, 9)
	other := verifier.NewReceiptVerifier(otherKey)
	for index := range uint64(20) {
		r := l.Receipt(index, 20)
		v, err := rv.Receipt([]byte(r.TLogProof))
		if err != nil || v.Index != index || v.Entry.ID != l.Entries[index].ID {
			t.Fatalf("receipt %d: %v", index, err)
		}
		if _, err := rv.ReceiptJSON(testlog.ReceiptJSON(t, r)); err != nil {
			t.Fatalf("JSON receipt %d: %v", index, err)
		}
		if _, err := other.Receipt([]byte(r.TLogProof)); err == nil {
			t.Fatalf("receipt %d verifies with another key", index)
		}
	}
	tlog := []byte(l.Receipt(7, 20).TLogProof)
	buf := make([]byte, len(tlog))
	for i := range tlog {
		for _, bit := range []int{i % 8, (i + 3) % 8} {
			copy(buf, tlog)
			buf[i] ^= 1 << bit
			_, want := verifier.Receipt(buf, l.Verifier)
			_, got := rv.Receipt(buf)
			if (want == nil) != (got == nil) || (want != nil && want.Error() != got.Error()) {
				t.Fatalf("bit %d of byte %d: Receipt says %v, ReceiptVerifier %v", bit, i, want, got)
			}
			if got == nil && !bytes.Equal(buf, tlog) {
				t.Fatalf("bit %d of byte %d: a mangled receipt verifies", bit, i)
			}
		}
	}
}

func BenchmarkReceiptVerifier(b *testing.B) {
	l := testlog.New(b)
	l.GrowClean(1000)
	proofs := make([][]byte, 1000)
	for i := range proofs {
		proofs[i] = []byte(l.Receipt(uint64(i), 1000).TLogProof)
	}
	b.Run("shared checkpoint", func(b *testing.B) {
		rv := verifier.NewReceiptVerifier(l.Verifier)
		i := 0
		for b.Loop() {
			if _, err := rv.Receipt(proofs[i%len(proofs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Receipt", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := verifier.Receipt(proofs[i%len(proofs)], l.Verifier); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
