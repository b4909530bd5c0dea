package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/govlog/govlog/log"
)

// The search postings of a full range of 1<<rangeBits entries are stored
// as a few rows of search_postings (key INTEGER PRIMARY KEY, list BLOB),
// each holding the entries of several postings delta-coded, instead of a
// row a posting (schema version 5):
//
//   - a field term's postings (log.Summary.FieldTerms) are in the row of
//     its range and bucket: key rng<<bucketBits | term>>(31-bucketBits).
//     The row lists the bucket's terms that the range's entries have, in
//     increasing order, each as a group (appendBucket);
//   - a time term's postings (log.Summary.TimeTerms) of a range are one
//     row, key timeKey(term, rng) (negative), so that the rows of a time
//     bucket are together, in range order, and a time-only search reads a
//     bucket with one seek; the list is run-coded (appendList).
//
// An entry's offset in its range (index - rng<<rangeBits) is what a list
// stores. Both encodings are canonical: the rows of a range follow from
// its entries alone, so a rewrite of a row (Open finishing a merge a crash
// interrupted) writes the same bytes, and fsck compares rows byte for
// byte.
const (
	// bucketBits: 256 buckets a range. A range of the load generator's
	// decisions has ~16,400 singleton terms (resource, parent) and ~530
	// shared ones: rows of ~550 bytes (one with a bitmap, 2 KB or more,
	// the largest), and the few bytes a row costs beyond its list are
	// spread over ~65 terms.
	bucketBits = 8
	// timeRangeBits is the room for the range in a time row's key (2^38
	// entries).
	timeRangeBits = 24
	// timeKeyBase puts the time rows' keys below the field rows'.
	timeKeyBase = -(1 << 56)
	// maxEntries is the most entries a log of this store holds: the
	// ranges a time row's key has room for. Append refuses more.
	maxEntries = 1 << (timeRangeBits + rangeBits)
)

// fieldKey is the key of the row of field terms of bucket in range rng.
func fieldKey(rng uint64, bucket uint64) int64 { return int64(rng<<bucketBits | bucket) }

// termBucket is the bucket of a field term.
func termBucket(term log.Term) uint64 { return uint64(term) >> (31 - bucketBits) }

// timeKey is the key of the row of a time term's postings in range rng.
func timeKey(term log.Term, rng uint64) int64 {
	return timeKeyBase + int64(uint64(term)<<timeRangeBits|rng)
}

// sqlRowRange is, in SQL, the range of a search_postings row (for tests
// and checks).
const sqlRowRange = `(CASE WHEN key >= 0 THEN key >> 8 ELSE key & 16777215 END)`

// postingRow is a row of search_postings: its key, its list, and how many
// postings the list holds.
type postingRow struct {
	key      int64
	list     []byte
	postings int
}

// bitmapBytes is the size of a list as a bitmap: a bit an entry of the
// range.
const bitmapBytes = 1 << rangeBits / 8

// appendList appends the list of the offsets of postings (packed by
// packPosting, sorted, of one term). It is run-coded: each run of
// consecutive offsets as uvarint(gap<<1 | 1), uvarint(length-2), a lone
// offset as uvarint(gap<<1), the gap being the offset less the end of the
// run before (0 for the first); a second's entries are one run of a time
// term, a policy every entry has is one run of a range. Or, when that
// takes half of bitmapBytes or more (a term of more than about one entry
// in sixteen: an outcome, an action of few), it is a bitmap of
// bitmapBytes, bit off%8 of byte off/8 set for each offset, which a
// search tests without decoding it: a run-coded list is shorter, so the
// length tells which. The bitmap costs at most twice the run-coded list.
func appendList(dst []byte, postings []uint64) []byte {
	at := len(dst)
	dst = appendRuns(dst, postings)
	if len(dst)-at < bitmapBytes/2 {
		return dst
	}
	dst = append(dst[:at], make([]byte, bitmapBytes)...)
	bm := dst[at:]
	for _, p := range postings {
		off := p & rangeMask
		bm[off>>3] |= 1 << (off & 7)
	}
	return dst
}

