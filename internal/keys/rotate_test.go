package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

func TestRotateArtifact(t *testing.T) {
	dir := generated(t)
	before, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Retired) != 0 {
		t.Fatalf("fresh keys have %d retired keys", len(before.Retired))
	}
	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	oldKID, newKID, err := RotateArtifact(dir, t1)
	if err != nil {
		t.Fatal(err)
	}
	if oldKID != before.Artifact.KeyID() || newKID == oldKID || newKID == "" {
		t.Fatalf("RotateArtifact = %q, %q; the key was %q", oldKID, newKID, before.Artifact.KeyID())
	}
	for name, want := range map[string]os.FileMode{ArtifactFile: 0o600, RetiredFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", name, fi.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("%d files in the data directory, want 4 (no temporary files)", len(entries))
	}
	after, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Artifact.KeyID() != newKID || len(after.Retired) != 1 || after.Retired[0].KeyID() != oldKID {
		t.Fatalf("after rotation: artifact %q, retired %d", after.Artifact.KeyID(), len(after.Retired))
	}
	if after.VerifierKey != before.VerifierKey {
		t.Error("rotating the artifact key changed the log key")
	}
	// The retired public key verifies what the old private key signed; the
	// file holds no private part.
	sig, err := jws.Sign([]byte("old artifact"), jws.WithKey(jwa.EdDSA, before.Artifact))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(sig, jws.WithKey(jwa.EdDSA, after.Retired[0])); err != nil {
		t.Errorf("the retired key does not verify the old key's signature: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, RetiredFile))
	var file struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || len(file.Keys) != 1 {
		t.Fatalf("retired file %s: %v", raw, err)
	}
	if _, ok := file.Keys[0]["d"]; ok {
		t.Error("the retired file holds a private key")
	}
	if file.Keys[0]["retired_at"] != "2026-03-01T12:00:00Z" || file.Keys[0]["kid"] != oldKID {
		t.Errorf("retired key %v", file.Keys[0])
	}

	// A second rotation retires the second key too, oldest first.
	t2 := t1.Add(24 * time.Hour)
	_, third, err := RotateArtifact(dir, t2)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Artifact.KeyID() != third || len(k.Retired) != 2 || k.Retired[0].KeyID() != oldKID || k.Retired[1].KeyID() != newKID {
		t.Fatalf("after two rotations: %q, %d retired", k.Artifact.KeyID(), len(k.Retired))
	}

	// Pruning removes what was retired at least the age ago.
	removed, err := PruneRetired(dir, time.Hour, t2)
	if err != nil || len(removed) != 1 || removed[0] != oldKID {
		t.Fatalf("PruneRetired = %v, %v; want [%s]", removed, err, oldKID)
	}
	if removed, err := PruneRetired(dir, time.Hour, t2.Add(59*time.Minute)); err != nil || len(removed) != 0 {
		t.Fatalf("PruneRetired too early = %v, %v", removed, err)
	}
	if removed, err := PruneRetired(dir, time.Hour, t2.Add(time.Hour)); err != nil || len(removed) != 1 || removed[0] != newKID {
		t.Fatalf("PruneRetired = %v, %v; want [%s]", removed, err, newKID)
	}
	if k, err := Load(dir); err != nil || len(k.Retired) != 0 {
		t.Fatalf("after pruning everything: %v", err)
	}
	if _, err := PruneRetired(dir, -time.Second, t2); err == nil {
		t.Error("a negative age was accepted")
	}
}

// TestRotateInterrupted: a crash after the retired file was written but
// before artifact.jwk was replaced leaves the current key in both; Load
// ignores the retired copy and a second rotation completes.
func TestRotateInterrupted(t *testing.T) {
	dir := generated(t)
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publicArtifactKey(k.Artifact.(interface{ X() []byte }).X(), k.Artifact.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeRetired(dir, []retiredKey{{key: pub, retiredAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	k2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k2.Retired) != 0 {
		t.Fatalf("the current key is listed as retired")
	}
	oldKID, _, err := RotateArtifact(dir, time.Now())
	if err != nil || oldKID != k.Artifact.KeyID() {
		t.Fatal(err)
	}
	k3, err := Load(dir)
	if err != nil || len(k3.Retired) != 1 || k3.Retired[0].KeyID() != oldKID {
		t.Fatalf("after completing the rotation: %v", err)
	}
}

func TestRetiredFileRefused(t *testing.T) {
	x := "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"group writable", `{"keys":[]}`, 0o664, "0664"},
		{"world writable", `{"keys":[]}`, 0o646, "0646"},
		{"not json", `XYZZY`, 0o644, "not a JWKS"},
		{"unknown member", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a","key_ops":["sign"]}]}`, 0o644, "not a JWKS"},
		{"private key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`, 0o600, "private"},
		{"rsa key", `{"keys":[{"kty":"RSA","crv":"","x":"","kid":"a"}]}`, 0o644, "not a public Ed25519"},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"a"}]}`, 0o644, "not a public Ed25519"},
		{"no kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}]}`, 0o644, "kid"},
		{"same kid twice", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a"},{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a"}]}`, 0o644, "kid"},
		{"hmac alg", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a","alg":"HS256"}]}`, 0o644, "EdDSA"},
		{"bad time", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"a","retired_at":"yesterday"}]}`, 0o644, "retired_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := generated(t)
			path := filepath.Join(dir, RetiredFile)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), RetiredFile) {
				t.Fatalf("Load: %v; want an error naming %s and %q", err, RetiredFile, tc.want)
			}
			if strings.Contains(err.Error(), "XYZZY") || strings.Contains(err.Error(), "nWGxne") {
				t.Errorf("the error quotes the file: %v", err)
			}
			if _, _, err := RotateArtifact(dir, time.Now()); err == nil {
				t.Error("RotateArtifact over a refused file succeeded")
			}
		})
	}
	t.Run("public key 0644 accepted", func(t *testing.T) {
		dir := generated(t)
		content := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"old"}]}`
		if err := os.WriteFile(filepath.Join(dir, RetiredFile), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		k, err := Load(dir)
		if err != nil || len(k.Retired) != 1 || k.Retired[0].KeyID() != "old" {
			t.Fatalf("Load: %v", err)
		}
		if alg := k.Retired[0].Algorithm().String(); alg != "EdDSA" || k.Retired[0].KeyUsage() != "sig" {
			t.Errorf("retired key alg %q use %q", alg, k.Retired[0].KeyUsage())
		}
	})
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o644, true}, {0o600, true}, {0o444, true}, {0o664, false}, {0o646, false}, {0o666, false}, {0o622, false}} {
		path := write("f"+tc.mode.String(), []byte("ci abc\n"), tc.mode)
		data, err := ReadConfig(path)
		if tc.ok != (err == nil) {
			t.Errorf("ReadConfig with mode %04o: %v", tc.mode, err)
		}
		if tc.ok && string(data) != "ci abc\n" {
			t.Errorf("ReadConfig read %q", data)
		}
		if !tc.ok && !strings.Contains(err.Error(), path) {
			t.Errorf("error %v does not name the file", err)
		}
	}
	if _, err := ReadConfig(write("big", make([]byte, maxConfigFile+1), 0o644)); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("ReadConfig of a too large file: %v", err)
	}
	if _, err := ReadConfig(dir); err == nil {
		t.Error("ReadConfig of a directory succeeded")
	}
	if _, err := ReadConfig(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadConfig of a missing file: %v", err)
	}
}

