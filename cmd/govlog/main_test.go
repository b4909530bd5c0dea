package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/govlog/govlog/internal/keys"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"govlog": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

type apiKey struct{}

// TestScripts runs the scripts of testdata/script. Each gets, besides the
// govlog command:
//
//   - $GOVLOG_URL, a fake govlog API whose log key is in server.vkey; a
//     key of the same name that is not the log's is in other.vkey;
//   - mklog N [DIR]: builds a log of N entries signed with the key of
//     server.vkey (or with the keys govlog keygen wrote to DIR) and
//     writes log.vkey, and r<i>.tlog-proof and r<i>.receipt.json for
//     each entry; $LOGKEY is then the key text;
//   - replace FILE OLD NEW: replaces the first OLD in FILE by NEW;
//   - status N CMD ARGS...: runs CMD and requires exit status N;
//   - failnext STATUS CODE [RETRY-AFTER]: the API answers the next request
//     with this error;
//   - loggedrules: the API accepts what a log accepted before the
//     submission rules of wire contract v1.1 (log.ParseLoggedDecision):
//     control characters in short fields, for one;
//   - keyfiles DIR: checks that DIR holds keys govlogd can load, with
//     private files of mode 0600.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			signer, vkey, err := noteKey(1)
			if err != nil {
				return err
			}
			_, otherVkey, err := noteKey(2)
			if err != nil {
				return err
			}
			api := newFakeAPI(signer)
			env.Defer(api.srv.Close)
			env.Values[apiKey{}] = api
			env.Setenv("GOVLOG_URL", api.srv.URL)
			if err := os.WriteFile(filepath.Join(env.WorkDir, "server.vkey"), []byte(vkey+"\n"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(env.WorkDir, "other.vkey"), []byte(otherVkey+"\n"), 0o644)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mklog":    cmdMklog,
			"replace":  cmdReplace,
			"status":   cmdStatus,
			"failnext": cmdFailNext,
			"loggedrules": func(ts *testscript.TestScript, neg bool, args []string) {
				api := ts.Value(apiKey{}).(*fakeAPI)
				api.mu.Lock()
				defer api.mu.Unlock()
				api.loggedRules = true
			},
			"keyfiles": cmdKeyFiles,
		},
	})
}

func cmdMklog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: mklog N [DIR]")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	signer, vkey, err := noteKey(1)
	ts.Check(err)
	if len(args) == 2 {
		k, err := keys.Load(ts.MkAbs(args[1]))
		ts.Check(err)
		signer, vkey = k.Signer, k.VerifierKey
	}
	ts.Check(writeLog(ts.MkAbs("."), signer, n))
	ts.Check(os.WriteFile(ts.MkAbs("log.vkey"), []byte(vkey+"\n"), 0o644))
	ts.Setenv("LOGKEY", vkey)
}

func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	data := ts.ReadFile(args[0])
	if !strings.Contains(data, args[1]) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Replace(data, args[1], args[2], 1)), 0o644))
}

func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N CMD ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

func cmdFailNext(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: failnext STATUS CODE [RETRY-AFTER]")
	}
	status, err := strconv.Atoi(args[0])
	ts.Check(err)
	retryAfter := ""
	if len(args) == 3 {
		retryAfter = args[2]
	}
	ts.Value(apiKey{}).(*fakeAPI).failNext(status, args[1], retryAfter)
}

