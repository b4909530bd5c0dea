package verifier_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// testWitness is a cosignature/v1 key pair with a fixed seed.
type testWitness struct {
	name   string
	signer note.Signer
	vkey   string
}

func newTestWitness(t testing.TB, name string, seed byte) testWitness {
	t.Helper()
	skey, plain, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := fnote.VKeyToCosignatureV1(plain)
	if err != nil {
		t.Fatal(err)
	}
	return testWitness{name, s, vkey}
}

// cosign appends the witnesses' cosignatures to a signed note.
func cosign(t testing.TB, signed []byte, ws ...testWitness) []byte {
	t.Helper()
	text := signed[:bytes.Index(signed, []byte("\n\n"))+1]
	out := bytes.Clone(signed)
	for _, w := range ws {
		s, err := note.Sign(&note.Note{Text: string(text)}, w.signer)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s[len(text)+1:]...)
	}
	return out
}

func policyText(ws []testWitness, rest string) string {
	var b strings.Builder
	b.WriteString("# test policy\n")
	for i, w := range ws {
		fmt.Fprintf(&b, "witness w%d %s https://w%d.example/prefix # witness %d\n", i, w.vkey, i, i)
	}
	b.WriteString(rest)
	return b.String()
}

func TestPolicy(t *testing.T) {
	l := testlog.New(t)
	l.Grow(5)
	ws := []testWitness{
		newTestWitness(t, "witness.example/w0", 10),
		newTestWitness(t, "witness.example/w1", 11),
		newTestWitness(t, "witness.example/w2", 12),
		newTestWitness(t, "witness.example/w3", 13),
	}
	stranger := newTestWitness(t, "witness.example/w0", 99) // same name, other key
	cp := l.Checkpoint(5).Note
	other := l.Checkpoint(4).Note

	tampered := cosign(t, cp, ws[0], ws[1])
	tampered[len(tampered)-10] ^= 1 // w1's signature

	wrongBody := cosign(t, cp, ws[0])
	wrongBody = append(wrongBody, cosign(t, other, ws[1])[len(other):]...)

	for _, tc := range []struct {
		name   string
		policy string
		note   []byte
		ok     bool
	}{
		{"2 of 3 with 2", "group g 2 w0 w1 w2\nquorum g\n", cosign(t, cp, ws[0], ws[2]), true},
		{"2 of 3 with 3", "group g 2 w0 w1 w2\nquorum g\n", cosign(t, cp, ws[0], ws[1], ws[2]), true},
		{"2 of 3 with 1", "group g 2 w0 w1 w2\nquorum g\n", cosign(t, cp, ws[1]), false},
		{"2 of 3 with 1 and an unlisted witness", "group g 2 w0 w1 w2\nquorum g\n", cosign(t, cp, ws[1], ws[3]), false},
		{"2 of 3 with 1 and a stranger", "group g 2 w0 w1 w2\nquorum g\n", cosign(t, cp, ws[1], stranger), false},
		{"2 of 3 with 1 cosigned twice", "group g 2 w0 w1 w2\nquorum g\n", cosign(t, cp, ws[1], ws[1]), false},
		{"2 of 3 with none", "group g 2 w0 w1 w2\nquorum g\n", cp, false},
		{"a bad cosignature", "group g 2 w0 w1 w2\nquorum g\n", tampered, false},
		{"a cosignature of another checkpoint", "group g 2 w0 w1 w2\nquorum g\n", wrongBody, false},
		{"any", "group g any w0 w1\nquorum g\n", cosign(t, cp, ws[1]), true},
		{"all", "group g all w0 w1\nquorum g\n", cosign(t, cp, ws[1]), false},
		{"one witness", "quorum w2\n", cosign(t, cp, ws[2]), true},
		{"one witness, other", "quorum w2\n", cosign(t, cp, ws[0]), false},
		{"nested", "group a any w0 w1\ngroup b any w2 w3\ngroup both all a b\nquorum both\n", cosign(t, cp, ws[1], ws[3]), true},
		{"nested, one side", "group a any w0 w1\ngroup b any w2 w3\ngroup both all a b\nquorum both\n", cosign(t, cp, ws[0], ws[1]), false},
		{"none", "quorum none\n", cp, true},
		{"not a note", "group g any w0\nquorum g\n", []byte("example.com/govlog\n5\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := verifier.ParsePolicy([]byte(policyText(ws, tc.policy)))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(tc.note)
			if p.Satisfied(tc.note) != tc.ok || (err == nil) != tc.ok {
				t.Fatalf("Satisfied = %v, Check = %v; want %v", p.Satisfied(tc.note), err, tc.ok)
			}
			if err != nil && !errors.Is(err, verifier.ErrPolicy) {
				t.Fatalf("Check: %v does not wrap ErrPolicy", err)
			}
		})
	}
}

