package vectors

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/govlog/govlog/log"
)

// bundleLog is the log of the bundle vectors: the golden log's leaves, then
// the key entry of test-artifact-1 (index 8) and a revocation.
type bundleLog struct {
	k      *verifyKeys
	leaves [][]byte
}

// proof returns the inclusion proof of leaf i in the tree of the first size
// leaves, and the checkpoint of that tree signed by s with the
// cosignatures of cos.
func (b *bundleLog) proof(i uint64, size int, s *rawSigner, cos ...*rawSigner) ([]string, string) {
	p, err := tlogProof(b.leaves[:size], i, func(n uint64, root []byte) []byte {
		t := body(s.name, n, root)
		text := t + "\n" + s.sign(t)
		for _, w := range cos {
			text += w.cosign(t, cosignedAt)
		}
		return []byte(text)
	})
	if err != nil {
		panic(err)
	}
	hashes := make([]string, len(p.Hashes))
	for j := range p.Hashes {
		hashes[j] = b64(p.Hashes[j][:])
	}
	return hashes, string(p.Checkpoint)
}

// bundleEntry is one item of a bundle's entries.
type bundleEntry struct {
	Index          uint64   `json:"index"`
	Entry          []byte   `json:"entry"`
	InclusionProof []string `json:"inclusion_proof"`
}