// selfSigned writes a self-signed certificate and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, keyPEM []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, keyPEM
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, keyPEM := selfSigned(t, dir)
	cert, err := LoadTLS(certFile, keyFile)
	if err != nil || len(cert.Certificate) != 1 {
		t.Fatalf("LoadTLS: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(keyFile, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTLS(certFile, keyFile)
		if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "0600") {
			t.Errorf("LoadTLS with the key at %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	// Another key than the certificate's.
	other := t.TempDir()
	_, otherKey, _ := selfSigned(t, other)
	_, err = LoadTLS(certFile, otherKey)
	if err == nil {
		t.Fatal("LoadTLS accepted a key that is not the certificate's")
	}
	b64 := strings.Split(string(keyPEM), "\n")[1]
	if strings.Contains(err.Error(), b64) {
		t.Errorf("the error quotes the key: %v", err)
	}
	// The key in place of the certificate, and garbage.
	if _, err := LoadTLS(keyFile, keyFile); err == nil {
		t.Error("LoadTLS accepted a key as the certificate")
	}
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\nXYZZY\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTLS(certFile, keyFile); err == nil || strings.Contains(err.Error(), "XYZZY") {
		t.Errorf("LoadTLS of a garbage key: %v", err)
	}
	if _, err := LoadTLS(filepath.Join(dir, "missing.crt"), keyFile); err == nil {
		t.Error("LoadTLS without a certificate succeeded")
	}
}
