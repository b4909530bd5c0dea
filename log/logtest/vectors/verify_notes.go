package vectors

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// Timestamps of the witness cosignatures: the reference time, in Unix
// seconds, and a minute later.
const (
	cosignedAt      = 1795629600
	cosignedLaterAt = 1795629660
)

func checkpointCases(k *verifyKeys, g *goldenLog) ([]VerifyCase, error) {
	cp := g.checkpoint
	golden := string(cp.Note)
	text := body(cp.Origin, cp.Size, cp.Hash[:])
	logSig := k.log.sign(text)
	w1, w2 := k.witnesses[0], k.witnesses[1]
	empty := sha256.Sum256(nil)
	var cases []VerifyCase
	add := func(name, want, why, note string, expect *Expect) {
		c := VerifyCase{Name: name, Want: want, Why: why, LogKey: k.log.vkey, Expect: expect}
		setBytes(&c.Checkpoint, &c.CheckpointBase64, []byte(note))
		cases = append(cases, c)
	}
	ok := func(name, why, note string) {
		add(name, "ok", why, note, &Expect{Origin: cp.Origin, Size: u64(cp.Size), RootHash: b64(cp.Hash[:])})
	}
	fail := func(name, why, note string) { add(name, "fail", why, note, nil) }
	// signed is a note of text signed by the log key.
	signed := func(text string) string { return text + "\n" + k.log.sign(text) }

	ok("golden", "the golden log's checkpoint (testdata/checkpoints/golden.note)", golden)
	cases[len(cases)-1].Mangle = &Mangle{XOR: []int{0x01, 0x20}, Delete: true}
	add("empty log", "ok", "a checkpoint of size 0 carries SHA-256 of the empty string", signed(body(cp.Origin, 0, empty[:])),
		&Expect{Origin: cp.Origin, Size: u64(0), RootHash: b64(empty[:])})
	ok("cosigned by two witnesses", "signatures of other keys are not checked here", text+"\n"+logSig+w1.cosign(text, cosignedAt)+w2.cosign(text, cosignedAt))
	ok("cosignature first", "signature lines may come in any order", text+"\n"+w1.cosign(text, cosignedAt)+logSig)
	ok("signature by the other key of the same name", "a key of the same name and another key ID is another key: its signature is not checked", text+"\n"+k.other.sign(text)+logSig)
	ok("log signature twice", "a repeated identical signature line is ignored", text+"\n"+logSig+logSig)
	ok("log signature repeated with other bytes", "after the first signature line of a key, further lines of that key are ignored unverified, as golang.org/x/mod/sumdb/note does", text+"\n"+logSig+k.log.line(make([]byte, 64)))
	ok("DEL in a signer's name", "only control characters below U+0020 are refused", text+"\n"+logSig+"— w\x7f "+b64(make([]byte, 8))+"\n")
	hundred := text + "\n" + logSig
	for i := 1; i < 100; i++ {
		hundred += fmt.Sprintf("— other.example/k%d %s\n", i, b64([]byte{0, 0, 0, byte(i), 1}))
	}
	ok("100 signature lines", "at most 100 signature lines", hundred)
	fail("101 signature lines", "at most 100 signature lines", hundred+"— other.example/k100 "+b64([]byte{0, 0, 0, 100, 1})+"\n")
	// The largest note: padded with one long unknown signature.
	pad := func(n int) string {
		base := text + "\n" + logSig + "— pad.example/p"
		l := n - len(base) - 2
		return base + strings.Repeat("p", l%4) + " " + b64(make([]byte, l/4*3)) + "\n"
	}
	ok("16384 bytes", "a checkpoint may be 16 KiB long, with its signatures", pad(16384))
	fail("16385 bytes", "a checkpoint is at most 16 KiB long", pad(16385))

	fail("other key", "signed by another key of the same name only", text+"\n"+k.other.sign(text))
	fail("no signature lines", "a signed note ends with signature lines", text+"\n")
	fail("body only", "no signature block", text)
	fail("unsigned by anyone known", "only witness cosignatures", text+"\n"+w1.cosign(text, cosignedAt))
	fail("extension line", "a govlog checkpoint has no extension lines", signed(text+"extension\n"))
	fail("other origin", "the origin is the log key's name", signed(body("example.com/other", cp.Size, cp.Hash[:])))
	fail("size with a leading zero", "the size is a decimal without leading zeros", signed(fmt.Sprintf("%s\n0%d\n%s\n", cp.Origin, cp.Size, b64(cp.Hash[:]))))
	fail("size with a plus sign", "the size is a decimal", signed(fmt.Sprintf("%s\n+%d\n%s\n", cp.Origin, cp.Size, b64(cp.Hash[:]))))
	fail("size in hex", "the size is a decimal", signed(fmt.Sprintf("%s\n0x%x\n%s\n", cp.Origin, cp.Size, b64(cp.Hash[:]))))
	add("size 2^64-1", "ok", "the largest size", signed(body(cp.Origin, 1<<64-1, cp.Hash[:])),
		&Expect{Size: u64(1<<64 - 1), RootHash: b64(cp.Hash[:])})
	fail("size 2^64", "a size is a uint64", signed(fmt.Sprintf("%s\n18446744073709551616\n%s\n", cp.Origin, b64(cp.Hash[:]))))
	fail("root hash not canonical base64", "the root hash is the canonical base64 of 32 bytes", signed(fmt.Sprintf("%s\n%d\n%s\n", cp.Origin, cp.Size, nonCanonical(b64(cp.Hash[:])))))
	fail("root hash without padding", "standard base64 with padding", signed(fmt.Sprintf("%s\n%d\n%s\n", cp.Origin, cp.Size, strings.TrimRight(b64(cp.Hash[:]), "="))))
	fail("root hash of 31 bytes", "the root hash is 32 bytes", signed(body(cp.Origin, cp.Size, cp.Hash[:31])))
	fail("root hash of 33 bytes", "the root hash is 32 bytes", signed(body(cp.Origin, cp.Size, append(cp.Hash[:], 0))))
	fail("empty log with another root", "size 0 has root SHA-256(\"\")", signed(body(cp.Origin, 0, cp.Hash[:])))
	fail("CRLF", "lines end in a newline only", strings.ReplaceAll(golden, "\n", "\r\n"))
	fail("no final newline", "the last signature line ends in a newline", strings.TrimSuffix(golden, "\n"))
	fail("blank line after the signatures", "nothing follows the signature lines", golden+"\n")
	fail("en dash", "signature lines start with an em dash (U+2014) and a space", strings.Replace(golden, "— ", "– ", 1))
	fail("no space after the dash", "signature lines start with an em dash and a space", strings.Replace(golden, "— ", "—", 1))
	fail("tab in the text", "no control characters but newline", signed(cp.Origin+"\n"+fmt.Sprint(cp.Size)+"\t\n"+b64(cp.Hash[:])+"\n"))
	fail("invalid UTF-8 in a signer's name", "a note is valid UTF-8", text+"\n"+logSig+"— w\xff "+b64(make([]byte, 8))+"\n")
	fail("signature line without a signature", "a signature line has a name, a space and base64", text+"\n"+logSig+"— other.example/k\n")
	fail("signature line with an empty signature", "a signature line has a name, a space and base64", text+"\n"+logSig+"— other.example/k \n")
	fail("signature of 4 bytes", "a signature is a key ID and at least one byte", text+"\n"+logSig+"— other.example/k "+b64([]byte{1, 2, 3, 4})+"\n")
	fail("signature not base64", "signatures are base64", text+"\n"+logSig+"— other.example/k ****\n")
	fail("unknown signature in non-canonical base64", "every signature is canonical base64, checked or not", text+"\n"+logSig+"— other.example/k "+nonCanonical(b64(make([]byte, 8)))+"\n")
	logSigB64 := logSig[strings.LastIndexByte(logSig, ' ')+1 : len(logSig)-1]
	fail("log signature in non-canonical base64", "every signature is canonical base64", text+"\n"+strings.Replace(logSig, logSigB64, nonCanonical(logSigB64), 1))
	fail("plus in a signer's name", "names have no plus sign", text+"\n"+logSig+"— a+b "+b64(make([]byte, 8))+"\n")
	fail("no-break space in a signer's name", "names have no Unicode space", text+"\n"+logSig+"— a\u00a0b "+b64(make([]byte, 8))+"\n")
	fail("ideographic space in a signer's name", "names have no Unicode space", text+"\n"+logSig+"— a\u3000b "+b64(make([]byte, 8))+"\n")
	fail("invalid log signature, then a valid one", "a signature of a known key that does not verify rejects the note", text+"\n"+k.log.line(make([]byte, 64))+logSig)
	fail("log signature of another text", "the signature covers the text", text+"\n"+k.log.sign(body(cp.Origin, cp.Size+1, cp.Hash[:])))
	fail("empty", "not a note", "")

	// Verifier keys.
	keyCase := func(name, want, why, vkey string) {
		c := VerifyCase{Name: name, Want: want, Why: why, LogKey: vkey, Checkpoint: str(golden)}
		if want == "ok" {
			c.Expect = &Expect{Size: u64(cp.Size)}
		}
		cases = append(cases, c)
	}
	parts := strings.SplitN(k.log.vkey, "+", 3)
	keyCase("log key ID in upper case", "ok", "the key ID is read as hexadecimal in either case", parts[0]+"+"+strings.ToUpper(parts[1])+"+"+parts[2])
	keyCase("log key with a wrong key ID", "fail", "a verifier key's ID is its hash", parts[0]+"+00000000+"+parts[2])
	keyCase("log key of type 0x04", "fail", "a log key is an Ed25519 note key (type 0x01)", newRawSigner(k.log.name, 4, k.log.priv).vkey)
	keyCase("log key of 7 hex digits", "fail", "a key ID is 8 hex digits", parts[0]+"+"+parts[1][1:]+"+"+parts[2])
	return cases, nil
}

