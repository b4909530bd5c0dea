package log_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"golang.org/x/mod/sumdb/note"
)

// FuzzOpenCheckpoint feeds arbitrary notes to OpenCheckpoint (with the test
// log's key) and ParseStoredCheckpoint. Neither may panic, and whatever
// they accept must round-trip:
//
//   - a checkpoint that opens is the test log's: its origin is the key's
//     name, an empty tree has the empty root, the note's text is exactly
//     Body(), and signing its size and hash again gives the very signature
//     line the note carries (Ed25519 signatures are deterministic, and
//     crypto/ed25519 accepts only one signature of a message), so nothing
//     but the log can have made it;
//   - whatever opens also parses as a stored checkpoint, to the same tree
//     head;
//   - a stored checkpoint that parses has a 32-byte root, and its tree head
//     signed anew parses back to itself.
//
// The seeds are the golden checkpoints of testdata/checkpoints (added
// here) and mangled ones (testdata/fuzz/FuzzOpenCheckpoint).
func FuzzOpenCheckpoint(f *testing.F) {
	for _, name := range []string{"checkpoints/golden.note", "checkpoints/empty.note"} {
		golden, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(golden)
		f.Add(bytes.Replace(golden, []byte("\n\n"), []byte("\nextension\n\n"), 1))
	}
	signer, v := logtest.Keys(f)
	other, _ := logtest.OtherKeys(f)
	f.Fuzz(func(t *testing.T, text []byte) {
		cp, err := log.OpenCheckpoint(text, v)
		stored, serr := log.ParseStoredCheckpoint(text)
		if err == nil {
			checkOpened(t, text, cp, signer, v)
			if serr != nil {
				t.Fatalf("a checkpoint that opens is refused as a stored one: %v\n%q", serr, text)
			}
			if stored.Origin != cp.Origin || stored.Size != cp.Size || stored.Hash != cp.Hash {
				t.Fatalf("OpenCheckpoint and ParseStoredCheckpoint disagree: %+v, %+v", cp, stored)
			}
		} else if len(err.Error()) > 2000 {
			t.Fatalf("error message of %d bytes", len(err.Error()))
		}
		if serr != nil {
			return
		}
		if !bytes.Equal(stored.Note, text) {
			t.Fatal("ParseStoredCheckpoint does not keep the note")
		}
		// The stored tree head, signed anew by a key of its origin's name
		// (when that is a valid key name), parses back to itself.
		s := signer
		if stored.Origin != signer.Name() {
			if s, err = newSigner(stored.Origin); err != nil {
				return
			}
		}
		again, err := log.SignCheckpoint(s, stored.Size, stored.Hash)
		if err != nil {
			t.Fatalf("SignCheckpoint of a parsed tree head: %v", err)
		}
		back, err := log.ParseStoredCheckpoint(again.Note)
		if err != nil || back.Origin != stored.Origin || back.Size != stored.Size || back.Hash != stored.Hash {
			t.Fatalf("a re-signed stored checkpoint parses to %+v (%v), want %+v", back, err, stored)
		}
		// Another key of the log's name never opens as the log's.
		if stored.Origin == v.Name() {
			forged, err := log.SignCheckpoint(other, stored.Size, stored.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := log.OpenCheckpoint(forged.Note, v); err == nil {
				t.Fatal("a checkpoint signed by another key opens as the log's")
			}
		}
	})
}

// checkOpened checks a checkpoint OpenCheckpoint accepted.
func checkOpened(t *testing.T, text []byte, cp log.Checkpoint, signer note.Signer, v note.Verifier) {
	t.Helper()
	if cp.Origin != v.Name() {
		t.Fatalf("origin %q, want %q", cp.Origin, v.Name())
	}
	if !bytes.Equal(cp.Note, text) {
		t.Fatal("OpenCheckpoint does not keep the note")
	}
	if cp.Size == 0 && cp.Hash != log.EmptyRoot {
		t.Fatalf("an empty tree with root %x", cp.Hash)
	}
	n, err := note.Open(text, note.VerifierList(v))
	if err != nil {
		t.Fatalf("OpenCheckpoint accepted a note note.Open refuses: %v", err)
	}
	if n.Text != string(cp.Body()) {
		t.Fatalf("the signed text is not Body():\n%q\n%q", n.Text, cp.Body())
	}
	again, err := log.SignCheckpoint(signer, cp.Size, cp.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Body(), cp.Body()) || !bytes.HasPrefix(again.Note, []byte(n.Text+"\n")) {
		t.Fatalf("re-signing gives another body:\n%q\n%q", again.Note, cp.Body())
	}
	line := again.Note[len(n.Text)+1:]
	if !bytes.HasPrefix(text, []byte(n.Text+"\n")) || !bytes.Contains(text[len(n.Text)+1:], line) {
		t.Fatalf("the note does not carry the log's one signature %q:\n%q", line, text)
	}
	reopened, err := log.OpenCheckpoint(again.Note, v)
	if err != nil || reopened.Origin != cp.Origin || reopened.Size != cp.Size || reopened.Hash != cp.Hash {
		t.Fatalf("the re-signed checkpoint opens to %+v (%v), want %+v", reopened, err, cp)
	}
}

// newSigner returns a signer named name with a fixed key, or an error when
// name is not a valid key name.
func newSigner(name string) (note.Signer, error) {
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), name)
	if err != nil {
		return nil, err
	}
	return note.NewSigner(skey)
}
