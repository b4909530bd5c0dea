package log_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"golang.org/x/mod/sumdb/note"
)

// FuzzParseCheckpoint feeds arbitrary notes to ParseCheckpoint under each
// of its rules (verified with the test log's key or not, extension lines
// allowed or not) and to OpenCheckpoint. None may panic, and whatever they
// accept must round-trip:
//
//   - the rules only add strictness: a note accepted by stricter rules is
//     accepted by looser ones, as the same tree head; OpenCheckpoint
//     accepts exactly what the verified rules without extensions accept,
//     less empty trees whose root is not the empty root;
//   - a checkpoint that opens is the test log's: its origin is the key's
//     name, an empty tree has the empty root, the note's text is exactly
//     Body(), and signing its size and hash again gives the very signature
//     line the note carries (Ed25519 signatures are deterministic, and
//     crypto/ed25519 accepts only one signature of a message), so nothing
//     but the log can have made it;
//   - an accepted note keeps its bytes, and its text starts with Body()
//     (and is Body() without extension lines);
//   - a tree head read from a stored note has a 32-byte root, and its
//     tree head signed anew parses back to itself.
//
// The seeds are the golden checkpoints of testdata/checkpoints (added
// here) and mangled ones (testdata/fuzz/FuzzParseCheckpoint).
func FuzzParseCheckpoint(f *testing.F) {
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
	type parsed struct {
		cp  log.Checkpoint
		n   *note.Note
		err error
	}
	parse := func(text []byte, rules log.CheckpointRules) parsed {
		cp, n, err := log.ParseCheckpoint(text, rules)
		if err == nil && (!bytes.Equal(cp.Note, text) || n == nil) {
			panic("ParseCheckpoint does not keep the note")
		}
		return parsed{cp, n, err}
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		verified := note.VerifierList(v)
		strict := parse(text, log.CheckpointRules{Verifiers: verified})
		verifiedExt := parse(text, log.CheckpointRules{Verifiers: verified, Extensions: true})
		stored := parse(text, log.CheckpointRules{})
		storedExt := parse(text, log.CheckpointRules{Extensions: true})
		// Looser rules accept what stricter ones do, as the same head.
		for _, pair := range [][2]parsed{{strict, verifiedExt}, {strict, stored}, {verifiedExt, storedExt}, {stored, storedExt}} {
			stricter, looser := pair[0], pair[1]
			if stricter.err != nil {
				continue
			}
			if looser.err != nil {
				t.Fatalf("looser rules refuse what stricter ones accept: %v\n%q", looser.err, text)
			}
			if looser.cp.Origin != stricter.cp.Origin || looser.cp.Size != stricter.cp.Size || looser.cp.Hash != stricter.cp.Hash {
				t.Fatalf("the rules disagree on the tree head: %+v, %+v", stricter.cp, looser.cp)
			}
		}
		for _, p := range []parsed{strict, verifiedExt, stored, storedExt} {
			if p.err != nil {
				if len(p.err.Error()) > 2000 {
					t.Fatalf("error message of %d bytes", len(p.err.Error()))
				}
				continue
			}
			if !strings.HasPrefix(p.n.Text, string(p.cp.Body())) {
				t.Fatalf("the note's text does not start with Body():\n%q\n%q", p.n.Text, p.cp.Body())
			}
		}
		if stored.err == nil && stored.n.Text != string(stored.cp.Body()) {
			t.Fatalf("accepted extension lines without Extensions: %q", stored.n.Text)
		}
		cp, err := log.OpenCheckpoint(text, v)
		switch {
		case err == nil:
			checkOpened(t, text, cp, signer, v)
			if strict.err != nil || strict.cp.Hash != cp.Hash || strict.cp.Size != cp.Size {
				t.Fatalf("OpenCheckpoint accepts what ParseCheckpoint refuses (%v)", strict.err)
			}
		case strict.err == nil && (strict.cp.Size != 0 || strict.cp.Hash == log.EmptyRoot):
			t.Fatalf("OpenCheckpoint refuses (%v) what ParseCheckpoint accepts", err)
		}
		if storedExt.err != nil {
			return
		}
		// The stored tree head, signed anew by a key of its origin's name
		// (when that is a valid key name), parses back to itself.
		head := storedExt.cp
		s := signer
		if head.Origin != signer.Name() {
			if s, err = newSigner(head.Origin); err != nil {
				return
			}
		}
		again, err := log.SignCheckpoint(s, head.Size, head.Hash)
		if err != nil {
			t.Fatalf("SignCheckpoint of a parsed tree head: %v", err)
		}
		back, _, err := log.ParseCheckpoint(again.Note, log.CheckpointRules{})
		if err != nil || back.Origin != head.Origin || back.Size != head.Size || back.Hash != head.Hash {
			t.Fatalf("a re-signed stored checkpoint parses to %+v (%v), want %+v", back, err, head)
		}
		// Another key of the log's name never opens as the log's.
		if head.Origin == v.Name() {
			forged, err := log.SignCheckpoint(other, head.Size, head.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := log.OpenCheckpoint(forged.Note, v); err == nil {
				t.Fatal("a checkpoint signed by another key opens as the log's")
			}
			if _, _, err := log.ParseCheckpoint(forged.Note, log.CheckpointRules{Verifiers: verified, Extensions: true}); err == nil {
				t.Fatal("a checkpoint signed by another key verifies as the log's")
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
