package log_test

import (
	"crypto/sha256"
	"fmt"
	"github.com/govlog/govlog/internal/cputime"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
)

// benchDecision is a decision of about size bytes, like the ones govlog
// bench submits: a context object carries the padding.
func benchDecision(size int) []byte {
	d := fmt.Sprintf(`{"id":"bench-0000001","outcome":"allow","decided_at":"2026-11-25T18:00:00Z",`+
		`"subject":"spiffe://prod.example/ns/agents/sa/agent-7","action":"deploy",`+
		`"resource":"arn:example:service/deploy/item-1","policy":{"id":"agent-guardrails","version":"2026.11.3","digest":"sha256:%064x"},`+
		`"input_digest":"sha256:%064x","context":{"session":"s-1","risk":0.25,"tool":"kubectl","args":""}}`, 1, 2)
	if pad := size - len(d); pad > 0 {
		d = strings.Replace(d, `"args":""`, `"args":"`+strings.Repeat("a", pad)+`"`, 1)
	}
	return []byte(d)
}

var benchNow = time.Date(2026, 11, 25, 18, 0, 1, 0, time.UTC)

// BenchmarkParseDecision is the validation and RFC 8785 canonicalization of
// a submitted decision.
func BenchmarkParseDecision(b *testing.B) {
	for _, size := range []int{400, 800, 4000} {
		body := benchDecision(size)
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			start := cputime.Process()
			for b.Loop() {
				if _, err := log.ParseDecision(body, benchNow); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, start)
		})
	}
}

// BenchmarkNewEntry builds the canonical log entry of a parsed decision.
func BenchmarkNewEntry(b *testing.B) {
	d, err := log.ParseDecision(benchDecision(800), benchNow)
	if err != nil {
		b.Fatal(err)
	}
	s := log.DecisionSubmission(d, "anonymous")
	for b.Loop() {
		if _, err := log.NewEntry(s, benchNow, 300*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLeafHash is the RFC 6962 leaf hash of a 500-byte entry.
func BenchmarkLeafHash(b *testing.B) {
	leaf := []byte(strings.Repeat("x", 500))
	b.SetBytes(int64(len(leaf)))
	for b.Loop() {
		log.LeafHash(leaf)
	}
}

// BenchmarkCheckpoint signs a checkpoint (once per batch) and opens one
// (a verifier, once per distinct checkpoint).
func BenchmarkCheckpoint(b *testing.B) {
	signer, err := note.NewSigner(logtest.SignerKey)
	if err != nil {
		b.Fatal(err)
	}
	v, err := note.NewVerifier(logtest.VerifierKey)
	if err != nil {
		b.Fatal(err)
	}
	root := sha256.Sum256([]byte("root"))
	b.Run("Sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := log.SignCheckpoint(signer, 1_000_000, root); err != nil {
				b.Fatal(err)
			}
		}
	})
	cp, err := log.SignCheckpoint(signer, 1_000_000, root)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			if _, err := log.OpenCheckpoint(cp.Note, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchReceipt is the receipt of an entry of a 1,000,000-entry log (20
// proof hashes).
func benchReceipt(b *testing.B) *log.Receipt {
	signer, err := note.NewSigner(logtest.SignerKey)
	if err != nil {
		b.Fatal(err)
	}
	cp, err := log.SignCheckpoint(signer, 1_000_000, sha256.Sum256([]byte("root")))
	if err != nil {
		b.Fatal(err)
	}
	leaf := []byte(strings.Repeat("x", 700))
	proof := make([][32]byte, 20)
	for i := range proof {
		proof[i] = sha256.Sum256([]byte{byte(i)})
	}
	return log.NewReceipt("bench-0000001", 123_456, leaf, cp, proof)
}

// BenchmarkReceipt assembles the receipt of an entry of a 1,000,000-entry
// log (20 proof hashes) and encodes it as JSON, as the server answers it.
func BenchmarkReceipt(b *testing.B) {
	r := benchReceipt(b)
	leaf, cp := r.Entry, log.Checkpoint{Note: []byte(r.Checkpoint)}
	proof := make([][32]byte, len(r.InclusionProof))
	for i := range proof {
		proof[i] = [32]byte(r.InclusionProof[i])
	}
	var buf []byte
	start := cputime.Process()
	for b.Loop() {
		r := log.NewReceipt("bench-0000001", 123_456, leaf, cp, proof)
		buf = r.AppendJSON(buf[:0])
	}
	cputime.Report(b, start)
}

// BenchmarkArtifactPayload builds the canonical claims of an allow's
// artifact (the JWS payload).
func BenchmarkArtifactPayload(b *testing.B) {
	d, err := log.ParseDecision(benchDecision(800), benchNow)
	if err != nil {
		b.Fatal(err)
	}
	leaf := sha256.Sum256([]byte("leaf"))
	res := &log.Result{
		Receipt:         &log.Receipt{Index: 123_456, LeafHash: leaf[:]},
		Checkpoint:      log.Checkpoint{Size: 123_457, Hash: sha256.Sum256([]byte("root"))},
		LoggedAt:        benchNow,
		AuthorizedUntil: benchNow.Add(300 * time.Second),
	}
	for b.Loop() {
		c, err := log.NewArtifactClaims("example.com/govlog", "", d, res)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Payload(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEntry reads back a logged allow, as the rule book does with
// the parent of a decision that names one.
func BenchmarkParseEntry(b *testing.B) {
	d, err := log.ParseDecision(benchDecision(800), benchNow)
	if err != nil {
		b.Fatal(err)
	}
	e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), benchNow, 300*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	start := cputime.Process()
	for b.Loop() {
		if _, err := log.ParseEntry(e.Leaf); err != nil {
			b.Fatal(err)
		}
	}
	cputime.Report(b, start)
}
