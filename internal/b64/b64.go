// Package b64 encodes base64 on the submit path with
// github.com/segmentio/asm/base64 (already a dependency of jwx): the same
// bytes as encoding/base64, which the tests and a fuzz target hold it to,
// with AVX2 where the CPU has it (encoding/base64's code otherwise). A
// decision's receipt and artifact encode about 2 KB: encoding/base64 was
// about 4% of the server's CPU per decision on the batch endpoint, and
// AVX2 encodes a 1 KB entry in a tenth to a third of its time
// (BenchmarkAppendStd).
//
// Inputs shorter than asmMin bytes (hashes, signatures) go to
// encoding/base64: on some CPUs each call of the AVX2 encoder costs ~140
// ns more than its work, wherever the input ends (its first instructions
// switch from AVX to legacy SSE and back), which made the ~20 hashes of
// a receipt's tlog-proof 3% of the server's CPU per decision.
package b64

import (
	"encoding/base64"
	"slices"

	asm "github.com/segmentio/asm/base64"
)

// asmMin is the length from which the AVX2 encoder is used.
const asmMin = 128

// AppendStd appends the standard base64 (RFC 4648 §4, padded) of src to dst.
func AppendStd(dst, src []byte) []byte {
	if len(src) < asmMin {
		return base64.StdEncoding.AppendEncode(dst, src)
	}
	return appendEncode(asm.StdEncoding, dst, src)
}

// AppendRawURL appends the unpadded URL-safe base64 (RFC 4648 §5) of src
// to dst.
func AppendRawURL(dst, src []byte) []byte {
	if len(src) < asmMin {
		return base64.RawURLEncoding.AppendEncode(dst, src)
	}
	return appendEncode(asm.RawURLEncoding, dst, src)
}

// Std returns the standard base64 of src.
func Std(src []byte) string {
	if len(src) < asmMin {
		return base64.StdEncoding.EncodeToString(src)
	}
	return asm.StdEncoding.EncodeToString(src)
}

func appendEncode(enc *asm.Encoding, dst, src []byte) []byte {
	n := enc.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	enc.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}
