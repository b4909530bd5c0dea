package vectors

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
)

// The verification vectors (testdata/verify): the cases every verifier of
// govlog evidence, in any language, must accept or refuse. Each file is one
// family: {"about": "...", "cases": [...]}; each case has a name unique in
// its file, a want ("ok" or "fail") and the inputs of that family. A case
// with "mangle" stands for more cases: its input with one byte changed
// (each xor value applied to each byte in turn) or deleted, each of which
// must fail. VerifyReadme documents every family.

// VerifyCase is one case of a verification vector file. Which input
// fields a case has depends on its family.
type VerifyCase struct {
	Name string `json:"name"`
	// Want is "ok" or "fail".
	Want string `json:"want"`
	// Why says, for a case written by hand, what it checks.
	Why string `json:"why,omitempty"`

	// Keys and options.
	LogKey   string `json:"log_key,omitempty"`
	JWKS     string `json:"jwks,omitempty"`
	Audience string `json:"audience,omitempty"`
	// Now is the Unix time an artifact is checked at.
	Now int64 `json:"now,omitempty"`

	// Inputs. A field whose bytes are not valid UTF-8 is given in base64
	// in the field of the same name with _base64 appended instead.
	Checkpoint       *string  `json:"checkpoint,omitempty"`
	CheckpointBase64 []byte   `json:"checkpoint_base64,omitempty"`
	Policy           *string  `json:"policy,omitempty"`
	Format           string   `json:"format,omitempty"`
	Receipt          *string  `json:"receipt,omitempty"`
	ReceiptBase64    []byte   `json:"receipt_base64,omitempty"`
	Token            string   `json:"token,omitempty"`
	KeyReceipt       *string  `json:"key_receipt,omitempty"`
	Leaf             *string  `json:"leaf,omitempty"`
	LeafBase64       []byte   `json:"leaf_base64,omitempty"`
	Input            *string  `json:"input,omitempty"`
	InputBase64      []byte   `json:"input_base64,omitempty"`
	Bundle           *string  `json:"bundle,omitempty"`
	Old              string   `json:"old,omitempty"`
	New              string   `json:"new,omitempty"`
	Proof            []string `json:"proof,omitempty"`

	// Raw RFC 6962 proofs (proofs.json).
	Type     string  `json:"type,omitempty"`
	Index    *uint64 `json:"index,omitempty"`
	Size     *uint64 `json:"size,omitempty"`
	Size1    *uint64 `json:"size1,omitempty"`
	Size2    *uint64 `json:"size2,omitempty"`
	LeafHash string  `json:"leaf_hash,omitempty"`
	Root     string  `json:"root,omitempty"`
	Root1    string  `json:"root1,omitempty"`
	Root2    string  `json:"root2,omitempty"`

	// Authorize is what a runtime is about to do, which the artifact
	// must authorize (artifacts.json).
	Authorize *Authorize `json:"authorize,omitempty"`

	// Expect is what an "ok" case must verify to: an authorization the
	// artifact must grant (artifacts.json), or the facts a verifier
	// reports.
	Expect *Expect `json:"expect,omitempty"`
	// Canonical is the RFC 8785 form of an "ok" jcs.json input.
	Canonical *string `json:"canonical,omitempty"`
	// Mangle: every single-byte change of the family's primary input.
	Mangle *Mangle `json:"mangle,omitempty"`
}

// Expect holds the facts an "ok" case verifies to. Only the fields set
// are compared.
type Expect struct {
	// Checkpoints.
	Origin   string  `json:"origin,omitempty"`
	Size     *uint64 `json:"size,omitempty"`
	RootHash string  `json:"root_hash,omitempty"`
	// Receipts.
	Index    *uint64 `json:"index,omitempty"`
	Kind     string  `json:"kind,omitempty"`
	ID       string  `json:"id,omitempty"`
	LeafHash string  `json:"leaf_hash,omitempty"`
	// Bundles: how many entries an "ok" bundle holds.
	Entries *uint64 `json:"entries,omitempty"`
	// Artifacts: the claims an "ok" artifact verifies to: its payload,
	// the RFC 8785 canonical JSON of the claims.
	Claims string `json:"claims,omitempty"`
	// Entries: what a verifier reports of an entry, by name (see
	// VerifyReadme); a name that is absent is not reported.
	Fields map[string]string `json:"fields,omitempty"`
}

