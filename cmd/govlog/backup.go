package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log/sqlite"
)

// backupReport is what backup --json prints.
type backupReport struct {
	OK     bool         `json:"ok"`
	Source string       `json:"source"`
	Backup string       `json:"backup"`
	Check  *checkReport `json:"check,omitempty"`
	// Keys names the key files to keep with the backup, which holds none.
	Keys []string `json:"keys_to_keep"`
}

// backup copies the embedded log's database online, consistently, and
// checks the copy. It only reads the data directory: govlogd may be
// running.
func backup(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("backup", "[flags]",
		"Copy the embedded log's database online (govlogd may be running) into one self-contained file, "+
			"then check the copy as govlog fsck does.")
	data := f.String("data", "", "the govlogd data `directory` of "+dbFile+" (required)")
	out := f.String("out", "", "the backup `file` to write; it must not exist (required)")
	noCheck := f.Bool("no-check", false, "do not check the copy (govlog fsck) with DIR/"+keys.VerifierFile)
	f.Group("Output")
	asJSON := f.Bool("json", false, "print a JSON report instead of text")
	quiet := f.Bool("quiet", false, "no progress on the terminal")
	f.Example("govlog backup --data ./data --out govlog-$(date +%F).db", "a dated copy of ./data/log.db, checked")
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
	rep := backupReport{OK: true, Source: src, Backup: *out}
	for _, k := range []string{keys.SignerFile, keys.VerifierFile, keys.ArtifactFile} {
		rep.Keys = append(rep.Keys, filepath.Join(*data, k))
	}
	var checkErr error
	if !*noCheck {
		v, err := readVerifier(*data)
		if err != nil {
			return err
		}
		rep.Check, checkErr = checkDB(ctx, *out, v, newProgress(*quiet, "entries"))
		if checkErr != nil {
			rep.OK = false
			checkErr = fmt.Errorf("the backup %s is not sound: %w", *out, checkErr)
		}
	}
	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
		return checkErr
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", field(src), field(*out))
	if rep.Check != nil {
		if err := printCheck(stdout, rep.Check, checkErr, false); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "the backup holds no keys: keep %s, %s and %s of %s with it\n",
		keys.SignerFile, keys.VerifierFile, keys.ArtifactFile, field(*data))
	return nil
}
