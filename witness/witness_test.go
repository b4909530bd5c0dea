package witness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// step is one Update of a scenario and what it must return.
type step struct {
	name  string
	old   int64
	cp    []byte
	proof [][]byte
	// want is the sentinel error, nil for a cosignature.
	want error
	// conflict is the size a 409 must report.
	conflict uint64
	// body is the checkpoint body a cosignature must be over.
	body string
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	lg := newTestLog(t, "example.com/log").grow(20)
	fork := lg.fork(5, " fork") // same key, same first 5 leaves
	fork.grow(20)
	other := newTestLog(t, "example.com/log") // same origin, untrusted key
	other.grow(20)
	unknown := newTestLog(t, "example.com/unknown").grow(5)

	tampered := lg.checkpoint(6)
	// A signature byte, by the trusted key name and ID: swap one base64
	// character for another valid one (flipping a bit could make the line
	// invalid base64, a malformed note instead of a bad signature).
	i := strings.LastIndex(string(tampered), " ") + 20
	if tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}

	steps := []step{
		{name: "unknown origin", old: 0, cp: unknown.checkpoint(5), want: ErrUnknownLog},
		{name: "signed by another key of the same name", old: 0, cp: other.checkpoint(5), want: ErrNoSignature},
		{name: "trusted key name and ID, bad signature", old: 0, cp: tampered, want: ErrNoSignature},
		{name: "unsigned", old: 0, cp: []byte(lg.body(5)), want: ErrMalformed},
		{name: "not a checkpoint", old: 0, cp: lg.sign("example.com/log\nfive\nAAAA\n"), want: ErrMalformed},
		{name: "size with a leading zero", old: 0, cp: lg.sign(strings.Replace(lg.body(5), "\n5\n", "\n05\n", 1)), want: ErrMalformed},
		{name: "short root hash", old: 0, cp: lg.sign("example.com/log\n5\nAAAA\n"), want: ErrMalformed},
		{name: "size beyond 2^63-1", old: 0, cp: lg.sign(strings.Replace(lg.body(5), "\n5\n", "\n9223372036854775808\n", 1)), want: ErrMalformed},
		{name: "old larger than size", old: 6, cp: lg.checkpoint(5), want: ErrOldSize},
		{name: "size 0 with another root", old: 0, cp: lg.sign("example.com/log\n0\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"), want: ErrInconsistent},
		{name: "old 0 with a proof", old: 0, cp: lg.checkpoint(5), proof: lg.proof(3, 5), want: ErrInconsistent},
		{name: "size 0", old: 0, cp: lg.checkpoint(0), body: lg.body(0)},
		{name: "first checkpoint", old: 0, cp: lg.checkpoint(5), body: lg.body(5)},
		{name: "stale old 0", old: 0, cp: lg.checkpoint(8), want: ErrConflict, conflict: 5},
		{name: "stale old 3", old: 3, cp: lg.checkpoint(8), proof: lg.proof(3, 8), want: ErrConflict, conflict: 5},
		{name: "old beyond the cosigned size", old: 7, cp: lg.checkpoint(8), proof: lg.proof(7, 8), want: ErrConflict, conflict: 5},
		{name: "bad proof", old: 5, cp: lg.checkpoint(8), proof: lg.proof(4, 8), want: ErrInconsistent},
		{name: "truncated proof", old: 5, cp: lg.checkpoint(8), proof: lg.proof(5, 8)[1:], want: ErrInconsistent},
		{name: "proof of a fork", old: 5, cp: fork.checkpoint(8), proof: fork.proof(5, 8), want: nil, body: fork.body(8)},
		{name: "the original after the fork won", old: 8, cp: lg.checkpoint(12), proof: lg.proof(8, 12), want: ErrInconsistent},
		{name: "same-size fork", old: 8, cp: lg.checkpoint(8), want: ErrInconsistent},
		{name: "same size with a proof", old: 8, cp: fork.checkpoint(8), proof: fork.proof(5, 8), want: ErrInconsistent},
		{name: "same checkpoint again", old: 8, cp: fork.checkpoint(8), body: fork.body(8)},
		{name: "extension lines", old: 8, cp: fork.checkpoint(13, "ext one", "ext two"), proof: fork.proof(8, 13), body: fork.body(13, "ext one", "ext two")},
		{name: "empty extension line", old: 13, cp: fork.sign(fork.body(14) + "\n\n"), proof: fork.proof(13, 14), want: ErrMalformed},
		{name: "grow", old: 13, cp: fork.checkpoint(20), proof: fork.proof(13, 20), body: fork.body(20)},
		{name: "rollback", old: 20, cp: fork.checkpoint(19), want: ErrOldSize},
		{name: "rollback from old", old: 19, cp: fork.checkpoint(19), want: ErrConflict, conflict: 20},
	}
	w := newTestWitness(t, "", "", lg)
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { runStep(t, w, s) })
	}
	if ctx.Err() != nil {
		t.Fatal(ctx.Err())
	}
}

