package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log/sqlite"
)

// backup copies the embedded log's database online, consistently, and
// checks the copy.
//
//	govlog backup --data DIR --out FILE [--no-check]
func backup(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("backup", "backup --data DIR --out FILE [--no-check]")
	data := f.String("data", "", "the govlogd data `directory` of "+dbFile+" (required); govlogd may be running")
	out := f.String("out", "", "the backup `file` to write; it must not exist (required)")
	noCheck := f.Bool("no-check", false, "do not check the copy (govlog fsck) with DIR/"+keys.VerifierFile)
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	if *data == "" || *out == "" {
		return f.usagef("--data and --out are required")
	}
	src := filepath.Join(*data, dbFile)
	if err := sqlite.Backup(ctx, src, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", src, *out)
	if *noCheck {
		return nil
	}
	v, err := readVerifier(*data)
	if err != nil {
		return err
	}
	if err := checkDB(ctx, *out, v, stdout); err != nil {
		return fmt.Errorf("the backup %s is not sound: %w", *out, err)
	}
	fmt.Fprintf(stdout, "the backup holds no keys: keep %s, %s and %s of %s with it\n",
		keys.SignerFile, keys.VerifierFile, keys.ArtifactFile, *data)
	return nil
}
