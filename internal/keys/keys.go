// Package keys reads and writes the key files of a govlog log server.
//
// A log's data directory holds three files:
//
//	log.key       the note signer key that signs checkpoints (mode 0600)
//	log.vkey      its note verifier key, public (mode 0644)
//	artifact.jwk  the Ed25519 private JWK that signs authorization artifacts (mode 0600)
//
// and, once the artifact key has been rotated (RotateArtifact), a fourth:
//
//	artifact-retired.jwks  the public keys of earlier artifact keys (mode 0644)
//
// log.key and log.vkey are in the text format of golang.org/x/mod/sumdb/note;
// the key name is the log origin, for example
//
//	PRIVATE+KEY+example.com/govlog+9a2f1c3d+AZ…
//	example.com/govlog+9a2f1c3d+AW…
//
// artifact.jwk is a JSON Web Key (RFC 7517) of key type OKP, curve Ed25519,
// with "alg" "EdDSA", "use" "sig" and "kid" its RFC 7638 SHA-256 thumbprint
// (base64url, no padding).
//
// Every file this package reads must be a regular file (or a symbolic
// link to one: a FIFO or a device is refused, never waited on), owned by
// the current user and not writable by the group or others: whoever can
// write a key or a trust file (log.vkey, artifact-retired.jwks, and the
// files ReadConfig reads) can forge artifacts or credentials. A file that
// holds a secret (log.key, artifact.jwk, a TLS key, ReadPrivateFile) must
// not be readable by them either: a key that leaked is an identity that
// can be forged. Errors name the file and never carry key material.
package keys

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/mod/sumdb/note"
)

// Names of the key files in a data directory.
const (
	SignerFile   = "log.key"
	VerifierFile = "log.vkey"
	ArtifactFile = "artifact.jwk"
)

// maxKeyFile bounds how much of a key file is read.
const maxKeyFile = 64 << 10

// Keys are a log's keys, loaded from its data directory.
type Keys struct {
	// Signer signs checkpoints; its name is the log origin.
	Signer note.Signer
	// Verifier verifies the Signer's signatures.
	Verifier note.Verifier
	// VerifierKey is the verifier key in note text form, as log.vkey holds
	// it (without the trailing newline).
	VerifierKey string
	// Artifact is the private Ed25519 JWK that signs authorization
	// artifacts, with "kid", "alg" EdDSA and "use" sig set.
	Artifact jwk.Key
	// Retired are the public Ed25519 JWKs of artifact keys used before
	// Artifact (artifact-retired.jwks, empty when absent), oldest first,
	// without Artifact's own kid.
	Retired []jwk.Key
}

// ValidName reports whether origin can be a note key name, and so a log
// origin: non-empty valid UTF-8 without white space or '+'.
func ValidName(origin string) error {
	switch {
	case origin == "":
		return errors.New("the origin is empty")
	case !utf8.ValidString(origin):
		return errors.New("the origin is not valid UTF-8")
	case strings.ContainsRune(origin, '+'):
		return fmt.Errorf("the origin %q contains '+'", origin)
	case strings.ContainsFunc(origin, unicode.IsSpace):
		return fmt.Errorf("the origin %q contains white space", origin)
	}
	return nil
}

// Present reports whether dir holds the key files: true when all do, false
// when none does, and an error naming the missing ones when only some do.
func Present(dir string) (bool, error) {
	var have, missing []string
	for _, name := range []string{SignerFile, ArtifactFile, VerifierFile} {
		_, err := os.Lstat(filepath.Join(dir, name))
		switch {
		case err == nil:
			have = append(have, name)
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
		default:
			return false, fmt.Errorf("failed to check for key files: %w", err)
		}
	}
	switch {
	case len(missing) == 0:
		return true, nil
	case len(have) == 0:
		return false, nil
	}
	return false, fmt.Errorf("%s holds %s but not %s: restore the missing key files or move the rest away",
		dir, strings.Join(have, ", "), strings.Join(missing, ", "))
}

// WarnOpenDir logs a warning when the group or others may list, enter or
// write dir, a data directory (created 0700): its files — the log, its
// keys — are then only as private as their own modes, and whoever may
// write it may replace them.
func WarnOpenDir(logger *slog.Logger, dir string) {
	fi, err := os.Stat(dir)
	if err != nil {
		return // the caller fails on it
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("the data directory lets the group or others in; make it 0700 (chmod 700 DIR)",
			"dir", dir, "mode", fmt.Sprintf("%04o", perm))
	}
}

