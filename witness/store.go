package witness

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	// The SQLite driver, registered as "sqlite3".
	_ "github.com/mattn/go-sqlite3"

	"github.com/govlog/govlog/internal/sqlitemigrate"
	"github.com/govlog/govlog/log"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// The statements. The schema is in schema/*.sql.
const (
	sqlInit = `INSERT INTO logs (origin, size, hash, checkpoint, updated_at) VALUES (?, 0, ?, NULL, ?)
		ON CONFLICT (origin) DO NOTHING`
	sqlGet  = `SELECT size, hash, checkpoint FROM logs WHERE origin = ?`
	sqlSwap = `UPDATE logs SET size = ?, hash = ?, checkpoint = ?, updated_at = ?
		WHERE origin = ? AND size = ? AND hash = ?`
)

// busyTimeout is how long a statement waits for another connection's write
// lock before it fails.
const busyTimeout = 10 * time.Second

// store is the witness state in SQLite.
type store struct {
	db *sql.DB
}

// state is one log's row.
type state struct {
	size       uint64
	hash       [32]byte
	checkpoint []byte
}

// openStore opens the database at path (WAL, synchronous=FULL: a returned
// write is durable), migrates its schema and adds a row for each origin that
// has none.
func openStore(ctx context.Context, path string, origins []string) (*store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open the witness database %s: %w", path, err)
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("failed to open the witness database %s: its directory does not exist", path)
	}
	if err := sqlitemigrate.Create(abs); err != nil {
		return nil, fmt.Errorf("failed to open the witness database %s: %w", path, err)
	}
	params := url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_busy_timeout": {fmt.Sprint(busyTimeout.Milliseconds())},
		"_txlock":       {"immediate"},
	}
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + params.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to open the witness database %s: %w", path, err)
	}
	s := &store{db: db}
	if err := s.init(ctx, origins); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the witness database %s: %w", path, err)
	}
	return s, nil
}

func (s *store) init(ctx context.Context, origins []string) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	now := time.Now().Unix()
	for _, origin := range origins {
		if _, err := s.db.ExecContext(ctx, sqlInit, origin, log.EmptyRoot[:], now); err != nil {
			return fmt.Errorf("failed to add log %q: %w", origin, err)
		}
	}
	return nil
}

// migrate brings the schema to the newest version.
func (s *store) migrate(ctx context.Context) error {
	return sqlitemigrate.Apply(ctx, s.db, schemaFS, nil)
}

// get reads the state of a log.
func (s *store) get(ctx context.Context, origin string) (state, error) {
	var (
		st   state
		size int64
		hash []byte
	)
	err := s.db.QueryRowContext(ctx, sqlGet, origin).Scan(&size, &hash, &st.checkpoint)
	if errors.Is(err, sql.ErrNoRows) {
		return state{}, fmt.Errorf("%w: no state for %q", ErrUnavailable, origin)
	}
	if err != nil {
		return state{}, fmt.Errorf("%w: failed to read the state of %s: %w", ErrUnavailable, origin, err)
	}
	if size < 0 || len(hash) != 32 {
		return state{}, fmt.Errorf("%w: the stored state of %s is corrupt", ErrUnavailable, origin)
	}
	st.size = uint64(size)
	st.hash = [32]byte(hash)
	return st, nil
}

// swap stores the new checkpoint of a log if its state is still prev, and
// reports whether it did. The write is durable when swap returns true.
func (s *store) swap(ctx context.Context, origin string, prev state, size uint64, hash [32]byte, stored []byte) (bool, error) {
	res, err := s.db.ExecContext(ctx, sqlSwap, int64(size), hash[:], stored, time.Now().Unix(), origin, int64(prev.size), prev.hash[:])
	if err != nil {
		return false, fmt.Errorf("%w: failed to store the checkpoint of %s: %w", ErrUnavailable, origin, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%w: failed to store the checkpoint of %s: %w", ErrUnavailable, origin, err)
	}
	return n == 1, nil
}

func (s *store) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("failed to close the witness database: %w", err)
	}
	return nil
}