// appendRuns appends the run-coded list of postings (appendList).
func appendRuns(dst []byte, postings []uint64) []byte {
	next := uint64(0)
	for i := 0; i < len(postings); {
		start := postings[i] & rangeMask
		j := i + 1
		for j < len(postings) && postings[j]&rangeMask == start+uint64(j-i) {
			j++
		}
		gap := start - next
		if j-i == 1 {
			dst = binary.AppendUvarint(dst, gap<<1)
		} else {
			dst = binary.AppendUvarint(binary.AppendUvarint(dst, gap<<1|1), uint64(j-i-2))
		}
		next = start + uint64(j-i)
		i = j
	}
	return dst
}

const rangeMask = 1<<rangeBits - 1

// errCorrupt is what a list or bucket that does not decode wraps.
var errCorrupt = errors.New("corrupt postings")

// decodeList appends the offsets of a list (appendList) to dst.
func decodeList(dst []uint32, b []byte) ([]uint32, error) {
	if len(b) == bitmapBytes {
		for i := 0; i < bitmapBytes; i += 8 {
			w := binary.LittleEndian.Uint64(b[i:])
			for w != 0 {
				dst = append(dst, uint32(i*8+bits.TrailingZeros64(w)))
				w &= w - 1
			}
		}
		return dst, nil
	}
	next := uint64(0)
	for len(b) > 0 {
		h, n := binary.Uvarint(b)
		if n <= 0 {
			return dst, fmt.Errorf("%w: a bad varint", errCorrupt)
		}
		b = b[n:]
		length := uint64(1)
		if h&1 == 1 {
			l, n := binary.Uvarint(b)
			if n <= 0 {
				return dst, fmt.Errorf("%w: a bad varint", errCorrupt)
			}
			b = b[n:]
			if l > 1<<rangeBits {
				return dst, fmt.Errorf("%w: an offset past the range", errCorrupt)
			}
			length = l + 2
		}
		start := next + h>>1
		if h>>1 > rangeMask || start+length > 1<<rangeBits {
			return dst, fmt.Errorf("%w: an offset past the range", errCorrupt)
		}
		for off := start; off < start+length; off++ {
			dst = append(dst, uint32(off))
		}
		next = start + length
	}
	return dst, nil
}

// appendBucket appends the row of field postings (packed by packPosting,
// sorted, all of one bucket) to dst: a group a term, in increasing order,
// each uvarint(d<<1 | single), d being the term less the one before less
// one (the bucket's first term for the first), then, for a term with one
// posting (single), its offset as a uvarint, else the length of its list
// (appendList) as a uvarint and the list. A singleton costs ~5 bytes.
func appendBucket(dst []byte, postings []uint64, scratch []byte) ([]byte, []byte) {
	prev := int64(termBucket(log.Term(postings[0]>>rangeBits))<<(31-bucketBits)) - 1
	for i := 0; i < len(postings); {
		term := postings[i] >> rangeBits
		j := i + 1
		for j < len(postings) && postings[j]>>rangeBits == term {
			j++
		}
		d := uint64(int64(term) - prev - 1)
		if j-i == 1 {
			dst = binary.AppendUvarint(binary.AppendUvarint(dst, d<<1|1), postings[i]&rangeMask)
		} else {
			scratch = appendList(scratch[:0], postings[i:j])
			dst = binary.AppendUvarint(binary.AppendUvarint(dst, d<<1), uint64(len(scratch)))
			dst = append(dst, scratch...)
		}
		prev = int64(term)
		i = j
	}
	return dst, scratch
}

// bucketGroups calls f with each group of a bucket row (appendBucket) in
// order: its term and, for a single posting, its offset (list nil), else
// its list. f returns false to stop.
func bucketGroups(b []byte, bucket uint64, f func(term log.Term, single uint32, list []byte) bool) error {
	prev := int64(bucket<<(31-bucketBits)) - 1
	limit := int64((bucket + 1) << (31 - bucketBits))
	for len(b) > 0 {
		h, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: a bad varint", errCorrupt)
		}
		b = b[n:]
		if h>>1 >= uint64(limit-prev-1) {
			return fmt.Errorf("%w: a term past the bucket", errCorrupt)
		}
		term := prev + 1 + int64(h>>1)
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: a bad varint", errCorrupt)
		}
		b = b[n:]
		var (
			single uint32
			list   []byte
		)
		if h&1 == 1 {
			if v > rangeMask {
				return fmt.Errorf("%w: an offset past the range", errCorrupt)
			}
			single = uint32(v)
		} else {
			if v == 0 || v > uint64(len(b)) {
				return fmt.Errorf("%w: a list of %d bytes, %d left", errCorrupt, v, len(b))
			}
			list, b = b[:v], b[v:]
		}
		if !f(log.Term(term), single, list) {
			return nil
		}
		prev = term
	}
	return nil
}