// Generate creates dir (0700) if needed and writes new keys into it for a
// log named origin: log.key and artifact.jwk with mode 0600, log.vkey with
// mode 0644. It never overwrites a file: it fails if any key file exists.
func Generate(dir, origin string) error {
	if err := ValidName(origin); err != nil {
		return fmt.Errorf("failed to generate keys: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("failed to create the key directory: %w", err)
	}
	for _, name := range []string{SignerFile, ArtifactFile, VerifierFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to generate keys: %s already exists (keys are never overwritten)", filepath.Join(dir, name))
		}
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return fmt.Errorf("failed to generate the log key: %w", err)
	}
	jwkJSON, err := newArtifactKey()
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{SignerFile, []byte(skey + "\n"), 0o600},
		{ArtifactFile, append(jwkJSON, '\n'), 0o600},
		{VerifierFile, []byte(vkey + "\n"), 0o644},
	}
	for _, f := range files {
		if err := WriteFile(dir, f.name, f.data, f.mode, false); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// newArtifactKey returns a new Ed25519 private JWK as JSON.
func newArtifactKey() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate the artifact key: %w", err)
	}
	key, err := jwk.FromRaw(priv)
	if err != nil {
		return nil, fmt.Errorf("failed to build the artifact JWK: %w", err)
	}
	if err := completeJWK(key); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(key)
	if err != nil {
		return nil, errors.New("failed to encode the artifact JWK")
	}
	return raw, nil
}

// completeJWK sets kid (the RFC 7638 thumbprint), alg and use.
func completeJWK(key jwk.Key) error {
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("failed to compute the artifact key thumbprint: %w", err)
	}
	for k, v := range map[string]any{
		jwk.KeyIDKey:     base64.RawURLEncoding.EncodeToString(tp),
		jwk.AlgorithmKey: jwa.EdDSA,
		jwk.KeyUsageKey:  jwk.ForSignature,
	} {
		if err := key.Set(k, v); err != nil {
			return fmt.Errorf("failed to set %q of the artifact key: %w", k, err)
		}
	}
	return nil
}

// WriteFile writes data to dir/name with mode through a synced temporary
// file, so the name never holds a partial key, then syncs dir. With replace
// the file is renamed into place (the name holds the old or the new
// content); without, it is linked, so an existing file is never replaced.
func WriteFile(dir, name string, data []byte, mode fs.FileMode, replace bool) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("failed to set the mode of %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	dst := filepath.Join(dir, name)
	if replace {
		err = os.Rename(tmp.Name(), dst)
	} else {
		err = os.Link(tmp.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("failed to install %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open the key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync the key directory: %w", err)
	}
	return nil
}

// Load reads the keys of dir. It refuses log.key and artifact.jwk when the
// group or others may access them or when the current user does not own
// them, and keys that do not form one log identity (log.vkey must be the
// verifier of log.key).
func Load(dir string) (*Keys, error) {
	skey, err := readKeyFile(dir, SignerFile, true)
	if err != nil {
		return nil, err
	}
	jwkData, err := readKeyFile(dir, ArtifactFile, true)
	if err != nil {
		return nil, err
	}
	vkeyData, err := readKeyFile(dir, VerifierFile, false)
	if err != nil {
		return nil, err
	}
	k := &Keys{VerifierKey: strings.TrimSpace(string(vkeyData))}
	// note's parse errors are fixed strings that carry no key material.
	if k.Signer, err = note.NewSigner(strings.TrimSpace(string(skey))); err != nil {
		return nil, fmt.Errorf("failed to parse %s: not a note signer key: %w", filepath.Join(dir, SignerFile), err)
	}
	if k.Verifier, err = note.NewVerifier(k.VerifierKey); err != nil {
		return nil, fmt.Errorf("failed to parse %s: not a note verifier key: %w", filepath.Join(dir, VerifierFile), err)
	}
	if k.Signer.Name() != k.Verifier.Name() || k.Signer.KeyHash() != k.Verifier.KeyHash() || !verifies(k.Signer, k.Verifier) {
		return nil, fmt.Errorf("%s is not the verifier key of %s", filepath.Join(dir, VerifierFile), filepath.Join(dir, SignerFile))
	}
	if k.Artifact, err = parseArtifactKey(jwkData); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", filepath.Join(dir, ArtifactFile), err)
	}
	retired, err := loadRetired(dir)
	if err != nil {
		return nil, err
	}
	for _, r := range retired {
		// A rotation interrupted between its two steps leaves the
		// current key in both files.
		if r.key.KeyID() != k.Artifact.KeyID() {
			k.Retired = append(k.Retired, r.key)
		}
	}
	return k, nil
}