// bundleParts are the members of a bundle, written in their order by text.
type bundleParts struct {
	format, origin, vkey, checkpoint string
	query                            map[string]string
	entries                          []bundleEntry
	keys                             []json.RawMessage
	// raw replaces the encoding of entries or keys when set.
	rawEntries, rawKeys string
	omitKeys            bool
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (p *bundleParts) text() string {
	entries, keys := p.rawEntries, p.rawKeys
	if entries == "" {
		entries = mustJSON(p.entries)
	}
	if keys == "" {
		keys = mustJSON(p.keys)
	}
	s := `{"format":` + q(p.format) + `,"origin":` + q(p.origin) + `,"verifier_key":` + q(p.vkey) +
		`,"checkpoint":` + mustJSON(p.checkpoint) + `,"query":` + mustJSON(p.query) + `,"entries":` + entries
	if !p.omitKeys {
		s += `,"keys":` + keys
	}
	return s + "}"
}

func bundleCases(k *verifyKeys, g *goldenLog) ([]VerifyCase, error) {
	b := &bundleLog{k: k}
	for _, n := range g.names {
		b.leaves = append(b.leaves, g.leaves[n])
	}
	b.leaves = append(b.leaves, keyEntry(k.kid, k.artifact.Public().(ed25519.PublicKey)))
	const size = 9 // the golden log's 8 entries and the key entry
	keyIndex := uint64(8)
	pick := []uint64{0, 1, 2, 5, 8}
	entriesOf := func(s *rawSigner, n int, cos ...*rawSigner) ([]bundleEntry, string) {
		var es []bundleEntry
		var cp string
		for _, i := range pick {
			if int(i) >= n {
				continue
			}
			h, c := b.proof(i, n, s, cos...)
			es = append(es, bundleEntry{Index: i, Entry: b.leaves[i], InclusionProof: h})
			cp = c
		}
		return es, cp
	}
	keyItem := func(kid string, index uint64, receiptID string, leafIndex uint64, jwkText string) json.RawMessage {
		h, cp := b.proof(leafIndex, size, k.log)
		lh := log.LeafHash(b.leaves[leafIndex])
		hashes := make([][]byte, len(h))
		for j := range h {
			hashes[j] = mustB64(h[j])
		}
		p, err := tlogProof(b.leaves[:size], leafIndex, func(uint64, []byte) []byte { return []byte(cp) })
		if err != nil {
			panic(err)
		}
		r := compact(&log.Receipt{ID: receiptID, Index: leafIndex, LeafHash: lh[:], Entry: b.leaves[leafIndex], Checkpoint: cp,
			InclusionProof: hashes, TLogProof: string(p.Marshal())})
		return json.RawMessage(`{"kid":` + q(kid) + `,"jwk":` + jwkText + `,"index":` + fmt.Sprint(index) + `,"receipt":` + r + `}`)
	}
	logged, err := log.NewKeyContent(k.kid, k.artifact.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	var kc struct {
		JWK json.RawMessage `json:"jwk"`
	}
	if err := json.Unmarshal(logged.Canonical, &kc); err != nil {
		return nil, err
	}
	jwkText := string(kc.JWK)
	entries, cp := entriesOf(k.log, size)
	base := bundleParts{format: "govlog-evidence/v1", origin: k.log.name, vkey: k.log.vkey, checkpoint: cp,
		query: map[string]string{"subject": "agent-7"}, entries: entries,
		keys: []json.RawMessage{keyItem(k.kid, keyIndex, k.kid, keyIndex, jwkText)}}
	var cases []VerifyCase
	add := func(name, want, why string, p bundleParts, policy string) {
		c := VerifyCase{Name: name, Want: want, Why: why, LogKey: k.log.vkey, Bundle: str(p.text())}
		if policy != "" {
			c.Policy = str(policy)
		}
		if want == "ok" {
			c.Expect = &Expect{Size: u64(size), Entries: u64(uint64(len(p.entries)))}
		}
		cases = append(cases, c)
	}
	with := func(change func(p *bundleParts)) bundleParts {
		p := base
		p.entries = append([]bundleEntry(nil), base.entries...)
		p.keys = append([]json.RawMessage(nil), base.keys...)
		change(&p)
		return p
	}
	add("good", "ok", "5 entries of a log of 9, and its artifact key", base, "")
	add("no entries, no keys", "ok", "an export that matched nothing", with(func(p *bundleParts) { p.entries, p.keys = []bundleEntry{}, []json.RawMessage{} }), "")
	add("another query", "ok", "the query says what was asked; it is not evidence", with(func(p *bundleParts) { p.query = map[string]string{"kind": "key", "limit": "5"} }), "")

	// Witness policy.
	w := k.witnesses
	policy := fmt.Sprintf("witness w1 %s https://w1.witness.example\nwitness w2 %s https://w2.witness.example\ngroup g 2 w1 w2\nquorum g\n", w[0].vkey, w[1].vkey)
	cosigned, cosignedCP := entriesOf(k.log, size, w[0], w[1])
	add("policy satisfied", "ok", "", with(func(p *bundleParts) { p.entries, p.checkpoint = cosigned, cosignedCP }), policy)
	add("policy not satisfied", "fail", "the checkpoint has no cosignature", base, policy)

	// The checkpoint.
	flip := func(s string, i int) string { return s[:i] + string(s[i]^0x01) + s[i+1:] }
	add("checkpoint: size changed", "fail", "", with(func(p *bundleParts) { p.checkpoint = strings.Replace(cp, "\n9\n", "\n10\n", 1) }), "")
	add("checkpoint: a byte of the root hash changed", "fail", "", with(func(p *bundleParts) { p.checkpoint = flip(cp, len(k.log.name)+4) }), "")
	add("checkpoint: a byte of the signature changed", "fail", "", with(func(p *bundleParts) { p.checkpoint = flip(cp, len(cp)-10) }), "")
	_, otherCP := entriesOf(k.other, size)
	add("checkpoint: signed by another key of the same name", "fail", "", with(func(p *bundleParts) { p.checkpoint = otherCP }), "")
	add("checkpoint: without its signature", "fail", "", with(func(p *bundleParts) { p.checkpoint = cp[:strings.Index(cp, "\n\n")+2] }), "")

	// Entries.
	add("entries against another checkpoint", "fail", "proofs for the tree of 9 entries, the checkpoint of 8", with(func(p *bundleParts) {
		_, p.checkpoint = b.proof(0, size-1, k.log)
	}), "")
	add("proof: a hash changed", "fail", "", with(func(p *bundleParts) {
		h := append([]string(nil), p.entries[1].InclusionProof...)
		h[0] = b64(append(mustB64(h[0])[:31], mustB64(h[0])[31]^1))
		p.entries[1].InclusionProof = h
	}), "")
	add("proof: a hash missing", "fail", "", with(func(p *bundleParts) {
		p.entries[2].InclusionProof = p.entries[2].InclusionProof[1:]
	}), "")
	add("proof: a hash too many", "fail", "", with(func(p *bundleParts) {
		p.entries[2].InclusionProof = append(append([]string(nil), p.entries[2].InclusionProof...), p.entries[2].InclusionProof[0])
	}), "")
	add("proof: another entry's", "fail", "", with(func(p *bundleParts) { p.entries[0].InclusionProof = p.entries[1].InclusionProof }), "")
	add("entry: a byte changed", "fail", "", with(func(p *bundleParts) {
		e := append([]byte(nil), p.entries[3].Entry...)
		e[20] ^= 0x01
		p.entries[3].Entry = e
	}), "")
	add("entry: another entry's bytes", "fail", "", with(func(p *bundleParts) { p.entries[0].Entry = p.entries[1].Entry }), "")
	add("entries out of order", "fail", "entries come in increasing index order", with(func(p *bundleParts) { p.entries[0], p.entries[1] = p.entries[1], p.entries[0] }), "")
	add("an entry twice", "fail", "", with(func(p *bundleParts) { p.entries = append(p.entries[:2], p.entries[1:]...) }), "")
	add("an index beyond the checkpoint", "fail", "", with(func(p *bundleParts) { p.entries[4].Index = size }), "")
	good := mustJSON(base.entries)
	add("an index with a leading zero", "fail", "", with(func(p *bundleParts) { p.rawEntries = strings.Replace(good, `"index":5,`, `"index":05,`, 1) }), "")
	add("an index as a fraction", "fail", "", with(func(p *bundleParts) { p.rawEntries = strings.Replace(good, `"index":5,`, `"index":5.0,`, 1) }), "")
	add("an index as a string", "fail", "an index is a JSON number", with(func(p *bundleParts) { p.rawEntries = strings.Replace(good, `"index":5,`, `"index":"5",`, 1) }), "")
	add("a member name in another case", "fail", "member names are exact", with(func(p *bundleParts) { p.rawEntries = strings.Replace(good, `{"index":5,`, `{"Index":5,`, 1) }), "")
	add("an entry's member twice", "fail", "no duplicate members: parsers disagree on which one counts", with(func(p *bundleParts) {
		p.rawEntries = strings.Replace(good, `{"index":5,`, `{"index":4,"index":5,`, 1)
	}), "")
	add("a key's member twice", "fail", "", with(func(p *bundleParts) {
		p.rawKeys = strings.Replace(mustJSON(base.keys), `{"kid":"test-artifact-1",`, `{"kid":"test-artifact-0","kid":"test-artifact-1",`, 1)
	}), "")
	add("a query member twice", "fail", "", with(func(p *bundleParts) { p.query = nil }), "")
	cases[len(cases)-1].Bundle = str(strings.Replace(*cases[len(cases)-1].Bundle, `"query":null`, `"query":{"subject":"a","subject":"b"}`, 1))
	add("a query value not a string", "fail", "", with(func(p *bundleParts) { p.query = nil }), "")
	cases[len(cases)-1].Bundle = str(strings.Replace(*cases[len(cases)-1].Bundle, `"query":null`, `"query":{"limit":5}`, 1))
	for _, e := range base.entries {
		if std := b64(e.Entry); strings.HasSuffix(std, "=") {
			add("an entry without its base64 padding", "fail", "base64 is standard and canonical", with(func(p *bundleParts) {
				p.rawEntries = strings.Replace(good, q(std), q(strings.TrimRight(std, "=")), 1)
			}), "")
			break
		}
	}
	add("an entry without inclusion_proof", "fail", "", with(func(p *bundleParts) {
		p.rawEntries = strings.Replace(good, `,"inclusion_proof":`+mustJSON(base.entries[0].InclusionProof), "", 1)
	}), "")
	add("an entry with an unknown member", "fail", "", with(func(p *bundleParts) {
		p.rawEntries = strings.Replace(good, `{"index":0,`, `{"leaf_hash":"x","index":0,`, 1)
	}), "")
	add("entries not an array", "fail", "", with(func(p *bundleParts) { p.rawEntries = `{}` }), "")

	// Keys.
	add("missing keys", "fail", "every bundle lists the log's artifact keys", with(func(p *bundleParts) { p.omitKeys = true }), "")
	add("keys null", "fail", "", with(func(p *bundleParts) { p.rawKeys = "null" }), "")
	add("key: the receipt of another entry", "fail", "the receipt of entry 0, a decision", with(func(p *bundleParts) {
		p.keys[0] = keyItem(k.kid, 0, "d-1", 0, jwkText)
	}), "")
	add("key: index differs from its receipt", "fail", "", with(func(p *bundleParts) { p.keys[0] = keyItem(k.kid, 7, k.kid, keyIndex, jwkText) }), "")
	add("key: kid differs", "fail", "", with(func(p *bundleParts) { p.keys[0] = keyItem("test-artifact-0", keyIndex, k.kid, keyIndex, jwkText) }), "")
	add("key: another jwk", "fail", "the jwk is the logged one", with(func(p *bundleParts) {
		p.keys[0] = keyItem(k.kid, keyIndex, k.kid, keyIndex, `{"crv":"Ed25519","kty":"OKP","x":"`+b64url(seedKey("artifact-0").Public().(ed25519.PublicKey))+`"}`)
	}), "")
	add("key: receipt with a byte of its entry changed", "fail", "", with(func(p *bundleParts) {
		p.keys[0] = json.RawMessage(strings.Replace(string(p.keys[0]), `"id":"test-artifact-1"`, `"id":"test-artifact-2"`, 1))
	}), "")
	add("key: without receipt", "fail", "", with(func(p *bundleParts) { p.rawKeys = `[{"kid":"test-artifact-1","jwk":` + jwkText + `,"index":8}]` }), "")

	// The wrapper.
	add("format v2", "fail", "", with(func(p *bundleParts) { p.format = "govlog-evidence/v2" }), "")
	add("another origin", "fail", "", with(func(p *bundleParts) { p.origin = "example.com/other" }), "")
	add("another verifier_key", "fail", "the bundle names the key it is verified with", with(func(p *bundleParts) { p.vkey = k.other.vkey }), "")
	goodText := base.text()
	raw := func(name, why, text string) {
		cases = append(cases, VerifyCase{Name: name, Want: "fail", Why: why, LogKey: k.log.vkey, Bundle: str(text)})
	}
	raw("members in another order", "the members come in one order, so that a bundle is checked as it is read", strings.Replace(goodText, `{"format":"govlog-evidence/v1","origin":`+q(k.log.name), `{"origin":`+q(k.log.name)+`,"format":"govlog-evidence/v1"`, 1))
	raw("an unknown member", "", strings.TrimSuffix(goodText, "}")+`,"note":"x"}`)
	raw("data after the bundle", "", goodText+"{}")
	raw("not JSON", "", goodText[:len(goodText)/2])
	raw("an array", "", "["+goodText+"]")
	return cases, nil
}

func mustB64(s string) []byte {
	b, err := log.DecodeBase64(base64.StdEncoding, s)
	if err != nil {
		panic(err)
	}
	return b
}
