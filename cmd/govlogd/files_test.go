//go:build unix

package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
)

// TestFilesRefused: every file govlogd reads at start, given as a FIFO,
// makes Run fail at once (it blocked forever, deaf to SIGTERM), and given
// writable by the group or others makes it fail naming the file and mode.
func TestFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare returns a valid configuration and the file to spoil.
		prepare func(t *testing.T) (Config, string)
	}{
		{keys.SignerFile, dataFile(keys.SignerFile)},
		{keys.ArtifactFile, dataFile(keys.ArtifactFile)},
		{keys.VerifierFile, dataFile(keys.VerifierFile)},
		{"--witness-policy", func(t *testing.T) (Config, string) {
			cfg := testConfig(t.TempDir())
			cfg.WitnessPolicy = writeConfigFile(t, "policy", "quorum none\n")
			return cfg, cfg.WitnessPolicy
		}},
		{"--published-checkpoint", func(t *testing.T) (Config, string) {
			cfg := testConfig(t.TempDir())
			if err := keys.Generate(cfg.DataDir, cfg.Origin); err != nil {
				t.Fatal(err)
			}
			k, err := keys.Load(cfg.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			empty, err := log.SignCheckpoint(k.Signer, 0, sha256.Sum256(nil))
			if err != nil {
				t.Fatal(err)
			}
			cfg.PublishedCheckpoint = writeConfigFile(t, "published", string(empty.Note))
			return cfg, cfg.PublishedCheckpoint
		}},
		{"--auth-tokens", func(t *testing.T) (Config, string) {
			cfg := testConfig(t.TempDir())
			cfg.AuthTokensFile = writeConfigFile(t, "tokens", "ci 8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92\n")
			return cfg, cfg.AuthTokensFile
		}},
	} {
		t.Run(tc.name+"/valid", func(t *testing.T) {
			cfg, _ := tc.prepare(t)
			start(t, cfg).stop(t)
		})
		t.Run(tc.name+"/named pipe", func(t *testing.T) {
			cfg, path := tc.prepare(t)
			os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			wantRunError(t, cfg, path, "a named pipe, not a regular file")
		})
		t.Run(tc.name+"/mode 0666", func(t *testing.T) {
			cfg, path := tc.prepare(t)
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
			wantRunError(t, cfg, path, "0666")
		})
	}
}

// dataFile spoils a key file of the data directory.
func dataFile(name string) func(t *testing.T) (Config, string) {
	return func(t *testing.T) (Config, string) {
		cfg := testConfig(t.TempDir())
		if err := keys.Generate(cfg.DataDir, cfg.Origin); err != nil {
			t.Fatal(err)
		}
		return cfg, filepath.Join(cfg.DataDir, name)
	}
}

func writeConfigFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantRunError runs govlogd and wants it to fail at once, naming path and
// saying want.
func wantRunError(t *testing.T, cfg Config, path, want string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	defer func() {
		// A Run blocked on a FIFO never returns: wait only so long.
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
		}
	}()
	select {
	case err := <-done:
		done <- err
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Run: %v; want an error naming %s and saying %q", err, path, want)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not fail within 10s: it is blocked on the file, or serving")
	}
}

// TestDataDirWarning: a data directory that the group or others may enter
// is run, with a warning naming it and its mode; a private one is not
// warned about.
func TestDataDirWarning(t *testing.T) {
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701, 0o700} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(data, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(data, mode); err != nil {
				t.Fatal(err)
			}
			// An *os.File takes the server's concurrent writes.
			out, err := os.Create(filepath.Join(t.TempDir(), "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cfg := testConfig(data)
			cfg.Logger = slog.New(slog.NewTextHandler(out, nil))
			start(t, cfg).stop(t)
			logged, err := os.ReadFile(out.Name())
			if err != nil {
				t.Fatal(err)
			}
			warned := false
			for line := range strings.Lines(string(logged)) {
				warned = warned || strings.Contains(line, "level=WARN") && strings.Contains(line, "dir="+data) &&
					strings.Contains(line, fmt.Sprintf("mode=%04o", mode))
			}
			if warned != (mode != 0o700) {
				t.Errorf("mode %04o: warned %v:\n%s", mode, warned, logged)
			}
		})
	}
}
