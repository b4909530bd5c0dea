package keys

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/mod/sumdb/note"
)

const origin = "example.com/govlog"

func generated(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := Generate(dir, origin); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return dir
}

func TestGenerateLoad(t *testing.T) {
	dir := generated(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %04o, want 0700", fi.Mode().Perm())
	}
	for name, want := range map[string]os.FileMode{SignerFile: 0o600, ArtifactFile: 0o600, VerifierFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", name, fi.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("data directory holds %d files, want 3 (no temporary files left)", len(entries))
	}

	k, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if k.Signer.Name() != origin || k.Verifier.Name() != origin {
		t.Errorf("key names %q, %q; want %q", k.Signer.Name(), k.Verifier.Name(), origin)
	}
	vkey, _ := os.ReadFile(filepath.Join(dir, VerifierFile))
	if k.VerifierKey != strings.TrimSpace(string(vkey)) {
		t.Errorf("VerifierKey %q, file %q", k.VerifierKey, vkey)
	}
	// The note key signs what the verifier accepts.
	signed, err := note.Sign(&note.Note{Text: "hello\n"}, k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(k.Verifier)); err != nil {
		t.Errorf("note does not verify: %v", err)
	}

	// The JWK: Ed25519, kid = RFC 7638 thumbprint, alg EdDSA, use sig.
	var raw map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, ArtifactFile))
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["kty"] != "OKP" || raw["crv"] != "Ed25519" || raw["alg"] != "EdDSA" || raw["use"] != "sig" || raw["d"] == nil {
		t.Errorf("artifact.jwk = %v", raw)
	}
	pub, err := jwk.PublicKeyOf(k.Artifact)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7638 §3.2 / RFC 8037 §A.3: the thumbprint input is {"crv","kty","x"}.
	if kid := k.Artifact.KeyID(); kid == "" || kid != raw["kid"] || kid != thumbprint(t, raw["x"].(string)) {
		t.Errorf("kid %q, file kid %v, thumbprint %q", kid, raw["kid"], thumbprint(t, raw["x"].(string)))
	}
	sig, err := jws.Sign([]byte("payload"), jws.WithKey(jwa.EdDSA, k.Artifact))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(sig, jws.WithKey(jwa.EdDSA, pub)); err != nil {
		t.Errorf("artifact key signature does not verify: %v", err)
	}

	// Generate never overwrites.
	if err := Generate(dir, origin); err == nil {
		t.Error("Generate over existing keys succeeded")
	}
	after, _ := os.ReadFile(filepath.Join(dir, ArtifactFile))
	if string(after) != string(data) {
		t.Error("Generate changed an existing key")
	}
}

