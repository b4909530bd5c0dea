package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/govlog/govlog/verifier"
)

// The witness tests run govlog-witness, and an independent witness
// (torchwood's litewitness, built from its module), as separate processes,
// and drive them with code that shares nothing with govlog's: trees and
// proofs from golang.org/x/mod/sumdb/tlog, checkpoints signed with
// golang.org/x/mod/sumdb/note, cosignatures checked with crypto/ed25519 as
// c2sp.org/tlog-cosignature specifies them.

// witnessBinary builds govlog-witness once into binDir.
func witnessBinary(t *testing.T) string {
	t.Helper()
	return filepath.Join(goBuild(t, "witness", nil, "./cmd/govlog-witness"), "govlog-witness")
}

// proc is a running child process serving HTTP.
type proc struct {
	name   string
	url    string
	addr   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
}

// startProc starts a server process and waits until GET url+probe is 200.
// Without addr, the process listens on a port the kernel chose and says so
// in a "serving" line of its log (servingAddr), as govlog-witness does.
func startProc(t *testing.T, name, addr, probe string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, addr: addr, url: "http://" + addr, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready:\n%s", name, p.stderr.String())
		default:
		}
		if p.addr == "" {
			if m := servingAddr.FindStringSubmatch(p.stderr.String()); m != nil {
				p.addr, p.url = m[1], "http://"+m[1]
			}
		}
		if p.addr != "" {
			if resp, err := http.Get(p.url + probe); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s:\n%s", name, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// startGovlogWitness runs govlog-witness.
func startGovlogWitness(t *testing.T, data, addr, name string, logKeys ...string) *proc {
	t.Helper()
	listen := addr
	if listen == "" {
		listen = "127.0.0.1:0" // the address is read from its log (startProc)
	}
	args := []string{"--listen", listen, "--data", data, "--name", name}
	for _, k := range logKeys {
		args = append(args, "--log-key", k)
	}
	return startProc(t, "govlog-witness "+name, addr, "/healthz", witnessBinary(t), args...)
}

// witnessVKey reads a govlog-witness's verifier key from its data directory.
func witnessVKey(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "witness.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// ---- an independent log ----

// tlogLog is a log built with golang.org/x/mod/sumdb/tlog and signed with
// golang.org/x/mod/sumdb/note.
type tlogLog struct {
	t      *testing.T
	signer note.Signer
	vkey   string
	stored []tlog.Hash
	size   int64
	salt   string
}

func newTlogLog(t *testing.T, origin string) *tlogLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &tlogLog{t: t, signer: s, vkey: vkey}
}

// fork returns a log with the same key whose leaves differ from index n on.
func (l *tlogLog) fork(n int64) *tlogLog {
	f := &tlogLog{t: l.t, signer: l.signer, vkey: l.vkey, salt: " fork"}
	for f.size < n {
		f.add([]byte(fmt.Sprintf("leaf %d", f.size)))
	}
	return f
}

func (l *tlogLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.stored[x]
	}
	return out, nil
}

func (l *tlogLog) add(leaf []byte) {
	hs, err := tlog.StoredHashes(l.size, leaf, l)
	if err != nil {
		l.t.Fatal(err)
	}
	l.stored = append(l.stored, hs...)
	l.size++
}

func (l *tlogLog) grow(n int64) *tlogLog {
	for l.size < n {
		l.add([]byte(fmt.Sprintf("leaf %d%s", l.size, l.salt)))
	}
	return l
}

func (l *tlogLog) body(n int64) string {
	h := tlog.Hash(sha256.Sum256(nil))
	if n > 0 {
		var err error
		if h, err = tlog.TreeHash(n, l); err != nil {
			l.t.Fatal(err)
		}
	}
	return fmt.Sprintf("%s\n%d\n%s\n", l.signer.Name(), n, base64.StdEncoding.EncodeToString(h[:]))
}

