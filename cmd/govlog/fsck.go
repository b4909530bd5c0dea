package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log/sqlite"
)

// dbFile is the name of the embedded log's database in a data directory,
// as govlogd names it.
const dbFile = "log.db"

// fsck checks a whole data directory of the embedded backend offline.
//
//	govlog fsck --data DIR [--db FILE]
func fsck(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("fsck", "fsck --data DIR [--db FILE]")
	data := f.String("data", "", "the govlogd data `directory`: "+dbFile+" and "+keys.VerifierFile+" (required)")
	db := f.String("db", "", "check this database `file` instead of DIR/"+dbFile+" (a backup), with DIR/"+keys.VerifierFile)
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	if *data == "" {
		return f.usagef("--data is required")
	}
	path := *db
	if path == "" {
		path = filepath.Join(*data, dbFile)
	}
	v, err := readVerifier(*data)
	if err != nil {
		return err
	}
	return checkDB(ctx, path, v, stdout)
}

// readVerifier reads the log's note verifier key from a data directory.
func readVerifier(dir string) (note.Verifier, error) {
	path := filepath.Join(dir, keys.VerifierFile)
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the log's verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("failed to parse the log's verifier key %s: %w", path, err)
	}
	return v, nil
}

// checkDB runs sqlite.Check on path and prints its summary.
func checkDB(ctx context.Context, path string, v note.Verifier, stdout io.Writer) error {
	start := time.Now()
	res, err := sqlite.Check(ctx, path, v, nil)
	if err != nil {
		return fmt.Errorf("check failed: %w", err)
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "ok: %s: origin %s, tree size %d, root %s; %d checkpoints and %d tiles verified in %v",
		path, v.Name(), res.Size, base64.StdEncoding.EncodeToString(res.Root[:]), res.Checkpoints, res.Tiles, took.Round(time.Millisecond))
	if s := took.Seconds(); s > 0 && res.Size > 0 {
		fmt.Fprintf(stdout, " (%.0f entries/s)", float64(res.Size)/s)
	}
	fmt.Fprintln(stdout)
	return nil
}
