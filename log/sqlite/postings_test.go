package sqlite

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/govlog/govlog/log"
)

// randomPostings returns sorted, distinct postings (packPosting) of terms
// of bucket, some singletons, some in runs.
func randomPostings(r *rand.Rand, bucket uint64) []uint64 {
	var out []uint64
	base := bucket << (31 - bucketBits)
	for range r.IntN(40) + 1 {
		term := log.Term(base + r.Uint64N(1<<(31-bucketBits)))
		switch r.IntN(3) {
		case 0:
			out = append(out, packPosting(term, r.Uint64N(1<<rangeBits)))
		case 1:
			start := r.Uint64N(1 << rangeBits)
			for off := start; off < min(start+r.Uint64N(300), 1<<rangeBits); off++ {
				out = append(out, packPosting(term, off))
			}
		default:
			for range r.IntN(100) {
				out = append(out, packPosting(term, r.Uint64N(1<<rangeBits)))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestPostingsRoundTrip: a bucket row and a list decode to what was
// encoded, and each term's offsets are found by termOffsets.
func TestPostingsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		bucket := r.Uint64N(1 << bucketBits)
		ps := randomPostings(r, bucket)
		row, _ := appendBucket(nil, ps, nil)
		got, err := decodeBucket(row, bucket)
		if err != nil || !slices.Equal(got, ps) {
			t.Fatalf("decodeBucket: %v, %d postings of %d", err, len(got), len(ps))
		}
		term := log.Term(ps[len(ps)/2] >> rangeBits)
		var want []uint32
		for _, p := range ps {
			if log.Term(p>>rangeBits) == term {
				want = append(want, uint32(p&rangeMask))
			}
		}
		if offs, err := termOffsets(nil, row, term); err != nil || !slices.Equal(offs, want) {
			t.Fatalf("termOffsets: %v, %v, want %v", err, offs, want)
		}
		if offs, err := termOffsets(nil, row, term+1); err != nil || (len(offs) > 0) != slices.ContainsFunc(ps, func(p uint64) bool { return log.Term(p>>rangeBits) == term+1 }) {
			t.Fatalf("termOffsets of another term: %v, %v", err, offs)
		}
		list := appendList(nil, want32(want))
		offs, err := decodeList(nil, list)
		if err != nil || !slices.Equal(offs, want) {
			t.Fatalf("decodeList: %v, %v, want %v", err, offs, want)
		}
	}
	// A run of a whole range is a few bytes.
	all := make([]uint64, 1<<rangeBits)
	for i := range all {
		all[i] = packPosting(7, uint64(i))
	}
	if l := appendList(nil, all); len(l) > 4 {
		t.Fatalf("a range's run takes %d bytes", len(l))
	}
}

func want32(offs []uint32) []uint64 {
	out := make([]uint64, len(offs))
	for i, o := range offs {
		out[i] = uint64(o)
	}
	return out
}

// FuzzDecodePostings: any bytes decode, as a bucket row or as a list, to
// postings of the range and the bucket in increasing order, or to an
// error wrapping errCorrupt, never a panic; a row that decodes and is
// encoded again decodes to the same postings.
func FuzzDecodePostings(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		row, _ := appendBucket(nil, randomPostings(r, 5), nil)
		f.Add(row, uint8(5))
	}
	f.Add([]byte{0x00, 0x04, 0xfe, 0xff, 0x01, 0x0a}, uint8(0))
	f.Add(bytes.Repeat([]byte{0xff}, 11), uint8(1))
	f.Add([]byte{0x01, 0x80, 0x80, 0x01}, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, bucket8 uint8) {
		bucket := uint64(bucket8)
		ps, err := decodeBucket(b, bucket)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeBucket: %v", err)
			}
		} else {
			for i, p := range ps {
				if termBucket(log.Term(p>>rangeBits)) != bucket || (i > 0 && p <= ps[i-1]) {
					t.Fatalf("decodeBucket: posting %d of %v", i, ps)
				}
			}
			if len(ps) > 0 {
				row, _ := appendBucket(nil, ps, nil)
				if again, err := decodeBucket(row, bucket); err != nil || !slices.Equal(again, ps) {
					t.Fatalf("encoded again: %v", err)
				}
			}
		}
		offs, err := decodeList(nil, b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeList: %v", err)
			}
			return
		}
		for i, o := range offs {
			if o >= 1<<rangeBits || (i > 0 && o <= offs[i-1]) {
				t.Fatalf("decodeList: offset %d of %v", i, offs)
			}
		}
	})
}

// termOffsets appends to dst the offsets of term's postings in a bucket
// row (appendBucket) of term's bucket, none when it has none.
func termOffsets(dst []uint32, b []byte, term log.Term) ([]uint32, error) {
	single, list, found, err := termList(b, term)
	if err != nil || !found {
		return dst, err
	}
	if list == nil {
		return append(dst, single), nil
	}
	return decodeList(dst, list)
}
