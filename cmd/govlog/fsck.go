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

// checkReport is what fsck --json prints, and backup --json of its check.
type checkReport struct {
	OK               bool    `json:"ok"`
	Path             string  `json:"path"`
	Error            string  `json:"error,omitempty"`
	Origin           string  `json:"origin,omitempty"`
	TreeSize         uint64  `json:"tree_size"`
	RootHash         string  `json:"root_hash,omitempty"`
	Checkpoints      int     `json:"checkpoints"`
	Tiles            int     `json:"tiles"`
	Seconds          float64 `json:"seconds"`
	EntriesPerSecond float64 `json:"entries_per_second,omitempty"`
}

// fsck checks a whole data directory of the embedded backend offline.
func fsck(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("fsck", "[flags]",
		"Check a data directory of the embedded log offline, with its log.vkey: every checkpoint signature, "+
			"every entry, hash tile and index; govlogd may be running (the check reads one consistent snapshot).")
	data := f.String("data", "", "the govlogd data `directory`: "+dbFile+" and "+keys.VerifierFile+" (required)")
	db := f.String("db", "", "check this database `file` instead of DIR/"+dbFile+" (a backup), with DIR/"+keys.VerifierFile)
	f.Group("Output")
	asJSON := f.Bool("json", false, "print a JSON report instead of text")
	quiet := f.Bool("quiet", false, "no progress on the terminal")
	f.Example("govlog fsck --data ./data", "the data directory's log.db")
	f.Example("govlog fsck --data ./data --db govlog-backup.db --json", "a backup, with the directory's log.vkey, a JSON report")
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
	rep, err := checkDB(ctx, path, v, newProgress(*quiet, "entries"))
	return printCheck(stdout, rep, err, *asJSON)
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

// checkDB runs sqlite.Check on path and returns its report.
func checkDB(ctx context.Context, path string, v note.Verifier, bar *progress) (*checkReport, error) {
	start := time.Now()
	res, err := sqlite.Check(ctx, path, v, bar.update)
	bar.finish()
	rep := &checkReport{Path: path, Origin: v.Name(), Seconds: time.Since(start).Seconds()}
	if err != nil {
		rep.Error = err.Error()
		return rep, fmt.Errorf("check failed: %w", err)
	}
	rep.OK, rep.TreeSize, rep.RootHash = true, res.Size, base64.StdEncoding.EncodeToString(res.Root[:])
	rep.Checkpoints, rep.Tiles = res.Checkpoints, res.Tiles
	if rep.Seconds > 0 && res.Size > 0 {
		rep.EntriesPerSecond = float64(res.Size) / rep.Seconds
	}
	return rep, nil
}

// printCheck prints the outcome of a check, and returns its error.
func printCheck(stdout io.Writer, rep *checkReport, err error, asJSON bool) error {
	if asJSON {
		if jerr := printJSON(stdout, rep); jerr != nil {
			return jerr
		}
		return err
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %s: origin %s, tree size %d, root %s; %d checkpoints and %d tiles verified in %v",
		field(rep.Path), field(rep.Origin), rep.TreeSize, rep.RootHash, rep.Checkpoints, rep.Tiles,
		time.Duration(rep.Seconds*float64(time.Second)).Round(time.Millisecond))
	if rep.EntriesPerSecond > 0 {
		fmt.Fprintf(stdout, " (%.0f entries/s)", rep.EntriesPerSecond)
	}
	fmt.Fprintln(stdout)
	return nil
}