func (l *tlogLog) sign(text string) []byte {
	b, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

func (l *tlogLog) checkpoint(n int64) []byte { return l.sign(l.body(n)) }

// request is an add-checkpoint body from old to the tree of size n.
func (l *tlogLog) request(old, n int64) []byte {
	var proof tlog.TreeProof
	if old > 0 && old < n {
		var err error
		if proof, err = tlog.ProveTree(n, old, l); err != nil {
			l.t.Fatal(err)
		}
	}
	return requestBody(old, proof, l.checkpoint(n))
}

func requestBody(old int64, proof []tlog.Hash, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// ---- an independent cosignature verifier ----

// cosigVerifier is a note.Verifier of Ed25519 cosignature/v1 signatures,
// written from c2sp.org/tlog-cosignature with crypto/ed25519 only.
type cosigVerifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
	// times collects the timestamps of the signatures it verified.
	mu    sync.Mutex
	times []uint64
}

func newCosigVerifier(t *testing.T, vkey string) *cosigVerifier {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		t.Fatalf("not a vkey: %q", vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		t.Fatalf("not an Ed25519 cosignature/v1 vkey: %q", vkey)
	}
	// SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	id := binary.BigEndian.Uint32(h[:4])
	if parts[1] != fmt.Sprintf("%08x", id) {
		t.Fatalf("vkey %q: key ID is not SHA-256(name || \\n || 0x04 || key)[:4]", vkey)
	}
	return &cosigVerifier{name: parts[0], id: id, pub: raw[1:]}
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.id }

// Verify checks timestamp || signature over "cosignature/v1\ntime T\n" +
// the note text; the timestamp must not be zero.
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if ts == 0 || ts > 1<<63-1 {
		return false
	}
	signed := append([]byte("cosignature/v1\ntime "+strconv.FormatUint(ts, 10)+"\n"), msg...)
	if !ed25519.Verify(v.pub, signed, sig[8:]) {
		return false
	}
	v.mu.Lock()
	v.times = append(v.times, ts)
	v.mu.Unlock()
	return true
}

// cosignedBy reports whether a signed note carries a valid cosignature of
// v (and no invalid one).
func cosignedBy(n []byte, v *cosigVerifier) bool {
	got, err := note.Open(n, note.VerifierList(v))
	return err == nil && len(got.Sigs) == 1
}

func postWitness(t *testing.T, url string, body []byte) (int, string, []byte) {
	t.Helper()
	status, b, h, err := call(context.Background(), http.MethodPost, url+"/add-checkpoint", "", body)
	if err != nil {
		t.Fatal(err)
	}
	return status, h.Get("Content-Type"), b
}

