package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
	"github.com/govlog/govlog/log/trillian"
)

// The storage backends govlogd serves a log from (--backend).
const (
	backendSQLite   = "sqlite"
	backendTrillian = "trillian"
)

// TrillianConfig configures the Trillian backend (--backend trillian). The
// log then lives in a Trillian log tree and govlog's tables in a
// MySQL/MariaDB database; the data directory holds only the keys.
type TrillianConfig struct {
	// Addr is the gRPC address (host:port) of trillian_log_server.
	// Required.
	Addr string
	// TreeID is the Trillian log tree. Required.
	TreeID int64
	// MySQLDSN is the go-sql-driver/mysql DSN of the database for govlog's
	// own tables, normally Trillian's, e.g.
	// "user:pw@tcp(127.0.0.1:3306)/trillian". Required.
	MySQLDSN string
}

// addBackendFlags registers the flags that choose and configure the
// storage backend.
func addBackendFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.Backend, "backend", backendSQLite, "log storage: sqlite (embedded, in --data) or trillian (a Trillian log tree; --data then holds only the keys)")
	fs.StringVar(&cfg.Trillian.Addr, "trillian-addr", "", "gRPC `host:port` of trillian_log_server (with --backend trillian)")
	fs.Int64Var(&cfg.Trillian.TreeID, "trillian-tree-id", 0, "Trillian log tree `id` (with --backend trillian; create one with govlog trillian-createtree)")
	fs.StringVar(&cfg.Trillian.MySQLDSN, "trillian-mysql-dsn", "", "MySQL/MariaDB `DSN` of the database for govlog's own tables, normally Trillian's, e.g. 'user@tcp(127.0.0.1:3306)/trillian' (with --backend trillian)")
}

// validateBackend checks the backend settings.
func (cfg *Config) validateBackend() error {
	switch cfg.Backend {
	case "", backendSQLite:
		cfg.Backend = backendSQLite
		if cfg.Trillian != (TrillianConfig{}) {
			return errors.New("--trillian-addr, --trillian-tree-id and --trillian-mysql-dsn need --backend trillian")
		}
	case backendTrillian:
		if cfg.Trillian.Addr == "" || cfg.Trillian.TreeID <= 0 || cfg.Trillian.MySQLDSN == "" {
			return errors.New("--backend trillian needs --trillian-addr, --trillian-tree-id (> 0) and --trillian-mysql-dsn")
		}
	default:
		return fmt.Errorf("--backend must be %s or %s, not %q", backendSQLite, backendTrillian, cfg.Backend)
	}
	return nil
}

// linger is the sequencer's log.Config.Linger for the backend: the
// Trillian backend's; none for the embedded one, where a 2 ms linger saved
// a sixth of the commits (about 1% of the CPU per decision) and made the
// open loop's p99 1.5 times as long (docs/performance-log.md, "Group sizes on
// the embedded log").
func linger(cfg *Config) time.Duration {
	if cfg.Backend == backendTrillian {
		return trillian.Linger
	}
	return 0
}

// Startup waits for an unreachable Trillian or database: it retries Open
// with this backoff.
const (
	openRetryMin = 500 * time.Millisecond
	openRetryMax = 5 * time.Second
)

// openBackend opens the log's storage. The Trillian backend waits, retrying,
// while Trillian or the database is unreachable (until ctx is done); any
// other failure (no such tree, a fork) is final.
func openBackend(ctx context.Context, cfg *Config, logger *slog.Logger) (log.Backend, error) {
	if cfg.Backend != backendTrillian {
		b, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DBFile), sqlite.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("failed to open the log database: %w", err)
		}
		return b, nil
	}
	// A log's key is its identity: the keys of an embedded log must not
	// start a second log on Trillian.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, DBFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s holds an embedded log (%s): its keys belong to that log; "+
			"give the Trillian log a data directory of its own", cfg.DataDir, DBFile)
	}
	tcfg := trillian.Config{
		Addr:   cfg.Trillian.Addr,
		TreeID: cfg.Trillian.TreeID,
		DSN:    cfg.Trillian.MySQLDSN,
		Logger: logger,
	}
	delay := openRetryMin
	for {
		b, err := trillian.Open(ctx, tcfg)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, log.ErrUnavailable) || ctx.Err() != nil {
			return nil, fmt.Errorf("failed to open Trillian tree %d at %s: %w", cfg.Trillian.TreeID, cfg.Trillian.Addr, err)
		}
		logger.Warn("Trillian or its database is unreachable; retrying", "addr", cfg.Trillian.Addr, "tree", cfg.Trillian.TreeID, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("failed to open Trillian tree %d at %s: %w", cfg.Trillian.TreeID, cfg.Trillian.Addr, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, openRetryMax)
	}
}
