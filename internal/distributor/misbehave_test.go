package distributor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/witness"
)

// The misbehaving witnesses of these tests are real witnesses
// (witness.Witness) behind an HTTP server of the test that answers in
// their place, as told: slowly, never, with 409s that do not help, with
// cosignatures that are not.

// badWitness is a real witness behind a server that misbehaves as told.
type badWitness struct {
	// tw carries the witness's key and the server's URL, for policyFor.
	tw   *testWitness
	skey string
	// behave, when set, answers add-checkpoint requests in the witness's
	// place.
	behave atomic.Pointer[behaviour]
	// requests counts add-checkpoint requests; pending those not answered
	// yet.
	requests, pending atomic.Int64
}

// behaviour answers an add-checkpoint request req whose checkpoint body
// (the signed text) is body.
type behaviour func(rw http.ResponseWriter, r *http.Request, req, body []byte)

func newBadWitness(t *testing.T, name, logKey string) *badWitness {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(context.Background(), witness.Config{Key: skey, Logs: []string{logKey}, Database: filepath.Join(t.TempDir(), "w.db")})
	if err != nil {
		t.Fatal(err)
	}
	bw := &badWitness{skey: skey}
	real := w.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		bw.requests.Add(1)
		bw.pending.Add(1)
		defer bw.pending.Add(-1)
		req, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if b := bw.behave.Load(); b != nil {
			_, _, cp, err := witness.ParseRequest(req)
			if err != nil {
				t.Errorf("the distributor sent a malformed request: %v\n%s", err, req)
				return
			}
			(*b)(rw, r, req, cp[:bytes.Index(cp, []byte("\n\n"))+1])
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(req))
		real.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() { srv.Close(); w.Close() })
	bw.tw = &testWitness{w: w, vkey: vkey, srv: srv}
	return bw
}

func (bw *badWitness) set(b behaviour) { bw.behave.Store(&b) }
func (bw *badWitness) heal()           { bw.behave.Store(nil) }
func (bw *badWitness) name() string    { return bw.tw.w.Name() }

// cosign returns a cosignature/v1 line of the witness's key on body with
// timestamp ts, made with crypto/ed25519 as tlog-cosignature specifies.
func (bw *badWitness) cosign(t *testing.T, body []byte, ts uint64) []byte {
	t.Helper()
	return cosignWith(t, bw.skey, body, ts)
}

func cosignWith(t *testing.T, skey string, body []byte, ts uint64) []byte {
	t.Helper()
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 {
		t.Fatalf("not a witness key: %v", err)
	}
	id, err := strconv.ParseUint(parts[3], 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, body)
	sig := binary.BigEndian.AppendUint32(nil, uint32(id))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(ed25519.NewKeyFromSeed(raw[1:]), msg)...)
	return fmt.Appendf(nil, "— %s %s\n", parts[2], base64.StdEncoding.EncodeToString(sig))
}