// TestWitnessProtocol drives the govlog-witness binary through every case
// of c2sp.org/tlog-witness with a log built by another Merkle tree
// implementation, checks every cosignature with code written from the
// spec, races 8 updates, and restarts it.
func TestWitnessProtocol(t *testing.T) {
	lg := newTlogLog(t, "example.org/independent-log").grow(40)
	unknown := newTlogLog(t, "example.org/unknown").grow(3)
	impostor := newTlogLog(t, "example.org/independent-log").grow(3)
	fork := lg.fork(10).grow(40)
	dir := t.TempDir()
	data := filepath.Join(dir, "witness")
	addr := freeAddr(t)
	w := startGovlogWitness(t, data, addr, "witness.e2e.test/w1", lg.vkey)
	vkey := witnessVKey(t, data)
	cv := newCosigVerifier(t, vkey)
	lv, err := note.NewVerifier(lg.vkey)
	if err != nil {
		t.Fatal(err)
	}

	size0 := "example.org/independent-log\n0\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"
	tampered := lg.checkpoint(5)
	// Swap one base64 character of the signature for another valid one (a
	// flipped bit could make invalid base64: a malformed note, not a bad
	// signature).
	if i := len(tampered) - 5; tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	type step struct {
		name   string
		body   []byte
		status int
		resp   string
		body2  string // the checkpoint body a 200 cosigns
	}
	steps := []step{
		{"malformed", []byte("old 0\n" + string(lg.checkpoint(5))), 400, "", ""},
		{"leading zero", []byte("old 00\n\n" + string(lg.checkpoint(5))), 400, "", ""},
		{"unknown origin", unknown.request(0, 3), 404, "", ""},
		{"untrusted key", impostor.request(0, 3), 403, "", ""},
		{"bad signature", requestBody(0, nil, tampered), 403, "", ""},
		{"old > size", lg.request(6, 5), 400, "", ""},
		{"size 0 with another root", requestBody(0, nil, lg.sign(size0)), 422, "", ""},
		{"old 0 with a proof", requestBody(0, []tlog.Hash{{1}}, lg.checkpoint(5)), 422, "", ""},
		{"first", lg.request(0, 10), 200, "", lg.body(10)},
		{"conflict", lg.request(0, 12), 409, "10\n", ""},
		{"bad proof", requestBody(10, []tlog.Hash{{1}, {2}}, lg.checkpoint(12)), 422, "", ""},
		{"same size", lg.request(10, 10), 200, "", lg.body(10)},
		{"grow", lg.request(10, 20), 200, "", lg.body(20)},
	}
	// A fork of the same size as the cosigned tree.
	steps = append(steps, step{"same-size fork of 20", requestBody(20, nil, fork.checkpoint(20)), 422, "", ""})
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			status, ct, body := postWitness(t, w.url, s.body)
			if status != s.status {
				t.Fatalf("status %d, want %d: %s", status, s.status, body)
			}
			if s.resp != "" && string(body) != s.resp {
				t.Fatalf("body %q, want %q", body, s.resp)
			}
			if status == 409 && ct != "text/x.tlog.size" {
				t.Fatalf("409 Content-Type %q", ct)
			}
			if status == 200 {
				signed := append(lg.sign(s.body2), body...)
				n, err := note.Open(signed, note.VerifierList(lv, cv))
				if err != nil || len(n.Sigs) != 2 {
					t.Fatalf("cosignature %q does not verify: %v", body, err)
				}
			}
		})
	}

	// 8 racing updates from size 20: exactly one wins.
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range 8 {
		wg.Go(func() {
			statuses[i], _, _ = postWitness(t, w.url, lg.request(20, int64(21+i)))
		})
	}
	wg.Wait()
	won := -1
	for i, s := range statuses {
		switch {
		case s == 200 && won == -1:
			won = i
		case s == 409:
		default:
			t.Fatalf("racing updates answered %v", statuses)
		}
	}
	if won == -1 {
		t.Fatalf("no racing update won: %v", statuses)
	}
	winner := int64(21 + won)
	var info struct {
		Name        string `json:"name"`
		VerifierKey string `json:"verifier_key"`
		Logs        []struct {
			Origin      string `json:"origin"`
			VerifierKey string `json:"verifier_key"`
			TreeSize    int64  `json:"tree_size"`
		} `json:"logs"`
	}
	if st := getJSON(t, w.url+"/", &info); st != 200 || info.VerifierKey != vkey || len(info.Logs) != 1 ||
		info.Logs[0].TreeSize != winner || info.Logs[0].VerifierKey != lg.vkey || info.Name != "witness.e2e.test/w1" {
		t.Fatalf("GET / = %d %+v", st, info)
	}

	// kill -9 and restart: the state is kept, a fork is refused.
	w.kill()
	w = startGovlogWitness(t, data, addr, "witness.e2e.test/w1", lg.vkey)
	if status, _, body := postWitness(t, w.url, lg.request(20, 30)); status != 409 || string(body) != fmt.Sprintf("%d\n", winner) {
		t.Fatalf("after restart: %d %q", status, body)
	}
	if status, _, body := postWitness(t, w.url, fork.request(winner, 30)); status != 422 {
		t.Fatalf("a fork after restart: %d %q", status, body)
	}
	if status, _, body := postWitness(t, w.url, requestBody(winner, nil, fork.checkpoint(winner))); status != 422 {
		t.Fatalf("a same-size fork after restart: %d %q", status, body)
	}
	status, _, body := postWitness(t, w.url, lg.request(winner, 40))
	if status != 200 || !cosignedBy(append(lg.checkpoint(40), body...), cv) {
		t.Fatalf("after restart: %d %q", status, body)
	}
	cv.mu.Lock()
	for _, ts := range cv.times {
		if d := time.Since(time.Unix(int64(ts), 0)); d < -time.Minute || d > 5*time.Minute {
			t.Errorf("cosignature timestamp %d is not now", ts)
		}
	}
	cv.mu.Unlock()
	// The monitoring endpoint serves the cosigned checkpoint.
	h := sha256.Sum256([]byte("example.org/independent-log"))
	st, cp, _, err := call(context.Background(), http.MethodGet, fmt.Sprintf("%s/%x/checkpoint", w.url, h), "", nil)
	if err != nil || st != 200 {
		t.Fatalf("GET checkpoint: %d %v", st, err)
	}
	if n, err := note.Open(cp, note.VerifierList(lv, cv)); err != nil || len(n.Sigs) != 2 || n.Text != lg.body(40) {
		t.Fatalf("monitored checkpoint %q: %v", cp, err)
	}
}