func TestPolicyReceipt(t *testing.T) {
	l := testlog.New(t)
	l.Grow(7)
	ws := []testWitness{newTestWitness(t, "witness.example/w0", 10), newTestWitness(t, "witness.example/w1", 11)}
	p, err := verifier.ParsePolicy([]byte(policyText(ws, "group g all w0 w1\nquorum g\n")))
	if err != nil {
		t.Fatal(err)
	}
	r := l.Receipt(3, 7)
	cp := l.Checkpoint(7)
	cp.Note = cosign(t, cp.Note, ws...)
	r = withCheckpoint(t, l, r, cp)
	v, err := verifier.Receipt([]byte(r.TLogProof), l.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(v.Checkpoint.Note); err != nil {
		t.Fatalf("a cosigned receipt: %v", err)
	}
	// Without w1's cosignature.
	cp.Note = cosign(t, l.Checkpoint(7).Note, ws[0])
	v, err = verifier.Receipt([]byte(withCheckpoint(t, l, r, cp).TLogProof), l.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(v.Checkpoint.Note); !errors.Is(err, verifier.ErrPolicy) || !strings.Contains(err.Error(), "witness.example/w0") {
		t.Fatalf("half-cosigned receipt: %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	ws := []testWitness{newTestWitness(t, "witness.example/w0", 10), newTestWitness(t, "witness.example/w1", 11)}
	text := policyText(ws, "group g any w0 w1\nlog example.com/govlog+12345678+AAAA\nquorum g\n")
	p, err := verifier.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Text()) != text {
		t.Fatal("Text() is not the parsed text")
	}
	got := p.Witnesses()
	if len(got) != 2 || got[0].URL != "https://w0.example/prefix/add-checkpoint" || got[1].Key.Name() != "witness.example/w1" {
		t.Fatalf("Witnesses() = %+v", got)
	}
	_, plainV, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)), "witness.example/w9")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"",
		"# only a comment\n",
		policyText(ws, ""),
		policyText(ws, "quorum nobody\n"),
		policyText(ws, "group g 3 w0 w1\nquorum g\n"),
		policyText(ws, "group g any w0 w9\nquorum g\n"),
		policyText(ws, "group g many w0 w1\nquorum g\n"),
		policyText(ws, "frobnicate\nquorum w0\n"),
		policyText(ws, "witness w0 "+ws[0].vkey+" https://x.example\nquorum w0\n"),
		policyText(ws, "witness w9 "+ws[0].vkey+" https://x.example\ngroup g 2 w0 w9\nquorum g\n"),
		policyText(ws, "witness w9 "+plainCosig(t, ws[0])+" https://w0.example/prefix\ngroup g 2 w0 w9\nquorum g\n"),
		"witness w0 " + ws[0].vkey + "\nquorum w0\n",
		"witness w0 example.com/nope+00000000+AAAA https://x.example\nquorum w0\n",
		"witness w0 " + strings.Replace(plainV, "+", "+00", 1) + " https://x.example\nquorum w0\n",
		"witness w0 " + plainV + " https://x.example\nquorum w0\n",
		"witness w0 " + ws[0].vkey[:len("witness.example/w0+")] + "00000000" + ws[0].vkey[len("witness.example/w0+00000000"):] + " https://x.example\nquorum w0\n",
		strings.Repeat("#", verifier.MaxPolicyBytes+1),
		// An ML-DSA-44 key (type 0x06) with its own key ID: the formats
		// parser takes it.
		"witness w0 " + func() string {
			key := append([]byte{0x06}, make([]byte, 1312)...)
			h := sha256.Sum256(append([]byte("witness.example/pq\n"), key...))
			return fmt.Sprintf("witness.example/pq+%08x+%s", binary.BigEndian.Uint32(h[:4]), base64.StdEncoding.EncodeToString(key))
		}() + " https://x.example\nquorum w0\n",
	} {
		if _, err := verifier.ParsePolicy([]byte(bad)); !errors.Is(err, verifier.ErrInvalidPolicy) || errors.Is(err, verifier.ErrMalformed) {
			t.Errorf("ParsePolicy(%.80q) = %v, want ErrInvalidPolicy", bad, err)
		}
	}
}

// withCheckpoint rebuilds a receipt on another note of its checkpoint.
func withCheckpoint(t testing.TB, l *testlog.Log, r *log.Receipt, cp log.Checkpoint) *log.Receipt {
	t.Helper()
	return log.NewReceipt(r.ID, r.Index, r.Entry, cp, l.Inclusion(r.Index, cp.Size))
}

// plainCosig is w's key as a plain Ed25519 vkey (type 0x01), which
// cosignature/v1 verifiers treat as the same key.
func plainCosig(t testing.TB, w testWitness) string {
	t.Helper()
	name, rest, _ := strings.Cut(w.vkey, "+")
	_, key64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(key64)
	if err != nil {
		t.Fatal(err)
	}
	raw[0] = 0x01
	h := sha256.Sum256(append([]byte(name+"\n"), raw...))
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h[:4]), base64.StdEncoding.EncodeToString(raw))
}