// Authorize is an authorization an artifact must grant: exactly this
// action and resource ("" for none), and this subject when it is set.
type Authorize struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Subject  string `json:"subject,omitempty"`
}

// Mangle expands a case into one failing case per byte of its primary
// input and per change: each XOR value applied to that byte, and, when
// Delete, the byte deleted.
type Mangle struct {
	XOR    []int `json:"xor"`
	Delete bool  `json:"delete,omitempty"`
	// Field names the input changed when it is not the family's primary
	// input (key-artifacts.json: "key_receipt").
	Field string `json:"field,omitempty"`
}

// verifyFile is the layout of a vector file.
type verifyFile struct {
	About string       `json:"about"`
	Cases []VerifyCase `json:"cases"`
}

// verifyKeys are the fixed keys of the verification vectors.
type verifyKeys struct {
	log       *rawSigner // the test log: logtest.SignerKey
	other     *rawSigner // logtest.OtherSignerKey: same name, other key
	witnesses []*rawSigner
	artifact  ed25519.PrivateKey
	kid       string
	jwks      string
}

// rawSigner signs note lines with an Ed25519 key under a name and key ID.
type rawSigner struct {
	name string
	id   uint32
	priv ed25519.PrivateKey
	vkey string
}

// seedKey is a fixed test key derived from a label: test-only, public.
func seedKey(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("govlog test key: " + label))
	return ed25519.NewKeyFromSeed(s[:])
}

// keyID is the C2SP signed-note key ID of a typed public key.
func keyID(name string, typed []byte) uint32 {
	h := sha256.Sum256(append([]byte(name+"\n"), typed...))
	return binary.BigEndian.Uint32(h[:4])
}

func newRawSigner(name string, keyType byte, priv ed25519.PrivateKey) *rawSigner {
	typed := append([]byte{keyType}, priv.Public().(ed25519.PublicKey)...)
	id := keyID(name, typed)
	return &rawSigner{name: name, id: id, priv: priv, vkey: fmt.Sprintf("%s+%08x+%s", name, id, b64(typed))}
}

// noteSigner reads a note signer key of golang.org/x/mod/sumdb/note.
func noteSigner(skey string) *rawSigner {
	parts := strings.SplitN(skey, "+", 5)
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 33 || key[0] != 1 {
		panic("bad test signer key") // a constant
	}
	return newRawSigner(parts[2], 1, ed25519.NewKeyFromSeed(key[1:]))
}

func newVerifyKeys() *verifyKeys {
	k := &verifyKeys{log: noteSigner(logtest.SignerKey), other: noteSigner(logtest.OtherSignerKey)}
	if k.log.vkey != logtest.VerifierKey || k.other.vkey != logtest.OtherVerifierKey {
		panic("test keys disagree") // constants
	}
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("witness.example/w%d", i)
		k.witnesses = append(k.witnesses, newRawSigner(name, 4, seedKey(name)))
	}
	k.artifact = seedKey("artifact-1")
	k.kid = "test-artifact-1"
	k.jwks = jwks(jwk(k.kid, k.artifact.Public().(ed25519.PublicKey), `"alg":"EdDSA",`, `"use":"sig",`))
	return k
}

// line is a signature line: the name, and the key ID and signature in
// base64.
func (s *rawSigner) line(sig []byte) string {
	var id [4]byte
	binary.BigEndian.PutUint32(id[:], s.id)
	return "— " + s.name + " " + b64(append(id[:], sig...)) + "\n"
}

// sign is the signature line of an Ed25519 note signature of text.
func (s *rawSigner) sign(text string) string {
	return s.line(ed25519.Sign(s.priv, []byte(text)))
}

// cosign is the signature line of a cosignature/v1 of text at time ts.
func (s *rawSigner) cosign(text string, ts uint64) string {
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, text)
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], ts)
	return s.line(append(t[:], ed25519.Sign(s.priv, []byte(msg))...))
}

