package log_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"github.com/govlog/govlog/internal/cputime"
	"testing"
)

// BenchmarkFloorEd25519 is the floor of an allow's artifact: one Ed25519
// signature (crypto/ed25519) of a message the size of an artifact's
// signing input (its header and claims, base64url: about 700 bytes). A
// single decision can share nothing of it with another.
func BenchmarkFloorEd25519(b *testing.B) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 700)
	for i := range msg {
		msg[i] = 'a' + byte(i%26)
	}
	start := cputime.Process()
	for b.Loop() {
		_ = ed25519.Sign(key, msg)
	}
	cputime.Report(b, start)
}
