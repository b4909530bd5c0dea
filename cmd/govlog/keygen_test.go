package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/govlog/govlog/internal/keys"
)

// runGovlog runs govlog with args and returns its status and output.
func runGovlog(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestKeygenRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runGovlog("keygen", "--name", "example.com/log", "--out", dir); code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	before, err := keys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runGovlog("keygen", "--rotate-artifact", "--out", dir)
	if code != 0 || !strings.Contains(out, before.Artifact.KeyID()) || !strings.Contains(out, "restart govlogd") {
		t.Fatalf("keygen --rotate-artifact: %d %q %q", code, out, errOut)
	}
	after, err := keys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Artifact.KeyID() == before.Artifact.KeyID() || len(after.Retired) != 1 || after.Retired[0].KeyID() != before.Artifact.KeyID() {
		t.Fatalf("after rotation: artifact %q, %d retired", after.Artifact.KeyID(), len(after.Retired))
	}
	if code, out, _ := runGovlog("keygen", "--prune-retired", "1h", "--out", dir); code != 0 || !strings.Contains(out, "no artifact key") {
		t.Fatalf("prune too early: %d %q", code, out)
	}
	if code, out, _ := runGovlog("keygen", "--prune-retired", "1ns", "--out", dir); code != 0 || !strings.Contains(out, "removed retired artifact key "+before.Artifact.KeyID()) {
		t.Fatalf("prune: %d %q", code, out)
	}
	if k, err := keys.Load(dir); err != nil || len(k.Retired) != 0 {
		t.Fatalf("after pruning: %v", err)
	}
	// Rotating where there are no keys fails.
	if code, _, errOut := runGovlog("keygen", "--rotate-artifact", "--out", t.TempDir()); code != 1 || !strings.Contains(errOut, "rotate") {
		t.Errorf("rotating nothing: %d %q", code, errOut)
	}
}

func TestKeygenToken(t *testing.T) {
	code, out, errOut := runGovlog("keygen", "--token", "ci-pipeline", "--permissions", "decisions,read")
	if code != 0 {
		t.Fatalf("keygen --token: %d %s", code, errOut)
	}
	m := regexp.MustCompile(`(?m)^token: (\S+)\ntoken file line: ci-pipeline ([0-9a-f]{64}) decisions,read\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output %q", out)
	}
	sum := sha256.Sum256([]byte(m[1]))
	if hex.EncodeToString(sum[:]) != m[2] {
		t.Error("the line's hash is not the token's SHA-256")
	}
	if len(m[1]) < 40 {
		t.Errorf("token %q is short", m[1])
	}
	_, again, _ := runGovlog("keygen", "--token", "ci-pipeline")
	if strings.Contains(again, m[1]) {
		t.Error("two tokens are the same")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keygen", "--token", "a b"}, "white space"},
		{[]string{"keygen", "--token", "anonymous"}, "reserved"},
		{[]string{"keygen", "--token", "ci", "--permissions", "write"}, "unknown permission"},
		{[]string{"keygen", "--permissions", "read", "--name", "x"}, "--permissions goes with --token"},
		{[]string{"keygen", "--token", "ci", "--rotate-artifact"}, "give one of"},
		{[]string{"keygen", "--name", "x", "--prune-retired", "1h"}, "give one of"},
		{[]string{"keygen", "--prune-retired", "-1h"}, "positive"},
	} {
		if code, _, errOut := runGovlog(tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("govlog %q: %d %q; want usage error %q", tc.args, code, errOut, tc.want)
		}
	}
}
