package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The fixed statements. The schema is in schema/*.sql.
const (
	sqlLatestCheckpoint = `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`
	sqlLatestSize       = `SELECT max(size) FROM checkpoints`
	sqlCovering         = `SELECT size, note FROM checkpoints WHERE size > ? AND size <= ? ORDER BY size LIMIT 1`
	sqlTile             = `SELECT hashes FROM tiles WHERE level = ? AND idx = ?`
	sqlEntries          = `SELECT idx, leaf FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx`
	sqlLookup           = `SELECT i.idx, e.leaf FROM ids AS i JOIN entries AS e ON e.idx = i.idx WHERE i.run = ? AND i.kind = ? AND i.id = ?`
	sqlLookupHash       = `SELECT idx FROM leaf_hashes WHERE run = ? AND prefix = ? AND idx < ? ORDER BY idx`
	sqlCountEntries     = `SELECT count(*) FROM entries`
	sqlEntryBounds      = `SELECT (SELECT min(idx) FROM entries), (SELECT max(idx) FROM entries)`
	sqlCountTiles       = `SELECT count(*) FROM tiles`
	sqlPutTile          = `INSERT INTO tiles (level, idx, hashes) VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`
	sqlInsertCheckpoint = `INSERT INTO checkpoints (size, note) VALUES (?, ?)`
	sqlSetIndexed       = `UPDATE search_indexed SET size = ? WHERE id = 1`
	sqlIndexedSize      = `SELECT size FROM search_indexed WHERE id = 1`
	sqlProbe            = `INSERT INTO probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`
)

// readStmts are prepared on the read pool; database/sql prepares each on
// every connection that runs it.
type readStmts struct {
	covering, tile, entries, lookup, lookupHash *sql.Stmt
}

func (s *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, map[**sql.Stmt]string{
		&s.covering:   sqlCovering,
		&s.tile:       sqlTile,
		&s.entries:    sqlEntries,
		&s.lookup:     sqlLookup,
		&s.lookupHash: sqlLookupHash,
	})
}

func (s *readStmts) close() error {
	return closeAll(s.covering, s.tile, s.entries, s.lookup, s.lookupHash)
}

// writeStmts are prepared on the writer connection and used inside its
// transactions (sql.Tx.StmtContext reuses them on the same connection).
// The batch's lookups and row inserts come in a few shapes (see shapes),
// kept prepared by the connection's statement cache.
type writeStmts struct {
	putTile, insertCheckpoint *sql.Stmt
}

func (s *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, map[**sql.Stmt]string{
		&s.putTile:          sqlPutTile,
		&s.insertCheckpoint: sqlInsertCheckpoint,
	})
}

func (s *writeStmts) close() error {
	return closeAll(s.putTile, s.insertCheckpoint)
}

func prepareAll(ctx context.Context, db *sql.DB, stmts map[**sql.Stmt]string) error {
	for dst, query := range stmts {
		st, err := db.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("failed to prepare %q: %w", query, err)
		}
		*dst = st
	}
	return nil
}

func closeAll(stmts ...*sql.Stmt) error {
	var errs []error
	for _, st := range stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}
