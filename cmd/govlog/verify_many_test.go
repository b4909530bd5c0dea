package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyMany verifies directories, bundles and lists of receipts.
func TestVerifyMany(t *testing.T) {
	dir := t.TempDir()
	signer, vkey, err := noteKey(1)
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "receipts")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeLog(logDir, signer, 9); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(logDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// A bundle: JSON receipts and tlog-proof strings.
	var bundle []json.RawMessage
	for i := range 9 {
		if i%2 == 0 {
			bundle = append(bundle, read(fmt.Sprintf("r%d.receipt.json", i)))
		} else {
			s, _ := json.Marshal(string(read(fmt.Sprintf("r%d.tlog-proof", i))))
			bundle = append(bundle, s)
		}
	}
	bundleJSON, _ := json.Marshal(bundle)
	bundleFile := filepath.Join(dir, "all.json")
	if err := os.WriteFile(bundleFile, bundleJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	// A bundle with one receipt flipped.
	tampered := bytes.Replace(bundleJSON, []byte(`"index":4`), []byte(`"index":3`), 1)
	tamperedFile := filepath.Join(dir, "tampered.json")
	if err := os.WriteFile(tamperedFile, tampered, 0o644); err != nil {
		t.Fatal(err)
	}

	runIt := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"verify", "--log-key", vkey}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stdout []string
		stderr string
	}{
		{"directory", []string{logDir}, 0, []string{"18 receipts: 18 verified, 0 failed\n",
			"OK   " + filepath.Join(logDir, "r4.tlog-proof") + ": entry 4, execution x-4, checkpoint of size 9\n",
			"OK   " + filepath.Join(logDir, "r3.receipt.json") + ": entry 3, decision d-3 (deny), checkpoint of size 9\n"}, ""},
		{"bundle", []string{bundleFile}, 0, []string{"9 receipts: 9 verified, 0 failed\n", "OK   " + bundleFile + "[8]: entry 8"}, ""},
		{"bundle and directory", []string{bundleFile, logDir}, 0, []string{"27 receipts: 27 verified"}, ""},
		{"tampered bundle", []string{tamperedFile}, 1, []string{"FAIL " + tamperedFile + "[4]: evidence does not agree with itself: receipt index 3 is not the tlog_proof index 4", "9 receipts: 8 verified, 1 failed\n"},
			"1 of 9 receipts do NOT verify"},
		{"empty directory", []string{t.TempDir()}, 1, nil, "no receipt found"},
		{"missing", []string{filepath.Join(dir, "nope")}, 1, nil, "failed to read the input"},
		{"not a bundle", []string{writeTemp(t, dir, "bad.json", "[1,2]")}, 1, []string{"a bundle item must be a JSON receipt or a tlog-proof string"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runIt(tc.args...)
			if code != tc.status {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.status, out, errOut)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr lacks %q: %s", tc.stderr, errOut)
			}
		})
	}

	// --json, for one receipt too.
	code, out, _ := runIt("--json", filepath.Join(logDir, "r2.tlog-proof"), tamperedFile)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Verified != 9 || rep.Failed != 1 || len(rep.Receipts) != 10 {
		t.Fatalf("report %+v", rep)
	}
	r := rep.Receipts[0]
	if !r.OK || r.Index == nil || *r.Index != 2 || r.Kind != "decision" || r.ID != "d-2" || r.Outcome != "allow" || r.CheckpointSize != 9 || r.RootHash == "" || r.LeafHash == "" {
		t.Fatalf("receipt %+v", r)
	}
	if f := rep.Receipts[5]; f.OK || !strings.Contains(f.Error, "receipt index 3") {
		t.Fatalf("failed receipt %+v", f)
	}
}

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnquoteNewlines(t *testing.T) {
	for _, q := range []string{`abc`, `a\nb\n`, ``, `é — x\n`, `a\"b`, `a\\nb`, `a\u0041`, `a\tb`, "a\nb", `a\`} {
		quoted := []byte(`"` + q + `"`)
		var want string
		werr := json.Unmarshal(quoted, &want)
		got, ok := unquoteNewlines([]byte(q))
		if ok && (werr != nil || string(got) != want) {
			t.Errorf("%q: unquoteNewlines says %q, encoding/json %q (%v)", q, got, want, werr)
		}
	}
	if _, ok := unquoteNewlines([]byte(`a\nb`)); !ok {
		t.Error("the fast path refuses a tlog-proof string")
	}
}