func b64(b []byte) string    { return base64.StdEncoding.EncodeToString(b) }
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// body is a checkpoint body.
func body(origin string, size uint64, root []byte) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, b64(root))
}

func jwk(kid string, pub ed25519.PublicKey, extra ...string) string {
	return `{` + strings.Join(extra, "") + `"crv":"Ed25519","kid":` + q(kid) + `,"kty":"OKP",` + `"x":"` + b64url(pub) + `"}`
}

func jwks(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

func u64(v uint64) *uint64 { return &v }

// setBytes sets a text input field, or its _base64 twin when data is not
// valid UTF-8.
func setBytes(text **string, raw *[]byte, data []byte) {
	if isUTF8(data) {
		*text = str(string(data))
		return
	}
	*raw = data
}

func isUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "\x00\x01") == string(b) }

// verifyFiles adds the verification vectors to out, under verify/.
func verifyFiles(out map[string][]byte, golden *goldenLog) error {
	k := newVerifyKeys()
	families := []struct {
		name  string
		about string
		cases func() ([]VerifyCase, error)
	}{
		{"checkpoints", aboutCheckpoints, func() ([]VerifyCase, error) { return checkpointCases(k, golden) }},
		{"policies", aboutPolicies, func() ([]VerifyCase, error) { return policyCases(k, golden) }},
		{"proofs", aboutProofs, func() ([]VerifyCase, error) { return proofCases() }},
		{"consistency", aboutConsistency, func() ([]VerifyCase, error) { return consistencyCases(k) }},
		{"receipts", aboutReceipts, func() ([]VerifyCase, error) { return receiptCases(k, golden) }},
		{"artifacts", aboutArtifacts, func() ([]VerifyCase, error) { return artifactCases(k, golden) }},
		{"key-artifacts", aboutKeyArtifacts, func() ([]VerifyCase, error) { return keyArtifactCases(k, golden) }},
		{"bundles", aboutBundles, func() ([]VerifyCase, error) { return bundleCases(k, golden) }},
		{"entries", aboutEntries, func() ([]VerifyCase, error) { return entryCases() }},
		{"jcs", aboutJCS, func() ([]VerifyCase, error) { return jcsCases(), nil }},
	}
	for _, f := range families {
		cases, err := f.cases()
		if err != nil {
			return fmt.Errorf("verification vectors %s: %w", f.name, err)
		}
		names := map[string]bool{}
		for _, c := range cases {
			if names[c.Name] {
				return fmt.Errorf("verification vectors %s: two cases named %q", f.name, c.Name)
			}
			if c.Want != "ok" && c.Want != "fail" {
				return fmt.Errorf("verification vectors %s: case %q wants %q", f.name, c.Name, c.Want)
			}
			names[c.Name] = true
		}
		data, err := encode(verifyFile{About: f.about, Cases: cases})
		if err != nil {
			return err
		}
		out["verify/"+f.name+".json"] = data
	}
	out["verify/README.md"] = []byte(verifyReadme)
	return nil
}

// goldenLog is the golden log of Files: its leaves, checkpoint and
// receipts, by entry name.
type goldenLog struct {
	names      []string
	leaves     map[string][]byte
	checkpoint log.Checkpoint
	receipts   map[string]*log.Receipt
	claims     map[string]*log.ArtifactClaims
}

// compact is a JSON receipt as the API sends it: compact, without HTML
// escaping.
func compact(r *log.Receipt) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func pretty(r *log.Receipt) string {
	b, err := encode(r)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hmacJWS is a compact JWS signed with HS256 and key as the secret.
func hmacJWS(header, payload string, key []byte) string {
	in := b64url([]byte(header)) + "." + b64url([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + b64url(m.Sum(nil))
}

// signJWS is a compact JWS of header and payload signed with Ed25519.
func signJWS(header, payload string, key ed25519.PrivateKey) string {
	in := b64url([]byte(header)) + "." + b64url([]byte(payload))
	return in + "." + b64url(ed25519.Sign(key, []byte(in)))
}
