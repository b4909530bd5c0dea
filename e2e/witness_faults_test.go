package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govlog/govlog/verifier"
)

// The witness fault tests put a govlog-witness behind a proxy served by the
// test process, which forwards add-checkpoint requests or misbehaves in
// the witness's place, and run govlogd against it.

// witnessProxy forwards add-checkpoint requests to a witness, unless fault
// is set.
type witnessProxy struct {
	srv    *httptest.Server
	target string
	fault  atomic.Pointer[proxyFault]
	// requests counts the requests; answered those the witness answered.
	requests, answered atomic.Int64
}

// proxyFault answers the add-checkpoint request req, whose checkpoint body
// (the text the witness signs) is body, in the witness's place.
type proxyFault func(rw http.ResponseWriter, r *http.Request, req, body []byte)

func newWitnessProxy(t *testing.T, target string) *witnessProxy {
	t.Helper()
	p := &witnessProxy{target: target}
	p.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		req, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if f := p.fault.Load(); f != nil {
			(*f)(rw, r, req, checkpointBody(t, req))
			return
		}
		st, ct, body, err := p.forward(r.Context(), r.URL.Path, req)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		rw.Header().Set("Content-Type", ct)
		rw.WriteHeader(st)
		rw.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *witnessProxy) forward(ctx context.Context, path string, req []byte) (int, string, []byte, error) {
	st, body, hdr, err := call(ctx, http.MethodPost, p.target+path, "text/plain; charset=utf-8", req)
	if err != nil {
		return 0, "", nil, err
	}
	p.answered.Add(1)
	return st, hdr.Get("Content-Type"), body, nil
}

func (p *witnessProxy) set(f proxyFault) { p.fault.Store(&f) }
func (p *witnessProxy) heal()            { p.fault.Store(nil) }

// checkpointBody is the checkpoint body of an add-checkpoint request: the
// note after the blank line that ends the proof, up to its signatures.
func checkpointBody(t *testing.T, req []byte) []byte {
	t.Helper()
	i := bytes.Index(req, []byte("\n\n"))
	if i < 0 {
		t.Errorf("not an add-checkpoint request: %q", req)
		return nil
	}
	n := req[i+2:]
	j := bytes.Index(n, []byte("\n\n"))
	if j < 0 {
		t.Errorf("not a signed note: %q", n)
		return nil
	}
	return n[:j+1]
}

// cosignLine is a cosignature/v1 line on body with timestamp ts, by the
// witness key skey (PRIVATE+KEY+<name>+<key ID>+base64(0x04 || seed)),
// made with crypto/ed25519 as c2sp.org/tlog-cosignature specifies.
func cosignLine(t *testing.T, skey string, body []byte, ts uint64) []byte {
	t.Helper()
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 {
		t.Fatal("not a witness key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		t.Fatal("not an Ed25519 cosignature/v1 witness key")
	}
	id, err := strconv.ParseUint(parts[3], 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	sig := binary.BigEndian.AppendUint32(nil, uint32(id))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(ed25519.NewKeyFromSeed(raw[1:]), fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, body))...)
	return fmt.Appendf(nil, "— %s %s\n", parts[2], base64.StdEncoding.EncodeToString(sig))
}

