package log

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"

	"github.com/govlog/govlog/internal/cputime"
)

// checkEd25519 holds appendEd25519 to crypto/ed25519.Sign.
func checkEd25519(t testing.TB, key ed25519.PrivateKey, msg []byte) {
	t.Helper()
	want := ed25519.Sign(key, msg)
	got := appendEd25519([]byte("prefix"), key, msg)
	if string(got[:6]) != "prefix" || !bytes.Equal(got[6:], want) {
		t.Fatalf("key %x, message %x:\nappendEd25519 %x\ncrypto/ed25519 %x", key, msg, got[6:], want)
	}
}

// TestEd25519 checks appendEd25519 against crypto/ed25519 on keys from
// seeds of every shape and messages of 0 to 4,096 bytes.
func TestEd25519(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seeds := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)}
	for range 30 {
		s := make([]byte, 32)
		for i := range s {
			s[i] = byte(rng.Uint32())
		}
		seeds = append(seeds, s)
	}
	for i, seed := range seeds {
		key := ed25519.NewKeyFromSeed(seed)
		for _, n := range []int{0, 1, 31, 32, 64, 111, 112, 127, 128, 700, 4096} {
			msg := make([]byte, n)
			for j := range msg {
				msg[j] = byte(rng.Uint32())
			}
			checkEd25519(t, key, msg)
		}
		if i == 0 {
			// A key whose public half is not its seed's: both sign with
			// the public half given, as they are given it.
			odd := append(ed25519.PrivateKey(nil), key...)
			copy(odd[32:], seeds[1])
			checkEd25519(t, odd, []byte("message"))
		}
	}
	// RFC 8032 §7.1, TEST 2.
	seed := []byte{0x4c, 0xcd, 0x08, 0x9b, 0x28, 0xff, 0x96, 0xda, 0x9d, 0xb6, 0xc3, 0x46, 0xec, 0x11, 0x4e, 0x0f,
		0x5b, 0x8a, 0x31, 0x9f, 0x35, 0xab, 0xa6, 0x24, 0xda, 0x8c, 0xf6, 0xed, 0x4f, 0xb8, 0xa6, 0xfb}
	want := "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
	if got := appendEd25519(nil, ed25519.NewKeyFromSeed(seed), []byte{0x72}); hexString(got) != want {
		t.Fatalf("RFC 8032 test 2: %x", got)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

func FuzzEd25519(f *testing.F) {
	f.Add(make([]byte, 32), []byte(nil))
	f.Add(bytes.Repeat([]byte{7}, 32), []byte("eyJhbGciOiJFZERTQSJ9.e30"))
	f.Fuzz(func(t *testing.T, seed, msg []byte) {
		var s [ed25519.SeedSize]byte
		copy(s[:], seed)
		checkEd25519(t, ed25519.NewKeyFromSeed(s[:]), msg)
	})
}

// BenchmarkEd25519 signs a 700-byte message (an artifact's signing
// input): appendEd25519 against crypto/ed25519.
func BenchmarkEd25519(b *testing.B) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	msg := bytes.Repeat([]byte("a"), 700)
	b.Run("appendEd25519", func(b *testing.B) {
		var sig []byte
		start := cputime.Process()
		for b.Loop() {
			sig = appendEd25519(sig[:0], key, msg)
		}
		cputime.Report(b, start)
	})
	b.Run("crypto/ed25519", func(b *testing.B) {
		start := cputime.Process()
		for b.Loop() {
			_ = ed25519.Sign(key, msg)
		}
		cputime.Report(b, start)
	})
}