// logKeys generates a log's keys with govlog keygen into a new data
// directory and returns it.
func logKeys(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "log")
	out, err := exec.Command(filepath.Join(binDir, "govlog"), "keygen", "--name", "e2e.govlog.test/log", "--out", data).CombinedOutput()
	if err != nil {
		t.Fatalf("govlog keygen: %v\n%s", err, out)
	}
	return data
}

func writePolicy(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "witness-policy.txt")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkCosignedReceipt verifies a JSON receipt with the log key, its
// checkpoint against the policy, and its artifact's tree size.
func checkCosignedReceipt(t *testing.T, d *daemon, p *verifier.Policy, receipt []byte) *verifier.Verified {
	t.Helper()
	v, err := verifier.ReceiptJSON(receipt, d.logKey(t))
	if err != nil {
		t.Fatalf("receipt does not verify: %v\n%s", err, receipt)
	}
	if err := p.Check(v.Checkpoint.Note); err != nil {
		t.Fatalf("receipt checkpoint: %v\n%s", err, v.Checkpoint.Note)
	}
	var r struct {
		Artifact string `json:"artifact"`
	}
	json.Unmarshal(receipt, &r)
	if r.Artifact != "" {
		parts := strings.Split(r.Artifact, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Govlog struct {
				TreeSize uint64 `json:"tree_size"`
				RootHash string `json:"root_hash"`
			} `json:"govlog"`
		}
		json.Unmarshal(payload, &c)
		if c.Govlog.TreeSize != v.Checkpoint.Size || c.Govlog.RootHash != base64.StdEncoding.EncodeToString(v.Checkpoint.Hash[:]) {
			t.Fatalf("artifact bound to tree %d, receipt checkpoint is %d", c.Govlog.TreeSize, v.Checkpoint.Size)
		}
	}
	return v
}