// metric returns the value of the sample of name with the labels (name
// value pairs, others ignored) in GET /metrics, 0 when there is none.
func metric(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	st, body, _, err := call(context.Background(), http.MethodGet, url+"/metrics", "", nil)
	if err != nil || st != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", st, err)
	}
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(body))
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestWitnessFaultsSync runs govlogd in sync mode (--witness-timeout 1s)
// with an all-of-two policy, one govlog-witness direct and one behind a
// proxy that misbehaves in turn: slow (answers after 3 s), hanging (never
// answers), a 409 loop (claims a size larger than the log's), a garbage
// 200, a cosignature dated a day ahead. During each, every submission gets
// 503 log_unavailable with a JSON error and no artifact, after the
// witness timeout and well before any other (nothing hangs), and the
// push is counted in govlog_witness_pushes_total under its result; the
// 409 loop sends a handful of requests, not a storm. Once the witness
// behaves, the refused submissions' resubmissions get their cosigned
// receipts (200) and new ones 201, by themselves.
func TestWitnessFaultsSync(t *testing.T) {
	const witnessTimeout = time.Second
	dir := t.TempDir()
	data := logKeys(t)
	vkeyFile := filepath.Join(data, "log.vkey")
	w1data, w2data := filepath.Join(dir, "w1"), filepath.Join(dir, "w2")
	w1 := startGovlogWitness(t, w1data, "", "witness.e2e.test/w1", vkeyFile)
	w2 := startGovlogWitness(t, w2data, "", "witness.e2e.test/w2", vkeyFile)
	w2key, err := os.ReadFile(filepath.Join(w2data, "witness.key"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newWitnessProxy(t, w2.url)
	text := fmt.Sprintf("witness w1 %s %s\nwitness w2 %s %s\ngroup both all w1 w2\nquorum both\n",
		witnessVKey(t, w1data), w1.url, witnessVKey(t, w2data), proxy.srv.URL)
	policy, err := verifier.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, data, "", "--witness-policy", writePolicy(t, dir, text), "--witness-mode", "sync",
		"--witness-timeout", witnessTimeout.String())
	ctx := context.Background()
	st, b, _ := postJSON(ctx, d.url+"/v1/decisions", decision("wf-first", "allow", "", 0))
	if st != http.StatusCreated {
		t.Fatalf("POST with both witnesses well: %d %s", st, b)
	}
	checkCosignedReceipt(t, d, policy, b)

	faults := []struct {
		name   string
		fault  proxyFault
		result string // the push result counted for w2
	}{
		{"slow", func(rw http.ResponseWriter, r *http.Request, req, _ []byte) {
			time.Sleep(3 * witnessTimeout)
			// The witness gets the request after all, late.
			st, ct, body, err := proxy.forward(context.Background(), r.URL.Path, req)
			if err == nil {
				rw.Header().Set("Content-Type", ct)
				rw.WriteHeader(st)
				rw.Write(body)
			}
		}, "unreachable"},
		{"hanging", func(rw http.ResponseWriter, r *http.Request, _, _ []byte) {
			<-r.Context().Done()
		}, "unreachable"},
		{"409 ahead of the log", func(rw http.ResponseWriter, r *http.Request, _, _ []byte) {
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			rw.Write([]byte("1000000000\n"))
		}, "conflict"},
		{"garbage 200", func(rw http.ResponseWriter, r *http.Request, _, _ []byte) {
			rw.Write([]byte("— witness.e2e.test/w2 AAAA\n"))
		}, "invalid_cosignature"},
		{"cosignature dated a day ahead", func(rw http.ResponseWriter, r *http.Request, _, body []byte) {
			rw.Write(cosignLine(t, string(w2key), body, uint64(time.Now().Add(24*time.Hour).Unix())))
		}, "invalid_cosignature"},
	}
	const w2name = "witness.e2e.test/w2"
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			before := metric(t, d.url, "govlog_witness_pushes_total", "witness", w2name, "result", f.result)
			proxy.set(f.fault)
			var (
				wg      sync.WaitGroup
				refused = make([][]byte, 4)
			)
			for i := range refused {
				wg.Go(func() {
					body := decision(fmt.Sprintf("wf-%s-%d", strings.ReplaceAll(f.name, " ", "-"), i), []string{"allow", "deny"}[i%2], "", 0)
					start := time.Now()
					st, resp, hdr, err := call(ctx, http.MethodPost, d.url+"/v1/decisions", "application/json", body)
					took := time.Since(start)
					if err != nil {
						t.Errorf("POST: %v", err)
						return
					}
					if st != http.StatusServiceUnavailable || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") ||
						errorCode(t, resp) != "log_unavailable" || bytes.Contains(resp, []byte("artifact")) {
						t.Errorf("POST with witness w2 %s: %d %q %s", f.name, st, hdr.Get("Content-Type"), resp)
						return
					}
					if took < witnessTimeout-100*time.Millisecond || took > witnessTimeout+10*time.Second {
						t.Errorf("POST with witness w2 %s answered 503 after %v, want about the witness timeout %v", f.name, took, witnessTimeout)
					}
					refused[i] = body
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			deadline := time.Now().Add(20 * time.Second)
			for metric(t, d.url, "govlog_witness_pushes_total", "witness", w2name, "result", f.result) <= before {
				if time.Now().After(deadline) {
					t.Fatalf("no push to w2 counted %s", f.result)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if f.result == "conflict" {
				// No storm: govlogd retries after its backoff (at most 2 s)
				// or the next round (1 s), one request a push.
				n0 := proxy.requests.Load()
				time.Sleep(3 * time.Second)
				if n := proxy.requests.Load() - n0; n == 0 || n > 10 {
					t.Fatalf("%d requests to the witness answering 409 in 3 s, want 1 to 10", n)
				} else {
					t.Logf("%d requests to the witness answering 409 in 3 s", n)
				}
			}
			if st := status(t, d.url+"/healthz"); st != http.StatusOK {
				t.Fatalf("/healthz: %d", st)
			}

			proxy.heal()
			healed := time.Now()
			for _, body := range refused {
				for {
					st, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
					if err != nil {
						t.Fatal(err)
					}
					if st == http.StatusOK {
						checkCosignedReceipt(t, d, policy, resp)
						break
					}
					if st != http.StatusServiceUnavailable || time.Since(healed) > 30*time.Second {
						t.Fatalf("resubmission after the witness healed (%v): %d %s", time.Since(healed), st, resp)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			t.Logf("cosigning resumed %v after the witness behaved", time.Since(healed).Round(time.Millisecond))
			body := decision("wf-after-"+strings.ReplaceAll(f.name, " ", "-"), "allow", "", 0)
			st, resp, _ := postJSON(ctx, d.url+"/v1/decisions", body)
			if st != http.StatusCreated {
				t.Fatalf("POST after the witness healed: %d %s", st, resp)
			}
			checkCosignedReceipt(t, d, policy, resp)
		})
	}
}

// TestWitnessHangsAsync: in async mode, a witness that never answers slows
// no submission: every one gets its receipt on the log-signed checkpoint
// (201) while the witness has answered nothing; once it answers, the
// latest checkpoint gets cosigned by itself.
func TestWitnessHangsAsync(t *testing.T) {
	dir := t.TempDir()
	data := logKeys(t)
	wdata := filepath.Join(dir, "w")
	w := startGovlogWitness(t, wdata, "", "witness.e2e.test/w1", filepath.Join(data, "log.vkey"))
	proxy := newWitnessProxy(t, w.url)
	release := make(chan struct{})
	proxy.set(func(rw http.ResponseWriter, r *http.Request, _, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
			http.Error(rw, "not now", http.StatusServiceUnavailable)
		}
	})
	text := fmt.Sprintf("witness w1 %s %s\nquorum w1\n", witnessVKey(t, wdata), proxy.srv.URL)
	policy, err := verifier.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, data, "", "--witness-policy", writePolicy(t, dir, text), "--witness-mode", "async")
	v := d.logKey(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			body := decision(fmt.Sprintf("wa-%02d", i), []string{"allow", "deny"}[i%2], "", 0)
			st, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
			if err != nil || st != http.StatusCreated {
				t.Errorf("POST with the witness hanging: %d %v %s", st, err, resp)
				return
			}
			checkReceipt(t, resp, v, body)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if proxy.requests.Load() == 0 || proxy.answered.Load() != 0 {
		t.Fatalf("the witness got %d requests and answered %d: it was not the one hanging", proxy.requests.Load(), proxy.answered.Load())
	}
	if _, cp, _, _ := call(ctx, http.MethodGet, d.url+"/v1/checkpoint", "", nil); policy.Satisfied(cp) {
		t.Fatalf("a checkpoint is cosigned by a witness that never answered:\n%s", cp)
	}

	close(release)
	proxy.heal()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, cp, _, _ := call(ctx, http.MethodGet, d.url+"/v1/checkpoint", "", nil)
		if policy.Satisfied(cp) && latest(t, d.url, v).Size == 33 { // 32 decisions after the artifact key
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/checkpoint is not cosigned 30 s after the witness answers:\n%s", cp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
