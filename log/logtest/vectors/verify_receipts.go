package vectors

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

func proofCases() ([]VerifyCase, error) {
	const n = 13
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := 0; i < n; i++ {
		tree.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	roots := [][]byte{testonly.New(rfc6962.DefaultHasher).Hash()}
	prefix := testonly.New(rfc6962.DefaultHasher)
	for i := 0; i < n; i++ {
		prefix.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
		roots = append(roots, prefix.Hash())
	}
	leafHash := func(i uint64) string { return b64(rfc6962.DefaultHasher.HashLeaf([]byte(fmt.Sprintf("leaf %d", i)))) }
	enc := func(p [][]byte) []string {
		out := []string{}
		for _, h := range p {
			out = append(out, b64(h))
		}
		return out
	}
	var cases []VerifyCase
	incl := func(name, want, why string, index, size uint64, lh string, p []string, root []byte) {
		cases = append(cases, VerifyCase{Name: name, Want: want, Why: why, Type: "inclusion", Index: u64(index), Size: u64(size), LeafHash: lh, Proof: p, Root: b64(root)})
	}
	cons := func(name, want, why string, m, nn uint64, p []string, r1, r2 []byte) {
		cases = append(cases, VerifyCase{Name: name, Want: want, Why: why, Type: "consistency", Size1: u64(m), Size2: u64(nn), Proof: p, Root1: b64(r1), Root2: b64(r2)})
	}
	for size := uint64(1); size <= n; size++ {
		for i := uint64(0); i < size; i++ {
			p, err := tree.InclusionProof(i, size)
			if err != nil {
				return nil, err
			}
			incl(fmt.Sprintf("inclusion %d in %d", i, size), "ok", "", i, size, leafHash(i), enc(p), roots[size])
		}
	}
	for _, is := range [][2]uint64{{0, 1}, {0, 2}, {5, 13}, {12, 13}, {7, 8}, {8, 9}, {3, 11}} {
		i, size := is[0], is[1]
		p, _ := tree.InclusionProof(i, size)
		ps := enc(p)
		for j := range p {
			bad := append([]string{}, ps...)
			h := append([]byte{}, p[j]...)
			h[31] ^= 1
			bad[j] = b64(h)
			incl(fmt.Sprintf("inclusion %d in %d, hash %d changed", i, size, j), "fail", "", i, size, leafHash(i), bad, roots[size])
		}
		incl(fmt.Sprintf("inclusion %d in %d, a hash too many", i, size), "fail", "", i, size, leafHash(i), append(append([]string{}, ps...), b64(roots[1])), roots[size])
		if len(ps) > 0 {
			incl(fmt.Sprintf("inclusion %d in %d, the last hash missing", i, size), "fail", "", i, size, leafHash(i), ps[:len(ps)-1], roots[size])
		}
		incl(fmt.Sprintf("inclusion %d in %d, another leaf", i, size), "fail", "", i, size, leafHash((i+1)%n), ps, roots[size])
		incl(fmt.Sprintf("inclusion %d in %d, another root", i, size), "fail", "", i, size, leafHash(i), ps, roots[size-1])
		incl(fmt.Sprintf("inclusion %d in %d, at index %d", i, size, size), "fail", "the index is below the size", size, size, leafHash(i), ps, roots[size])
		if i+1 < size {
			incl(fmt.Sprintf("inclusion %d in %d, at index %d", i, size, i+1), "fail", "", i+1, size, leafHash(i), ps, roots[size])
		}
		if size < n {
			incl(fmt.Sprintf("inclusion %d in %d, in a tree of %d", i, size, size+1), "fail", "", i, size+1, leafHash(i), ps, roots[size+1])
		}
		incl(fmt.Sprintf("inclusion %d in %d, a leaf hash of 31 bytes", i, size), "fail", "hashes are 32 bytes", i, size, b64(make([]byte, 31)), ps, roots[size])
	}
	incl("inclusion in an empty tree", "fail", "", 0, 0, leafHash(0), []string{}, roots[0])
	for size := uint64(1); size <= n; size++ {
		for m := uint64(0); m <= size; m++ {
			p, err := tree.ConsistencyProof(m, size)
			if err != nil {
				return nil, err
			}
			cons(fmt.Sprintf("consistency %d to %d", m, size), "ok", "", m, size, enc(p), roots[m], roots[size])
		}
	}
	for _, mn := range [][2]uint64{{1, 2}, {3, 7}, {4, 8}, {6, 13}, {12, 13}, {1, 13}} {
		m, size := mn[0], mn[1]
		p, _ := tree.ConsistencyProof(m, size)
		ps := enc(p)
		for j := range p {
			bad := append([]string{}, ps...)
			h := append([]byte{}, p[j]...)
			h[0] ^= 0x40
			bad[j] = b64(h)
			cons(fmt.Sprintf("consistency %d to %d, hash %d changed", m, size, j), "fail", "", m, size, bad, roots[m], roots[size])
		}
		cons(fmt.Sprintf("consistency %d to %d, a hash too many", m, size), "fail", "", m, size, append(append([]string{}, ps...), ps[0]), roots[m], roots[size])
		cons(fmt.Sprintf("consistency %d to %d, the last hash missing", m, size), "fail", "", m, size, ps[:len(ps)-1], roots[m], roots[size])
		cons(fmt.Sprintf("consistency %d to %d, another old root", m, size), "fail", "", m, size, ps, roots[m-1], roots[size])
		cons(fmt.Sprintf("consistency %d to %d, another new root", m, size), "fail", "", m, size, ps, roots[m], roots[size-1])
		cons(fmt.Sprintf("consistency %d to %d, sizes swapped", m, size), "fail", "", size, m, ps, roots[size], roots[m])
		cons(fmt.Sprintf("consistency %d to %d, no proof", m, size), "fail", "", m, size, []string{}, roots[m], roots[size])
	}
	cons("consistency 5 to 5, other roots", "fail", "one size, two roots", 5, 5, []string{}, roots[5], roots[6])
	cons("consistency 5 to 5 with a hash", "fail", "", 5, 5, []string{b64(roots[5])}, roots[5], roots[5])
	cons("consistency 0 to 5 with a hash", "fail", "from the empty tree, the proof is empty", 0, 5, []string{b64(roots[5])}, roots[0], roots[5])
	return cases, nil
}

// tlogProof is the tlog-proof of leaves[index] in a tree of leaves whose
// checkpoint is signed with sign.
func tlogProof(leaves [][]byte, index uint64, note func(size uint64, root []byte) []byte) (*proof.TLogProof, error) {
	tree := testonly.New(rfc6962.DefaultHasher)
	for _, l := range leaves {
		tree.AppendData(l)
	}
	p, err := tree.InclusionProof(index, tree.Size())
	if err != nil {
		return nil, err
	}
	hashes := make([][32]byte, len(p))
	for i := range p {
		hashes[i] = [32]byte(p[i])
	}
	return &proof.TLogProof{Index: index, Hashes: hashes, Checkpoint: note(tree.Size(), tree.Hash()), ExtraData: leaves[index]}, nil
}

func receiptCases(k *verifyKeys, g *goldenLog) ([]VerifyCase, error) {
	var cases []VerifyCase
	add := func(name, want, why, format string, receipt []byte, expect *Expect) {
		c := VerifyCase{Name: name, Want: want, Why: why, LogKey: k.log.vkey, Format: format, Expect: expect}
		setBytes(&c.Receipt, &c.ReceiptBase64, receipt)
		cases = append(cases, c)
	}
	expect := func(r *log.Receipt) *Expect {
		pe, err := log.ParseEntry(r.Entry)
		if err != nil {
			panic(err)
		}
		return &Expect{Index: u64(r.Index), Kind: pe.Kind.String(), ID: pe.ID, LeafHash: b64(r.LeafHash),
			Size: u64(g.checkpoint.Size), RootHash: b64(g.checkpoint.Hash[:])}
	}
	for _, name := range g.names {
		r := g.receipts[name]
		add(name+".tlog-proof", "ok", "testdata/receipts/"+name+".tlog-proof", "tlog-proof", []byte(r.TLogProof), expect(r))
		add(name+".json", "ok", "testdata/receipts/"+name+".json", "json", []byte(pretty(r)), expect(r))
	}
	allow := g.receipts["allow"]
	add("allow.tlog-proof mangled", "ok", "", "tlog-proof", []byte(allow.TLogProof), expect(allow))
	cases[len(cases)-1].Mangle = &Mangle{XOR: []int{0x01}, Delete: true}
	add("allow.json compact, mangled", "ok", "the JSON receipt as the API sends it", "json", []byte(compact(allow)), expect(allow))
	cases[len(cases)-1].Mangle = &Mangle{XOR: []int{0x01}, Delete: true}

	logNote := func(size uint64, root []byte) []byte {
		t := body(k.log.name, size, root)
		return []byte(t + "\n" + k.log.sign(t))
	}
	tp := func(leaves [][]byte, index uint64, note func(uint64, []byte) []byte) *proof.TLogProof {
		p, err := tlogProof(leaves, index, note)
		if err != nil {
			panic(err)
		}
		return p
	}
	tpOK := func(name, why string, p *proof.TLogProof) {
		pe, err := log.ParseEntry(p.ExtraData)
		if err != nil {
			panic(err)
		}
		lh := log.LeafHash(p.ExtraData)
		add(name, "ok", why, "tlog-proof", p.Marshal(), &Expect{Index: u64(p.Index), Kind: pe.Kind.String(), ID: pe.ID, LeafHash: b64(lh[:])})
	}
	fail := func(name, why string, data []byte) { add(name, "fail", why, "tlog-proof", data, nil) }
	deny := g.leaves["deny"]
	filler := func(n int, at int, leaf []byte) [][]byte {
		var ls [][]byte
		for i := 0; i < n; i++ {
			if i == at {
				ls = append(ls, leaf)
			} else {
				ls = append(ls, []byte(fmt.Sprintf("leaf %d", i)))
			}
		}
		return ls
	}
	tpOK("a log of one entry", "an empty inclusion proof", tp([][]byte{deny}, 0, logNote))
	tpOK("entry 777 of 1000", "", tp(filler(1000, 777, deny), 777, logNote))
	tpOK("the last entry of 1000", "", tp(filler(1000, 999, deny), 999, logNote))
	big, err := bigEntry()
	if err != nil {
		return nil, err
	}
	tpOK("an entry of 60,000 bytes", "the extra line is longer than 64 KiB", tp(filler(3, 1, big), 1, logNote))
	cosigned := func(size uint64, root []byte) []byte {
		t := body(k.log.name, size, root)
		return []byte(t + "\n" + k.witnesses[0].cosign(t, cosignedAt) + k.log.sign(t) + k.witnesses[1].cosign(t, cosignedAt))
	}
	tpOK("a cosigned checkpoint", "cosignatures are left to a witness policy", tp(filler(5, 2, deny), 2, cosigned))

	good := tp(filler(5, 2, deny), 2, logNote)
	text := string(good.Marshal())
	noExtra := *good
	noExtra.ExtraData = nil
	fail("no extra line", "the entry is the extra data", noExtra.Marshal())
	emptyExtra := *good
	emptyExtra.ExtraData = []byte{}
	fail("an empty extra line", "", emptyExtra.Marshal())
	other := tp(filler(5, 2, deny), 2, func(size uint64, root []byte) []byte {
		t := body(k.other.name, size, root)
		return []byte(t + "\n" + k.other.sign(t))
	})
	fail("signed by another key", "", other.Marshal())
	wrongIndex := *good
	wrongIndex.Index = 3
	fail("another index", "", wrongIndex.Marshal())
	atSize := tp(filler(5, 4, deny), 4, logNote)
	atSize.Index = 5
	fail("index equal to the size", "the index is below the checkpoint's size", atSize.Marshal())
	fail("index with a leading zero", "", []byte(strings.Replace(text, "\nindex 2\n", "\nindex 02\n", 1)))
	fail("index 2^64", "", []byte(strings.Replace(text, "\nindex 2\n", "\nindex 18446744073709551616\n", 1)))
	fail("index with a plus sign", "", []byte(strings.Replace(text, "\nindex 2\n", "\nindex +2\n", 1)))
	fail("index line missing", "", []byte(strings.Replace(text, "\nindex 2\n", "\n", 1)))
	fail("CRLF", "lines end in a newline only", []byte(strings.ReplaceAll(text, "\n", "\r\n")))
	fail("no final newline", "", []byte(strings.TrimSuffix(text, "\n")))
	fail("another header", "", []byte(strings.Replace(text, "c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1)))
	fail("header only", "", []byte("c2sp.org/tlog-proof@v1\n"))
	fail("empty", "", []byte(""))
	firstHash := b64(good.Hashes[0][:])
	fail("a proof hash in non-canonical base64", "", []byte(strings.Replace(text, firstHash, nonCanonical(firstHash), 1)))
	fail("a proof hash of 31 bytes", "", []byte(strings.Replace(text, firstHash, b64(good.Hashes[0][:31]), 1)))
	fail("a proof hash missing", "", []byte(strings.Replace(text, firstHash+"\n", "", 1)))
	fail("a proof hash too many", "", []byte(strings.Replace(text, firstHash+"\n", firstHash+"\n"+firstHash+"\n", 1)))
	fail("no blank line before the checkpoint", "", []byte(strings.Replace(text, "\n\n"+k.log.name, "\n"+k.log.name, 1)))
	fail("two blank lines before the checkpoint", "", []byte(strings.Replace(text, "\n\n"+k.log.name, "\n\n\n"+k.log.name, 1)))
	fail("extra before the header", "", []byte("extra "+b64(deny)+"\n"+strings.Replace(text, "extra "+b64(deny)+"\n", "", 1)))
	fail("extra after the index", "", []byte(strings.Replace(strings.Replace(text, "extra "+b64(deny)+"\n", "", 1), "\nindex 2\n", "\nindex 2\nextra "+b64(deny)+"\n", 1)))
	// An entry whose base64 has padding and uses + or /.
	var padLeaf []byte
	var padName string
	for _, n := range g.names {
		if l := g.leaves[n]; len(l)%3 != 0 && strings.ContainsAny(b64(l), "+/") {
			padLeaf, padName = l, n
			break
		}
	}
	if padLeaf == nil {
		return nil, fmt.Errorf("no golden entry has base64 with padding and + or /")
	}
	padText := string(tp(filler(5, 2, padLeaf), 2, logNote).Marshal())
	fail("extra in non-canonical base64", "", []byte(strings.Replace(padText, b64(padLeaf), nonCanonical(b64(padLeaf)), 1)))
	fail("extra without padding", "", []byte(strings.Replace(padText, b64(padLeaf), strings.TrimRight(b64(padLeaf), "="), 1)))
	fail("extra in base64url", "", []byte(strings.Replace(padText, b64(padLeaf), base64.URLEncoding.EncodeToString(padLeaf), 1)))
	// Proven, but not a valid entry.
	for _, bad := range BadEntries()[:12] {
		fail("a proven entry: "+bad.Name, "the entry is valid: "+bad.Why, tp(filler(4, 1, []byte(bad.Leaf)), 1, logNote).Marshal())
	}
	fail("a proven entry that is not JSON", "", tp([][]byte{[]byte("leaf 0"), []byte("not JSON")}, 1, logNote).Marshal())
	fail("a proven deny with authorized_until null", "authorized_until is a timestamp, present exactly for an allow",
		tp(filler(4, 1, []byte(`{"authorized_until":null,`+string(deny[1:]))), 1, logNote).Marshal())

	// JSON receipts.
	jfail := func(name, why, body string) { add(name, "fail", why, "json", []byte(body), nil) }
	jok := func(name, why, body string, r *log.Receipt) {
		e := expect(r)
		if r.Checkpoint != string(g.checkpoint.Note) {
			e.Size, e.RootHash = nil, ""
		}
		add(name, "ok", why, "json", []byte(body), e)
	}
	c := compact(allow)
	member := func(name string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c), &m); err != nil {
			panic(err)
		}
		return `"` + name + `":` + string(m[name])
	}
	jok("with an artifact member", "the artifact is not checked here", strings.Replace(c, `}`, `,"artifact":"x.y.z"}`, 1), allow)
	jok("members in another order", "", `{`+strings.Join([]string{member("tlog_proof"), member("checkpoint"), member("inclusion_proof"), member("entry"), member("leaf_hash"), member("index"), member("id")}, ",")+`}`, allow)
	jok("white space around", "", " \n\t"+c+"\r\n ", allow)
	jok("id with an escape", "", strings.Replace(c, `"id":"d-1"`, `"id":"\u0064-1"`, 1), allow)
	jok("checkpoint with an escaped em dash", "", strings.Replace(c, `\n—`, `\n\u2014`, 1), allow)
	jok("a slash escaped", "", strings.Replace(c, `/`, `\/`, 1), allow)
	jfail("unknown member", "", strings.Replace(c, `}`, `,"note":"x"}`, 1))
	jfail("a member twice", "", strings.Replace(c, `{`, `{"id":"d-1",`, 1))
	jfail("a member in another case", "member names are exact", strings.Replace(strings.Replace(c, `"id":"d-1"`, `"id":"d-2"`, 1), `}`, `,"ID":"d-1"}`, 1))
	jfail("a member in another case, same value", "member names are exact", strings.Replace(c, `}`, `,"Id":"d-1"}`, 1))
	for _, f := range []string{"id", "index", "leaf_hash", "entry", "checkpoint", "inclusion_proof", "tlog_proof"} {
		m := member(f)
		jfail("no "+f, "", strings.Replace(strings.Replace(c, m+",", "", 1), ","+m, "", 1))
	}
	jfail("index null", "an index 0 is written 0", strings.Replace(c, `"index":0`, `"index":null`, 1))
	jfail("index a string", "", strings.Replace(c, `"index":0`, `"index":"0"`, 1))
	jfail("index 0.0", "", strings.Replace(c, `"index":0`, `"index":0.0`, 1))
	jfail("index -0", "", strings.Replace(c, `"index":0`, `"index":-0`, 1))
	jfail("index 0e0", "", strings.Replace(c, `"index":0`, `"index":0e0`, 1))
	jfail("artifact null", "", strings.Replace(c, `}`, `,"artifact":null}`, 1))
	jfail("artifact a number", "", strings.Replace(c, `}`, `,"artifact":1}`, 1))
	jfail("id of another decision", "", strings.Replace(c, `"id":"d-1"`, `"id":"d-2"`, 1))
	jfail("index of another entry", "", strings.Replace(c, `"index":0`, `"index":1`, 1))
	jfail("index member 2^64", "", strings.Replace(c, `"index":0`, `"index":18446744073709551616`, 1))
	jfail("leaf_hash of another entry", "", strings.Replace(c, b64(allow.LeafHash), b64(g.receipts["deny"].LeafHash), 1))
	jfail("leaf_hash in non-canonical base64", "", strings.Replace(c, b64(allow.LeafHash), nonCanonical(b64(allow.LeafHash)), 1))
	jfail("entry of another receipt", "", strings.Replace(c, `"entry":"`+b64(allow.Entry), `"entry":"`+b64(g.receipts["deny"].Entry), 1))
	padR := compact(g.receipts[padName])
	jfail("entry in non-canonical base64", "", strings.Replace(padR, `"entry":"`+b64(padLeaf), `"entry":"`+nonCanonical(b64(padLeaf)), 1))
	cp := g.checkpoint
	cpText := body(cp.Origin, cp.Size, cp.Hash[:])
	cosignedNote := cpText + "\n" + k.log.sign(cpText) + k.witnesses[0].cosign(cpText, cosignedAt)
	jfail("checkpoint with a cosignature the tlog_proof lacks", "the checkpoint is the tlog_proof's", strings.Replace(c, member("checkpoint"), `"checkpoint":`+q(cosignedNote), 1))
	proofHashes := allow.InclusionProof
	jfail("inclusion_proof reordered", "", strings.Replace(c, `"`+b64(proofHashes[0])+`","`+b64(proofHashes[1])+`"`, `"`+b64(proofHashes[1])+`","`+b64(proofHashes[0])+`"`, 1))
	jfail("inclusion_proof a hash short", "", strings.Replace(c, `"`+b64(proofHashes[0])+`",`, ``, 1))
	jfail("inclusion_proof null", "", strings.Replace(c, member("inclusion_proof"), `"inclusion_proof":null`, 1))
	jfail("an array", "", "["+c+"]")
	jfail("data after the object", "", c+"{}")
	jfail("a byte order mark", "", "\ufeff"+c)
	jfail("invalid UTF-8", "", strings.Replace(c, `"id":"d-1"`, "\"id\":\"d-1\xff\"", 1))
	jfail("entry with a line break in its base64", "base64 is canonical: no line breaks", strings.Replace(c, `"entry":"`+b64(allow.Entry)[:8], `"entry":"`+b64(allow.Entry)[:8]+`\n`, 1))
	jfail("leaf_hash with CR LF in its base64", "", strings.Replace(c, b64(allow.LeafHash), b64(allow.LeafHash)[:8]+`\r\n`+b64(allow.LeafHash)[8:], 1))
	jfail("inclusion_proof hash with a line break", "", strings.Replace(c, `"`+b64(proofHashes[0])+`"`, `"`+b64(proofHashes[0])[:4]+`\n`+b64(proofHashes[0])[4:]+`"`, 1))
	jfail("artifact with a lone surrogate", "strict JSON throughout: the artifact member too", strings.Replace(c, `}`, `,"artifact":"\ud800"}`, 1))
	jfail("id with a lone surrogate", "", strings.Replace(c, `"id":"d-1"`, `"id":"d-1\udc00"`, 1))
	jfail("tlog_proof of another receipt", "", strings.Replace(c, member("tlog_proof"), `"tlog_proof":`+q(g.receipts["deny"].TLogProof), 1))
	one := tp([][]byte{deny}, 0, logNote)
	oneR := &log.Receipt{ID: "d-2", Index: 0, LeafHash: func() []byte { h := log.LeafHash(deny); return h[:] }(), Entry: deny, Checkpoint: string(one.Checkpoint), InclusionProof: [][]byte{}, TLogProof: string(one.Marshal())}
	jok("JSON: a log of one entry", "an empty inclusion_proof", compact(oneR), oneR)
	jfail("JSON: a log of one entry, inclusion_proof null", "an empty proof is []", strings.Replace(compact(oneR), `"inclusion_proof":[]`, `"inclusion_proof":null`, 1))
	return cases, nil
}

// bigEntry is a valid deny entry of about 60,000 bytes.
func bigEntry() ([]byte, error) {
	reasons := make([]string, 30)
	for i := range reasons {
		reasons[i] = q(strings.Repeat("é", 1000))
	}
	body := `{"id":"d-big","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"},"reasons":[` + strings.Join(reasons, ",") + `]}`
	d, err := log.ParseDecision([]byte(body), NowTime())
	if err != nil {
		return nil, err
	}
	e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), NowTime(), 300*time.Second)
	if err != nil {
		return nil, err
	}
	return e.Leaf, nil
}
