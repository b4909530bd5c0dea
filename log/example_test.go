package log_test

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"golang.org/x/mod/sumdb/note"
)

// The examples use the fixed test key of logtest (and testdata/keys); they
// are the worked examples of the documentation.

func ExampleParseDecision() {
	body := []byte(`{
  "id": "d-1",
  "outcome": "allow",
  "decided_at": "2026-11-25T18:00:00Z",
  "subject": "agent-7",
  "action": "deploy",
  "policy": {"id": "prod-deploy"},
  "context": {"replicas": 3.0, "ratio": 25e-2}
}`)
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	d, err := log.ParseDecision(body, now)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", d.Canonical)

	_, err = log.ParseDecision([]byte(`{"id":"batch"}`), now)
	fmt.Println(err)
	// Output:
	// {"action":"deploy","context":{"ratio":0.25,"replicas":3},"decided_at":"2026-11-25T18:00:00Z","id":"d-1","outcome":"allow","policy":{"id":"prod-deploy"},"subject":"agent-7"}
	// invalid decision: id: "batch" is reserved
}

func ExampleNewEntry() {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	d, err := log.ParseDecision([]byte(`{"id":"d-1","outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"agent-7","action":"deploy","policy":{"id":"prod-deploy"}}`), now)
	if err != nil {
		panic(err)
	}
	loggedAt := time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC)
	e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), loggedAt, 300*time.Second)
	if err != nil {
		panic(err)
	}
	h := log.LeafHash(e.Leaf)
	fmt.Printf("%s\n%s\n", e.Leaf, hex.EncodeToString(h[:]))
	// Output:
	// {"authorized_until":"2026-11-25T18:05:00Z","decision":{"action":"deploy","decided_at":"2026-11-25T18:00:00Z","id":"d-1","outcome":"allow","policy":{"id":"prod-deploy"},"subject":"agent-7"},"logged_at":"2026-11-25T18:00:00.123456789Z","submitter":"anonymous","v":1}
	// 8390c4307b72f051c348514da9850bda83ffaaf02de6314d364eb685e97446d4
}

func ExampleSignCheckpoint() {
	signer, err := note.NewSigner(logtest.SignerKey)
	if err != nil {
		panic(err)
	}
	verifier, err := note.NewVerifier(logtest.VerifierKey)
	if err != nil {
		panic(err)
	}
	cp, err := log.SignCheckpoint(signer, 0, log.EmptyRoot)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s", cp.Note)

	opened, err := log.OpenCheckpoint(cp.Note, verifier)
	if err != nil {
		panic(err)
	}
	fmt.Println(opened.Origin, opened.Size)
	// Output:
	// example.com/govlog
	// 0
	// 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
	//
	// — example.com/govlog 8qgb6+iRdryXQGt1eYcinmQ2FmrnzLdM8i4v6Y0um2fGPYhdgPPZ/IkPm/weIREXcgc407FztugJu2J+h6USSRSr1wc=
	// example.com/govlog 0
}