func runStep(t *testing.T, w *Witness, s step) {
	t.Helper()
	cosig, err := w.Update(context.Background(), uint64(s.old), s.cp, s.proof)
	if s.want == nil {
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		checkCosignature(t, cosig, w.VerifierKey(), s.body)
		return
	}
	if !errors.Is(err, s.want) {
		t.Fatalf("Update: got %v, want %v", err, s.want)
	}
	if cosig != nil {
		t.Fatalf("Update returned a cosignature with error %v", err)
	}
	var ce *ConflictError
	if errors.As(err, &ce) != (s.want == ErrConflict) || (ce != nil && ce.Size != s.conflict) {
		t.Fatalf("Update: got %#v, want a conflict at size %d", err, s.conflict)
	}
}

// TestCosignatureLibraries checks a cosignature with the note packages of
// golang.org/x/mod and transparency-dev/formats: the line appended to the
// log's note verifies, and the timestamp is the one the line carries.
func TestCosignatureLibraries(t *testing.T) {
	lg := newTestLog(t, "example.com/log").grow(3)
	w := newTestWitness(t, "", "", lg)
	cp := lg.checkpoint(3)
	cosig, err := w.Update(context.Background(), 0, cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(lg.vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(append(cp, cosig...), note.VerifierList(logV, v))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Sigs) != 2 || n.Sigs[1].Name != w.Name() {
		t.Fatalf("signatures: %+v", n.Sigs)
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[1])
	if err != nil {
		t.Fatal(err)
	}
	if want := checkCosignature(t, cosig, w.VerifierKey(), lg.body(3)); !ts.Equal(want) {
		t.Fatalf("timestamp %v, want %v", ts, want)
	}
	// The same line on another checkpoint does not verify.
	if _, err := note.Open(append(lg.checkpoint(2), cosig...), note.VerifierList(logV, v)); err == nil {
		t.Fatal("a cosignature verified on another checkpoint")
	}
}

// TestKeyRotation: every key configured for an origin is trusted.
func TestKeyRotation(t *testing.T) {
	old := newTestLog(t, "example.com/log").grow(10)
	rotated := old.fork(10, "")
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	if rotated.signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	rotated.vkey = vkey
	w := newTestWitness(t, "", "", old, rotated)
	runStep(t, w, step{old: 0, cp: old.checkpoint(4), body: old.body(4)})
	runStep(t, w, step{old: 4, cp: rotated.checkpoint(10), proof: rotated.proof(4, 10), body: rotated.body(10)})
	info, err := w.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Logs) != 2 || info.Logs[0].TreeSize != 10 || info.Logs[1].TreeSize != 10 {
		t.Fatalf("info: %+v", info)
	}
}

// TestRace runs 8 updates from the same old size to 8 different sizes and
// holds each one after it passed every check, just before its
// compare-and-swap, until all 8 are there: exactly one may win, the 7
// others must get 409 with the winner's size, and the state must be the
// winner's.
func TestRace(t *testing.T) {
	const racers = 8
	lg := newTestLog(t, "example.com/log").grow(10 + racers)
	w := newTestWitness(t, "", "", lg)
	runStep(t, w, step{old: 0, cp: lg.checkpoint(10), body: lg.body(10)})

	var arrived sync.WaitGroup
	arrived.Add(racers)
	release := make(chan struct{})
	w.beforeSwap = func() {
		arrived.Done()
		<-release
	}
	type outcome struct {
		size  int64
		cosig []byte
		err   error
	}
	results := make(chan outcome, racers)
	for i := range racers {
		size := int64(11 + i)
		go func() {
			cosig, err := w.Update(context.Background(), 10, lg.checkpoint(size), lg.proof(10, size))
			results <- outcome{size, cosig, err}
		}()
	}
	arrived.Wait()
	close(release)
	var winner int64 = -1
	var conflicts []outcome
	for range racers {
		r := <-results
		switch {
		case r.err == nil:
			if winner != -1 {
				t.Fatalf("two winners: sizes %d and %d", winner, r.size)
			}
			winner = r.size
			checkCosignature(t, r.cosig, w.VerifierKey(), lg.body(r.size))
		case errors.Is(r.err, ErrConflict):
			conflicts = append(conflicts, r)
		default:
			t.Fatalf("size %d: %v", r.size, r.err)
		}
	}
	if winner == -1 || len(conflicts) != racers-1 {
		t.Fatalf("winner %d, %d conflicts", winner, len(conflicts))
	}
	for _, c := range conflicts {
		var ce *ConflictError
		if !errors.As(c.err, &ce) || ce.Size != uint64(winner) {
			t.Fatalf("size %d: %v, want a conflict at the winner's size %d", c.size, c.err, winner)
		}
	}
	w.beforeSwap = nil
	logs, err := w.Logs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if logs[0].Size != uint64(winner) || logs[0].Hash != [32]byte(lg.root(winner)) {
		t.Fatalf("state %d, want the winner's %d", logs[0].Size, winner)
	}
}

