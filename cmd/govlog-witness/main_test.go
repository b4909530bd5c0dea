package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/govlog/govlog/internal/dirlock"
)

// testLog signs checkpoints of a small log built with x/mod's tlog.
type testLog struct {
	signer note.Signer
	vkey   string
	stored []tlog.Hash
	size   int64
}

func newTestLog(t *testing.T, origin string, n int64) *testLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{signer: s, vkey: vkey}
	for l.size < n {
		hs, err := tlog.StoredHashes(l.size, fmt.Appendf(nil, "leaf %d", l.size), l)
		if err != nil {
			t.Fatal(err)
		}
		l.stored = append(l.stored, hs...)
		l.size++
	}
	return l
}

func (l *testLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.stored[x]
	}
	return out, nil
}

// request is an add-checkpoint body from old to the tree of size n.
func (l *testLog) request(t *testing.T, old, n int64) []byte {
	root, err := tlog.TreeHash(n, l)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", l.signer.Name(), n, base64.StdEncoding.EncodeToString(root[:]))}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("old %d\n", old)
	if old > 0 {
		p, err := tlog.ProveTree(n, old, l)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range p {
			body += base64.StdEncoding.EncodeToString(h[:]) + "\n"
		}
	}
	return append([]byte(body+"\n"), cp...)
}

// start runs the witness with cfg until the test ends.
func start(t *testing.T, cfg Config) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	cfg.Listen = "127.0.0.1:0"
	cfg.listening = func(a net.Addr) { addr <- a }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var (
		once    sync.Once
		stopErr error
	)
	stop := func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	select {
	case a := <-addr:
		t.Cleanup(func() { stop() })
		return "http://" + a.String(), stop
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the witness did not start")
	}
	return "", nil
}

func addCheckpoint(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	lg := newTestLog(t, "example.com/log", 20)
	keyFile := filepath.Join(t.TempDir(), "log.vkey")
	if err := os.WriteFile(keyFile, []byte(lg.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := readLogKeys([]string{keyFile})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: dir, Name: "witness.test/w1", LogKeys: keys}
	url, stop := start(t, cfg)

	// The key files.
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness.key: %v %v", fi, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v %v", fi, err)
	}
	vkeyData, err := os.ReadFile(filepath.Join(dir, VerifierKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(vkeyData))
	wv, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || !strings.HasPrefix(vkey, "witness.test/w1+") {
		t.Fatalf("witness.vkey %q: %v", vkey, err)
	}

	status, cosig := addCheckpoint(t, url, lg.request(t, 0, 10))
	if status != 200 {
		t.Fatalf("add-checkpoint: %d %s", status, cosig)
	}
	lv, _ := note.NewVerifier(lg.vkey)
	req := lg.request(t, 0, 10)
	cp := req[bytes.Index(req, []byte("\n\n"))+2:]
	if _, err := note.Open(append(cp, cosig...), note.VerifierList(lv, wv)); err != nil {
		t.Fatalf("cosignature: %v", err)
	}
	var info struct {
		Name        string `json:"name"`
		VerifierKey string `json:"verifier_key"`
		Logs        []struct {
			Origin      string `json:"origin"`
			VerifierKey string `json:"verifier_key"`
			TreeSize    uint64 `json:"tree_size"`
		} `json:"logs"`
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Name != "witness.test/w1" || info.VerifierKey != vkey || len(info.Logs) != 1 || info.Logs[0].TreeSize != 10 || info.Logs[0].VerifierKey != lg.vkey {
		t.Fatalf("GET / = %+v", info)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		resp, err := http.Get(url + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/metrics" && !bytes.Contains(b, []byte(`govlog_witness_updates_total{origin="example.com/log",result="cosigned"} 1`)) {
			t.Fatalf("metrics:\n%s", b)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// Restart without --name: the state and the key are kept.
	cfg.Name = ""
	url, _ = start(t, cfg)
	if status, body := addCheckpoint(t, url, lg.request(t, 0, 20)); status != 409 || string(body) != "10\n" {
		t.Fatalf("after restart: %d %q", status, body)
	}
	if status, body := addCheckpoint(t, url, lg.request(t, 10, 20)); status != 200 {
		t.Fatalf("after restart: %d %q", status, body)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, VerifierKeyFile)); strings.TrimSpace(string(b)) != vkey {
		t.Fatal("the key changed across a restart")
	}
}

func TestRefusals(t *testing.T) {
	lg := newTestLog(t, "example.com/log", 1)
	ctx := context.Background()
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		if err := generateKey(dir, "witness.test/w1"); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T) Config
		want    string
	}{
		{"group-readable key", func(t *testing.T) Config {
			dir := setup(t)
			os.Chmod(filepath.Join(dir, KeyFile), 0o640)
			return Config{DataDir: dir, LogKeys: []string{lg.vkey}}
		}, "0640"},
		{"another name", func(t *testing.T) Config {
			return Config{DataDir: setup(t), Name: "witness.test/w2", LogKeys: []string{lg.vkey}}
		}, "witness.test/w1"},
		{"no name on first start", func(t *testing.T) Config {
			return Config{DataDir: t.TempDir(), LogKeys: []string{lg.vkey}}
		}, "--name"},
		{"database without key", func(t *testing.T) Config {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, DBFile), nil, 0o600)
			return Config{DataDir: dir, Name: "witness.test/w1", LogKeys: []string{lg.vkey}}
		}, "restore"},
		{"bad log key", func(t *testing.T) Config {
			return Config{DataDir: setup(t), LogKeys: []string{"example.com/log+00000000+AQ=="}}
		}, "log key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.prepare(t)
			cfg.Listen = "127.0.0.1:0"
			err := Run(ctx, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error mentioning %q", err, tc.want)
			}
			if b, _ := os.ReadFile(filepath.Join(cfg.DataDir, KeyFile)); len(b) > 0 && strings.Contains(err.Error(), strings.TrimSpace(string(b))[20:]) {
				t.Fatal("the error quotes the private key")
			}
		})
	}
}

func TestCLIUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--data", t.TempDir(), "--name", "w"},
		{"--log-key", "x+y+z", "extra"},
		{"--nope"},
	} {
		var stderr bytes.Buffer
		if err := cli(context.Background(), args, io.Discard, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("cli(%q) = %v, want a usage error", args, err)
		}
	}
	if _, err := readLogKeys([]string{filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("readLogKeys accepted a missing file")
	}
}

// TestOneWitnessPerDataDir: a second witness on the data directory of a
// running one is refused at once, naming the first.
func TestOneWitnessPerDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	lg := newTestLog(t, "example.com/log", 1)
	cfg := Config{DataDir: dir, Name: "witness.example/w1", LogKeys: []string{lg.vkey}}
	start(t, cfg)
	cfg.Listen = "127.0.0.1:0"
	err := Run(context.Background(), cfg)
	var he *dirlock.HeldError
	if !errors.As(err, &he) || he.PID != os.Getpid() || he.Program != "govlog-witness" {
		t.Fatalf("second Run: %v", err)
	}
}

func TestHelpAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := cli(context.Background(), []string{"--help"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"usage: govlog-witness --log-key KEY", "\nWitness:\n", "\n  --log-key KEY ", "(default 127.0.0.1:7380)", "\nExamples:\n"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if err := cli(context.Background(), []string{"version"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(stdout.String(), "govlog-witness github.com/govlog/govlog ") {
		t.Errorf("version: %v %q", err, stdout.String())
	}
}
