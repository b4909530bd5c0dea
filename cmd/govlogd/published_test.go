package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
)

// publishedLog is an embedded log of decisions named prefix-0, prefix-1, …
// signed by signer, with the checkpoint of every size.
func publishedLog(t *testing.T, signer note.Signer, prefix string, n int) (*sqlite.Backend, []log.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	b, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	sign := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(signer, size, hash)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var cps []log.Checkpoint
	for i := range n {
		body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%s-%d", prefix, i), "outcome": "deny",
			"decided_at": now.Format(time.RFC3339), "subject": "s", "action": "a", "policy": map[string]any{"id": "p"}})
		d, err := log.ParseDecision(body, now)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(log.DecisionSubmission(d, "alice"), now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		_, cp, err := b.Append(ctx, []*log.Entry{e}, sign)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, cp)
	}
	return b, cps
}

func TestCheckPublished(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/published")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	otherKey, _, _ := note.GenerateKey(rand.Reader, "example.com/published")
	other, _ := note.NewSigner(otherKey)

	a, acps := publishedLog(t, signer, "a", 5) // the published log
	b, _ := publishedLog(t, signer, "b", 5)    // a fork: same key, other entries
	_, ocps := publishedLog(t, other, "a", 3)  // same entries, another key
	dir := t.TempDir()
	write := func(name string, text []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, text, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		backend log.Backend
		file    string
		want    string // "" for no error
	}{
		{"none", a, "", ""},
		{"same size", a, write("a5", acps[4].Note), ""},
		{"older", a, write("a2", acps[1].Note), ""},
		{"stored log smaller", a, write("big", mustSign(t, signer, 9)), "smaller than the published checkpoint's 9"},
		{"fork at the same size", b, write("a5b", acps[4].Note), "forks from the published one"},
		{"fork below", b, write("a2b", acps[1].Note), "not consistent with the published checkpoint of size 2"},
		{"other key", a, write("other", ocps[2].Note), "not a checkpoint of this log's key"},
		{"not a checkpoint", a, write("junk", []byte("hello\n")), "not a checkpoint of this log's key"},
		{"missing file", a, filepath.Join(dir, "nope"), "failed to read --published-checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPublished(context.Background(), tc.file, v, tc.backend)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("checkPublished: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("checkPublished: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// mustSign signs a checkpoint of size with an arbitrary root.
func mustSign(t *testing.T, signer note.Signer, size uint64) []byte {
	t.Helper()
	cp, err := log.SignCheckpoint(signer, size, [32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	return cp.Note
}