// nonCanonical changes the last base64 character before the padding so
// that it decodes to the same bytes with non-zero unused bits.
func nonCanonical(s string) string {
	t := strings.TrimRight(s, "=")
	if len(t) == len(s) {
		panic("no padding: every bit is used")
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	last := strings.IndexByte(alphabet, t[len(t)-1])
	return t[:len(t)-1] + string(alphabet[last|1]) + s[len(t):]
}

func policyCases(k *verifyKeys, g *goldenLog) ([]VerifyCase, error) {
	cp := g.checkpoint
	text := body(cp.Origin, cp.Size, cp.Hash[:])
	logSig := k.log.sign(text)
	w := k.witnesses
	line := func(i int) string {
		return fmt.Sprintf("witness w%d %s https://w%d.witness.example\n", i+1, w[i].vkey, i+1)
	}
	all := line(0) + line(1) + line(2) + line(3)
	cos := func(idx ...int) string {
		s := text + "\n" + logSig
		for _, i := range idx {
			s += w[i].cosign(text, cosignedAt)
		}
		return s
	}
	var cases []VerifyCase
	add := func(name, want, why, policy string, checkpoint *string) {
		cases = append(cases, VerifyCase{Name: name, Want: want, Why: why, LogKey: k.log.vkey, Policy: str(policy), Checkpoint: checkpoint})
	}
	sat := func(name, policy, note string) { add(name, "ok", "", policy, str(note)) }
	unsat := func(name, policy, note string) { add(name, "fail", "", policy, str(note)) }
	parses := func(name, why, policy string) { add(name, "ok", why, policy, nil) }
	refused := func(name, why, policy string) { add(name, "fail", why, policy, nil) }

	two := all + "group g 2 w1 w2 w3 w4\nquorum g\n"
	sat("2 of 4, cosigned by 2", two, cos(0, 3))
	cases[len(cases)-1].Mangle = &Mangle{XOR: []int{0x01}, Delete: true}
	sat("2 of 4, cosigned by 4", two, cos(0, 1, 2, 3))
	unsat("2 of 4, cosigned by 1", two, cos(2))
	unsat("2 of 4, cosigned by none", two, cos())
	unsat("2 of 4, one witness twice", two, cos(1, 1))
	sat("2 of 4, two cosignatures of one witness at different times, and another", two, cos(1)+w[1].cosign(text, cosignedLaterAt)+w[0].cosign(text, cosignedAt))
	unsat("2 of 4, one witness at two times", two, cos(1)+w[1].cosign(text, cosignedLaterAt))
	sat("a repeated cosignature line after a valid one is ignored", two, cos(1, 2)+w[1].line(make([]byte, 72)))
	unsat("a cosignature that does not verify, then a valid one", two, text+"\n"+logSig+w[1].line(make([]byte, 72))+w[1].cosign(text, cosignedAt)+w[2].cosign(text, cosignedAt))
	unsat("cosignature of another checkpoint", two, cos(1)+w[2].cosign(body(cp.Origin, cp.Size+1, cp.Hash[:]), cosignedAt))
	// A cosignature made at cosignedAt, presented as made a second later.
	retimed := w[2].cosign(text, cosignedAt)
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(retimed[strings.LastIndexByte(retimed, ' ')+1:], "\n"))
	raw[4+7]++
	unsat("cosignature with the time changed", two, cos(1)+w[2].line(raw[4:]))
	unsat("plain Ed25519 signature by a witness key", two, cos(1)+w[2].sign(text))
	sat("cosignature with timestamp 0", two, cos(1)+w[2].cosign(text, 0))
	unsat("witness cosigns, the log does not sign", two, text+"\n"+w[0].cosign(text, cosignedAt)+w[1].cosign(text, cosignedAt))
	sat("cosignatures by witnesses outside the policy are ignored", line(0)+line(1)+"group g all w1 w2\nquorum g\n", cos(0, 1, 2, 3))
	unsat("only witnesses outside the policy", line(0)+line(1)+"group g any w1 w2\nquorum g\n", cos(2, 3))

	nested := all + "group a any w1 w2\ngroup b all w3 w4\ngroup top all a b\nquorum top\n"
	sat("nested: one of a, all of b", nested, cos(1, 2, 3))
	unsat("nested: none of a", nested, cos(2, 3))
	unsat("nested: half of b", nested, cos(0, 1, 2))
	deep := all + "group a 1 w1\ngroup b 1 a\ngroup c 1 b\ngroup d all c w2\nquorum d\n"
	sat("groups nest deeply", deep, cos(0, 1))
	unsat("groups nest deeply, one missing", deep, cos(1))
	shared := all + "group a any w1 w2\ngroup b any w2 w3\ngroup top all a b\nquorum top\n"
	sat("one witness counts in two groups", shared, cos(1))
	unsat("one witness in two groups, neither", shared, cos(3))
	sat("quorum a single witness", all+"quorum w3\n", cos(2))
	unsat("quorum a single witness, not cosigned", all+"quorum w3\n", cos(0, 1, 3))
	sat("quorum none", "quorum none\n", cos())
	sat("quorum none with witnesses", all+"quorum none\n", cos())
	sat("group any", all+"group g any w1 w2 w3 w4\nquorum g\n", cos(3))
	sat("group all", all+"group g all w1 w2 w3 w4\nquorum g\n", cos(3, 2, 1, 0))
	unsat("group all, 3 of 4", all+"group g all w1 w2 w3 w4\nquorum g\n", cos(0, 1, 2))
	sat("threshold with leading zeros", all+"group g 002 w1 w2 w3\nquorum g\n", cos(0, 2))
	sat("comments, blank lines and spacing", "# a policy\n\n  "+strings.ReplaceAll(line(0), " ", " \t ")+line(1)+"log example.com/govlog ignored words\ngroup g all w1 w2 # both\n\tquorum g\n", cos(0, 1))
	sat("CRLF line ends", strings.ReplaceAll(line(0)+line(1)+"group g all w1 w2\nquorum g\n", "\n", "\r\n"), cos(0, 1))
	sat("no final newline", line(0)+"quorum w1", cos(0))
	sat("no-break space separates fields", strings.Replace(line(0), " ", "\u00a0", 1)+"quorum w1\n", cos(0))
	sat("a witness URL without a scheme", "witness w1 "+w[0].vkey+" w1.witness.example/prefix\nquorum w1\n", cos(0))

	refused("no quorum", "a policy has one quorum line", all)
	refused("two quorum lines", "a policy has one quorum line", all+"quorum w1\nquorum w2\n")
	refused("quorum of an unknown name", "", all+"quorum w9\n")
	refused("quorum a keyword", "", all+"quorum any\n")
	refused("quorum line with two names", "", all+"quorum w1 w2\n")
	refused("group of nothing", "a group has members", all+"group g all\nquorum g\n")
	refused("threshold 0", "a group needs 1 to all of its members", all+"group g 0 w1 w2\nquorum g\n")
	refused("threshold 00", "a group needs 1 to all of its members", all+"group g 00 w1 w2\nquorum g\n")
	refused("threshold above the members", "", all+"group g 3 w1 w2\nquorum g\n")
	refused("threshold 256", "a threshold is 1 to 255", all+"group g 256 w1 w2\nquorum g\n")
	refused("threshold negative", "", all+"group g -1 w1 w2\nquorum g\n")
	refused("threshold with a plus sign", "", all+"group g +1 w1 w2\nquorum g\n")
	refused("threshold in words", "", all+"group g one w1 w2\nquorum g\n")
	refused("member named twice", "one cosignature would count twice", all+"group g 2 w1 w1 w2\nquorum g\n")
	refused("unknown member", "", all+"group g any w1 w9\nquorum g\n")
	refused("member defined later", "names are defined before they are used", "group g any w1\n"+all+"quorum g\n")
	refused("two components of one name", "", all+"group w1 any w2\nquorum w1\n")
	refused("a witness named like a keyword", "", "witness all "+w[0].vkey+" https://w1.witness.example\nquorum all\n")
	refused("a group named like a keyword", "", all+"group none any w1\nquorum none\n")
	refused("a member named like a keyword", "", all+"group g any all\nquorum g\n")
	refused("two witnesses with one key", "one cosignature would count for two witnesses", all+"witness w5 "+w[0].vkey+" https://w5.witness.example\nquorum w5\n")
	refused("witness without URL", "a witness line has a name, a key and a URL", "witness w1 "+w[0].vkey+"\nquorum w1\n")
	refused("witness with five fields", "", "witness w1 "+w[0].vkey+" https://w1.witness.example extra\nquorum w1\n")
	refused("witness key of type 0x01", "witness keys are cosignature/v1 keys (type 0x04)", "witness w1 "+newRawSigner(w[0].name, 1, w[0].priv).vkey+" https://w1.witness.example\nquorum w1\n")
	refused("witness key with the ID of the key as type 0x01", "the key ID is that of a type 0x04 key", "witness w1 "+w[0].name+fmt.Sprintf("+%08x+", newRawSigner(w[0].name, 1, w[0].priv).id)+strings.SplitN(w[0].vkey, "+", 3)[2]+" https://w1.witness.example\nquorum w1\n")
	refused("witness key ID in upper case", "the key ID is written as the key's own", "witness w1 "+strings.Replace(w[0].vkey, strings.SplitN(w[0].vkey, "+", 3)[1], strings.ToUpper(strings.SplitN(w[0].vkey, "+", 3)[1]), 1)+" https://w1.witness.example\nquorum w1\n")
	refused("witness key of type 0x06 (ML-DSA-44)", "witness keys are Ed25519 cosignature/v1 keys (type 0x04)", "witness w1 "+mldsaVKey("witness.example/pq")+" https://w1.witness.example\nquorum w1\n")
	refused("witness key with 31 bytes", "", "witness w1 "+shortVKey(w[0].name)+" https://w1.witness.example\nquorum w1\n")
	refused("witness key not base64", "", "witness w1 witness.example/w1+01020304+****"+" https://w1.witness.example\nquorum w1\n")
	refused("unknown keyword", "", all+"witnesses w9\nquorum w1\n")
	refused("a witness URL with a control character", "the URL parses", "witness w1 "+w[0].vkey+" https://w1.witness.example/\x7f\nquorum w1\n")
	refused("a witness URL with a bad escape", "the URL parses", "witness w1 "+w[0].vkey+" https://w1.witness.example/%zz\nquorum w1\n")
	refused("a witness URL with a bad port", "the URL parses", "witness w1 "+w[0].vkey+" https://w1.witness.example:44x/\nquorum w1\n")
	refused("a witness URL starting with a colon", "the URL parses", "witness w1 "+w[0].vkey+" ://w1.witness.example\nquorum w1\n")
	parses("a witness named in no group", "", all+"group g any w1\nquorum g\n")
	parses("the same witness in two groups", "", shared)
	return cases, nil
}