// startDistributor starts a distributor with the settings of
// newDistributor, changed by mod.
func startDistributor(t *testing.T, l *testLog, p *verifier.Policy, reg prometheus.Registerer, mod func(*Config)) *Distributor {
	t.Helper()
	cfg := Config{
		Source:        l.log.Backend(),
		LogKey:        l.key,
		Policy:        p,
		Database:      filepath.Join(t.TempDir(), "cosigned.db"),
		RetryInterval: 50 * time.Millisecond,
		PollInterval:  50 * time.Millisecond,
		MaxBackoff:    100 * time.Millisecond,
		PushTimeout:   5 * time.Second,
		Registerer:    reg,
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pushes is govlog_witness_pushes_total of a witness and result.
func pushes(t *testing.T, reg *prometheus.Registry, witness, result string) float64 {
	t.Helper()
	return metricValue(t, reg, "govlog_witness_pushes_total", "witness", witness, "result", result)
}

// notCosigned checks that no stored checkpoint covers index and that cp
// carries exactly the cosignatures of the witnesses named.
func notCosigned(t *testing.T, d *Distributor, index uint64, cp log.Checkpoint, only ...string) {
	t.Helper()
	if got, ok, err := d.Covering(context.Background(), index); ok || err != nil {
		t.Fatalf("entry %d is covered by a cosigned checkpoint: %v\n%s", index, err, got.Note)
	}
	n := d.Cosigned(cp)
	if countCosigs(n) != len(only) {
		t.Fatalf("%d cosignatures kept, want those of %v:\n%s", countCosigs(n), only, n)
	}
	for _, name := range only {
		if !bytes.Contains(n, []byte("\n— "+name+" ")) {
			t.Fatalf("no cosignature of %s:\n%s", name, n)
		}
	}
}

// TestSlowWitness: a witness that answers only after the push timeout.
// Each request to it is abandoned at the push timeout (the witness sees
// the client go away), counted as unreachable; it never counts towards
// the quorum, and with a quorum that does not need it a checkpoint is
// cosigned without waiting for it. When it is fast again, cosigning
// resumes by itself.
func TestSlowWitness(t *testing.T) {
	const timeout = 300 * time.Millisecond
	l := newTestLog(t, t.TempDir())
	good := newTestWitness(t, "witness.test/good", l.vkey)
	slow := newBadWitness(t, "witness.test/slow", l.vkey)
	gaveUp := make(chan time.Duration, 100)
	slow.set(func(rw http.ResponseWriter, r *http.Request, _, _ []byte) {
		start := time.Now()
		select {
		case <-r.Context().Done():
			select {
			case gaveUp <- time.Since(start):
			default:
			}
		case <-time.After(10 * timeout):
			http.Error(rw, "too late", http.StatusServiceUnavailable)
		}
	})
	reg := prometheus.NewRegistry()
	d := startDistributor(t, l, policyFor(t, "all", good, slow.tw), reg, func(c *Config) { c.PushTimeout = timeout })
	index, cp := l.add(3)
	d.Notify(cp)
	for i := range 3 {
		took := <-gaveUp
		if took < timeout/2 || took > timeout+5*time.Second {
			t.Fatalf("request %d to the slow witness abandoned after %v, want about the push timeout %v", i, took, timeout)
		}
	}
	waitFor(t, "3 pushes to the slow witness counted unreachable", func() bool {
		return pushes(t, reg, slow.name(), "unreachable") >= 3
	})
	waitFor(t, "the good witness's cosignature", func() bool { return countCosigs(d.Cosigned(cp)) == 1 })
	notCosigned(t, d, index, cp, good.w.Name())
	if n := pushes(t, reg, slow.name(), "cosigned"); n != 0 {
		t.Fatalf("%v pushes to the slow witness counted cosigned", n)
	}

	slow.heal()
	got, err := waitCovering(t, d, index, 20*time.Second)
	if err != nil {
		t.Fatalf("after the witness became fast again: %v", err)
	}
	if err := policyFor(t, "all", good, slow.tw).Check(got.Note); err != nil {
		t.Fatal(err)
	}
}

// TestSlowWitnessNotWaitedFor: with a quorum that does not need it, a
// witness that has not answered yet delays nothing: the checkpoint is
// cosigned and stored while its request is still pending, and Notify
// never blocks.
func TestSlowWitnessNotWaitedFor(t *testing.T) {
	l := newTestLog(t, t.TempDir())
	good := newTestWitness(t, "witness.test/good", l.vkey)
	slow := newBadWitness(t, "witness.test/slow", l.vkey)
	release := make(chan struct{})
	slow.set(func(rw http.ResponseWriter, r *http.Request, _, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	d := startDistributor(t, l, policyFor(t, "any", good, slow.tw), nil, func(c *Config) { c.PushTimeout = time.Minute })
	index, cp := l.add(3)
	d.Notify(cp)
	waitFor(t, "a request pending at the slow witness", func() bool { return slow.pending.Load() == 1 })
	if _, err := waitCovering(t, d, index, 20*time.Second); err != nil {
		t.Fatalf("with the slow witness not needed: %v", err)
	}
	for range 50 {
		index, cp = l.add(1)
		d.Notify(cp)
	}
	if _, err := waitCovering(t, d, index, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := slow.pending.Load(); n != 1 || slow.requests.Load() != 1 {
		t.Fatalf("the slow witness has %d requests pending of %d: it was not the one request never answered", n, slow.requests.Load())
	}
	close(release)
}

// TestConflictLoop: a witness that answers every push with 409 and a size
// that never helps. Each push follows at most maxConflictRetries 409s and
// stops, counted under conflict; the witness is then retried after the
// worker's backoff, not in a hot loop (at most 3 requests a push, pushes
// at most one per MaxBackoff: fewer than 40 requests a second here); it
// never counts towards the quorum; when it behaves, cosigning resumes by
// itself.
func TestConflictLoop(t *testing.T) {
	var moving atomic.Uint64
	cases := []struct {
		name string
		size func(old uint64) string
		// perPush is the most requests one push sends.
		perPush int
	}{
		// Its own stale size, whatever it is sent.
		{"stale size", func(uint64) string { return "1" }, 2},
		// A size larger than the log's: it claims to be ahead (a fork, or a
		// lie).
		{"ahead of the log", func(uint64) string { return "1000000" }, 1},
		{"no size", func(uint64) string { return "many" }, 1},
		{"negative", func(uint64) string { return "-1" }, 1},
		{"beyond uint64", func(uint64) string { return "18446744073709551616" }, 1},
		// Another size every time, each smaller than the log's.
		{"moving", func(old uint64) string { return strconv.FormatUint(1+(old+moving.Add(1))%3, 10) }, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLog(t, t.TempDir())
			good := newTestWitness(t, "witness.test/good", l.vkey)
			bad := newBadWitness(t, "witness.test/bad", l.vkey)
			bad.set(func(rw http.ResponseWriter, r *http.Request, req, _ []byte) {
				old, _, _, _ := witness.ParseRequest(req)
				rw.Header().Set("Content-Type", "text/x.tlog.size")
				rw.WriteHeader(http.StatusConflict)
				fmt.Fprintf(rw, "%s\n", c.size(old))
			})
			reg := prometheus.NewRegistry()
			d := startDistributor(t, l, policyFor(t, "all", good, bad.tw), reg, nil)
			index, cp := l.add(5)
			d.Notify(cp)
			waitFor(t, "5 pushes to the bad witness counted", func() bool {
				return pushes(t, reg, bad.name(), "conflict") >= 5
			})
			waitFor(t, "the good witness's cosignature", func() bool { return countCosigs(d.Cosigned(cp)) == 1 })
			notCosigned(t, d, index, cp, good.w.Name())
			for _, result := range []string{"cosigned", "invalid_cosignature", "unreachable", "refused", "error"} {
				if n := pushes(t, reg, bad.name(), result); n != 0 {
					t.Fatalf("%v pushes to the bad witness counted %s", n, result)
				}
			}
			// Not a hot loop: requests in one second.
			before, start := bad.requests.Load(), time.Now()
			time.Sleep(time.Second)
			n, took := bad.requests.Load()-before, time.Since(start)
			limit := int64(c.perPush) * (int64(took/(100*time.Millisecond)) + 2)
			t.Logf("%d requests in %v (at most %d)", n, took.Round(time.Millisecond), limit)
			if n == 0 || n > limit {
				t.Fatalf("%d requests to the bad witness in %v, want 1 to %d", n, took, limit)
			}

			bad.heal()
			got, err := waitCovering(t, d, index, 20*time.Second)
			if err != nil {
				t.Fatalf("after the witness behaved: %v", err)
			}
			if err := policyFor(t, "all", good, bad.tw).Check(got.Note); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGarbageCosignatures: 200 answers that do not hold a cosignature by
// the witness's key, on the checkpoint pushed, dated about now, are never
// counted, and each push is counted under invalid_cosignature. A fresh
// cosignature, alone or next to lines of unknown keys, and one dated
// within maxClockSkew of the request, is counted.
func TestGarbageCosignatures(t *testing.T) {
	now := func() uint64 { return uint64(time.Now().Unix()) }
	otherSKey, _, err := witness.GenerateKey("witness.test/bad")
	if err != nil {
		t.Fatal(err)
	}
	strangerSKey, _, err := witness.GenerateKey("witness.test/stranger")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		answer func(t *testing.T, bw *badWitness, body []byte) []byte
		counts bool
	}{
		{"empty", func(*testing.T, *badWitness, []byte) []byte { return nil }, false},
		{"not a signature line", func(*testing.T, *badWitness, []byte) []byte { return []byte("cosigned, trust me\n") }, false},
		{"checkpoint echoed", func(_ *testing.T, _ *badWitness, body []byte) []byte { return body }, false},
		{"no final newline", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bytes.TrimSuffix(bw.cosign(t, body, now()), []byte("\n"))
		}, false},
		{"bad base64", func(t *testing.T, bw *badWitness, _ []byte) []byte {
			return []byte("— " + bw.name() + " not+base64!\n")
		}, false},
		{"truncated", func(t *testing.T, bw *badWitness, body []byte) []byte {
			line := bw.cosign(t, body, now())
			return append(line[:len(line)-20], '\n')
		}, false},
		{"wrong key ID", func(t *testing.T, bw *badWitness, body []byte) []byte {
			line := bw.cosign(t, body, now())
			i := bytes.LastIndexByte(line, ' ') + 1
			sig, _ := base64.StdEncoding.DecodeString(string(line[i : len(line)-1]))
			sig[0] ^= 0xff
			return fmt.Appendf(nil, "%s%s\n", line[:i], base64.StdEncoding.EncodeToString(sig))
		}, false},
		{"another key of its name", func(t *testing.T, _ *badWitness, body []byte) []byte {
			return cosignWith(t, otherSKey, body, now())
		}, false},
		{"another witness only", func(t *testing.T, _ *badWitness, body []byte) []byte {
			return cosignWith(t, strangerSKey, body, now())
		}, false},
		{"another checkpoint", func(t *testing.T, bw *badWitness, body []byte) []byte {
			lines := strings.SplitN(string(body), "\n", 3)
			other := fmt.Sprintf("%s\n%s\n%s", lines[0], lines[1], strings.Replace(lines[2], lines[2][:1], map[bool]string{true: "B", false: "A"}[lines[2][0] == 'A'], 1))
			return bw.cosign(t, []byte(other), now())
		}, false},
		{"a larger checkpoint", func(t *testing.T, bw *badWitness, body []byte) []byte {
			lines := strings.SplitN(string(body), "\n", 3)
			n, _ := strconv.Atoi(lines[1])
			return bw.cosign(t, fmt.Appendf(nil, "%s\n%d\n%s", lines[0], n+1, lines[2]), now())
		}, false},
		{"plain Ed25519 note signature", func(t *testing.T, bw *badWitness, body []byte) []byte {
			// The signature of cosignature/v1 without its header and time.
			line := bw.cosign(t, body, now())
			i := bytes.LastIndexByte(line, ' ') + 1
			sig, _ := base64.StdEncoding.DecodeString(string(line[i : len(line)-1]))
			parts := strings.SplitN(bw.skey, "+", 5)
			raw, _ := base64.StdEncoding.DecodeString(parts[4])
			plain := append(sig[:4:4], ed25519.Sign(ed25519.NewKeyFromSeed(raw[1:]), body)...)
			return fmt.Appendf(nil, "%s%s\n", line[:i], base64.StdEncoding.EncodeToString(plain))
		}, false},
		{"non-canonical base64", func(t *testing.T, bw *badWitness, body []byte) []byte {
			// The same cosignature with the unused low bits of its last
			// base64 character set: x/mod's note decoder accepts it, and
			// a checkpoint served with it would fail strict verifiers.
			line := bw.cosign(t, body, now())
			i := bytes.LastIndexByte(line, ' ') + 1
			enc := []byte(string(line[i : len(line)-1]))
			j := bytes.IndexByte(enc, '=') - 1
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
			enc[j] = alphabet[strings.IndexByte(alphabet, enc[j])|0x0f]
			return fmt.Appendf(nil, "%s%s\n", line[:i], enc)
		}, false},
		{"timestamp zero", func(t *testing.T, bw *badWitness, body []byte) []byte { return bw.cosign(t, body, 0) }, false},
		{"timestamp a day ahead", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bw.cosign(t, body, now()+86400)
		}, false},
		{"timestamp a day behind", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bw.cosign(t, body, now()-86400)
		}, false},
		{"timestamp 11 minutes ahead", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bw.cosign(t, body, now()+11*60)
		}, false},
		{"timestamp 2^63", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bw.cosign(t, body, 1<<63)
		}, false},
		{"timestamp 2^64-1", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bw.cosign(t, body, math.MaxUint64)
		}, false},
		{"bad line after a good one", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return append(bw.cosign(t, body, now()), "not a signature\n"...)
		}, false},
		// Counted.
		{"fresh", func(t *testing.T, bw *badWitness, body []byte) []byte { return bw.cosign(t, body, now()) }, true},
		{"fresh, with an unknown key's line", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return append(cosignWith(t, strangerSKey, body, now()), bw.cosign(t, body, now())...)
		}, true},
		{"timestamp 9 minutes ahead", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bw.cosign(t, body, now()+9*60)
		}, true},
		{"timestamp 9 minutes behind", func(t *testing.T, bw *badWitness, body []byte) []byte {
			return bw.cosign(t, body, now()-9*60)
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLog(t, t.TempDir())
			good := newTestWitness(t, "witness.test/good", l.vkey)
			bad := newBadWitness(t, "witness.test/bad", l.vkey)
			var answered sync.Map
			bad.set(func(rw http.ResponseWriter, r *http.Request, _, body []byte) {
				a := c.answer(t, bad, body)
				answered.Store(string(a), true)
				rw.Write(a)
			})
			reg := prometheus.NewRegistry()
			d := startDistributor(t, l, policyFor(t, "all", good, bad.tw), reg, nil)
			index, cp := l.add(3)
			d.Notify(cp)
			if c.counts {
				got, err := waitCovering(t, d, index, 20*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if countCosigs(got.Note) != 2 || bytes.Contains(got.Note, []byte("witness.test/stranger")) {
					t.Fatalf("the stored checkpoint holds more than the two cosignatures of the policy:\n%s", got.Note)
				}
				if n := pushes(t, reg, bad.name(), "cosigned"); n < 1 {
					t.Fatalf("%v pushes counted cosigned", n)
				}
				return
			}
			waitFor(t, "3 pushes counted invalid_cosignature", func() bool {
				return pushes(t, reg, bad.name(), "invalid_cosignature") >= 3
			})
			waitFor(t, "the good witness's cosignature", func() bool { return countCosigs(d.Cosigned(cp)) == 1 })
			notCosigned(t, d, index, cp, good.w.Name())
			if n := pushes(t, reg, bad.name(), "cosigned"); n != 0 {
				t.Fatalf("%v pushes counted cosigned", n)
			}
			answered.Range(func(k, _ any) bool {
				for line := range bytes.Lines([]byte(k.(string))) {
					if bytes.HasPrefix(line, []byte("— ")) && bytes.Contains(d.Cosigned(cp), line) {
						t.Fatalf("the signature line %q of the answer is in the cosigned note", line)
					}
				}
				return true
			})
		})
	}
}

