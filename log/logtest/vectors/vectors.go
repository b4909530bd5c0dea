// Package vectors builds govlog's shared test vectors: the files under the
// module's testdata directory, which the documentation quotes, the tests
// check the code against, and other implementations can check themselves
// against. Files returns them, deterministically; testdata/gen.go writes them:
//
//	go run ./testdata/gen.go
//
// and CI checks with `git diff --exit-code testdata` that they are current.
// The inputs and the expected errors are written by hand below; the
// expected outputs (canonical forms, leaves, hashes, checkpoints, receipts)
// are computed by package log and reviewed when they change.
package vectors

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// Now is the reference time of every vector: ParseDecision and
// ParseExecution are called with it (decided_at and at may be up to five
// minutes after it).
const Now = "2026-11-25T18:00:00Z"

// Audience is the aud of the artifact claims vectors.
const Audience = "runtime.example.com"

// NowTime returns Now.
func NowTime() time.Time {
	t, err := time.Parse(time.RFC3339, Now)
	if err != nil {
		panic(err) // a constant
	}
	return t
}

// Invalid is one vector of decisions/invalid.json or executions/invalid.json:
// a body that must be refused.
type Invalid struct {
	Name string `json:"name"`
	// Body is the request body when it is valid UTF-8; BodyBase64 holds it
	// otherwise.
	Body       *string `json:"body,omitempty"`
	BodyBase64 []byte  `json:"body_base64,omitempty"`
	// WantCode is the API error code: invalid_json, invalid_decision,
	// invalid_execution or too_large.
	WantCode string `json:"want_code"`
	// WantField is the field the error names (a dotted path, e.g.
	// "policy.digest" or "reasons[3]"), for invalid_decision and
	// invalid_execution.
	WantField string `json:"want_field,omitempty"`
}

// Bytes returns the vector's body.
func (v *Invalid) Bytes() []byte {
	if v.Body != nil {
		return []byte(*v.Body)
	}
	return v.BodyBase64
}

// Entry is one vector of entries/valid.json: a submission, when it is
// logged and with which artifact lifetime, and the leaf and leaf hash
// NewEntry must make of it.
type Entry struct {
	Name string `json:"name"`
	// Kind is "decision" or "execution".
	Kind      string `json:"kind"`
	Submitter string `json:"submitter"`
	// Content is the decision or execution report as accepted (canonical).
	Content string `json:"content"`
	// LoggedAt is the sequencer's clock, RFC 3339 with any offset.
	LoggedAt   string `json:"logged_at"`
	TTLSeconds int    `json:"ttl_seconds"`
	// Leaf is the entry: the leaf bytes.
	Leaf string `json:"leaf"`
	// LeafHash is SHA-256(0x00 ‖ leaf), hex.
	LeafHash string `json:"leaf_hash"`
}

// BadEntry is one vector of entries/invalid.json: a leaf ParseEntry must
// refuse.
type BadEntry struct {
	Name string `json:"name"`
	Leaf string `json:"leaf"`
	Why  string `json:"why"`
}

