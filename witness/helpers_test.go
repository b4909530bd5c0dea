package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testLog is a C2SP log built with golang.org/x/mod/sumdb/tlog, a Merkle
// tree implementation independent of the one the witness verifies with.
type testLog struct {
	t      testing.TB
	origin string
	signer note.Signer
	vkey   string
	stored []tlog.Hash // tlog's stored hashes
	size   int64
	// salt makes the leaves of two logs of one origin differ (forks).
	salt string
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: origin, signer: signer, vkey: vkey}
}

// fork returns a log with the same key and the same first n leaves whose
// later leaves differ.
func (l *testLog) fork(n int64, salt string) *testLog {
	f := &testLog{t: l.t, origin: l.origin, signer: l.signer, vkey: l.vkey, salt: salt}
	for i := int64(0); i < n; i++ {
		f.appendLeaf(l.leaf(i))
	}
	return f
}

func (l *testLog) leaf(i int64) []byte { return fmt.Appendf(nil, "leaf %d%s", i, l.salt) }

func (l *testLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = l.stored[x]
	}
	return out, nil
}

func (l *testLog) appendLeaf(data []byte) {
	hashes, err := tlog.StoredHashes(l.size, data, l)
	if err != nil {
		l.t.Fatal(err)
	}
	l.stored = append(l.stored, hashes...)
	l.size++
}

// grow appends leaves up to size n.
func (l *testLog) grow(n int64) *testLog {
	for l.size < n {
		l.appendLeaf(l.leaf(l.size))
	}
	return l
}

func (l *testLog) root(n int64) tlog.Hash {
	if n == 0 {
		return tlog.Hash(sha256.Sum256(nil))
	}
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

// body is the checkpoint body of the tree of size n, with extension lines.
func (l *testLog) body(n int64, ext ...string) string {
	r := l.root(n)
	b := fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(r[:]))
	for _, e := range ext {
		b += e + "\n"
	}
	return b
}

// checkpoint is the signed checkpoint of the tree of size n.
func (l *testLog) checkpoint(n int64, ext ...string) []byte {
	return l.sign(l.body(n, ext...))
}

func (l *testLog) sign(text string) []byte {
	b, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// proof is the consistency proof from size m to n.
func (l *testLog) proof(m, n int64) [][]byte {
	if m == 0 || m == n {
		return [][]byte{}
	}
	p, err := tlog.ProveTree(n, m, l)
	if err != nil {
		l.t.Fatal(err)
	}
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// request is an add-checkpoint body.
func request(old int64, proof [][]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// newTestWitness creates a witness following logs, in dir (a new temporary
// directory when empty), with key skey (a new key when empty).
func newTestWitness(t testing.TB, dir, skey string, logs ...*testLog) *Witness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if skey == "" {
		var err error
		if skey, _, err = GenerateKey("witness.test/w1"); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, l := range logs {
		keys = append(keys, l.vkey)
	}
	w, err := New(context.Background(), Config{Key: skey, Logs: keys, Database: filepath.Join(dir, "witness.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// checkCosignature verifies cosignature lines for the checkpoint body the
// way tlog-cosignature specifies it, with crypto/ed25519 only: the line is
// "— <name> base64(key ID || timestamp || signature)", the key ID is
// SHA-256(name || "\n" || 0x04 || public key)[:4], and the signature is
// over "cosignature/v1\ntime <timestamp>\n" + body. It returns the
// timestamp.
func checkCosignature(t testing.TB, lines []byte, vkey, body string) time.Time {
	t.Helper()
	name, rest, _ := strings.Cut(vkey, "+")
	_, key64, _ := strings.Cut(rest, "+")
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(key) != 33 || key[0] != 0x04 {
		t.Fatalf("not a cosignature/v1 vkey: %q", vkey)
	}
	pub := ed25519.PublicKey(key[1:])
	if !bytes.HasSuffix(lines, []byte("\n")) || bytes.Count(lines, []byte("\n")) != 1 {
		t.Fatalf("want one signature line ending in a newline, got %q", lines)
	}
	line, ok := strings.CutPrefix(strings.TrimSuffix(string(lines), "\n"), "— ")
	if !ok {
		t.Fatalf("signature line does not start with an em dash: %q", lines)
	}
	gotName, sig64, _ := strings.Cut(line, " ")
	if gotName != name {
		t.Fatalf("cosignature name %q, want %q", gotName, name)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(sig64)
	if err != nil || len(sig) != 4+8+64 {
		t.Fatalf("cosignature is not base64 of 76 bytes: %q", sig64)
	}
	h := sha256.Sum256(append([]byte(name+"\n\x04"), pub...))
	if !bytes.Equal(sig[:4], h[:4]) {
		t.Fatalf("cosignature key ID %x, want %x", sig[:4], h[:4])
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	if ts == 0 {
		t.Fatal("cosignature timestamp is zero")
	}
	msg := "cosignature/v1\ntime " + strconv.FormatUint(ts, 10) + "\n" + body
	if !ed25519.Verify(pub, []byte(msg), sig[12:]) {
		t.Fatal("cosignature does not verify")
	}
	at := time.Unix(int64(ts), 0)
	if d := time.Since(at); d < -time.Minute || d > time.Minute {
		t.Fatalf("cosignature timestamp %v is not now", at)
	}
	return at
}
