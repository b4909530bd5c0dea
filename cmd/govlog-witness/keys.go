package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/govlog/govlog/witness"
)

// Names of the key files in the data directory.
const (
	// KeyFile holds the witness's private key (0600).
	KeyFile = "witness.key"
	// VerifierKeyFile holds its cosignature/v1 verifier key.
	VerifierKeyFile = "witness.vkey"
)

// maxKeyFile bounds a key file.
const maxKeyFile = 4 << 10

// openKey returns the witness's private key from dir, creating dir (0700)
// and generating the key on first start. It refuses a key file that the
// group or others may access or that the current user does not own, and a
// key whose name is not name (when name is set).
func openKey(dir, name string, logger *slog.Logger) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("failed to create the data directory: %w", err)
	}
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
	if have, err := os.ReadFile(vpath); err != nil || strings.TrimSpace(string(have)) != vkey {
		// witness.vkey is derived from the key: write it when it is missing
		// or stale.
		if err := writeFile(dir, VerifierKeyFile, []byte(vkey+"\n"), 0o644, true); err != nil {
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
	if err := writeFile(dir, KeyFile, []byte(skey+"\n"), 0o600, false); err != nil {
		return err
	}
	return writeFile(dir, VerifierKeyFile, []byte(vkey+"\n"), 0o644, true)
}

// writeFile writes data to dir/name through a synced temporary file, so the
// name never holds a partial key. An existing file is replaced only when
// replace is set.
func writeFile(dir, name string, data []byte, mode fs.FileMode, replace bool) (err error) {
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
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open the data directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync the data directory: %w", err)
	}
	return nil
}

// readPrivate reads a private key file: a regular file owned by the current
// user that neither the group nor others may access. Errors never quote it.
func readPrivate(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("failed to open the witness key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("failed to stat the witness key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("refusing the witness key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("refusing the witness key %s: mode %04o lets the group or others access it; it must be 0600 (chmod 600 %s)", path, perm, path)
	}
	if err := checkOwner(fi); err != nil {
		return "", fmt.Errorf("refusing the witness key %s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("failed to read the witness key %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return "", fmt.Errorf("refusing the witness key %s: larger than %d bytes", path, maxKeyFile)
	}
	return strings.TrimSpace(string(data)), nil
}