// hangingServer accepts TCP connections and serves each with serve, which
// returns once the client has closed it (nil: read what is sent, never
// answer). It records how long each connection stayed open and how many
// are open.
type hangingServer struct {
	ln     net.Listener
	open   atomic.Int64
	most   atomic.Int64
	closed chan time.Duration
}

func newHangingServer(t *testing.T, serve func(c net.Conn)) *hangingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingServer{ln: ln, closed: make(chan time.Duration, 1000)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := h.open.Add(1)
			for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
			}
			wg.Go(func() {
				defer c.Close()
				start := time.Now()
				if serve != nil {
					serve(c)
				} else {
					io.Copy(io.Discard, c)
				}
				h.open.Add(-1)
				select {
				case h.closed <- time.Since(start):
				default:
				}
			})
		}
	})
	return h
}

func (h *hangingServer) url() string { return "http://" + h.ln.Addr().String() + "/add-checkpoint" }

// policyWithURL is a policy of good and of a witness of key vkey at url,
// with the quorum of both.
func policyWithURL(t *testing.T, good *testWitness, vkey, url string) *verifier.Policy {
	t.Helper()
	p, err := verifier.ParsePolicy(fmt.Appendf(nil, "witness g %s %s\nwitness x %s %s\ngroup both all g x\nquorum both\n",
		good.vkey, good.srv.URL, vkey, url))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWitnessDownOrHanging: a witness whose port refuses connections fails
// each push at once; one that accepts the connection and never answers,
// or sends headers and then trickles a body, has each request abandoned at
// the push timeout, its connection closed (none piles up). Both are
// counted unreachable and never towards the quorum; Close does not wait
// for a push in flight.
func TestWitnessDownOrHanging(t *testing.T) {
	const timeout = 300 * time.Millisecond
	_, vkey, err := witness.GenerateKey("witness.test/x")
	if err != nil {
		t.Fatal(err)
	}
	// A port where nothing listens: port 1, privileged, as elsewhere in
	// the tests. (A port found free and closed could be taken by another
	// process, such as the server of another package's test, while the
	// pushes run: they would get its answers, not a refused connection.)
	refused := func() string { return "http://127.0.0.1:1/add-checkpoint" }
	// trickle reads the request, sends the headers of an answer, then a
	// byte every 20 ms.
	trickle := func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
		for {
			if _, err := c.Write([]byte("—")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cases := []struct {
		name   string
		hang   bool
		answer func(net.Conn)
	}{
		{"connection refused", false, nil},
		{"never answers", true, nil},
		{"trickles an answer", true, trickle},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLog(t, t.TempDir())
			good := newTestWitness(t, "witness.test/good", l.vkey)
			var h *hangingServer
			url := refused()
			if c.hang {
				h = newHangingServer(t, c.answer)
				url = h.url()
			}
			reg := prometheus.NewRegistry()
			d := startDistributor(t, l, policyWithURL(t, good, vkey, url), reg, func(cfg *Config) { cfg.PushTimeout = timeout })
			index, cp := l.add(3)
			d.Notify(cp)
			waitFor(t, "3 pushes counted unreachable", func() bool {
				return pushes(t, reg, "witness.test/x", "unreachable") >= 3
			})
			waitFor(t, "the good witness's cosignature", func() bool { return countCosigs(d.Cosigned(cp)) == 1 })
			notCosigned(t, d, index, cp, good.w.Name())
			// How long a push took: about the timeout when it hangs, much
			// less when the port refuses.
			sum := metricHistogram(t, reg, "govlog_witness_push_duration_seconds", "witness", "witness.test/x")
			mean := time.Duration(sum.GetSampleSum() / float64(sum.GetSampleCount()) * float64(time.Second))
			t.Logf("%d pushes, %v each on average", sum.GetSampleCount(), mean.Round(time.Millisecond))
			if c.hang {
				if mean < timeout/2 || mean > timeout+5*time.Second {
					t.Fatalf("pushes to a hanging witness took %v on average, want about the timeout %v", mean, timeout)
				}
				for range 3 {
					if took := <-h.closed; took < timeout/2 || took > timeout+5*time.Second {
						t.Fatalf("a connection to the hanging witness was closed after %v, want about the timeout %v", took, timeout)
					}
				}
				if most := h.most.Load(); most > 2 {
					t.Fatalf("%d connections to the hanging witness open at once", most)
				}
			} else if mean >= timeout {
				t.Fatalf("pushes to a refused port took %v on average, as long as the timeout", mean)
			}
		})
	}

	t.Run("close during a push", func(t *testing.T) {
		l := newTestLog(t, t.TempDir())
		good := newTestWitness(t, "witness.test/good", l.vkey)
		h := newHangingServer(t, nil)
		d := startDistributor(t, l, policyWithURL(t, good, vkey, h.url()), nil, func(cfg *Config) { cfg.PushTimeout = time.Minute })
		_, cp := l.add(3)
		d.Notify(cp)
		waitFor(t, "a connection to the hanging witness", func() bool { return h.open.Load() == 1 })
		start := time.Now()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("Close took %v with a push hanging (timeout 1m)", took)
		}
		waitFor(t, "the connection closed", func() bool { return h.open.Load() == 0 })
	})
}

// metricHistogram returns the histogram of reg's metric with the labels.
func metricHistogram(t *testing.T, reg *prometheus.Registry, name string, labels ...string) interface {
	GetSampleSum() float64
	GetSampleCount() uint64
} {
	t.Helper()
	ms := gathered(t, reg, name, labels...)
	if len(ms) == 0 {
		t.Fatalf("no %s %v", name, labels)
	}
	return ms[0].GetHistogram()
}
