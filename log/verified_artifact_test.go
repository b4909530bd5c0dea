package log

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/cputime"
)

// testArtifact signs the artifact of decision d-1 with priv under kid.
func testArtifact(t *testing.T, priv ed25519.PrivateKey, kid string, leafHash [32]byte, exp time.Time) string {
	t.Helper()
	c := &ArtifactClaims{Issuer: "example.com/log", Subject: "s", ID: "d-1", IssuedAt: exp.Unix() - 300,
		NotBefore: exp.Unix() - 300, Expiry: exp.Unix(), Action: "a",
		Govlog: ArtifactBinding{LeafHash: base64.StdEncoding.EncodeToString(leafHash[:]), TreeSize: 1,
			RootHash: base64.StdEncoding.EncodeToString(leafHash[:])}}
	payload, err := c.Payload()
	if err != nil {
		t.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"`+kid+`","typ":"`+ArtifactType+`"}`)) +
		"." + base64.RawURLEncoding.EncodeToString(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

// TestVerifiedArtifactIsJudged checks that the rule book uses an artifact
// verified before the sequencer only when it was verified with the key
// the facts hold for its kid, and verifies it again otherwise: a
// verification with any other key, of another token, or when no key is
// logged decides nothing.
func TestVerifiedArtifactIsJudged(t *testing.T) {
	logged, loggedPriv, _ := ed25519.GenerateKey(nil)
	other, otherPriv, _ := ed25519.GenerateKey(nil)
	loggedLeaf := []byte(`{"key":"logged"}`) // compared, never parsed
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	until := at.Add(5 * time.Minute)
	leafHash := [32]byte{1, 2, 3}
	good := testArtifact(t, loggedPriv, "k-1", leafHash, until)
	forged := testArtifact(t, otherPriv, "k-1", leafHash, until)
	byLogged := func(string) (ed25519.PublicKey, []byte) { return logged, loggedLeaf }
	byOther := func(string) (ed25519.PublicKey, []byte) { return other, nil }
	byOtherLeaf := func(string) (ed25519.PublicKey, []byte) { return other, []byte(`{"key":"other"}`) }
	tests := []struct {
		name     string
		token    string
		verified *verifiedArtifact
		key      *Stored // the key entry k-1 in the facts, nil when none
		want     string
	}{
		{"not verified before, logged key", good, nil, &Stored{Leaf: nil, Key: logged}, ""},
		{"verified before with the logged leaf", good, verifyArtifact(good, byLogged, nil), &Stored{Leaf: loggedLeaf}, ""},
		{"verified before with the logged key", good, verifyArtifact(good, byLogged, nil), &Stored{Key: logged}, ""},
		{"forged, not verified before", forged, nil, &Stored{Key: logged}, ViolationArtifactInvalid},
		{"forged, verified before with its own key", forged, verifyArtifact(forged, byOther, nil), &Stored{Key: logged}, ViolationArtifactInvalid},
		{"forged, verified before with another leaf", forged, verifyArtifact(forged, byOtherLeaf, nil), &Stored{Leaf: loggedLeaf, Key: logged}, ViolationArtifactInvalid},
		{"forged, verified before, no key logged", forged, verifyArtifact(forged, byOther, nil), nil, ViolationArtifactInvalid},
		{"another token verified before", forged, verifyArtifact(good, byLogged, nil), &Stored{Leaf: loggedLeaf, Key: logged}, ViolationArtifactInvalid},
		{"good, verified before, no key logged", good, verifyArtifact(good, byLogged, nil), nil, ViolationArtifactInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facts := &Facts{
				IDs: map[EntryID]Stored{{KindDecision, "d-1"}: {Allow: true}},
				Authorizations: map[string]*Authorization{"d-1": {DecidedAt: at, AuthorizedUntil: until,
					MaxExecutions: 1, LeafHash: leafHash}},
			}
			if tc.key != nil {
				facts.IDs[EntryID{KindKey, "k-1"}] = *tc.key
			}
			e := &Entry{Submission: &Submission{Kind: KindExecution, ID: "x-1", Submitter: Anonymous,
				DecisionID: "d-1", Status: StatusStarted, At: at, Artifact: tc.token, verified: tc.verified},
				Origin: "example.com/log", LoggedAt: at}
			got, reason, _ := judgeReport(e, facts)
			if got != tc.want {
				t.Errorf("violation %q (%s), want %q", got, reason, tc.want)
			}
		})
	}
}

// TestSignArtifact checks that SignArtifact makes a valid compact JWS and
// remembers it for its key only, the exact token only, and the most
// recent maxIssued tokens only; and that a remembered token still fails
// the claims checks of another decision.
func TestSignArtifact(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	var l Log
	good := testArtifact(t, priv, "k-1", [32]byte{1}, time.Unix(1e9, 0))
	h, rest, _ := strings.Cut(good, ".")
	p, _, _ := strings.Cut(rest, ".")
	token := l.SignArtifact(priv, []byte(h+"."+p))
	if token != good {
		t.Fatalf("SignArtifact:\n%s\nwant\n%s", token, good)
	}
	if !l.signedHere(pub, token) {
		t.Error("a token signed here is not remembered")
	}
	if l.signedHere(otherPub, token) {
		t.Error("a token signed here is remembered for another key")
	}
	tampered := token[:len(token)-1] + "A"
	if tampered == token {
		tampered = token[:len(token)-1] + "Q"
	}
	if l.signedHere(pub, tampered) {
		t.Error("another token is remembered")
	}
	byPub := func(string) (ed25519.PublicKey, []byte) { return pub, nil }
	if v := verifyArtifact(token, byPub, l.signedHere); v.why != "" || v.claims.ID != "d-1" {
		t.Errorf("verifyArtifact of a remembered token: %q, claims %+v", v.why, v.claims)
	}
	if why := verifyArtifact(token, byPub, l.signedHere).check("d-2", "", &Authorization{}); !strings.Contains(why, "artifact of decision") {
		t.Errorf("a remembered token of d-1 checked for d-2: %q", why)
	}
	byOther := func(string) (ed25519.PublicKey, []byte) { return otherPub, nil }
	if v := verifyArtifact(token, byOther, l.signedHere); !strings.Contains(v.why, "signature does not verify") {
		t.Errorf("a remembered token with another key: %q", v.why)
	}
	for i := range maxIssued {
		l.issued.add([32]byte{byte(i), byte(i >> 8), byte(i >> 16), 0xff})
	}
	if l.signedHere(pub, token) {
		t.Error("the oldest token is still remembered after maxIssued others")
	}
	if len(l.issued.set) != maxIssued || len(l.issued.ring) != maxIssued {
		t.Errorf("%d remembered, ring %d; want %d", len(l.issued.set), len(l.issued.ring), maxIssued)
	}
}

// FuzzVerifyArtifact checks that verifying any token neither panics nor
// accepts what the key did not sign, that its kid is the one NamesOf
// reads, and that the set of signed tokens changes nothing for a token
// not in it.
func FuzzVerifyArtifact(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	good := testArtifact(&testing.T{}, priv, "k-1", [32]byte{1}, time.Unix(1e9, 0))
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("e30.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		byPub := func(string) (ed25519.PublicKey, []byte) { return pub, nil }
		v := verifyArtifact(token, byPub, nil)
		if v.kid != artifactKID(token) {
			t.Fatalf("kid %q, artifactKID %q", v.kid, artifactKID(token))
		}
		if v.why == "" && token != good {
			h, rest, _ := strings.Cut(token, ".")
			p, s, _ := strings.Cut(rest, ".")
			sig, err := base64.RawURLEncoding.Strict().DecodeString(s)
			if err != nil || !ed25519.Verify(pub, []byte(h+"."+p), sig) {
				t.Fatalf("%q accepted without a valid signature", token)
			}
		}
		var l Log
		if w := verifyArtifact(token, byPub, l.signedHere); w.why != v.why {
			t.Fatalf("with an empty set: %q, without: %q", w.why, v.why)
		}
	})
}

// BenchmarkSignArtifact signs an artifact and remembers it, as the server
// does for each allow.
func BenchmarkSignArtifact(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	good := testArtifact(&testing.T{}, priv, "k-1", [32]byte{1}, time.Unix(1e9, 0))
	input := []byte(good[:strings.LastIndexByte(good, '.')])
	var l Log
	b.ReportAllocs()
	start := cputime.Process()
	for b.Loop() {
		l.SignArtifact(priv, input)
	}
	cputime.Report(b, start)
}

// TestDecodeArtifactHeaderLast checks that an artifact header decodes the
// same whatever was decoded before it: the last header kept in memory
// answers only for the same base64url, and what it answers is a copy.
func TestDecodeArtifactHeaderLast(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	a := enc(`{"alg":"EdDSA","kid":"k-1","typ":"` + ArtifactType + `"}`)
	b := enc(`{"alg":"EdDSA","kid":"k-2","typ":"` + ArtifactType + `"}`)
	unknown := enc(`{"alg":"EdDSA","kid":"k-1","typ":"` + ArtifactType + `","x":1}`)
	want := map[string]*artifactHeader{
		a:       {Alg: "EdDSA", KID: "k-1", Typ: ArtifactType},
		b:       {Alg: "EdDSA", KID: "k-2", Typ: ArtifactType},
		unknown: nil,
		"!!":    nil,
		a + "=": nil, // padded: not base64url without padding
	}
	for _, order := range [][]string{
		{a, a, b, a, b, b},
		{a, unknown, a, "!!", a, a + "=", a},
		{b, a + "=", unknown, b},
	} {
		for i, h := range order {
			got, err := decodeArtifactHeader(h)
			switch w := want[h]; {
			case w == nil && err == nil:
				t.Fatalf("%v, call %d: %q decoded to %+v, want an error", order, i, h, got)
			case w != nil && (err != nil || *got != *w):
				t.Fatalf("%v, call %d: %q decoded to %+v (%v), want %+v", order, i, h, got, err, w)
			case w != nil:
				got.KID = "changed" // the caller's copy, not the one kept
			}
		}
	}
}
