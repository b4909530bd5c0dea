package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVerifyArtifactVectors runs govlog verify-artifact on every case of
// testdata/verify/key-artifacts.json, the vectors the TypeScript and
// Python verifiers share: exit status 0 for the cases that verify, 1 for
// the others, and the claims printed.
func TestVerifyArtifactVectors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "verify", "key-artifacts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Cases []struct {
			Name       string `json:"name"`
			Want       string `json:"want"`
			LogKey     string `json:"log_key"`
			Audience   string `json:"audience"`
			Now        int64  `json:"now"`
			Token      string `json:"token"`
			KeyReceipt string `json:"key_receipt"`
			Policy     string `json:"policy"`
			Authorize  *struct {
				Action   string `json:"action"`
				Resource string `json:"resource"`
				Subject  string `json:"subject"`
			} `json:"authorize"`
			Expect struct {
				Claims string `json:"claims"`
			} `json:"expect"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 40 {
		t.Fatalf("%d cases", len(v.Cases))
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, text string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			}
			now := c.Now
			args := []string{"verify-artifact", "--log-key", c.LogKey, "--key-receipt", write("key.receipt", c.KeyReceipt),
				"--at", time.Unix(now, 0).UTC().Format(time.RFC3339)}
			if c.Audience != "" {
				args = append(args, "--audience", c.Audience)
			}
			if c.Policy != "" {
				args = append(args, "--witness-policy", write("policy.txt", c.Policy))
			}
			if a := c.Authorize; a != nil {
				args = append(args, "--action", a.Action)
				if a.Resource != "" {
					args = append(args, "--resource", a.Resource)
				}
				if a.Subject != "" {
					args = append(args, "--subject", a.Subject)
				}
			}
			args = append(args, write("artifact.jwt", c.Token))
			code, stdout, stderr := runCLI(t, "", args...)
			switch c.Want {
			case "ok":
				var claims struct {
					ID string `json:"jti"`
				}
				if err := json.Unmarshal([]byte(c.Expect.Claims), &claims); err != nil {
					t.Fatal(err)
				}
				if code != 0 || !strings.HasPrefix(stdout, "OK: artifact of decision "+claims.ID+", valid until ") || !strings.Contains(stdout, "\nkey: ") {
					t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
				}
				code, stdout, _ = runCLI(t, "", append(args[:len(args)-1:len(args)-1], "--json", args[len(args)-1])...)
				var rep artifactResult
				if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 || !rep.OK || rep.Claims.ID != claims.ID || rep.Key == nil {
					t.Fatalf("--json: exit %d %v\n%s", code, err, stdout)
				}
			default:
				if code != 1 || !strings.Contains(stderr, "the artifact does NOT verify") {
					t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
				}
			}
		})
	}
}

// TestVerifyArtifactUsage: usage errors exit with status 2.
func TestVerifyArtifactUsage(t *testing.T) {
	key := "example.com/govlog+f2a81beb+AU/F0O0Z6IrJ/0KmSp5Rax8khcDGbDeFrp36+0zmZYjv"
	for _, args := range [][]string{
		{"verify-artifact", "a.b.c"},
		{"verify-artifact", "--log-key", key, "a.b.c"},
		{"verify-artifact", "--log-key", key, "--keys", "k.json", "--url", "http://127.0.0.1:1", "a.b.c"},
		{"verify-artifact", "--log-key", key, "--keys", "no-such-file.json", "a.b.c"},
		{"verify-artifact", "--log-key", key, "--keys", "k.json"},
		{"verify-artifact", "--log-key", key, "--keys", "k.json", "--resource", "r", "a.b.c"},
		{"verify-artifact", "--log-key", key, "--keys", "k.json", "--at", "yesterday", "a.b.c"},
		{"verify-artifact", "--log-key", key, "--url", "http://127.0.0.1:1", "a.b.c"},
		{"verify-artifact", "--log-key", key, "--keys", "k.json", "no-such-file.jwt"},
	} {
		if code, stdout, stderr := runCLI(t, "", args...); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s%s", args, code, stdout, stderr)
		}
	}
}
