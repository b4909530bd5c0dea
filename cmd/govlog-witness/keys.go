package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/witness"
)

// Names of the key files in the data directory.
const (
	// KeyFile holds the witness's private key (0600).
	KeyFile = "witness.key"
	// VerifierKeyFile holds its cosignature/v1 verifier key.
	VerifierKeyFile = "witness.vkey"
)

// openKey returns the witness's private key from dir, creating dir (0700)
// and generating the key on first start. It refuses a key file that the
// group or others may access or that the current user does not own, and a
// key whose name is not name (when name is set).
func openKey(dir, name string, logger *slog.Logger) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("failed to create the data directory: %w", err)
	}
	keys.WarnOpenDir(logger, dir)
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s holds a witness database but no %s: restore the key (a witness's key is its identity)", dir, KeyFile)
		}
		if name == "" {
			return "", errors.New("--name is required to generate the witness key on first start")
		}
		if err := generateKey(dir, name); err != nil {
			return "", err
		}
		logger.Info("generated the witness key", "dir", dir, "name", name,
			"verifier_key_file", filepath.Join(dir, VerifierKeyFile))
	}
	skey, err := readPrivate(path)
	if err != nil {
		return "", err
	}
	vkey, err := witness.VerifierKeyOf(skey)
	if err != nil {
		return "", fmt.Errorf("failed to parse %s: %w", path, err)
	}
	keyName, _, _ := strings.Cut(vkey, "+")
	if name != "" && keyName != name {
		return "", fmt.Errorf("the witness key %s is named %q, not %q: a witness's key is its identity; "+
			"pass --name %q or use another --data directory", path, keyName, name, keyName)
	}
	vpath := filepath.Join(dir, VerifierKeyFile)
	if have, err := keys.ReadConfig(vpath); err != nil || strings.TrimSpace(string(have)) != vkey {
		// witness.vkey is derived from the key: write it when it is missing,
		// stale, or not a file that could be trusted (writable by others, a
		// FIFO).
		if err := keys.WriteFile(dir, VerifierKeyFile, []byte(vkey+"\n"), 0o644, true); err != nil {
			return "", err
		}
	}
	return skey, nil
}

// generateKey writes a new key pair into dir.
func generateKey(dir, name string) error {
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		return err
	}
	if err := keys.WriteFile(dir, KeyFile, []byte(skey+"\n"), 0o600, false); err != nil {
		return err
	}
	return keys.WriteFile(dir, VerifierKeyFile, []byte(vkey+"\n"), 0o644, true)
}

// readPrivate reads the witness's private key file; see
// keys.ReadPrivateFile for the checks.
func readPrivate(path string) (string, error) {
	data, err := keys.ReadPrivateFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