// verifies checks that v accepts a signature made by s.
func verifies(s note.Signer, v note.Verifier) bool {
	msg := []byte("govlog key check\n")
	sig, err := s.Sign(msg)
	return err == nil && v.Verify(msg, sig)
}

// parseArtifactKey parses a private Ed25519 JWK. Its errors are written here
// and never wrap the JWK parser's: they could quote the file.
func parseArtifactKey(data []byte) (jwk.Key, error) {
	key, err := jwk.ParseKey(data)
	if err != nil {
		return nil, errors.New("not a JSON Web Key")
	}
	okp, ok := key.(jwk.OKPPrivateKey)
	if !ok || okp.Crv() != jwa.Ed25519 {
		return nil, errors.New("not a private Ed25519 (OKP) key")
	}
	var priv ed25519.PrivateKey
	if err := key.Raw(&priv); err != nil || len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("not a usable Ed25519 private key")
	}
	// The public half must be the private key's, or every artifact would
	// fail to verify against the published JWKS.
	if !bytes.Equal(okp.X(), priv.Public().(ed25519.PublicKey)) {
		return nil, errors.New("the public key x does not match the private key d")
	}
	if alg := key.Algorithm(); alg != nil && alg.String() != "" && alg.String() != jwa.EdDSA.String() {
		return nil, fmt.Errorf("alg is %q, want %q", alg.String(), jwa.EdDSA.String())
	}
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return nil, fmt.Errorf("use is %q, want %q", use, jwk.ForSignature)
	}
	if key.KeyID() == "" {
		tp, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, errors.New("failed to compute its thumbprint")
		}
		if err := key.Set(jwk.KeyIDKey, base64.RawURLEncoding.EncodeToString(tp)); err != nil {
			return nil, errors.New("failed to set its kid")
		}
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.EdDSA); err != nil {
		return nil, errors.New("failed to set its alg")
	}
	if err := key.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, errors.New("failed to set its use")
	}
	return key, nil
}

// readKeyFile reads dir/name, a secret one with ReadPrivateFile's checks,
// a public one with ReadConfig's.
func readKeyFile(dir, name string, private bool) ([]byte, error) {
	return readFile(filepath.Join(dir, name), maxKeyFile, private)
}

// ReadPrivateFile reads a file that holds a secret (a private key): a
// regular file of at most 64 KiB, owned by the current user, that neither
// the group nor others may access. Errors name the file and its mode,
// never its content.
func ReadPrivateFile(path string) ([]byte, error) {
	return readFile(path, maxKeyFile, true)
}

// readFile reads path: a regular file, or a symbolic link to one, of at
// most limit bytes, owned by the current user, that neither the group nor
// others may write — nor, when secret, read. It opens the file without
// blocking and checks what it opened, so a FIFO or a device is refused at
// once instead of being waited on forever. A missing file is an error
// wrapping fs.ErrNotExist. Errors name the file, never its content.
func readFile(path string, limit int64, secret bool) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		// The path error would name the file a second time.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("failed to stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("refusing %s: it is %s, not a regular file", path, fileKind(fi.Mode()))
	}
	switch perm := fi.Mode().Perm(); {
	case secret && perm&0o077 != 0:
		return nil, fmt.Errorf("refusing %s: mode %04o lets the group or others access it; it holds a secret and must be 0600 (chmod 600 %s)", path, perm, path)
	case perm&0o022 != 0:
		return nil, fmt.Errorf("refusing %s: mode %04o lets the group or others write it; it must be 0644 or stricter (chmod go-w %s)", path, perm, path)
	}
	if err := checkOwner(fi); err != nil {
		return nil, fmt.Errorf("refusing %s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("refusing %s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	}
	return "of type " + mode.Type().String()
}