// termList returns term's group in a bucket row (appendBucket) of term's
// bucket: its one offset (list nil) or its list; found is false when the
// row has no group of term. It walks the groups as bucketGroups does, with
// the same checks, without a call a group: one decoder of a group called
// by both made the searches that walk whole rows slower (BenchmarkSearch:
// resource 1.14x, violation=any 1.27x, medians of five).
func termList(b []byte, term log.Term) (single uint32, list []byte, found bool, err error) {
	bucket := termBucket(term)
	prev := int64(bucket<<(31-bucketBits)) - 1
	limit := int64((bucket + 1) << (31 - bucketBits))
	for len(b) > 0 {
		h, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, nil, false, fmt.Errorf("%w: a bad varint", errCorrupt)
		}
		b = b[n:]
		if h>>1 >= uint64(limit-prev-1) {
			return 0, nil, false, fmt.Errorf("%w: a term past the bucket", errCorrupt)
		}
		t := prev + 1 + int64(h>>1)
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, nil, false, fmt.Errorf("%w: a bad varint", errCorrupt)
		}
		b = b[n:]
		if h&1 == 0 {
			if v == 0 || v > uint64(len(b)) {
				return 0, nil, false, fmt.Errorf("%w: a list of %d bytes, %d left", errCorrupt, v, len(b))
			}
			list, b = b[:v], b[v:]
		} else if v > rangeMask {
			return 0, nil, false, fmt.Errorf("%w: an offset past the range", errCorrupt)
		}
		switch {
		case t < int64(term):
			prev = t
			continue
		case t > int64(term):
			return 0, nil, false, nil
		case h&1 == 1:
			return uint32(v), nil, true, nil
		default:
			return 0, list, true, nil
		}
	}
	return 0, nil, false, nil
}

// decodeBucket returns the postings of a bucket row, packed by
// packPosting, in order.
func decodeBucket(b []byte, bucket uint64) ([]uint64, error) {
	var (
		out  []uint64
		offs []uint32
		err  error
	)
	gerr := bucketGroups(b, bucket, func(t log.Term, s uint32, l []byte) bool {
		if l == nil {
			out = append(out, packPosting(t, uint64(s)))
			return true
		}
		if offs, err = decodeList(offs[:0], l); err != nil {
			return false
		}
		for _, off := range offs {
			out = append(out, packPosting(t, uint64(off)))
		}
		return true
	})
	return out, errors.Join(gerr, err)
}

// rangeRows returns the rows of search_postings of the range that begins
// at first, in key order (the time rows, then the field rows), from its
// field and time postings (packed by packPosting, sorted).
func rangeRows(first uint64, fields, times []uint64) []postingRow {
	rng := first >> rangeBits
	var rows []postingRow
	// One buffer for every list: about 1.2 bytes a time posting (most
	// are in runs), and 2 a field posting.
	buf := make([]byte, 0, 2*len(fields)+len(times)/4+64)
	var scratch []byte
	for i := 0; i < len(times); {
		term := times[i] >> rangeBits
		j := i + 1
		for j < len(times) && times[j]>>rangeBits == term {
			j++
		}
		at := len(buf)
		buf = appendList(buf, times[i:j])
		rows = append(rows, postingRow{key: timeKey(log.Term(term), rng), list: buf[at:len(buf):len(buf)], postings: j - i})
		i = j
	}
	for i := 0; i < len(fields); {
		bucket := termBucket(log.Term(fields[i] >> rangeBits))
		j := i + 1
		for j < len(fields) && termBucket(log.Term(fields[j]>>rangeBits)) == bucket {
			j++
		}
		at := len(buf)
		buf, scratch = appendBucket(buf, fields[i:j], scratch)
		rows = append(rows, postingRow{key: fieldKey(rng, bucket), list: buf[at:len(buf):len(buf)], postings: j - i})
		i = j
	}
	return rows
}