// Files returns every vector file, by its path under testdata.
func Files() (map[string][]byte, error) {
	out := make(map[string][]byte)
	signer, err := note.NewSigner(logtest.SignerKey)
	if err != nil {
		return nil, fmt.Errorf("failed to load the test key: %w", err)
	}
	out["README.md"] = []byte(readme)
	out["keys/log.key"] = []byte(logtest.SignerKey + "\n")
	out["keys/log.vkey"] = []byte(logtest.VerifierKey + "\n")
	out["keys/other.key"] = []byte(logtest.OtherSignerKey + "\n")
	out["keys/other.vkey"] = []byte(logtest.OtherVerifierKey + "\n")

	canon := make(map[string][]byte) // decision name -> canonical
	for _, v := range ValidDecisions() {
		parse := log.ParseDecision
		if LoggedOnly(v.Name) {
			parse = log.ParseLoggedDecision
		}
		d, err := parse([]byte(v.Body), NowTime())
		if err != nil {
			return nil, fmt.Errorf("valid decision %q: %w", v.Name, err)
		}
		out["decisions/valid/"+v.Name+".json"] = []byte(v.Body)
		out["decisions/valid/"+v.Name+".canonical"] = d.Canonical
		canon[v.Name] = d.Canonical
	}
	for _, v := range ValidExecutions() {
		e, err := log.ParseExecution([]byte(v.Body), NowTime())
		if err != nil {
			return nil, fmt.Errorf("valid execution %q: %w", v.Name, err)
		}
		out["executions/valid/"+v.Name+".json"] = []byte(v.Body)
		out["executions/valid/"+v.Name+".canonical"] = e.Canonical
		canon["execution-"+v.Name] = e.Canonical
	}
	for path, vs := range map[string][]Invalid{"decisions/invalid.json": InvalidDecisions(), "executions/invalid.json": InvalidExecutions()} {
		names := make(map[string]bool)
		for _, v := range vs {
			if names[v.Name] {
				return nil, fmt.Errorf("%s: two vectors named %q", path, v.Name)
			}
			names[v.Name] = true
		}
		if out[path], err = encode(vs); err != nil {
			return nil, err
		}
	}

	entries, err := entryVectors(canon)
	if err != nil {
		return nil, err
	}
	if out["entries/valid.json"], err = encode(entries); err != nil {
		return nil, err
	}
	if out["entries/invalid.json"], err = encode(BadEntries()); err != nil {
		return nil, err
	}

	// The golden log: the entries, in order.
	tree := testonly.New(rfc6962.DefaultHasher)
	empty, err := log.SignCheckpoint(signer, 0, [32]byte(tree.Hash()))
	if err != nil {
		return nil, err
	}
	out["checkpoints/empty.note"] = empty.Note
	for _, e := range entries {
		tree.AppendData([]byte(e.Leaf))
	}
	cp, err := log.SignCheckpoint(signer, tree.Size(), [32]byte(tree.Hash()))
	if err != nil {
		return nil, err
	}
	out["checkpoints/golden.note"] = cp.Note
	golden := &goldenLog{checkpoint: cp, leaves: map[string][]byte{}, receipts: map[string]*log.Receipt{}, claims: map[string]*log.ArtifactClaims{}}
	for i, e := range entries {
		p, err := tree.InclusionProof(uint64(i), tree.Size())
		if err != nil {
			return nil, err
		}
		proof := make([][32]byte, len(p))
		for j := range p {
			proof[j] = [32]byte(p[j])
		}
		leaf := []byte(e.Leaf)
		pe, err := log.ParseEntry(leaf)
		if err != nil {
			return nil, fmt.Errorf("entry vector %q: %w", e.Name, err)
		}
		r := log.NewReceipt(pe.ID, uint64(i), leaf, cp, proof)
		golden.names = append(golden.names, e.Name)
		golden.leaves[e.Name], golden.receipts[e.Name] = leaf, r
		if out["receipts/"+e.Name+".json"], err = encode(r); err != nil {
			return nil, err
		}
		out["receipts/"+e.Name+".tlog-proof"] = []byte(r.TLogProof)
		if pe.Decision != nil && pe.Decision.Outcome == log.OutcomeAllow {
			res := &log.Result{Receipt: r, Created: true, Checkpoint: cp, LoggedAt: pe.LoggedAt, AuthorizedUntil: pe.AuthorizedUntil}
			claims, err := log.NewArtifactClaims(signer.Name(), Audience, pe.Decision, res)
			if err != nil {
				return nil, err
			}
			if out["artifacts/"+e.Name+".claims.json"], err = claims.Payload(); err != nil {
				return nil, err
			}
			golden.claims[e.Name] = claims
		}
	}
	if err := verifyFiles(out, golden); err != nil {
		return nil, err
	}
	return out, nil
}

// encode is indented JSON without HTML escaping, ending in a newline.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("failed to encode a vector: %w", err)
	}
	return b.Bytes(), nil
}

// Body is a named request body.
type Body struct {
	Name string
	Body string
}

// ValidDecisions are the bodies of decisions/valid/*.json.
func ValidDecisions() []Body {
	return []Body{
		{"minimal", `{"id":"d-1","outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"agent-7","action":"deploy","policy":{"id":"prod-deploy"}}`},
		{"deny", `{"id":"d-2","outcome":"deny","decided_at":"2026-11-25T17:59:59.5Z","subject":"agent-7","action":"delete","resource":"db/prod","policy":{"id":"prod-deploy","version":"v3"},"reasons":["outside the change window"]}`},
		{"full", `{
  "sequence": 42,
  "context": {"region": "eu-west-1", "replicas": 3, "ratio": 0.25, "tags": ["b", "a"], "nested": {"z": null, "a": true, "f": false}},
  "parent_id": "d-1",
  "reasons": ["policy prod-deploy allows deploy", "change window open"],
  "input_digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  "policy": {"digest": "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "version": "2026-11-01", "id": "prod-deploy"},
  "resource": "k8s://prod/payments/deployment/api",
  "action": "deploy",
  "subject": "spiffe://example.org/agent-7",
  "decided_at": "2026-11-25T19:00:00+01:00",
  "outcome": "allow",
  "id": "d-3"
}
`},
		// Escapes and the RFC 8785 key order (UTF-16 code units: U+1F600
		// sorts before U+FF61).
		{"escapes", `{"id":"d-4","outcome":"allow","decided_at":"2026-11-25T18:00:00Z",` +
			`"subject":"agent \"7\" \u00e9\u20ac\ud83d\ude00 <&> \u2028","action":"line1\nline2\t\/\b\f\r",` +
			`"policy":{"id":"p\u0000\u001f\u007f"},` +
			`"context":{"\uff61":0,"\ud83d\ude00":1,"\u20ac":2,"\u00e9":3,"a":4,"A":5,"":6,"aa":7}}`},
		// Numbers are logged in RFC 8785 form.
		{"numbers", `{"id":"d-5","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"},` +
			`"context":{"int":1,"float":1.0,"exp":1e3,"Exp":1E+3,"negzero":-0,"tenth":0.1,"small":1E-7,"tiny":5e-324,` +
			`"max_safe":9007199254740992,"min_safe":-9007199254740992,"big":4.5e15,"scaled":123.456e2,` +
			`"pi":3.14159265358979323846,"third":0.333333333333333314829616256247390992939472198486328125,"list":[1e0,-1.5,2e-2]}}`},
		// Every length at its maximum, counted in code points.
		{"limits", `{"id":"` + strings.Repeat("i", 128) + `","outcome":"allow","decided_at":"2026-11-25T18:05:00Z",` +
			`"subject":"` + strings.Repeat("é", 256) + `","action":"` + strings.Repeat("😀", 256) + `",` +
			`"resource":"` + strings.Repeat("€", 1024) + `",` +
			`"policy":{"id":"` + strings.Repeat(`\u00e9`, 256) + `","version":"` + strings.Repeat("v", 256) + `"},` +
			`"reasons":["` + strings.Repeat("é", 1024) + `"` + strings.Repeat(`,"r"`, 31) + `],` +
			`"parent_id":"` + strings.Repeat("p", 128) + `","sequence":9007199254740991}`},
		{"id-charset", `{"id":"A.b_c:d-9","outcome":"allow","decided_at":"2026-11-25T18:05:00.000+00:00","subject":"s","action":"a","policy":{"id":"p"},"parent_id":"0","sequence":1}`},
		{"empty-collections", `{"id":"Batch","outcome":"deny","decided_at":"2026-11-25T13:05:00-05:00","subject":"s","action":"a","policy":{"id":"p"},"reasons":[],"context":{}}`},
	}
}

