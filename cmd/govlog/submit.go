package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
)

// submit logs a decision (or execution report) and saves its receipt.
func submit(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	f := newFlags("submit", "submit --url URL [--out PREFIX] [--log-key VKEY] [--execution] [FILE|-]")
	serverURL := f.String("url", "", "the govlog server's base `URL`, e.g. http://127.0.0.1:8080 (required)")
	out := f.String("out", "", "write `PREFIX`.receipt.json and PREFIX.tlog-proof (default: the id, in the current directory)")
	keyArg := f.String("log-key", "", "verify the receipt with this note verifier `key` (a file or the key text) before saving it")
	execution := f.Bool("execution", false, "the input is an execution report, not a decision")
	tokenFile := f.String("token-file", "", "send the bearer token in this `file` (default: $GOVLOG_TOKEN, if set)")
	timeout := f.Duration("timeout", 30*time.Second, "give up after this long, retries included")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if *serverURL == "" {
		return f.usagef("--url is required")
	}
	if f.NArg() > 1 {
		return f.usagef("want at most one input file, got %d", f.NArg())
	}
	var opts []client.Option
	if *keyArg != "" {
		key, err := readVerifierKey(*keyArg)
		if err != nil {
			return f.usagef("--log-key: %v", err)
		}
		opts = append(opts, client.WithLogKey(key))
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	if token != "" {
		opts = append(opts, client.WithBearerToken(token))
	}
	c, err := client.New(*serverURL, opts...)
	if err != nil {
		return f.usagef("--url: %v", err)
	}
	input := "-"
	if f.NArg() == 1 {
		input = f.Arg(0)
	}
	body, err := readInput(input, stdin, log.MaxSubmissionBytes)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	kind := log.KindDecision
	submitFunc := c.Submit
	if *execution {
		kind, submitFunc = log.KindExecution, c.SubmitExecution
	}
	r, created, err := submitFunc(ctx, body)
	if err != nil {
		return err
	}

	prefix := *out
	if prefix == "" {
		prefix = r.ID
	}
	receiptJSON, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode the receipt: %w", err)
	}
	// An artifact is a bearer credential: only its owner may read it.
	mode := os.FileMode(0o644)
	if r.Artifact != "" {
		mode = 0o600
	}
	if err := writeFile(prefix+".receipt.json", append(receiptJSON, '\n'), mode); err != nil {
		return err
	}
	if err := writeFile(prefix+".tlog-proof", []byte(r.TLogProof), 0o644); err != nil {
		return err
	}

	state := "logged"
	if !created {
		state = "already logged (this is the original receipt)"
	}
	fmt.Fprintf(stdout, "%s %s: %s at index %d\n", kind, r.ID, state, r.Index)
	if e, err := log.ParseEntry(r.Entry); err == nil && e.Decision != nil {
		fmt.Fprintf(stdout, "outcome: %s\n", e.Decision.Outcome)
	}
	if *keyArg != "" {
		fmt.Fprintln(stdout, "receipt: verified with the log key")
	}
	if r.Artifact != "" {
		fmt.Fprintf(stdout, "artifact: in %s.receipt.json\n", prefix)
	}
	fmt.Fprintf(stdout, "wrote %s.receipt.json and %s.tlog-proof\n", prefix, prefix)
	return nil
}

// writeFile replaces name with a file of data and mode, through a
// temporary file renamed into place: a reader never sees a partial
// receipt, nor an artifact under a looser mode.
func writeFile(name string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	return nil
}

// readToken returns the bearer token in file, or $GOVLOG_TOKEN when file is
// "" ("" when neither is set).
func readToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("GOVLOG_TOKEN"), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("failed to read the token: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