// TestWitnessSyncMode runs govlogd in sync mode with two govlog-witness
// processes and an all-of-two policy: every receipt is cosigned; with the
// quorum down submissions get 503 and no artifact; when the witnesses
// return, service resumes by itself and the resubmission's receipt is the
// same every time, across a restart of govlogd too.
func TestWitnessSyncMode(t *testing.T) {
	dir := t.TempDir()
	data := logKeys(t)
	vkeyFile := filepath.Join(data, "log.vkey")
	type wit struct {
		data, addr string
		p          *proc
	}
	ws := []*wit{{data: filepath.Join(dir, "w1"), addr: freeAddr(t)}, {data: filepath.Join(dir, "w2"), addr: freeAddr(t)}}
	for i, w := range ws {
		w.p = startGovlogWitness(t, w.data, w.addr, fmt.Sprintf("witness.e2e.test/w%d", i+1), vkeyFile)
	}
	text := fmt.Sprintf("# two witnesses, both required\nwitness w1 %s %s\nwitness w2 %s %s\ngroup both all w1 w2\nquorum both\n",
		witnessVKey(t, ws[0].data), ws[0].p.url, witnessVKey(t, ws[1].data), ws[1].p.url)
	policyFile := writePolicy(t, dir, text)
	policy, err := verifier.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	daemonArgs := []string{"--witness-policy", policyFile, "--witness-mode", "sync", "--witness-timeout", "1s"}
	addr := freeAddr(t)
	d := startDaemon(t, data, addr, daemonArgs...)
	ctx := context.Background()

	var info struct {
		WitnessPolicy string `json:"witness_policy"`
	}
	if getJSON(t, d.url+"/v1/log", &info); info.WitnessPolicy != text {
		t.Fatalf("witness_policy %q", info.WitnessPolicy)
	}

	// 48 concurrent submissions: all cosigned.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		sizes = map[uint64]bool{}
	)
	for i := range 48 {
		wg.Go(func() {
			outcome := []string{"allow", "deny"}[i%2]
			st, b, err := postJSON(ctx, d.url+"/v1/decisions", decision(fmt.Sprintf("wsync-%02d", i), outcome, "", 0))
			if err != nil || st != 201 {
				t.Errorf("POST: %d %v %s", st, err, b)
				return
			}
			v := checkCosignedReceipt(t, d, policy, b)
			mu.Lock()
			sizes[v.Checkpoint.Size] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("48 concurrent submissions got receipts on %d cosigned checkpoints", len(sizes))

	// govlog verify --witness-policy, offline.
	st, b, _ := postJSON(ctx, d.url+"/v1/decisions", decision("wsync-cli", "allow", "", 0))
	if st != 201 {
		t.Fatalf("POST: %d %s", st, b)
	}
	var rec struct {
		TLogProof string `json:"tlog_proof"`
	}
	json.Unmarshal(b, &rec)
	proofFile := filepath.Join(dir, "r.tlog-proof")
	os.WriteFile(proofFile, []byte(rec.TLogProof), 0o644)
	out, err := exec.Command(filepath.Join(binDir, "govlog"), "verify", "--log-key", vkeyFile, "--witness-policy", policyFile, proofFile).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("witness_policy: satisfied (witness.e2e.test/w1, witness.e2e.test/w2)")) {
		t.Fatalf("govlog verify --witness-policy: %v\n%s", err, out)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	stricter := writePolicy(t, t.TempDir(), strings.Replace(text, "quorum both\n", "", 1)+fmt.Sprintf("witness w3 %s http://127.0.0.1:1\ngroup three all w1 w2 w3\nquorum three\n",
		cosigVKey("witness.e2e.test/w3", otherKey.Public().(ed25519.PublicKey))))
	out, err = exec.Command(filepath.Join(binDir, "govlog"), "verify", "--log-key", vkeyFile, "--witness-policy", stricter, proofFile).CombinedOutput()
	if code := exitCode(err); code != 1 || !bytes.Contains(out, []byte("witness policy not satisfied")) {
		t.Fatalf("govlog verify with an unmet policy: exit %d\n%s", code, out)
	}

	// The quorum is down (one of two witnesses killed): 503, no artifact.
	ws[1].p.kill()
	down := decision("wsync-down", "allow", "", 0)
	st, b, _ = postJSON(ctx, d.url+"/v1/decisions", down)
	if st != 503 || errorCode(t, b) != "log_unavailable" || bytes.Contains(b, []byte("artifact")) {
		t.Fatalf("with the quorum down: %d %s", st, b)
	}
	if st, b, _, _ := call(ctx, http.MethodGet, d.url+"/v1/decisions/wsync-down", "", nil); st != 503 {
		t.Fatalf("GET with the quorum down: %d %s", st, b)
	}
	// Readiness says so once the quorum has been stuck for longer than a
	// submission waits (the POST above waited that long).
	if st, b, _, _ := call(ctx, http.MethodGet, d.url+"/readyz", "", nil); st != 503 || errorCode(t, b) != "log_unavailable" {
		t.Fatalf("/readyz with the quorum down: %d %s", st, b)
	}

	// Back: service resumes by itself; the resubmission gets 200.
	ws[1].p = startGovlogWitness(t, ws[1].data, ws[1].addr, "witness.e2e.test/w2", vkeyFile)
	var first []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, b, _ = postJSON(ctx, d.url+"/v1/decisions", down)
		if st == 200 {
			first = b
			break
		}
		if st != 503 || time.Now().After(deadline) {
			t.Fatalf("resubmission after the witnesses returned: %d %s", st, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkCosignedReceipt(t, d, policy, first)
	if st, b, _, _ := call(ctx, http.MethodGet, d.url+"/readyz", "", nil); st != 200 {
		t.Fatalf("/readyz after the witnesses returned: %d %s", st, b)
	}
	st, b, _ = postJSON(ctx, d.url+"/v1/decisions", decision("wsync-after", "deny", "", 0))
	if st != 201 {
		t.Fatalf("a new submission after the witnesses returned: %d %s", st, b)
	}
	checkCosignedReceipt(t, d, policy, b)

	// The receipt of the resubmission is the same every time, also after a
	// restart of govlogd.
	d.term(t, 20*time.Second)
	d = startDaemon(t, data, addr, daemonArgs...)
	st, b, _ = postJSON(ctx, d.url+"/v1/decisions", down)
	if st != 200 || !bytes.Equal(b, first) {
		t.Fatalf("resubmission after a restart: %d, same receipt %v\n%s\n%s", st, bytes.Equal(b, first), b, first)
	}
	// GET /v1/checkpoint ends up cosigned by both.
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, cp, _, _ := call(ctx, http.MethodGet, d.url+"/v1/checkpoint", "", nil)
		if policy.Satisfied(cp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/checkpoint is not cosigned:\n%s", cp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// cosigVKey is the cosignature/v1 vkey of an Ed25519 public key.
func cosigVKey(name string, pub ed25519.PublicKey) string {
	raw := append([]byte{0x04}, pub...)
	h := sha256.Sum256(append([]byte(name+"\n"), raw...))
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h[:4]), base64.StdEncoding.EncodeToString(raw))
}

// ---- independent implementations, built from their modules ----

const (
	torchwoodModule  = "filippo.io/torchwood"
	torchwoodVersion = "v0.6.1"
	tesseraModule    = "github.com/transparency-dev/tessera"
	tesseraVersion   = "v1.0.4"
	// requireInteropEnv, when set, turns a module that cannot be
	// downloaded into a failure instead of a skip.
	requireInteropEnv = "GOVLOG_REQUIRE_INTEROP"
)

// toolBuild is one go install of a command of another module.
type toolBuild struct {
	once sync.Once
	dir  string
	skip string
	err  error
}

var (
	toolBuildsMu sync.Mutex
	toolBuilds   = map[string]*toolBuild{}
)

// installTool builds pkg of module@version with go install, from the
// module's own go.mod, into a directory under the system's temporary
// directory, once per test binary, and returns the path of the command. A module that cannot be downloaded
// (no network) skips the test, loudly, unless GOVLOG_REQUIRE_INTEROP is
// set; a build that fails fails it.
func installTool(t *testing.T, module, version, pkg string) string {
	t.Helper()
	toolBuildsMu.Lock()
	b, ok := toolBuilds[pkg]
	if !ok {
		b = &toolBuild{}
		toolBuilds[pkg] = b
	}
	toolBuildsMu.Unlock()
	b.once.Do(func() {
		// One directory per module version, kept across runs: go install
		// only relinks what is up to date.
		dir := filepath.Join(os.TempDir(), "govlog-interop-bin", strings.ReplaceAll(module, "/", "_")+"@"+version)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.err = err
			return
		}
		b.dir = dir
		dl := exec.Command("go", "mod", "download", module+"@"+version)
		dl.Dir = dir
		if out, err := dl.CombinedOutput(); err != nil {
			b.skip = fmt.Sprintf("cannot download %s@%s: %v\n%s", module, version, err, out)
			return
		}
		cmd := exec.Command("go", "install", pkg+"@"+version)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("failed to build %s@%s: %v\n%s", pkg, version, err, out)
		}
	})
	if b.skip != "" {
		if os.Getenv(requireInteropEnv) != "" {
			t.Fatalf("%s is set: %s", requireInteropEnv, b.skip)
		}
		t.Skipf("\n\n*** SKIPPING AN INTEROPERABILITY TEST: %s ***\n*** Set %s=1 to make this a failure. ***\n", b.skip, requireInteropEnv)
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return filepath.Join(b.dir, filepath.Base(pkg))
}

// litewitness builds torchwood's litewitness. (Its companion witnessctl is
// not built: it needs sigsum.org/sigsum-go, which the Go module proxy does
// not serve; addLitewitnessLog does what its add-log and add-key commands
// do.)
func litewitness(t *testing.T) string {
	return installTool(t, torchwoodModule, torchwoodVersion, torchwoodModule+"/cmd/litewitness")
}

// sshAgent serves an in-memory ssh-agent holding key on a Unix socket, for
// litewitness, which signs through the ssh-agent protocol.
func sshAgent(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	return sock
}

// addLitewitnessLog configures a log in a litewitness database, as
// "witnessctl add-log" and "witnessctl add-key" of torchwood v0.6.1 do:
// litewitness's schema, the log at size 0 with the empty tree's root, and
// its key.
func addLitewitnessLog(t *testing.T, db, origin, vkey string) {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	empty := sha256.Sum256(nil)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`CREATE TABLE IF NOT EXISTS log (
			origin TEXT PRIMARY KEY,
			tree_size INTEGER NOT NULL,
			tree_hash TEXT NOT NULL -- base64-encoded
		)`, nil},
		{`CREATE TABLE IF NOT EXISTS key (
			origin TEXT NOT NULL,
			key TEXT NOT NULL, -- note verifier key
			FOREIGN KEY(origin) REFERENCES log(origin)
		)`, nil},
		{"INSERT INTO log (origin, tree_size, tree_hash) VALUES (?, 0, ?)", []any{origin, base64.StdEncoding.EncodeToString(empty[:])}},
		{"INSERT INTO key (origin, key) VALUES (?, ?)", []any{origin, vkey}},
	} {
		if _, err := conn.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("configuring litewitness: %v", err)
		}
	}
}

