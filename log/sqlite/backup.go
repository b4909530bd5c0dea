package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Backup copies the log database at src to a new file dst with SQLite's
// online backup API, while a govlogd may be appending to src. The copy is
// one consistent snapshot: it is taken in a single backup step, inside one
// read transaction, which in WAL mode never blocks the writer. dst must not
// exist; it is written, fsynced and closed before Backup returns, and
// removed again on failure. The copy is in rollback-journal mode, one
// self-contained file; Open switches it back to WAL.
func Backup(ctx context.Context, src, dst string) (err error) {
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return fmt.Errorf("failed to back up %s: %w", src, err)
	}
	dstAbs, err := filepath.Abs(dst)
	if err != nil {
		return fmt.Errorf("failed to back up to %s: %w", dst, err)
	}
	if _, err := os.Stat(srcAbs); err != nil {
		return fmt.Errorf("failed to back up %s: %w", src, err)
	}
	if _, err := os.Lstat(dstAbs); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to back up to %s: it already exists", dst)
	}
	// Claim dst, so that two backups cannot write one file.
	f, err := os.OpenFile(dstAbs, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("failed to back up to %s: %w", dst, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(dstAbs)
			os.Remove(dstAbs + "-journal")
		}
	}()

	srcDB, err := sql.Open("sqlite3", dsn(srcAbs, url.Values{
		"mode":          {"ro"},
		"_busy_timeout": {"5000"},
	}))
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", src, err)
	}
	defer srcDB.Close()
	dstDB, err := sql.Open("sqlite3", dsn(dstAbs, url.Values{
		"_synchronous": {"FULL"},
	}))
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", dst, err)
	}
	defer dstDB.Close()

	srcConn, err := srcDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", src, err)
	}
	defer srcConn.Close()
	dstConn, err := dstDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", dst, err)
	}
	defer dstConn.Close()

	err = dstConn.Raw(func(d any) error {
		return srcConn.Raw(func(s any) error {
			dc, ok1 := d.(*sqlite3.SQLiteConn)
			sc, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a go-sqlite3 connection")
			}
			bk, err := dc.Backup("main", sc, "main")
			if err != nil {
				return err
			}
			// One step of all pages: a consistent snapshot of src.
			done, err := bk.Step(-1)
			if ferr := bk.Finish(); err == nil {
				err = ferr
			}
			if err == nil && !done {
				err = errors.New("the backup did not complete")
			}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("failed to back up %s to %s: %w", src, dst, err)
	}
	// One self-contained file: no -wal beside it.
	var mode string
	if err := dstConn.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode); err != nil {
		return fmt.Errorf("failed to set the journal mode of %s: %w", dst, err)
	}
	if err := dstConn.Close(); err != nil {
		return fmt.Errorf("failed to close %s: %w", dst, err)
	}
	if err := dstDB.Close(); err != nil {
		return fmt.Errorf("failed to close %s: %w", dst, err)
	}
	if err := syncFile(dstAbs); err != nil {
		return fmt.Errorf("failed to sync %s: %w", dst, err)
	}
	if err := syncFile(filepath.Dir(dstAbs)); err != nil {
		return fmt.Errorf("failed to sync the directory of %s: %w", dst, err)
	}
	return nil
}

// syncFile fsyncs a file or directory.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