func cmdKeyFiles(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: keyfiles DIR")
	}
	dir := ts.MkAbs(args[0])
	_, err := keys.Load(dir)
	ts.Check(err)
	for _, name := range []string{keys.SignerFile, keys.ArtifactFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		ts.Check(err)
		if fi.Mode().Perm() != 0o600 {
			ts.Fatalf("%s has mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
}

// TestExitStatus runs govlog in-process: usage errors exit 2, failures 1.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	signer, vkey, err := noteKey(1)
	if err != nil {
		t.Fatal(err)
	}
	_, otherVkey, err := noteKey(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeLog(dir, signer, 3); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "log.vkey")
	if err := os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r1 := filepath.Join(dir, "r1.tlog-proof")
	receipt, err := os.ReadFile(r1)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		status int
		stdout string
		stderr string
	}{
		{name: "no command", status: 2, stderr: "usage: govlog <command>"},
		{name: "help", args: []string{"help"}, status: 0, stdout: "  verify               verify receipts offline"},
		{name: "unknown command", args: []string{"frobnicate"}, status: 2, stderr: `unknown command "frobnicate"`},
		{name: "verify", args: []string{"verify", "--log-key", keyFile, r1}, stdout: "OK: entry 1 is in the log example.com/govlog (checkpoint of size 3)\n"},
		{name: "verify with key text", args: []string{"verify", "--log-key", vkey, r1}, stdout: "\nid: d-1\n"},
		{name: "verify from stdin", args: []string{"verify", "--log-key", vkey, "-"}, stdin: string(receipt), stdout: "\noutcome: deny\n"},
		{name: "verify -h", args: []string{"verify", "-h"}, status: 0, stdout: "usage: govlog verify [flags]"},
		{name: "verify wrong key", args: []string{"verify", "--log-key", otherVkey, r1}, status: 1,
			stderr: "does NOT verify: bad signature: checkpoint is not signed by example.com/govlog"},
		{name: "verify garbage", args: []string{"verify", "--log-key", vkey, "-"}, stdin: "hello\n", status: 1, stderr: "malformed evidence"},
		{name: "verify missing file", args: []string{"verify", "--log-key", vkey, filepath.Join(dir, "nope")}, status: 1, stderr: "failed to read the input"},
		{name: "verify without key", args: []string{"verify", r1}, status: 2, stderr: "--log-key is required"},
		{name: "verify bad key", args: []string{"verify", "--log-key", "nope", r1}, status: 2, stderr: `"nope" is neither a note verifier key nor a file`},
		{name: "verify key file without key", args: []string{"verify", "--log-key", r1, r1}, status: 2, stderr: "does not hold a note verifier key"},
		{name: "verify two receipts", args: []string{"verify", "--log-key", vkey, r1, r1}, stdout: "2 receipts: 2 verified, 0 failed\n"},
		{name: "verify unknown flag", args: []string{"verify", "--nope", r1}, status: 2, stderr: "unknown flag: --nope"},
		{name: "verify not a witness policy", args: []string{"verify", "--log-key", vkey, "--witness-policy", keyFile, r1}, status: 2, stderr: "--witness-policy: invalid witness policy: "},
		{name: "verify witness policy not met", args: []string{"verify", "--log-key", vkey, "--witness-policy", func() string {
			p := filepath.Join(dir, "policy.txt")
			os.WriteFile(p, []byte("witness w witness.example/w1+7b0d6455+BGf1CNdXQA7xrCpSXM9PmHbI/KFBYTNd7qNqd31wi/Eo http://127.0.0.1:1\nquorum w\n"), 0o644)
			return p
		}(), r1},
			status: 1, stderr: "does NOT verify: witness policy not satisfied: the checkpoint has no valid cosignature by a witness of the policy"},
		{name: "verify two receipts, witness policy not met", args: []string{"verify", "--log-key", vkey, "--witness-policy", filepath.Join(dir, "policy.txt"), r1, r1},
			status: 1, stdout: "2 receipts: 0 verified, 2 failed\n"},
		{name: "submit without url", args: []string{"submit"}, status: 2, stderr: "--url is required"},
		{name: "submit bad url", args: []string{"submit", "--url", "ftp://x"}, status: 2, stderr: "--url"},
		{name: "submit unreachable", args: []string{"submit", "--url", "http://127.0.0.1:1", "--timeout", "1s"}, stdin: `{"id":"d-1"}`, status: 1, stderr: "connection refused"},
		{name: "keygen without name", args: []string{"keygen", "--out", filepath.Join(dir, "k")}, status: 2, stderr: "--name is required"},
		{name: "keygen bad name", args: []string{"keygen", "--name", "a b", "--out", filepath.Join(dir, "k")}, status: 2, stderr: "white space"},
		{name: "keygen argument", args: []string{"keygen", "--name", "a", "x"}, status: 2, stderr: `unexpected argument "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, stdout, stderr := runCLI(t, tc.stdin, tc.args...)
			if status != tc.status {
				t.Errorf("exit status %d, want %d; stderr:\n%s", status, tc.status, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tc.stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.stderr)
			}
			if tc.status != 0 && stdout != "" && tc.stdout == "" {
				t.Errorf("a failure printed to stdout: %q", stdout)
			}
		})
	}
}

// TestVerifyPrintsDecision checks the whole output of verify for an allow.
func TestVerifyPrintsDecision(t *testing.T) {
	dir := t.TempDir()
	signer, vkey, err := noteKey(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeLog(dir, signer, 3); err != nil {
		t.Fatal(err)
	}
	status, stdout, stderr := runCLI(t, "", "verify", "--log-key", vkey, filepath.Join(dir, "r2.receipt.json"))
	if status != 0 {
		t.Fatalf("exit status %d: %s", status, stderr)
	}
	want := `OK: entry 2 is in the log example.com/govlog (checkpoint of size 3)
index: 2
kind: decision
id: d-2
outcome: allow
subject: agent-7
action: deploy
resource: svc/2
policy: prod-deploy
decided_at: 2026-11-25T18:00:00Z
submitter: control-plane-1
logged_at: 2026-11-25T18:00:03.370370367Z
authorized_until: 2026-11-25T18:05:03Z
`
	if !strings.HasPrefix(stdout, want) {
		t.Fatalf("stdout:\n%s\nwant it to start with:\n%s", stdout, want)
	}
	for _, prefix := range []string{"leaf_hash: ", "checkpoint: example.com/govlog 3 "} {
		if !strings.Contains(stdout, "\n"+prefix) {
			t.Errorf("stdout has no %q line", prefix)
		}
	}
}
