package log_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"golang.org/x/mod/sumdb/note"
)

// testKeys loads the fixed test key from testdata/keys, and checks that
// the files are the keys logtest holds.
func testKeys(t *testing.T) (note.Signer, note.Verifier) {
	t.Helper()
	skey := strings.TrimSpace(string(readFile(t, "keys/log.key")))
	vkey := strings.TrimSpace(string(readFile(t, "keys/log.vkey")))
	if skey != logtest.SignerKey || vkey != logtest.VerifierKey {
		t.Fatal("testdata/keys/log.key or log.vkey is not logtest's test key")
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func otherKeys(t *testing.T) (note.Signer, note.Verifier) {
	t.Helper()
	s, err := note.NewSigner(strings.TrimSpace(string(readFile(t, "keys/other.key"))))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(readFile(t, "keys/other.vkey"))))
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestSignCheckpoint(t *testing.T) {
	s, v := testKeys(t)
	root := sha256.Sum256([]byte("root"))
	cp, err := log.SignCheckpoint(s, 42, root)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Origin != "example.com/govlog" || cp.Size != 42 || cp.Hash != root {
		t.Fatalf("checkpoint fields: %+v", cp)
	}
	// The C2SP checkpoint body, then the signature line.
	body := "example.com/govlog\n42\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
	if string(cp.Body()) != body {
		t.Fatalf("Body() = %q, want %q", cp.Body(), body)
	}
	prefix := body + "\n— example.com/govlog "
	if !strings.HasPrefix(string(cp.Note), prefix) || !strings.HasSuffix(string(cp.Note), "\n") || strings.Count(string(cp.Note), "\n") != 5 {
		t.Fatalf("note:\n%s", cp.Note)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(string(cp.Note), prefix), "\n"))
	if err != nil || len(sig) != 4+64 {
		t.Fatalf("signature line: %d bytes, %v; want the key hash and an Ed25519 signature", len(sig), err)
	}
	// Ed25519 is deterministic: the same tree head, the same note.
	again, err := log.SignCheckpoint(s, 42, root)
	if err != nil || !bytes.Equal(again.Note, cp.Note) {
		t.Fatalf("signing twice gave two notes: %v", err)
	}
	// It opens with x/mod's note package directly.
	n, err := note.Open(cp.Note, note.VerifierList(v))
	if err != nil || n.Text != body || len(n.Sigs) != 1 {
		t.Fatalf("note.Open: %v", err)
	}
	opened, err := log.OpenCheckpoint(cp.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	if opened.Origin != cp.Origin || opened.Size != cp.Size || opened.Hash != cp.Hash || !bytes.Equal(opened.Note, cp.Note) {
		t.Fatalf("OpenCheckpoint = %+v, want %+v", opened, cp)
	}
}

func TestCheckpointGolden(t *testing.T) {
	s, v := testKeys(t)
	for _, c := range []struct {
		file string
		size uint64
	}{{"checkpoints/empty.note", 0}, {"checkpoints/golden.note", 8}} {
		t.Run(c.file, func(t *testing.T) {
			text := readFile(t, c.file)
			cp, err := log.OpenCheckpoint(text, v)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size != c.size || cp.Origin != "example.com/govlog" {
				t.Fatalf("size %d origin %q", cp.Size, cp.Origin)
			}
			if c.size == 0 && cp.Hash != log.EmptyRoot {
				t.Fatal("the empty checkpoint's root is not SHA-256(\"\")")
			}
			again, err := log.SignCheckpoint(s, cp.Size, cp.Hash)
			if err != nil || !bytes.Equal(again.Note, text) {
				t.Fatalf("re-signing does not give the golden note: %v", err)
			}
		})
	}
}

// TestOpenCheckpointMangled flips every bit of every byte of a signed
// checkpoint: each change must fail to open, or open to the very same
// checkpoint (only the unused low bits of the signature's last base64
// character can do that).
func TestOpenCheckpointMangled(t *testing.T) {
	_, v := testKeys(t)
	text := readFile(t, "checkpoints/golden.note")
	orig, err := log.OpenCheckpoint(text, v)
	if err != nil {
		t.Fatal(err)
	}
	sigStart := bytes.LastIndex(text, []byte(" ")) + 1
	benign := 0
	for i := range text {
		for bit := range 8 {
			m := bytes.Clone(text)
			m[i] ^= 1 << bit
			cp, err := log.OpenCheckpoint(m, v)
			if err != nil {
				continue
			}
			if cp.Origin != orig.Origin || cp.Size != orig.Size || cp.Hash != orig.Hash {
				t.Fatalf("flipping bit %d of byte %d (%q) opened to another checkpoint: %+v", bit, i, text[i], cp)
			}
			if i < sigStart || i >= len(text)-1 {
				t.Fatalf("flipping bit %d of byte %d (%q), outside the signature, still opens", bit, i, text[i])
			}
			benign++
		}
	}
	if benign > 4 {
		t.Fatalf("%d bit flips in the signature still open", benign)
	}
	// Truncations and extensions.
	for n := range len(text) {
		if _, err := log.OpenCheckpoint(text[:n], v); err == nil {
			t.Fatalf("the first %d bytes of the note open", n)
		}
	}
	for _, extra := range []string{"\n", " ", "x", "\n\n"} {
		if _, err := log.OpenCheckpoint(append(bytes.Clone(text), extra...), v); err == nil {
			t.Fatalf("the note followed by %q opens", extra)
		}
	}
}

func TestOpenCheckpointRefusals(t *testing.T) {
	s, v := testKeys(t)
	os, ov := otherKeys(t)
	root := sha256.Sum256([]byte("root"))
	good, err := log.SignCheckpoint(s, 3, root)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := log.SignCheckpoint(os, 3, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.OpenCheckpoint(byOther.Note, v); err == nil {
		t.Fatal("a checkpoint signed by another key with the same name opens")
	}
	if _, err := log.OpenCheckpoint(good.Note, ov); err == nil {
		t.Fatal("the log's checkpoint opens with another key")
	}

	// signNote signs arbitrary text with the log key.
	signNote := func(text string) []byte {
		n, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	tests := []struct {
		name string
		text string
	}{
		{"size 0 with a non-empty root", "example.com/govlog\n0\n" + b64(root[:]) + "\n"},
		{"size 0 with an all-zero root", "example.com/govlog\n0\n" + b64(make([]byte, 32)) + "\n"},
		{"other origin", "example.org/other\n3\n" + b64(root[:]) + "\n"},
		{"short root", "example.com/govlog\n3\n" + b64(root[:31]) + "\n"},
		{"long root", "example.com/govlog\n3\n" + b64(append(root[:], 0)) + "\n"},
		{"root not base64", "example.com/govlog\n3\n!!!\n"},
		{"negative size", "example.com/govlog\n-3\n" + b64(root[:]) + "\n"},
		{"size not a number", "example.com/govlog\nthree\n" + b64(root[:]) + "\n"},
		{"size beyond uint64", "example.com/govlog\n18446744073709551616\n" + b64(root[:]) + "\n"},
		{"missing root", "example.com/govlog\n3\n"},
		{"extension line", "example.com/govlog\n3\n" + b64(root[:]) + "\nextension\n"},
		{"size with a leading zero", "example.com/govlog\n03\n" + b64(root[:]) + "\n"},
		{"size with a plus sign", "example.com/govlog\n+3\n" + b64(root[:]) + "\n"},
		{"root with stray base64 bits", "example.com/govlog\n3\n" + b64(root[:])[:42] + "J=\n"},
		{"root without padding", "example.com/govlog\n3\n" + strings.TrimRight(b64(root[:]), "=") + "\n"},
		{"root in base64url", "example.com/govlog\n3\n" + base64.URLEncoding.EncodeToString(root[:]) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if cp, err := log.OpenCheckpoint(signNote(tt.text), v); err == nil {
				t.Fatalf("opened: %+v", cp)
			}
		})
	}
	// The size-0 checkpoint with SHA-256("") opens.
	empty, err := log.SignCheckpoint(s, 0, log.EmptyRoot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.OpenCheckpoint(empty.Note, v); err != nil {
		t.Fatalf("the empty checkpoint: %v", err)
	}
	// SignCheckpoint itself refuses nothing: OpenCheckpoint is the check.
	bad, err := log.SignCheckpoint(s, 0, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.OpenCheckpoint(bad.Note, v); err == nil {
		t.Fatal("a signed size-0 checkpoint with a non-empty root opens")
	}
}

// TestOpenCheckpointCosigned checks that signatures by other keys (witness
// cosignatures) are kept in the note and do not stop it from opening.
func TestOpenCheckpointCosigned(t *testing.T) {
	s, v := testKeys(t)
	witness, _, err := note.GenerateKey(zeroReader{}, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := note.NewSigner(witness)
	if err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256([]byte("root"))
	cp, err := log.SignCheckpoint(s, 5, root)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cp.Note, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(n, ws)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := log.OpenCheckpoint(cosigned, v)
	if err != nil {
		t.Fatalf("a cosigned checkpoint does not open: %v", err)
	}
	if !bytes.Equal(opened.Note, cosigned) || opened.Size != 5 || opened.Hash != root {
		t.Fatalf("opened %+v", opened)
	}
	// Only a witness signature: not the log's checkpoint.
	alone, err := note.Sign(&note.Note{Text: n.Text}, ws)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.OpenCheckpoint(alone, v); err == nil {
		t.Fatal("a checkpoint signed only by a witness opens")
	}
}

// zeroReader is a deterministic source of "randomness" for test keys.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestParseCheckpointRules checks what each rule of ParseCheckpoint
// accepts: extension lines only with Extensions (never an empty one),
// signatures checked only with Verifiers (then canonical base64, and the
// origin is a signer's name), and the canonical body always.
func TestParseCheckpointRules(t *testing.T) {
	s, v := testKeys(t)
	os, _ := otherKeys(t)
	root := sha256.Sum256([]byte("root"))
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	body := "example.com/govlog\n3\n" + b64(root[:]) + "\n"
	sign := func(signer note.Signer, text string) []byte {
		n, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	good := sign(s, body)
	// The same signature with stray low bits in its last base64 character.
	i := bytes.LastIndexByte(good[:len(good)-1], ' ') + 1
	sig := good[i : len(good)-1]
	stray := bytes.Clone(good)
	stray[i+len(sig)-2] = map[byte]byte{'A': 'B', 'Q': 'R', 'g': 'h', 'w': 'x'}[sig[len(sig)-2]]
	// The same signature with a CR inside its base64.
	withCR := append(bytes.Clone(good[:i+10]), append([]byte("\r"), good[i+10:]...)...)
	verified := note.VerifierList(v)
	type rules = log.CheckpointRules
	tests := []struct {
		name  string
		note  []byte
		rules log.CheckpointRules
		ok    bool
		// malformed: the refusal wraps ErrMalformedNote; unsigned: it is
		// note.Open's *note.UnverifiedNoteError.
		malformed, unsigned bool
	}{
		{name: "the log's checkpoint, verified", note: good, rules: rules{Verifiers: verified}, ok: true},
		{name: "the log's checkpoint, unverified", note: good, rules: rules{}, ok: true},
		{name: "signed by another key, unverified", note: sign(os, body), rules: rules{}, ok: true},
		{name: "signed by another key, verified", note: sign(os, body), rules: rules{Verifiers: verified}, unsigned: true},
		{name: "extension line", note: sign(s, body+"ext\n"), rules: rules{Verifiers: verified}},
		{name: "extension line allowed", note: sign(s, body+"ext\none more\n"), rules: rules{Verifiers: verified, Extensions: true}, ok: true},
		{name: "empty extension line", note: sign(s, body+"ext\n\nmore\n"), rules: rules{Extensions: true}},
		{name: "size with a leading zero", note: sign(s, strings.Replace(body, "\n3\n", "\n03\n", 1)), rules: rules{}},
		{name: "size 2^64-1", note: sign(s, strings.Replace(body, "\n3\n", "\n18446744073709551615\n", 1)), rules: rules{Verifiers: verified}, ok: true},
		{name: "size beyond 2^64-1", note: sign(s, strings.Replace(body, "\n3\n", "\n18446744073709551616\n", 1)), rules: rules{}},
		{name: "short root", note: sign(s, "example.com/govlog\n3\n"+b64(root[:31])+"\n"), rules: rules{}},
		{name: "origin is not the signer's name", note: sign(s, strings.Replace(body, "example.com/govlog", "example.org/other", 1)), rules: rules{Verifiers: verified}},
		{name: "non-canonical signature, verified", note: stray, rules: rules{Verifiers: verified}, malformed: true},
		{name: "a carriage return in the signature, verified", note: withCR, rules: rules{Verifiers: verified}, malformed: true},
		{name: "not a note", note: []byte(body), rules: rules{}, malformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, n, err := log.ParseCheckpoint(tt.note, tt.rules)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !bytes.Equal(cp.Note, tt.note) || n == nil || !strings.HasPrefix(n.Text, string(cp.Body())) {
					t.Fatalf("accepted as %+v, note %+v", cp, n)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", cp)
			}
			if errors.Is(err, log.ErrMalformedNote) != tt.malformed {
				t.Errorf("error %v: wraps ErrMalformedNote %v, want %v", err, !tt.malformed, tt.malformed)
			}
			var unverified *note.UnverifiedNoteError
			if errors.As(err, &unverified) != tt.unsigned {
				t.Errorf("error %v: an UnverifiedNoteError %v, want %v", err, !tt.unsigned, tt.unsigned)
			}
		})
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, tt := range []struct {
		enc  *base64.Encoding
		in   string
		want string // "" when refused
	}{
		{base64.StdEncoding, "AAAA", "\x00\x00\x00"},
		{base64.StdEncoding, "AA==", "\x00"},
		{base64.StdEncoding, "AAAA\nAAAA", ""},
		{base64.StdEncoding, "AAAA\rAAAA", ""},
		{base64.StdEncoding, "AAAA\r\n", ""},
		{base64.StdEncoding, "AB==", ""}, // stray bits
		{base64.StdEncoding, "AA", ""},   // no padding
		{base64.RawURLEncoding, "_-8", "\xff\xef"},
		{base64.RawURLEncoding, "_-8=", ""},
		{base64.RawURLEncoding, "_-\n8", ""},
	} {
		got, err := log.DecodeBase64(tt.enc, tt.in)
		if (err == nil) != (tt.want != "") || string(got) != tt.want {
			t.Errorf("DecodeBase64(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