// TestRestart: the state survives a restart, and a fork after the restart
// is refused.
func TestRestart(t *testing.T) {
	lg := newTestLog(t, "example.com/log").grow(30)
	fork := lg.fork(10, " fork").grow(30)
	other := newTestLog(t, "example.org/other").grow(3)
	dir := t.TempDir()
	skey, _, err := GenerateKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	w := newTestWitness(t, dir, skey, lg)
	runStep(t, w, step{old: 0, cp: lg.checkpoint(10), body: lg.body(10)})
	runStep(t, w, step{old: 10, cp: lg.checkpoint(20), proof: lg.proof(10, 20), body: lg.body(20)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted with one more log.
	w = newTestWitness(t, dir, skey, lg, other)
	for _, s := range []step{
		{name: "stale", old: 10, cp: lg.checkpoint(25), proof: lg.proof(10, 25), want: ErrConflict, conflict: 20},
		{name: "fork", old: 20, cp: fork.checkpoint(25), proof: fork.proof(20, 25), want: ErrInconsistent},
		{name: "same-size fork", old: 20, cp: fork.checkpoint(20), want: ErrInconsistent},
		{name: "new log", old: 0, cp: other.checkpoint(3), body: other.body(3)},
		{name: "grow", old: 20, cp: lg.checkpoint(30), proof: lg.proof(20, 30), body: lg.body(30)},
	} {
		t.Run(s.name, func(t *testing.T) { runStep(t, w, s) })
	}
	cp, err := w.Checkpoint(context.Background(), lg.origin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(cp), lg.body(30)+"\n— example.com/log ") {
		t.Fatalf("stored checkpoint:\n%s", cp)
	}
	if _, err := w.Checkpoint(context.Background(), "example.net/nope"); !errors.Is(err, ErrUnknownLog) {
		t.Fatalf("Checkpoint of an unknown log: %v", err)
	}
}

func TestNewConfig(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	skey, vkey, err := GenerateKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := dir + "/w.db"
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{Logs: []string{lg.vkey}, Database: db}},
		{"bad key", Config{Key: "PRIVATE+KEY+x+00000000+AAAA", Logs: []string{lg.vkey}, Database: db}},
		{"no logs", Config{Key: skey, Database: db}},
		{"no database", Config{Key: skey, Logs: []string{lg.vkey}}},
		{"database in a missing directory", Config{Key: skey, Logs: []string{lg.vkey}, Database: dir + "/missing/w.db"}},
		{"bad log key", Config{Key: skey, Logs: []string{"example.com/log+00000000+AAAA"}, Database: db}},
		{"cosignature key as log key", Config{Key: skey, Logs: []string{vkey}, Database: db}},
		{"duplicate log key", Config{Key: skey, Logs: []string{lg.vkey, lg.vkey}, Database: db}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w, err := New(context.Background(), tc.cfg); err == nil {
				w.Close()
				t.Fatal("New accepted it")
			} else if strings.Contains(err.Error(), skey[20:]) {
				t.Fatalf("the error quotes the private key: %v", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	skey, vkey, err := GenerateKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := VerifierKeyOf(skey); err != nil || got != vkey {
		t.Fatalf("VerifierKeyOf = %q, %v; want %q", got, err, vkey)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyHash() != s.KeyHash() || !strings.HasPrefix(skey, fmt.Sprintf("PRIVATE+KEY+witness.test/w1+%08x+", v.KeyHash())) {
		t.Fatalf("key IDs differ: %s / %s", skey, vkey)
	}
	// A plain Ed25519 note key (0x01) is accepted; its cosignature/v1 vkey
	// is the 0x04 one.
	plain, plainV, err := note.GenerateKey(rand.Reader, "witness.test/w2")
	if err != nil {
		t.Fatal(err)
	}
	want, err := fnote.VKeyToCosignatureV1(plainV)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := VerifierKeyOf(plain); err != nil || got != want {
		t.Fatalf("VerifierKeyOf(0x01 key) = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{
		"",
		vkey,
		"PRIVATE+KEY+witness.test/w1+00000000+" + skey[strings.LastIndex(skey, "+")+1:],
		strings.Replace(skey, "PRIVATE", "PUBLIC", 1),
		skey + "=",
		"PRIVATE+KEY+bad name+00000000+AAAA",
	} {
		if _, err := VerifierKeyOf(bad); err == nil {
			t.Errorf("VerifierKeyOf(%q) accepted it", bad)
		}
	}
	if _, _, err := GenerateKey("bad+name"); err == nil {
		t.Error("GenerateKey accepted a name with '+'")
	}
}