// LoggedOnly reports whether the valid decision vector name is valid only
// as the content of a logged entry: accepted at submission before v1.1,
// refused since (log.ParseDecision: control characters in short fields),
// and still valid in every entry that holds it (log.ParseLoggedDecision,
// log.ParseEntry). Its canonical form is the one those entries hold.
func LoggedOnly(name string) bool {
	return name == "escapes"
}

// ValidExecutions are the bodies of executions/valid/*.json.
func ValidExecutions() []Body {
	return []Body{
		{"minimal", `{"id":"e-1","decision_id":"d-1","status":"started","at":"2026-11-25T18:00:01Z"}`},
		{"full", `{"context":{"exit_code":0,"duration_ms":1234.50},"result_digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","runtime":"runner-eu-1","at":"2026-11-25T18:01:00.123Z","status":"succeeded","decision_id":"d-3","id":"e-2"}`},
		{"failed", `{"id":"e-3","decision_id":"d-3","status":"failed","at":"2026-11-25T18:05:00Z","runtime":"` + strings.Repeat("ü", 256) + `"}`},
		{"aborted", `{"id":"e-4","decision_id":"Batch","status":"aborted","at":"2026-11-25T18:00:00Z"}`},
	}
}

// obj builds a JSON object from members written as raw JSON, in order; a
// member whose value is "" is left out.
func obj(members ...string) string {
	var parts []string
	for i := 0; i < len(members); i += 2 {
		if members[i+1] != "" {
			parts = append(parts, fmt.Sprintf("%q:%s", members[i], members[i+1]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// decisionWith is the minimal decision with some members replaced (raw
// JSON; "" deletes) or added.
func decisionWith(changes ...string) string {
	fields := []string{
		"id", `"d-1"`,
		"outcome", `"allow"`,
		"decided_at", `"2026-11-25T18:00:00Z"`,
		"subject", `"agent-7"`,
		"action", `"deploy"`,
		"policy", `{"id":"prod-deploy"}`,
	}
	return with(fields, changes)
}

func executionWith(changes ...string) string {
	fields := []string{
		"id", `"e-1"`,
		"decision_id", `"d-1"`,
		"status", `"started"`,
		"at", `"2026-11-25T18:00:01Z"`,
	}
	return with(fields, changes)
}

// With returns the JSON object of fields (names and raw JSON values, in
// order) with changes: a member replaced ("" deletes it) or added.
func With(fields []string, changes ...string) string { return with(fields, changes) }

func with(fields, changes []string) string {
	fields = append([]string(nil), fields...)
outer:
	for i := 0; i < len(changes); i += 2 {
		for j := 0; j < len(fields); j += 2 {
			if fields[j] == changes[i] {
				fields[j+1] = changes[i+1]
				continue outer
			}
		}
		fields = append(fields, changes[i], changes[i+1])
	}
	return obj(fields...)
}

func q(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func str(s string) *string { return &s }

// invalid is shorthand for a vector with a UTF-8 body.
func invalid(name, body, code, field string) Invalid {
	return Invalid{Name: name, Body: str(body), WantCode: code, WantField: field}
}

const (
	digestA = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	hex63   = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7a"
)

// jsonInvalid are bodies that are not strict JSON objects, for both
// decisions and executions.
func jsonInvalid(base string) []Invalid {
	const code = "invalid_json"
	bin := func(name string, b []byte) Invalid { return Invalid{Name: name, BodyBase64: b, WantCode: code} }
	return []Invalid{
		invalid("empty body", "", code, ""),
		invalid("whitespace only", " \n", code, ""),
		invalid("truncated", base[:len(base)-1], code, ""),
		invalid("trailing garbage", base+" x", code, ""),
		invalid("two objects", base+base, code, ""),
		invalid("array", "["+base+"]", code, ""),
		invalid("string", `"id"`, code, ""),
		invalid("number", `1`, code, ""),
		invalid("null", `null`, code, ""),
		invalid("true", `true`, code, ""),
		invalid("duplicate key", strings.Replace(base, `{`, `{"id":"x",`, 1), code, ""),
		invalid("duplicate key by escape", strings.Replace(base, `{`, `{"i\u0064":"x",`, 1), code, ""),
		invalid("duplicate key in context", strings.Replace(base, `{`, `{"context":{"a":1,"a":1},`, 1), code, ""),
		invalid("lone high surrogate", strings.Replace(base, `{`, `{"context":{"a":"\ud800"},`, 1), code, ""),
		invalid("lone low surrogate", strings.Replace(base, `{`, `{"context":{"a":"\udc00"},`, 1), code, ""),
		invalid("high surrogate then not a low one", strings.Replace(base, `{`, `{"context":{"a":"\ud800\u0041"},`, 1), code, ""),
		invalid("surrogate in a key", strings.Replace(base, `{`, `{"context":{"\udbff":1},`, 1), code, ""),
		bin("invalid UTF-8 byte", []byte(strings.Replace(base, `{`, "{\"context\":{\"a\":\"\xff\"},", 1))),
		bin("overlong UTF-8", []byte(strings.Replace(base, `{`, "{\"context\":{\"a\":\"\xc0\xaf\"},", 1))),
		bin("UTF-8 encoded surrogate", []byte(strings.Replace(base, `{`, "{\"context\":{\"a\":\"\xed\xa0\x80\"},", 1))),
		bin("truncated UTF-8", []byte(strings.Replace(base, `{`, "{\"context\":{\"a\":\"\xe2\x82\"},", 1))),
		bin("invalid UTF-8 outside strings", []byte(strings.Replace(base, `{`, "{\xff", 1))),
		invalid("byte order mark", "\ufeff"+base, code, ""),
		invalid("raw control character", strings.Replace(base, `{`, "{\"context\":{\"a\":\"\t\"},", 1), code, ""),
		invalid("bad escape", strings.Replace(base, `{`, `{"context":{"a":"\x"},`, 1), code, ""),
		invalid("single quotes", strings.ReplaceAll(base, `"`, `'`), code, ""),
		invalid("trailing comma", strings.Replace(base, `}`, `,}`, 1), code, ""),
		invalid("leading zero", strings.Replace(base, `{`, `{"context":{"a":01},`, 1), code, ""),
		invalid("plus sign", strings.Replace(base, `{`, `{"context":{"a":+1},`, 1), code, ""),
		invalid("NaN", strings.Replace(base, `{`, `{"context":{"a":NaN},`, 1), code, ""),
		invalid("hex number", strings.Replace(base, `{`, `{"context":{"a":0x10},`, 1), code, ""),
		invalid("comment", "/* c */"+base, code, ""),
	}
}

// InvalidDecisions are the vectors of decisions/invalid.json: one rule
// broken in each.
func InvalidDecisions() []Invalid {
	const code = "invalid_decision"
	d := decisionWith
	v := jsonInvalid(d())
	add := func(name, body, field string) { v = append(v, invalid(name, body, code, field)) }

	// Required fields.
	for _, f := range []string{"id", "outcome", "decided_at", "subject", "action", "policy"} {
		add("missing "+f, d(f, ""), f)
		add("null "+f, d(f, "null"), f)
	}
	add("missing policy.id", d("policy", `{"version":"v1"}`), "policy.id")
	add("null policy.id", d("policy", `{"id":null}`), "policy.id")
	add("empty object", `{}`, "id")
	// Optional fields are never null.
	for _, f := range []string{"resource", "input_digest", "reasons", "parent_id", "context", "sequence"} {
		add("null "+f, d(f, "null"), f)
	}
	add("null policy.version", d("policy", `{"id":"p","version":null}`), "policy.version")
	add("null policy.digest", d("policy", `{"id":"p","digest":null}`), "policy.digest")
	add("null reason", d("reasons", `["a",null]`), "reasons[1]")

	// Unknown fields, at every level of the schema.
	add("unknown field", d("extra", `1`), "extra")
	add("unknown field, case", d("Id", `"x"`), "Id")
	add("unknown policy field", d("policy", `{"id":"p","owner":"x"}`), "policy.owner")

	// Types.
	add("id a number", d("id", `1`), "id")
	add("outcome a boolean", d("outcome", `true`), "outcome")
	add("subject an array", d("subject", `["a"]`), "subject")
	add("action an object", d("action", `{}`), "action")
	add("resource a number", d("resource", `1`), "resource")
	add("policy a string", d("policy", `"prod-deploy"`), "policy")
	add("policy an array", d("policy", `[{"id":"p"}]`), "policy")
	add("policy.id a number", d("policy", `{"id":7}`), "policy.id")
	add("reasons a string", d("reasons", `"a"`), "reasons")
	add("reasons an object", d("reasons", `{"0":"a"}`), "reasons")
	add("reason a number", d("reasons", `["a",1]`), "reasons[1]")
	add("context an array", d("context", `[]`), "context")
	add("context a string", d("context", `"{}"`), "context")
	add("context a number", d("context", `1`), "context")
	add("decided_at a number", d("decided_at", `1764093600`), "decided_at")

	// Lengths, in code points.
	add("id empty", d("id", `""`), "id")
	add("id 129 chars", d("id", q(strings.Repeat("i", 129))), "id")
	add("subject empty", d("subject", `""`), "subject")
	add("subject 257 chars", d("subject", q(strings.Repeat("s", 257))), "subject")
	add("subject 257 two-byte chars", d("subject", q(strings.Repeat("é", 257))), "subject")
	add("action empty", d("action", `""`), "action")
	add("action 257 four-byte chars", d("action", q(strings.Repeat("😀", 257))), "action")
	add("action 257 escaped surrogate pairs", d("action", `"`+strings.Repeat(`\ud83d\ude00`, 257)+`"`), "action")
	add("resource empty", d("resource", `""`), "resource")
	add("resource 1025 chars", d("resource", q(strings.Repeat("€", 1025))), "resource")
	add("policy.id empty", d("policy", `{"id":""}`), "policy.id")
	add("policy.id 257 chars", d("policy", `{"id":`+q(strings.Repeat("p", 257))+`}`), "policy.id")
	add("policy.version empty", d("policy", `{"id":"p","version":""}`), "policy.version")
	add("policy.version 257 chars", d("policy", `{"id":"p","version":`+q(strings.Repeat("é", 257))+`}`), "policy.version")
	add("parent_id 129 chars", d("parent_id", q(strings.Repeat("p", 129))), "parent_id")
	add("parent_id empty", d("parent_id", `""`), "parent_id")
	add("33 reasons", d("reasons", "["+strings.Repeat(`"r",`, 32)+`"r"]`), "reasons")
	add("reason empty", d("reasons", `["a",""]`), "reasons[1]")
	add("reason 1025 chars", d("reasons", `["a","b","c",`+q(strings.Repeat("é", 1025))+`]`), "reasons[3]")

	// id syntax.
	for _, id := range []string{"-a", ".a", "_a", ":a", "a b", "a/b", "a?b", "é", "a\u0000", "a\n", "a#b", " a"} {
		add(fmt.Sprintf("id %q", id), d("id", q(id)), "id")
	}
	add("id batch", d("id", `"batch"`), "id")
	add("parent_id with a slash", d("parent_id", `"a/b"`), "parent_id")
	add("parent_id batch", d("parent_id", `"batch"`), "parent_id")

	// outcome.
	for _, o := range []string{"Allow", "ALLOW", "permit", "", "allow "} {
		add(fmt.Sprintf("outcome %q", o), d("outcome", q(o)), "outcome")
	}

	// decided_at: RFC 3339, at most 5 minutes after now.
	for _, ts := range []string{
		"2026-11-25", "2026-11-25T18:00:00", "2026-11-25 18:00:00Z", "2026-11-25T18:00Z",
		"2026-11-25T18:00:00+0100", "2026-11-25T18:00:00.Z", "2026-13-25T18:00:00Z", "2026-11-31T18:00:00Z",
		"2026-11-25T24:00:00Z", "25/11/2026", "yesterday", "",
	} {
		add(fmt.Sprintf("decided_at %q", ts), d("decided_at", q(ts)), "decided_at")
	}
	add("decided_at 1ns past the limit", d("decided_at", `"2026-11-25T18:05:00.000000001Z"`), "decided_at")
	add("decided_at 1s past the limit", d("decided_at", `"2026-11-25T18:05:01Z"`), "decided_at")
	add("decided_at past the limit, with an offset", d("decided_at", `"2026-11-25T19:05:01+01:00"`), "decided_at")
	add("decided_at far in the future", d("decided_at", `"2126-11-25T18:00:00Z"`), "decided_at")

	// Digests.
	for _, c := range [][2]string{
		{"63 hex digits", "sha256:" + hex63},
		{"65 hex digits", digestA + "0"},
		{"uppercase prefix", strings.ToUpper(digestA[:7]) + digestA[7:]},
		{"uppercase hex", "sha256:" + strings.ToUpper(digestA[7:])},
		{"other algorithm", "sha512:" + digestA[7:]},
		{"no prefix", digestA[7:]},
		{"empty", ""},
		{"prefix only", "sha256:"},
		{"non-hex", "sha256:" + strings.Repeat("g", 64)},
	} {
		add("input_digest "+c[0], d("input_digest", q(c[1])), "input_digest")
		add("policy.digest "+c[0], d("policy", `{"id":"p","digest":`+q(c[1])+`}`), "policy.digest")
	}

	// context: free-form, but an object of at most 16 KiB canonical,
	// without integers beyond ±2^53.
	for _, c := range [][2]string{
		{"21-digit integer", "123456789012345678901"},
		{"1e20", "1e20"},
		{"2^53+1", "9007199254740993"},
		{"-(2^53+1)", "-9007199254740993"},
		{"2^53+1 with a zero fraction", "9007199254740993.0"},
		{"2^53+1 in exponent form", "9.007199254740993e15"},
		{"2^54", "18014398509481984"},
		{"1e300", "1e300"},
		{"-1E21", "-1E21"},
		{"1.5e300", "1.5e300"},
		// Not an integer, but logged as 9007199254740994: the decision as
		// accepted would hold an integer beyond 2^53.
		{"2^53+1.5", "9007199254740993.5"},
	} {
		add("context number "+c[0], d("context", `{"n":`+c[1]+`}`), "context")
		add("context number "+c[0]+", nested", d("context", `{"a":[{"b":[`+c[1]+`]}]}`), "context")
	}

	// sequence: an integer literal 1 … 2^53-1.
	for _, s := range []string{"0", "-1", "1.0", "1e3", "1E3", `"1"`, "9007199254740992", "18446744073709551616", "1.5", "true", "[1]", "-0", "0.0"} {
		add("sequence "+s, d("sequence", s), "sequence")
	}
	return v
}

// InvalidExecutions are the vectors of executions/invalid.json.
func InvalidExecutions() []Invalid {
	const code = "invalid_execution"
	e := executionWith
	v := jsonInvalid(e())
	add := func(name, body, field string) { v = append(v, invalid(name, body, code, field)) }
	for _, f := range []string{"id", "decision_id", "status", "at"} {
		add("missing "+f, e(f, ""), f)
		add("null "+f, e(f, "null"), f)
	}
	for _, f := range []string{"runtime", "result_digest", "context"} {
		add("null "+f, e(f, "null"), f)
	}
	add("unknown field", e("outcome", `"allow"`), "outcome")
	add("decision fields are unknown here", e("subject", `"s"`), "subject")
	add("id empty", e("id", `""`), "id")
	add("id 129 chars", e("id", q(strings.Repeat("e", 129))), "id")
	add("id batch", e("id", `"batch"`), "id")
	add("id with a space", e("id", `"e 1"`), "id")
	add("decision_id with a slash", e("decision_id", `"d/1"`), "decision_id")
	add("decision_id 129 chars", e("decision_id", q(strings.Repeat("d", 129))), "decision_id")
	for _, s := range []string{"done", "Started", "", "succeeded "} {
		add(fmt.Sprintf("status %q", s), e("status", q(s)), "status")
	}
	add("status a number", e("status", `1`), "status")
	add("at not RFC 3339", e("at", `"2026-11-25T18:00:00"`), "at")
	add("at 1ns past the limit", e("at", `"2026-11-25T18:05:00.000000001Z"`), "at")
	add("runtime empty", e("runtime", `""`), "runtime")
	add("runtime 257 chars", e("runtime", q(strings.Repeat("ü", 257))), "runtime")
	add("result_digest uppercase", e("result_digest", q("sha256:"+strings.ToUpper(digestA[7:]))), "result_digest")
	add("result_digest short", e("result_digest", q("sha256:"+hex63)), "result_digest")
	add("context an array", e("context", `[1]`), "context")
	add("context number 2^53+1", e("context", `{"n":9007199254740993}`), "context")
	add("context number 1e20", e("context", `{"n":1e20}`), "context")
	return v
}

// entryVectors are the vectors of entries/valid.json, built from the
// canonical decisions and execution reports.
func entryVectors(canon map[string][]byte) ([]Entry, error) {
	specs := []struct {
		name, content, submitter, loggedAt string
		ttl                                int
	}{
		{"allow", "minimal", "anonymous", "2026-11-25T18:00:00.123456789Z", 300},
		{"deny", "deny", "control-plane-eu", "2026-11-25T18:00:00.5Z", 300},
		{"allow-full", "full", "spiffe://example.org/control-plane", "2026-11-25T18:00:01Z", 300},
		{"execution", "execution-minimal", "runtime-1", "2026-11-25T18:00:02.000000001Z", 300},
		{"allow-escapes", "escapes", "svc <\"ops\"> & é", "2026-11-25T19:00:02.999999999+01:00", 1},
		{"allow-limits", "limits", "anonymous", "2026-11-25T18:00:03.999999999Z", 86400},
		{"execution-full", "execution-full", "runtime-1", "2026-11-25T18:01:00.25Z", 300},
		{"deny-numbers", "numbers", "anonymous", "2026-11-25T18:01:01Z", 300},
	}
	var out []Entry
	for _, s := range specs {
		content, ok := canon[s.content]
		if !ok {
			return nil, fmt.Errorf("entry vector %q: no content %q", s.name, s.content)
		}
		loggedAt, err := time.Parse(time.RFC3339Nano, s.loggedAt)
		if err != nil {
			return nil, err
		}
		sub, kind, err := Submission(content, strings.HasPrefix(s.content, "execution-"), s.submitter, loggedAt)
		if err != nil {
			return nil, fmt.Errorf("entry vector %q: %w", s.name, err)
		}
		e, err := log.NewEntry(sub, loggedAt, time.Duration(s.ttl)*time.Second)
		if err != nil {
			return nil, fmt.Errorf("entry vector %q: %w", s.name, err)
		}
		lh := log.LeafHash(e.Leaf)
		out = append(out, Entry{
			Name: s.name, Kind: kind, Submitter: s.submitter, Content: string(content),
			LoggedAt: s.loggedAt, TTLSeconds: s.ttl, Leaf: string(e.Leaf), LeafHash: hex.EncodeToString(lh[:]),
		})
	}
	return out, nil
}

// Submission parses content, the decision or execution report of an entry
// logged at now, and wraps it for submitter. It returns the kind's name too.
func Submission(content []byte, execution bool, submitter string, now time.Time) (*log.Submission, string, error) {
	if execution {
		e, err := log.ParseLoggedExecution(content, now)
		if err != nil {
			return nil, "", err
		}
		return log.ExecutionSubmission(e, submitter), "execution", nil
	}
	d, err := log.ParseLoggedDecision(content, now)
	if err != nil {
		return nil, "", err
	}
	return log.DecisionSubmission(d, submitter), "decision", nil
}

// BadEntries are the vectors of entries/invalid.json.
func BadEntries() []BadEntry {
	const (
		dec  = `{"action":"deploy","decided_at":"2026-11-25T18:00:00Z","id":"d-1","outcome":"allow","policy":{"id":"prod-deploy"},"subject":"agent-7"}`
		deny = `{"action":"deploy","decided_at":"2026-11-25T18:00:00Z","id":"d-1","outcome":"deny","policy":{"id":"prod-deploy"},"subject":"agent-7"}`
		exe  = `{"at":"2026-11-25T18:00:01Z","decision_id":"d-1","id":"e-1","status":"started"}`
		at   = `"logged_at":"2026-11-25T18:00:00.123456789Z"`
		au   = `"authorized_until":"2026-11-25T18:05:00Z"`
	)
	ok := `{` + au + `,"decision":` + dec + `,` + at + `,"submitter":"anonymous","v":1}`
	b := func(name, leaf, why string) BadEntry { return BadEntry{name, leaf, why} }
	return []BadEntry{
		b("not JSON", `{`, "not JSON"),
		b("empty", ``, "not JSON"),
		b("array", `[`+ok+`]`, "not an object"),
		b("white space", `{`+au+`, "decision":`+dec+`,`+at+`,"submitter":"anonymous","v":1}`, "not canonical"),
		b("trailing newline", ok+"\n", "not canonical"),
		b("key order", `{"decision":`+dec+`,`+au+`,`+at+`,"submitter":"anonymous","v":1}`, "not canonical"),
		b("escaped character", strings.Replace(ok, `"anonymous"`, `"anonym\u006fus"`, 1), "not canonical"),
		b("v 2", strings.Replace(ok, `"v":1`, `"v":2`, 1), "unknown version"),
		b("v 0", strings.Replace(ok, `"v":1`, `"v":0`, 1), "unknown version"),
		b("v a string", strings.Replace(ok, `"v":1`, `"v":"1"`, 1), "v is not a number"),
		b("no v", strings.Replace(ok, `,"v":1`, ``, 1), "no version"),
		b("unknown field", strings.Replace(ok, `,"v":1`, `,"v":1,"x":1`, 1), "unknown field"),
		b("member name in another case", `{"Submitter":"anonymous",`+au+`,"decision":`+dec+`,`+at+`,"v":1}`, "unknown field"),
		b("member name by Unicode case folding", `{`+au+`,"decision":`+dec+`,`+at+`,"v":1,"ſubmitter":"anonymous"}`, "unknown field"),
		b("decision twice, in two cases", `{`+au+`,"deCision":`+deny+`,"decision":`+dec+`,`+at+`,"submitter":"anonymous","v":1}`, "unknown field"),
		b("no submitter", strings.Replace(ok, `,"submitter":"anonymous"`, ``, 1), "no submitter"),
		b("empty submitter", strings.Replace(ok, `"anonymous"`, `""`, 1), "empty submitter"),
		b("submitter a number", strings.Replace(ok, `"anonymous"`, `1`, 1), "submitter not a string"),
		b("no logged_at", strings.Replace(ok, `,`+at, ``, 1), "no logged_at"),
		b("logged_at with 6 fractional digits", strings.Replace(ok, `.123456789Z`, `.123456Z`, 1), "logged_at not 9 fractional digits"),
		b("logged_at without fraction", strings.Replace(ok, `.123456789Z`, `Z`, 1), "logged_at not 9 fractional digits"),
		b("logged_at with an offset", strings.Replace(ok, `18:00:00.123456789Z`, `19:00:00.123456789+01:00`, 1), "logged_at not UTC"),
		b("no decision nor execution", `{`+at+`,"submitter":"anonymous","v":1}`, "no content"),
		b("decision and execution", `{`+au+`,"decision":`+dec+`,"execution":`+exe+`,`+at+`,"submitter":"anonymous","v":1}`, "two contents"),
		b("decision null", `{`+au+`,"decision":null,`+at+`,"submitter":"anonymous","v":1}`, "decision not an object"),
		b("decision a string", `{`+au+`,"decision":"d-1",`+at+`,"submitter":"anonymous","v":1}`, "decision not an object"),
		b("invalid decision", strings.Replace(ok, `"subject":"agent-7"`, `"subject":""`, 1), "the decision breaks the schema"),
		b("decision with an unknown field", strings.Replace(ok, `"subject":"agent-7"}`, `"subject":"agent-7","z":1}`, 1), "the decision breaks the schema"),
		b("decided_at too far after logged_at", strings.Replace(ok, `"decided_at":"2026-11-25T18:00:00Z"`, `"decided_at":"2026-11-25T18:05:01Z"`, 1), "decided_at more than 5 minutes after logged_at"),
		b("allow without authorized_until", strings.Replace(ok, au+`,`, ``, 1), "an allow has authorized_until"),
		b("deny with authorized_until", `{`+au+`,"decision":`+deny+`,`+at+`,"submitter":"anonymous","v":1}`, "a deny has no authorized_until"),
		b("deny with an empty authorized_until", `{"authorized_until":"","decision":`+deny+`,`+at+`,"submitter":"anonymous","v":1}`, "a deny has no authorized_until"),
		b("allow with an empty authorized_until", strings.Replace(ok, au, `"authorized_until":""`, 1), "authorized_until not a timestamp"),
		b("authorized_until with a fraction", strings.Replace(ok, `18:05:00Z`, `18:05:00.5Z`, 1), "authorized_until not whole seconds"),
		b("authorized_until not a string", strings.Replace(ok, `"2026-11-25T18:05:00Z"`, `1764093900`, 1), "authorized_until not a string"),
		b("execution with authorized_until", `{`+au+`,"execution":`+exe+`,`+at+`,"submitter":"runtime-1","v":1}`, "an execution has no authorized_until"),
		b("execution with an empty authorized_until", `{"authorized_until":"","execution":`+exe+`,`+at+`,"submitter":"runtime-1","v":1}`, "an execution has no authorized_until"),
		b("invalid execution", strings.Replace(`{"execution":`+exe+`,`+at+`,"submitter":"runtime-1","v":1}`, `"started"`, `"done"`, 1), "the execution breaks the schema"),
	}
}

const readme = `# Test vectors

Shared by the documentation, the tests and other implementations of the
wire contract. Generated by ` + "`go run ./testdata/gen.go`" + ` from
the inputs in log/logtest/vectors (package vectors); do not edit by hand. CI regenerates them
and fails on any difference.

Every vector is checked at the reference time ` + "`" + Now + "`" + `: decisions and
execution reports may be dated up to five minutes after it.

| path | holds |
|---|---|
| keys/log.key, keys/log.vkey | the note signer and verifier keys of the test log (origin example.com/govlog); test-only, public |
| keys/other.key, keys/other.vkey | another key with the same name: checkpoints it signs are not the test log's |
| decisions/valid/NAME.json | a valid decision body, as submitted |
| decisions/valid/NAME.canonical | the decision as accepted: its RFC 8785 canonical form |
| decisions/invalid.json | bodies to refuse: name, body (or body_base64 when not UTF-8), want_code (invalid_json, invalid_decision), want_field |
| executions/valid/, executions/invalid.json | the same for execution reports (want_code invalid_json, invalid_execution) |
| entries/valid.json | submissions and the entries they make: kind, submitter, content (canonical), logged_at, ttl_seconds, leaf, leaf_hash (hex SHA-256 of 0x00 and the leaf) |
| entries/invalid.json | leaves an auditor must refuse, with the reason |
| checkpoints/empty.note | the signed checkpoint of the empty test log |
| checkpoints/golden.note | the signed checkpoint of the golden log: the leaves of entries/valid.json, in order |
| receipts/NAME.json, receipts/NAME.tlog-proof | the receipt of each golden log entry against golden.note, and its C2SP tlog-proof |
| artifacts/NAME.claims.json | the authorization artifact claims (the JWT payload) of each allow entry of the golden log, with aud ` + "`" + Audience + "`" + ` |
| verify/FAMILY.json | the cases every verifier, in any language, must accept or refuse: checkpoints, policies, proofs, consistency, receipts, artifacts, entries, jcs (see verify/README.md) |

Bodies of 64 KiB and more (too_large) and contexts of 16 KiB are built by
the tests rather than stored here.
`
