package verifier_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// cosignAt appends a cosignature/v1 line of w, made at the given time, to
// a signed note (the formats signer always uses the current time).
func cosignAt(t testing.TB, signed []byte, w testWitness, seed byte, at int64) []byte {
	t.Helper()
	body := signed[:bytes.Index(signed, []byte("\n\n"))+1]
	v, err := fnote.NewVerifierForCosignatureV1(w.vkey)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", at, body)
	sig := binary.BigEndian.AppendUint32(nil, v.KeyHash())
	sig = binary.BigEndian.AppendUint64(sig, uint64(at))
	sig = append(sig, ed25519.Sign(key, msg)...)
	return fmt.Appendf(bytes.Clone(signed), "— %s %s\n", w.name, base64.StdEncoding.EncodeToString(sig))
}

func TestCosignatures(t *testing.T) {
	l := testlog.New(t)
	l.Grow(3)
	ws := []testWitness{newTestWitness(t, "witness.example/w0", 10), newTestWitness(t, "witness.example/w1", 11), newTestWitness(t, "witness.example/w2", 12)}
	stranger := newTestWitness(t, "witness.example/w9", 99)
	p, err := verifier.ParsePolicy([]byte(policyText(ws, "group g 2 w0 w1 w2\nquorum g\n")))
	if err != nil {
		t.Fatal(err)
	}
	cp := l.Checkpoint(3).Note
	other := l.Checkpoint(2).Note // a cosignature of another body does not count
	t0, t1 := int64(1_800_000_000), int64(1_800_000_100)

	signed := cosignAt(t, cp, ws[1], 11, t1)
	signed = cosignAt(t, signed, ws[0], 10, t0)
	signed = cosignAt(t, signed, stranger, 99, t0-50)
	wrong := cosignAt(t, other, ws[2], 12, t0-10)
	signed = append(signed, wrong[bytes.LastIndex(wrong[:len(wrong)-1], []byte("\n"))+1:]...)

	got := p.Cosignatures(signed)
	want := []verifier.Cosignature{{Witness: "witness.example/w0", Time: time.Unix(t0, 0).UTC()}, {Witness: "witness.example/w1", Time: time.Unix(t1, 0).UTC()}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Cosignatures = %v, want %v", got, want)
	}
	if err := p.Check(signed); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// Every byte of a cosignature's timestamp is signed: a changed time
	// is no cosignature.
	i := bytes.Index(signed, []byte("— witness.example/w0 "))
	line := signed[i+len("— witness.example/w0 ") : i+bytes.IndexByte(signed[i:], '\n')]
	raw, _ := base64.StdEncoding.DecodeString(string(line))
	raw[11]++
	forged := bytes.Replace(signed, line, []byte(base64.StdEncoding.EncodeToString(raw)), 1)
	if got := p.Cosignatures(forged); len(got) != 1 || got[0].Witness != "witness.example/w1" {
		t.Fatalf("a cosignature with a changed time counts: %v", got)
	}

	// The signer of the formats module stamps the current time.
	now := time.Now()
	live := cosign(t, cp, ws[2])
	if got := p.Cosignatures(live); len(got) != 1 || got[0].Time.Sub(now).Abs() > 5*time.Second {
		t.Fatalf("Cosignatures of a fresh cosignature = %v (now %v)", got, now)
	}
	if got := p.Cosignatures(cp); len(got) != 0 {
		t.Fatalf("Cosignatures of an uncosigned checkpoint = %v", got)
	}
}
