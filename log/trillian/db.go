package trillian

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/govlog/govlog/log"
)

// schemaFS holds the migrations of govlog's own tables: schema/NNNN_*.sql,
// applied in order, each once per database.
//
//go:embed schema/*.sql
var schemaFS embed.FS

// schemaLock is the MySQL named lock (GET_LOCK) that serialises migrations
// of replicas starting at once.
const schemaLock = "govlog_schema_migration"

// migration is one embedded schema file.
type migration struct {
	version int
	name    string
	stmts   []string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(schemaFS, "schema/*.sql")
	if err != nil {
		return nil, fmt.Errorf("failed to list the schema files: %w", err)
	}
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("failed to read schema file %s: its name does not start with a version number", base)
		}
		text, err := schemaFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("failed to read schema file %s: %w", base, err)
		}
		out = append(out, migration{version: version, name: base, stmts: splitSQL(string(text))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("failed to read the schema: migration %d is missing", i+1)
		}
	}
	return out, nil
}

// splitSQL splits a schema file into statements: each ends with ";" at the
// end of a line; "--" comment lines are dropped.
func splitSQL(text string) []string {
	var (
		stmts []string
		cur   strings.Builder
	)
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// migrate brings govlog's tables to the latest schema version. Replicas
// starting at once take turns through a named lock; each migration's
// statements are idempotent, so one interrupted half-way is simply
// applied again.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return unavailable("connect to the database", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 30)", schemaLock).Scan(&got); err != nil {
		return unavailable("take the schema migration lock", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("%w: failed to take the schema migration lock %q within 30s", log.ErrUnavailable, schemaLock)
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", schemaLock); rerr != nil && err == nil {
			err = unavailable("release the schema migration lock", rerr)
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS govlog_schema (
		version INT NOT NULL,
		PRIMARY KEY (version)
	) ENGINE=InnoDB`); err != nil {
		return unavailable("create the schema version table", err)
	}
	var current int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM govlog_schema").Scan(&current); err != nil {
		return unavailable("read the schema version", err)
	}
	if current > len(ms) {
		return fmt.Errorf("failed to open govlog's tables: their schema version %d is newer than this program's %d", current, len(ms))
	}
	for _, m := range ms[current:] {
		for _, stmt := range m.stmts {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return unavailable(fmt.Sprintf("apply %s", m.name), err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO govlog_schema (version) VALUES (?)", m.version); err != nil {
			return unavailable(fmt.Sprintf("record schema version %d", m.version), err)
		}
	}
	return nil
}

// The statements of govlog's tables. Every one is scoped to one tree.
const (
	sqlInsertTree = "INSERT IGNORE INTO govlog_trees (tree_id) VALUES (?)"
	sqlLockTree   = "SELECT tree_id FROM govlog_trees WHERE tree_id = ? FOR UPDATE"

	sqlLatest = `SELECT size, root_hash, note FROM govlog_checkpoints
		WHERE tree_id = ? ORDER BY size DESC LIMIT 1`
	sqlCovering = `SELECT size, root_hash, note FROM govlog_checkpoints
		WHERE tree_id = ? AND size > ? ORDER BY size LIMIT 1`
	sqlInsertCheckpoint = `INSERT INTO govlog_checkpoints (tree_id, size, root_hash, note)
		VALUES (?, ?, ?, ?)`

	sqlLookup = `SELECT leaf, leaf_hash, leaf_index FROM govlog_ids
		WHERE tree_id = ? AND kind = ? AND id = ?`
	sqlSetIndex = `UPDATE govlog_ids SET leaf_index = ?
		WHERE tree_id = ? AND kind = ? AND id = ? AND leaf_index IS NULL`
)

// MySQL error numbers that mean "another transaction got there first":
// retrying the whole transaction is the cure.
const (
	errDupEntry        = 1062
	errLockWaitTimeout = 1205
	errDeadlock        = 1213
)

// isRace reports whether err is a duplicate key, deadlock or lock wait
// timeout: a racing replica, not a broken database.
func isRace(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case errDupEntry, errLockWaitTimeout, errDeadlock:
		return true
	}
	return false
}

// placeholders returns "(?, ?, …)" groups for a multi-row statement: n
// groups of width question marks.
func placeholders(n, width int) string {
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(group+", ", n), ", ")
}