// mldsaVKey is a well-formed ML-DSA-44 cosignature verifier key (type 0x06)
// of a fixed, meaningless public key.
func mldsaVKey(name string) string {
	key := make([]byte, 1+1312)
	key[0] = 6
	for i := range key[1:] {
		key[1+i] = byte(i * 7)
	}
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, key), b64(key))
}

// shortVKey is a type 0x04 key of 31 bytes, with its key ID.
func shortVKey(name string) string {
	key := append([]byte{4}, make([]byte, 31)...)
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, key), b64(key))
}

func consistencyCases(k *verifyKeys) ([]VerifyCase, error) {
	const n = 23
	tree := testonly.New(rfc6962.DefaultHasher)
	var notes []string
	roots := [][]byte{}
	for i := 0; i <= n; i++ {
		if i > 0 {
			tree.AppendData([]byte(fmt.Sprintf("leaf %d", i-1)))
		}
		root := tree.Hash()
		roots = append(roots, root)
		t := body(k.log.name, uint64(i), root)
		notes = append(notes, t+"\n"+k.log.sign(t))
	}
	proof := func(m, n uint64) []string {
		p, err := tree.ConsistencyProof(m, n)
		if err != nil {
			panic(err)
		}
		var out []string
		for _, h := range p {
			out = append(out, b64(h))
		}
		return out
	}
	var cases []VerifyCase
	add := func(name, want, why string, m, n int, old, new string, p []string) {
		cases = append(cases, VerifyCase{Name: name, Want: want, Why: why, LogKey: k.log.vkey, Old: old, New: new, Proof: p})
	}
	for _, mn := range [][2]int{{1, 2}, {1, 8}, {3, 7}, {4, 8}, {5, 23}, {7, 8}, {8, 23}, {16, 17}, {22, 23}, {6, 6}, {0, 5}, {0, 0}} {
		m, nn := mn[0], mn[1]
		p := proof(uint64(m), uint64(nn))
		add(fmt.Sprintf("%d to %d", m, nn), "ok", "", m, nn, notes[m], notes[nn], p)
		if len(p) == 0 {
			continue
		}
		for i := range p {
			h, _ := base64.StdEncoding.DecodeString(p[i])
			h[i%32] ^= 0x80
			bad := append([]string{}, p...)
			bad[i] = b64(h)
			add(fmt.Sprintf("%d to %d, hash %d changed", m, nn, i), "fail", "", m, nn, notes[m], notes[nn], bad)
		}
		add(fmt.Sprintf("%d to %d, a hash too many", m, nn), "fail", "", m, nn, notes[m], notes[nn], append(append([]string{}, p...), p[0]))
		add(fmt.Sprintf("%d to %d, the last hash missing", m, nn), "fail", "", m, nn, notes[m], notes[nn], p[:len(p)-1])
		add(fmt.Sprintf("%d to %d, in the wrong order", m, nn), "fail", "the new checkpoint is not smaller than the old", m, nn, notes[nn], notes[m], p)
	}
	add("1 to 2, no proof", "fail", "", 1, 2, notes[1], notes[2], nil)
	add("6 to 6 with a hash", "fail", "checkpoints of the same size have an empty proof", 6, 6, notes[6], notes[6], proof(5, 6))
	fork := body(k.log.name, 6, roots[7]) // size 6, another root
	add("6 and another 6", "fail", "two checkpoints of one size with different roots: a fork", 6, 6, notes[6], fork+"\n"+k.log.sign(fork), nil)
	other := body(k.other.name, 8, roots[8])
	add("4 to 8, the new one signed by another key", "fail", "", 4, 8, notes[4], other+"\n"+k.other.sign(other), proof(4, 8))
	add("4 to 8, the old one signed by another key", "fail", "", 4, 8, body(k.other.name, 4, roots[4])+"\n"+k.other.sign(body(k.other.name, 4, roots[4])), notes[8], proof(4, 8))
	add("5 to 23, a proof hash of 31 bytes", "fail", "proof hashes are 32 bytes", 5, 23, notes[5], notes[23], append(proof(5, 23)[:len(proof(5, 23))-1], b64(make([]byte, 31))))
	add("3 to 7 with the proof of 3 to 8", "fail", "", 3, 7, notes[3], notes[7], proof(3, 8))
	return cases, nil
}