func thumbprint(t *testing.T, x string) string {
	t.Helper()
	key, err := jwk.ParseKey([]byte(`{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func TestLoadRefusesModes(t *testing.T) {
	for _, name := range []string{SignerFile, ArtifactFile} {
		for _, tc := range []struct {
			mode os.FileMode
			ok   bool
		}{
			{0o600, true},
			{0o400, true},
			{0o644, false},
			{0o640, false},
			{0o604, false},
			{0o620, false},
			{0o602, false},
			{0o660, false},
		} {
			t.Run(name+"/"+tc.mode.String(), func(t *testing.T) {
				dir := generated(t)
				path := filepath.Join(dir, name)
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
				_, err := Load(dir)
				if tc.ok {
					if err != nil {
						t.Fatalf("Load with %s %04o: %v", name, tc.mode, err)
					}
					return
				}
				if err == nil {
					t.Fatalf("Load accepted %s with mode %04o", name, tc.mode)
				}
				msg := err.Error()
				if !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("%04o", tc.mode.Perm())) {
					t.Errorf("error %q does not name %s and its mode", msg, path)
				}
				noKeyMaterial(t, dir, msg)
			})
		}
	}
	t.Run("public key 0644", func(t *testing.T) {
		dir := generated(t)
		if _, err := Load(dir); err != nil {
			t.Fatalf("Load with log.vkey 0644: %v", err)
		}
	})
}

func TestLoadRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	dir := generated(t)
	path := filepath.Join(dir, SignerFile)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Skipf("chown: %v", err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Load of a key owned by another user: %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	for _, name := range []string{SignerFile, ArtifactFile, VerifierFile} {
		t.Run(name, func(t *testing.T) {
			dir := generated(t)
			path := filepath.Join(dir, name)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load without %s: %v", name, err)
			}
			if _, err := Present(dir); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("Present without %s: %v", name, err)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		ok, err := Present(t.TempDir())
		if ok || err != nil {
			t.Fatalf("Present on an empty directory = %v, %v", ok, err)
		}
		ok, err = Present(generated(t))
		if !ok || err != nil {
			t.Fatalf("Present on generated keys = %v, %v", ok, err)
		}
	})
}

func TestLoadGarbage(t *testing.T) {
	other := generated(t)
	otherKey, _ := os.ReadFile(filepath.Join(other, SignerFile))
	otherVkey, _ := os.ReadFile(filepath.Join(other, VerifierFile))
	for _, tc := range []struct {
		name, file, content string
	}{
		{"empty signer", SignerFile, ""},
		{"garbage signer", SignerFile, "PRIVATE+KEY+secret-garbage-XYZZY\n"},
		{"vkey in signer", SignerFile, string(otherVkey)},
		{"garbage verifier", VerifierFile, "not a key XYZZY\n"},
		{"other log's verifier", VerifierFile, string(otherVkey)},
		{"other log's signer", SignerFile, string(otherKey)},
		{"garbage jwk", ArtifactFile, "{\"kty\":\"OKP\",\"d\":\"XYZZY-secret\"\n"},
		{"not json jwk", ArtifactFile, "XYZZY-secret"},
		{"public jwk", ArtifactFile, `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`},
		{"symmetric jwk", ArtifactFile, `{"kty":"oct","k":"WFlaWlktc2VjcmV0LWtleS1tYXRlcmlhbA"}`},
		{"mismatched jwk", ArtifactFile, `{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURA"}`},
		{"wrong alg", ArtifactFile, `{"kty":"OKP","crv":"Ed25519","alg":"ES256","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`},
		{"wrong use", ArtifactFile, `{"kty":"OKP","crv":"Ed25519","use":"enc","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := generated(t)
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load accepted garbage")
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name %s", err, tc.file)
			}
			if strings.Contains(err.Error(), "XYZZY") || strings.Contains(err.Error(), "nWGxne") {
				t.Errorf("error %q quotes the key file", err)
			}
			noKeyMaterial(t, dir, err.Error())
		})
	}
}

// TestRFC8037Key loads the key of RFC 8037 Appendix A.1, written without
// kid, alg and use: Load fills them in, kid being the thumbprint of A.3.
func TestRFC8037Key(t *testing.T) {
	dir := generated(t)
	const key = `{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	if err := os.WriteFile(filepath.Join(dir, ArtifactFile), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if kid := k.Artifact.KeyID(); kid != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("kid %q, want the RFC 8037 A.3 thumbprint", kid)
	}
	if k.Artifact.Algorithm().String() != "EdDSA" || k.Artifact.KeyUsage() != "sig" {
		t.Errorf("alg %v use %q", k.Artifact.Algorithm(), k.Artifact.KeyUsage())
	}
}

func TestGenerateRefusesBadOrigin(t *testing.T) {
	for _, o := range []string{"", "a b", "a+b", "a\tb", "\xff"} {
		if err := Generate(t.TempDir(), o); err == nil {
			t.Errorf("Generate(%q) succeeded", o)
		}
		if err := ValidName(o); err == nil {
			t.Errorf("ValidName(%q) = nil", o)
		}
	}
	if err := ValidName("example.com/log-1"); err != nil {
		t.Errorf("ValidName: %v", err)
	}
}

// noKeyMaterial fails if msg holds any private key text of dir.
func noKeyMaterial(t *testing.T, dir, msg string) {
	t.Helper()
	skey, _ := os.ReadFile(filepath.Join(dir, SignerFile))
	if s := strings.TrimSpace(string(skey)); len(s) > 20 {
		secret := s[strings.LastIndex(s, "+")+1:]
		if len(secret) > 8 && strings.Contains(msg, secret) {
			t.Errorf("error quotes the signer key: %q", msg)
		}
	}
	var raw map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, ArtifactFile))
	if json.Unmarshal(data, &raw) == nil {
		if d, ok := raw["d"].(string); ok && strings.Contains(msg, d) {
			t.Errorf("error quotes the artifact key: %q", msg)
		}
	}
}
