package distributor

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"math"
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
	sqlInsert = `INSERT INTO cosigned (size, hash, note, stored_at) VALUES (?, ?, ?, ?)`
	sqlAfter  = `SELECT size, note FROM cosigned WHERE size > ? ORDER BY size LIMIT ?`
	sqlNewest = `SELECT size, note FROM cosigned ORDER BY size DESC LIMIT ?`
	sqlCount  = `SELECT count(*) FROM cosigned`
)

// store holds the checkpoints that satisfied the policy, in SQLite (WAL,
// synchronous=FULL: an insert is durable when it returns).
type store struct {
	db *sql.DB
}

func openStore(ctx context.Context, path string) (*store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open the cosigned checkpoint store %s: %w", path, err)
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("failed to open the cosigned checkpoint store %s: its directory does not exist", path)
	}
	if err := sqlitemigrate.Create(abs); err != nil {
		return nil, fmt.Errorf("failed to open the cosigned checkpoint store %s: %w", path, err)
	}
	params := url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_busy_timeout": {"10000"},
		"_txlock":       {"immediate"},
	}
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath()+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("failed to open the cosigned checkpoint store %s: %w", path, err)
	}
	s := &store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the cosigned checkpoint store %s: %w", path, err)
	}
	return s, nil
}

// migrate checks the journal mode and brings the schema to the newest
// version.
func (s *store) migrate(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return sqlitemigrate.Apply(ctx, s.db, schemaFS, nil)
}

// add stores a checkpoint whose note satisfied the policy.
func (s *store) add(ctx context.Context, cp log.Checkpoint) error {
	if cp.Size == 0 || cp.Size > math.MaxInt64 {
		return fmt.Errorf("failed to store the cosigned checkpoint: size %d out of range", cp.Size)
	}
	if _, err := s.db.ExecContext(ctx, sqlInsert, int64(cp.Size), cp.Hash[:], cp.Note, time.Now().Unix()); err != nil {
		return fmt.Errorf("failed to store the cosigned checkpoint of size %d: %w", cp.Size, err)
	}
	return nil
}

// after returns up to limit stored checkpoints of size greater than size,
// smallest first.
func (s *store) after(ctx context.Context, size uint64, limit int) ([]log.Checkpoint, error) {
	if size > math.MaxInt64 {
		return nil, nil
	}
	return s.query(ctx, sqlAfter, int64(size), limit)
}

// newest returns up to limit of the largest stored checkpoints, largest
// first.
func (s *store) newest(ctx context.Context, limit int) ([]log.Checkpoint, error) {
	return s.query(ctx, sqlNewest, limit)
}

func (s *store) count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, sqlCount).Scan(&n); err != nil {
		return 0, fmt.Errorf("failed to count the cosigned checkpoints: %w", err)
	}
	return n, nil
}

func (s *store) query(ctx context.Context, q string, args ...any) ([]log.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to read the cosigned checkpoints: %w", err)
	}
	defer rows.Close()
	var out []log.Checkpoint
	for rows.Next() {
		var (
			size int64
			note []byte
		)
		if err := rows.Scan(&size, &note); err != nil {
			return nil, fmt.Errorf("failed to read the cosigned checkpoints: %w", err)
		}
		cp, _, err := log.ParseCheckpoint(note, log.CheckpointRules{})
		if err != nil {
			return nil, fmt.Errorf("failed to read the cosigned checkpoint of size %d: %w", size, err)
		}
		if cp.Size != uint64(size) {
			return nil, fmt.Errorf("failed to read the cosigned checkpoints: the row of size %d holds a checkpoint of size %d", size, cp.Size)
		}
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the cosigned checkpoints: %w", err)
	}
	return out, nil
}

func (s *store) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("failed to close the cosigned checkpoint store: %w", err)
	}
	return nil
}