// startLitewitness runs litewitness on db with the key in the agent.
func startLitewitness(t *testing.T, bin, db, addr, name, sock string, pub ed25519.PublicKey) *proc {
	t.Helper()
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return startProc(t, "litewitness", addr, "/", bin,
		"-name", name, "-db", db, "-ssh-agent", sock, "-listen", addr, "-key", ssh.FingerprintSHA256(sshPub))
}

// TestLitewitnessCosignsGovlog: an independent witness, torchwood's
// litewitness built from its own module, cosigns govlogd's checkpoints in
// sync mode; every receipt satisfies a policy naming it alone; with it
// down submissions get 503; when it returns, service resumes by itself.
func TestLitewitnessCosignsGovlog(t *testing.T) {
	bin := litewitness(t)
	dir := t.TempDir()
	data := logKeys(t)
	logVKey, err := os.ReadFile(filepath.Join(data, "log.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "litewitness.db")
	addLitewitnessLog(t, db, "e2e.govlog.test/log", strings.TrimSpace(string(logVKey)))
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sock := sshAgent(t, priv)
	const name = "litewitness.e2e.test"
	lwAddr := freeAddr(t)
	lw := startLitewitness(t, bin, db, lwAddr, name, sock, pub)
	lwKey := cosigVKey(name, pub)
	if !strings.Contains(lw.stderr.String(), lwKey) {
		t.Fatalf("litewitness does not announce the verifier key %s:\n%s", lwKey, lw.stderr.String())
	}
	text := fmt.Sprintf("witness lw %s %s\nquorum lw\n", lwKey, lw.url)
	policyFile := writePolicy(t, dir, text)
	policy, err := verifier.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	cv := newCosigVerifier(t, lwKey)
	d := startDaemon(t, data, "", "--witness-policy", policyFile, "--witness-mode", "sync", "--witness-timeout", "1s")
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			st, b, err := postJSON(ctx, d.url+"/v1/decisions", decision(fmt.Sprintf("lw-%02d", i), []string{"allow", "deny"}[i%2], "", 0))
			if err != nil || st != 201 {
				t.Errorf("POST: %d %v %s", st, err, b)
				return
			}
			v := checkCosignedReceipt(t, d, policy, b)
			if !cosignedBy(v.Checkpoint.Note, cv) {
				t.Errorf("the litewitness cosignature does not verify with crypto/ed25519:\n%s", v.Checkpoint.Note)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// litewitness down: 503, no artifact.
	lw.kill()
	down := decision("lw-down", "allow", "", 0)
	st, b, _ := postJSON(ctx, d.url+"/v1/decisions", down)
	if st != 503 || errorCode(t, b) != "log_unavailable" || bytes.Contains(b, []byte("artifact")) {
		t.Fatalf("with litewitness down: %d %s", st, b)
	}
	// Back, with its state: service resumes by itself.
	startLitewitness(t, bin, db, lwAddr, name, sock, pub)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, b, _ = postJSON(ctx, d.url+"/v1/decisions", down)
		if st == 200 {
			break
		}
		if st != 503 || time.Now().After(deadline) {
			t.Fatalf("resubmission after litewitness returned: %d %s", st, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkCosignedReceipt(t, d, policy, b)
	st, b, _ = postJSON(ctx, d.url+"/v1/decisions", decision("lw-after", "allow", "", 0))
	if st != 201 {
		t.Fatalf("after litewitness returned: %d %s", st, b)
	}
	checkCosignedReceipt(t, d, policy, b)
}

// TestTesseraLogDrivesGovlogWitness: an independent C2SP log, Tessera's
// POSIX log (its posix-oneshot example, built from Tessera's module),
// configured with a policy naming govlog-witness alone and failing closed,
// gets its checkpoints cosigned by it: the published checkpoint carries a
// cosignature that verifies with crypto/ed25519, twice (the second time
// from the size the witness cosigned, by a new process).
func TestTesseraLogDrivesGovlogWitness(t *testing.T) {
	oneshot := installTool(t, tesseraModule, tesseraVersion, tesseraModule+"/cmd/examples/posix-oneshot")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "log.key")
	skeyText, vkeyText, err := note.GenerateKey(rand.Reader, "example.org/tessera-log")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(skeyText), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startGovlogWitness(t, filepath.Join(dir, "w"), "", "witness.e2e.test/w1", vkeyText)
	cv := newCosigVerifier(t, witnessVKey(t, filepath.Join(dir, "w")))
	lv, err := note.NewVerifier(vkeyText)
	if err != nil {
		t.Fatal(err)
	}
	policy := writePolicy(t, dir, fmt.Sprintf("witness w1 %s %s\nquorum w1\n", witnessVKey(t, filepath.Join(dir, "w")), w.url))
	store := filepath.Join(dir, "store")
	for run, n := range []int{5, 3} {
		entries := filepath.Join(dir, fmt.Sprintf("entries-%d", run))
		os.Mkdir(entries, 0o755)
		for i := range n {
			os.WriteFile(filepath.Join(entries, fmt.Sprintf("e%d", i)), fmt.Appendf(nil, "run %d entry %d", run, i), 0o644)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, oneshot, "--storage_dir="+store, "--entries="+filepath.Join(entries, "*"),
			"--private_key="+keyFile, "--witness_policy_file="+policy, "--witness_fail_open=false").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("posix-oneshot run %d: %v\n%s", run, err, out)
		}
		cp, err := os.ReadFile(filepath.Join(store, "checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(cp, note.VerifierList(lv, cv))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("run %d: the published checkpoint is not cosigned by govlog-witness: %v\n%s", run, err, cp)
		}
		if want := []string{"5", "8"}[run]; strings.Split(n.Text, "\n")[1] != want {
			t.Fatalf("run %d: checkpoint of size %s, want %s", run, strings.Split(n.Text, "\n")[1], want)
		}
	}
	var info struct {
		Logs []struct {
			TreeSize int `json:"tree_size"`
		} `json:"logs"`
	}
	if getJSON(t, w.url+"/", &info); len(info.Logs) != 1 || info.Logs[0].TreeSize != 8 {
		t.Fatalf("the witness state: %+v", info)
	}
}
