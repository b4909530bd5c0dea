package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackendFlags checks the --backend flags: the Trillian backend needs
// all three of its flags, and they mean nothing without it. Nothing is
// created on a refused command line.
func TestBackendFlags(t *testing.T) {
	trillianArgs := []string{"--trillian-addr", "127.0.0.1:1", "--trillian-tree-id", "7", "--trillian-mysql-dsn", "root@tcp(127.0.0.1:1)/x"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown backend", []string{"--backend", "postgres"}, "--backend must be"},
		{"trillian without addr", []string{"--backend", "trillian", "--trillian-tree-id", "7", "--trillian-mysql-dsn", "x"}, "needs --trillian-addr"},
		{"trillian without tree", []string{"--backend", "trillian", "--trillian-addr", "127.0.0.1:1", "--trillian-mysql-dsn", "x"}, "needs --trillian-addr"},
		{"trillian negative tree", []string{"--backend", "trillian", "--trillian-addr", "127.0.0.1:1", "--trillian-tree-id", "-3", "--trillian-mysql-dsn", "x"}, "(> 0)"},
		{"trillian without dsn", []string{"--backend", "trillian", "--trillian-addr", "127.0.0.1:1", "--trillian-tree-id", "7"}, "needs --trillian-addr"},
		{"trillian flags without the backend", trillianArgs, "need --backend trillian"},
		{"bad tree id", []string{"--backend", "trillian", "--trillian-tree-id", "x"}, "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			args := append([]string{"--listen", "127.0.0.1:0", "--data", data}, tc.args...)
			err := cli(context.Background(), args, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
				t.Fatalf("cli(%q) = %v, output %q; want %q", tc.args, err, stderr.String(), tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created: %v", err)
			}
		})
	}
}

// TestTrillianRefusesEmbeddedLog refuses to start a Trillian log with the
// keys of an embedded log: the two would be two logs with one identity.
func TestTrillianRefusesEmbeddedLog(t *testing.T) {
	data := t.TempDir()
	s := start(t, testConfig(data)) // creates the keys and log.db
	s.stop(t)
	cfg := testConfig(data)
	cfg.Backend = backendTrillian
	cfg.Trillian = TrillianConfig{Addr: "127.0.0.1:1", TreeID: 7, MySQLDSN: "root@tcp(127.0.0.1:1)/x"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Run(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "holds an embedded log") {
		t.Fatalf("Run with the Trillian backend on an embedded log's data directory: %v", err)
	}
}

// TestTrillianWaitsAtStart starts on an unreachable Trillian: govlogd keeps
// retrying instead of exiting, until it is stopped.
func TestTrillianWaitsAtStart(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Backend = backendTrillian
	cfg.Trillian = TrillianConfig{Addr: "127.0.0.1:1", TreeID: 7, MySQLDSN: "root@tcp(127.0.0.1:1)/x?timeout=200ms"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := Run(ctx, cfg)
	if err == nil || time.Since(start) < 1500*time.Millisecond {
		t.Fatalf("Run on an unreachable Trillian returned after %v: %v; want it to wait until stopped", time.Since(start), err)
	}
}
