package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
)

// submitReport is what submit --json prints.
type submitReport struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Index   uint64 `json:"index"`
	Created bool   `json:"created"`
	Outcome string `json:"outcome,omitempty"`
	// Verified is true when the receipt was verified with --log-key.
	Verified    bool   `json:"verified"`
	Receipt     string `json:"receipt_file"`
	TLogProof   string `json:"tlog_proof_file"`
	HasArtifact bool   `json:"artifact"`
}

// submit logs a decision (or execution report) and saves its receipt.
func submit(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	f := newFlags("submit", "[flags] [FILE|-]",
		"Submit a decision (or, with --execution, an execution report) to a govlog server and save its receipt "+
			"as ID.receipt.json and ID.tlog-proof; the input is FILE, or stdin without one.")
	srv := addServerFlags(f)
	timeout := f.Duration("timeout", 30*time.Second, "give up after this long, retries included")
	f.Group("Input and output")
	execution := f.Bool("execution", false, "the input is an execution report, not a decision")
	out := f.String("out", "", "write `PREFIX`.receipt.json and PREFIX.tlog-proof (default: the id, in the current directory)")
	keyArg := f.String("log-key", "", "verify the receipt with this note verifier `key` (a file or the key text) before saving it")
	asJSON := f.Bool("json", false, "print a JSON report instead of text")
	quiet := f.Bool("quiet", false, "print nothing while waiting for the server")
	f.Example("govlog submit --url http://127.0.0.1:8080 decision.json", "log decision.json and save its receipt")
	f.Example("govlog submit --log-key data/log.vkey --execution report.json --json", "with $GOVLOG_URL set: an execution report, its receipt verified, a JSON report")
	if err := srv.parse(f, args, stdout); err != nil {
		return err
	}
	if f.NArg() > 1 {
		return f.usagef("want at most one input file, got %d", f.NArg())
	}
	var opts []client.Option
	if !*quiet {
		if w := terminal(); w != nil {
			opts = append(opts, client.WithLogger(retryLogger(w, "govlog submit")))
		}
	}
	c, _, err := srv.newClient(f, *keyArg, opts...)
	if err != nil {
		return err
	}
	input := "-"
	if f.NArg() == 1 {
		input = f.Arg(0)
	}
	body, err := readInput(input, stdin, log.MaxSubmissionBytes)
	if err != nil {
		return err
	}
	kind := log.KindDecision
	submitFunc := c.Submit
	if *execution {
		kind, submitFunc = log.KindExecution, c.SubmitExecution
	}
	id, err := inputID(body, kind)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	stop := waiting(*quiet, "govlog submit: waiting for the server (a log in sync mode waits for its witnesses)")
	r, created, err := submitFunc(ctx, body)
	stop()
	if err != nil {
		return submitError(err, body, kind, *timeout)
	}
	if r.ID != id {
		return fmt.Errorf("the server answered with the receipt of %s, not of %s: not saved", field(r.ID), field(id))
	}

	prefix := *out
	if prefix == "" {
		prefix = id
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

	rep := submitReport{
		Kind: kind.String(), ID: id, Index: r.Index, Created: created, Verified: *keyArg != "",
		Receipt: prefix + ".receipt.json", TLogProof: prefix + ".tlog-proof", HasArtifact: r.Artifact != "",
	}
	if e, err := log.ParseEntry(r.Entry); err == nil && e.Decision != nil {
		rep.Outcome = e.Decision.Outcome
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "%s %s: %s at index %d\n", kind, field(id), loggedState(created), r.Index)
	if rep.Outcome != "" {
		fmt.Fprintf(stdout, "outcome: %s\n", field(rep.Outcome))
	}
	if rep.Verified {
		fmt.Fprintln(stdout, "receipt: verified with the log key")
	}
	if rep.HasArtifact {
		fmt.Fprintf(stdout, "artifact: in %s\n", field(rep.Receipt))
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", field(rep.Receipt), field(rep.TLogProof))
	return nil
}

// inputID returns the id of the decision or execution report to submit:
// the receipt must be this one's, and is saved under it.
func inputID(body []byte, kind log.Kind) (string, error) {
	var in struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return "", fmt.Errorf("the input is not a JSON %v: %w", kind, err)
	}
	id, ok := in.ID.(string)
	if !ok || id == "" {
		return "", fmt.Errorf("the input has no \"id\": a %v needs one (its idempotency key)", kind)
	}
	if strings.ContainsAny(id, "/\\") || id == "." || id == ".." {
		return "", fmt.Errorf("the input's id %s is not a valid id", field(id))
	}
	return id, nil
}

// submitError explains a failed submission: what the server said, and
// what to do about it.
func submitError(err error, body []byte, kind log.Kind, timeout time.Duration) error {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w; no answer within --timeout %v: the server may be overloaded or waiting for its witnesses, and resubmitting is safe", err, timeout)
		}
		return err
	}
	if ae.Status == 400 && kind == log.KindDecision && looksLikeExecution(body) {
		return fmt.Errorf("%w; the input looks like an execution report (it has \"decision_id\" and \"status\"): submit it with --execution", err)
	}
	return err
}

// looksLikeExecution reports whether a JSON object has the fields of an
// execution report.
func looksLikeExecution(body []byte) bool {
	var in map[string]json.RawMessage
	if json.Unmarshal(body, &in) != nil {
		return false
	}
	_, hasDecision := in["decision_id"]
	_, hasStatus := in["status"]
	return hasDecision && hasStatus
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
		return os.Getenv(envToken), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("failed to read the token: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
