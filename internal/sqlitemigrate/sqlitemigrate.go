// Package sqlitemigrate creates the files of govlog's SQLite databases and
// applies their versioned schema migrations: files schema/NNNN_name.sql of
// an embedded file system, version N recorded in PRAGMA user_version, one
// transaction per migration, so a crash leaves the file at the previous
// version, whose migration then runs again.
package sqlitemigrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Create creates the database file path, empty, with mode 0600 when it
// does not exist; an existing file is left as it is. Call it before SQLite
// opens path: SQLite would create the file with mode 0644 (less the
// umask), and it gives the -wal and -shm files it creates later the mode
// of the database file, so all three are 0600 this way, whatever the
// umask, without changing the process's umask.
func Create(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to create the database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to create the database file: %w", err)
	}
	return nil
}

// Apply brings db's schema to the newest version found in schema (files
// matching schema/*.sql, numbered from 0001 without gaps) and calls applied,
// when set, after each migration it committed. A database newer than the
// migrations is refused.
func Apply(ctx context.Context, db *sql.DB, schema fs.FS, applied func(version int)) error {
	names, err := fs.Glob(schema, "schema/*.sql")
	if err != nil {
		return fmt.Errorf("failed to list migrations: %w", err)
	}
	sort.Strings(names)
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("failed to read the schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("failed to migrate: the schema version %d is newer than this program's %d", version, len(names))
	}
	for v := version + 1; v <= len(names); v++ {
		name := names[v-1]
		if n, _, _ := strings.Cut(path.Base(name), "_"); n != fmt.Sprintf("%04d", v) {
			return fmt.Errorf("failed to migrate: migration %s is not version %d", name, v)
		}
		script, err := fs.ReadFile(schema, name)
		if err != nil {
			return fmt.Errorf("failed to read migration %s: %w", name, err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("failed to begin migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("failed to apply migration %s: %w", name, err)
		}
		// PRAGMA user_version is transactional: it commits with the schema.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("failed to set the schema version %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("failed to commit migration %d: %w", v, err)
		}
		if applied != nil {
			applied(v)
		}
	}
	return nil
}
