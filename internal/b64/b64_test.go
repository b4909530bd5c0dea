package b64

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"testing"

	asm "github.com/segmentio/asm/base64"
)

// TestSameAsEncodingBase64 holds every function to encoding/base64 on
// every length to 3 KiB (the AVX2 path takes 24 bytes at a time from 28
// on, the rest goes to encoding/base64), appended to a prefix with and
// without room.
func TestSameAsEncodingBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 3 << 10 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		for _, room := range []int{0, 4096} {
			prefix := append(make([]byte, 0, 3+room), "pre"...)
			if got, want := AppendStd(prefix, src), base64.StdEncoding.AppendEncode([]byte("pre"), src); !bytes.Equal(got, want) {
				t.Fatalf("AppendStd, %d bytes: %q, want %q", n, got, want)
			}
			if got, want := AppendRawURL(prefix, src), base64.RawURLEncoding.AppendEncode([]byte("pre"), src); !bytes.Equal(got, want) {
				t.Fatalf("AppendRawURL, %d bytes: %q, want %q", n, got, want)
			}
		}
		if got, want := Std(src), base64.StdEncoding.EncodeToString(src); got != want {
			t.Fatalf("Std, %d bytes: %q, want %q", n, got, want)
		}
	}
	// Every byte value in every position of a block.
	src := make([]byte, 256*3)
	for i := range src {
		src[i] = byte(i / 3)
	}
	for off := range 3 {
		if got, want := AppendStd(nil, src[off:]), base64.StdEncoding.AppendEncode(nil, src[off:]); !bytes.Equal(got, want) {
			t.Fatalf("AppendStd, offset %d: %q, want %q", off, got, want)
		}
	}
}

func FuzzSameAsEncodingBase64(f *testing.F) {
	f.Add([]byte("govlog"))
	f.Add(bytes.Repeat([]byte{0xff, 0xfe, 0x00}, 40))
	f.Fuzz(func(t *testing.T, src []byte) {
		if got, want := AppendStd(nil, src), base64.StdEncoding.AppendEncode(nil, src); !bytes.Equal(got, want) {
			t.Fatalf("AppendStd: %q, want %q", got, want)
		}
		if got, want := AppendRawURL(nil, src), base64.RawURLEncoding.AppendEncode(nil, src); !bytes.Equal(got, want) {
			t.Fatalf("AppendRawURL: %q, want %q", got, want)
		}
	})
}

// BenchmarkAppendStd encodes a hash, a signature, inputs either side of
// asmMin, an artifact's payload and an entry, with this package
// (b64), with the AVX2 encoder alone (asm) and with encoding/base64.
func BenchmarkAppendStd(b *testing.B) {
	for _, n := range []int{32, 64, asmMin - 1, asmMin, 450, 1000} {
		src := make([]byte, n)
		dst := make([]byte, 0, 2*n)
		b.Run("b64/"+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				dst = AppendStd(dst[:0], src)
			}
		})
		b.Run("asm/"+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				dst = appendEncode(asm.StdEncoding, dst[:0], src)
			}
		})
		b.Run("encoding/"+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				dst = base64.StdEncoding.AppendEncode(dst[:0], src)
			}
		})
	}
}
