package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"golang.org/x/mod/sumdb/note"
)

// verify checks a receipt offline and prints the entry it proves.
func verify(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	f := newFlags("verify", "[flags] RECEIPT.tlog-proof|RECEIPT.receipt.json|BUNDLE.json|EVIDENCE.json|DIR|-...",
		"Verify receipts offline with nothing but the log's verifier key: tlog-proof files, JSON receipts, "+
			"bundles (JSON arrays of receipts) and directories of them; - reads one from stdin. "+
			"An evidence bundle (govlog export) is verified whole and summarised per subject.")
	keyArg := f.String("log-key", "", "the log's note verifier `key`: a file holding it (such as log.vkey), or the key text (required)")
	policyArg := f.String("witness-policy", "", "a witness policy `file`: the checkpoint must also carry the cosignatures it requires")
	asJSON := f.Bool("json", false, "print a JSON report: one item per receipt, and the counts")
	againstURL := f.String("against", "", "also check that each receipt is still in today's log at this base `URL`: "+
		"its checkpoint must be consistent with the latest one the log serves (a consistency proof, verified here)")
	f.Example("govlog verify --log-key data/log.vkey deploy-42.tlog-proof", "one receipt: what it proves, one field a line")
	f.Example("govlog verify --log-key log.vkey --witness-policy policy.txt deploy-42.tlog-proof", "also the witness cosignatures and the time they give")
	f.Example("govlog verify --log-key log.vkey --against https://govlog.example receipts/", "old receipts: are they still in today's log?")
	f.Example("govlog verify --log-key log.vkey receipts/ today.json --json", "a directory and a bundle, a JSON report")
	f.Example("govlog verify --log-key log.vkey agent-7.evidence.json", "an evidence bundle: what was allowed, denied, executed, violated, revoked, per subject")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	switch {
	case *keyArg == "":
		return f.usagef("--log-key is required")
	case f.NArg() == 0:
		return f.usagef("want receipt files, bundles or directories, got 0 arguments")
	}
	key, err := readVerifierKey(*keyArg)
	if err != nil {
		return f.usagef("--log-key: %v", err)
	}
	var policy *verifier.Policy
	if *policyArg != "" {
		if policy, err = readPolicy(*policyArg); err != nil {
			return f.usagef("--witness-policy: %v", err)
		}
	}
	if f.NArg() == 1 && isEvidenceBundle(f.Arg(0)) {
		if *againstURL != "" {
			return f.usagef("--against checks receipts, not an evidence bundle")
		}
		return verifyBundle(f.Arg(0), key, policy, *asJSON, stdout)
	}
	var anc *against
	if *againstURL != "" {
		token, err := readToken("")
		if err != nil {
			return err
		}
		if anc, err = newAgainst(ctx, *againstURL, token, key); err != nil {
			return err
		}
	}
	if fi, err := os.Stat(f.Arg(0)); *asJSON || f.NArg() > 1 || (err == nil && fi.IsDir()) || isBundleFile(f.Arg(0)) {
		return verifyMany(f.Args(), key, policy, anc, *asJSON, stdin, stdout)
	}
	name := f.Arg(0)
	data, err := readInput(name, stdin, verifier.MaxReceiptBytes)
	if err != nil {
		return err
	}
	v, err := verifyReceipt(data, key)
	if err != nil {
		return fmt.Errorf("%s does NOT verify: %w", field(name), err)
	}
	if policy != nil {
		if err := policy.Check(v.Checkpoint.Note); err != nil {
			return fmt.Errorf("%s does NOT verify: %w", field(name), err)
		}
	}
	if anc != nil {
		if err := anc.check(v.Checkpoint); err != nil {
			return fmt.Errorf("%s %w", field(name), err)
		}
	}
	printVerified(stdout, v)
	if policy != nil {
		fmt.Fprintf(stdout, "witness_policy: satisfied (%s)\n", escapeText(strings.Join(cosigners(policy, v.Checkpoint.Note), ", ")))
		printCosignatures(stdout, policy.Cosignatures(v.Checkpoint.Note))
	}
	if anc != nil {
		fmt.Fprintf(stdout, "still_in_log: yes, its checkpoint is consistent with the latest of %s (size %d)\n", field(anc.url), anc.latest.Size)
	}
	return nil
}

// printCosignatures prints the time bounds the witnesses' cosignatures
// give a checkpoint: each witness saw it, and every entry it covers, by
// the time it cosigned.
func printCosignatures(w io.Writer, cs []verifier.Cosignature) {
	for _, c := range cs {
		fmt.Fprintf(w, "cosigned: by %s at %s\n", field(c.Witness), c.Time.Format(time.RFC3339))
	}
	if len(cs) > 0 {
		fmt.Fprintf(w, "in_log_by: %s (the earliest cosignature: the entry was in the log then, whatever logged_at says)\n", cs[0].Time.Format(time.RFC3339))
	}
}

// readPolicy reads and parses a witness policy file.
func readPolicy(path string) (*verifier.Policy, error) {
	if path == "-" {
		return nil, errors.New("the policy must be a file, not stdin")
	}
	text, err := readInput(path, nil, verifier.MaxPolicyBytes)
	if err != nil {
		return nil, err
	}
	return verifier.ParsePolicy(text)
}

// cosigners names the witnesses of the policy whose cosignatures are on
// the checkpoint.
func cosigners(p *verifier.Policy, checkpoint []byte) []string {
	var names []string
	for _, w := range p.Witnesses() {
		if n, err := note.Open(checkpoint, note.VerifierList(w.Key)); err == nil && len(n.Sigs) == 1 {
			names = append(names, w.Key.Name())
		}
	}
	slices.Sort(names)
	return names
}

// verifyReceipt verifies a receipt in either of its forms: JSON when it
// starts with "{", else a tlog-proof.
func verifyReceipt(data []byte, key note.Verifier) (*verifier.Verified, error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return verifier.ReceiptJSON(data, key)
	}
	return verifier.Receipt(data, key)
}

// readVerifierKey reads a note verifier key given as its text or as the
// name of a file holding it.
func readVerifierKey(arg string) (note.Verifier, error) {
	if v, err := note.NewVerifier(arg); err == nil {
		return v, nil
	}
	data, err := os.ReadFile(arg)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%q is neither a note verifier key nor a file", arg)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the key file: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s does not hold a note verifier key", arg)
	}
	return v, nil
}

// readInput reads a file, or stdin for "-", of at most limit bytes.
func readInput(name string, stdin io.Reader, limit int64) ([]byte, error) {
	r := stdin
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("failed to read the input: %w", err)
		}
		defer file.Close()
		r = file
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

// printVerified prints what a verified receipt proves, one "name: value"
// a line. Every value goes through field: a logged value that is not
// plain text is quoted, so that no value can print a line of its own.
func printVerified(w io.Writer, v *verifier.Verified) {
	e := v.Entry
	fmt.Fprintf(w, "OK: entry %d is in the log %s (checkpoint of size %d)\n", v.Index, field(v.Checkpoint.Origin), v.Checkpoint.Size)
	line := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "%s: %s\n", name, field(value))
		}
	}
	line("index", fmt.Sprint(v.Index))
	line("kind", e.Kind.String())
	line("id", e.ID)
	switch {
	case e.Decision != nil:
		d := e.Decision
		line("outcome", d.Outcome)
		line("subject", d.Subject)
		line("action", d.Action)
		line("resource", d.Resource)
		line("policy", d.PolicyID)
		line("decided_at", d.DecidedAt.Format(timeLayout))
		line("parent_id", d.ParentID)
	case e.Execution != nil:
		x := e.Execution
		line("decision_id", x.DecisionID)
		line("status", x.Status)
		line("at", x.At.Format(timeLayout))
		line("claim_id", x.ClaimID)
		line("artifact_digest", e.ArtifactDigest)
		line("violation", e.Violation)
	case e.Revocation != nil:
		r := e.Revocation
		line("decision_id", r.DecisionID)
		line("revoked_at", r.RevokedAt.Format(timeLayout))
		line("reason", r.Reason)
	case e.Key != nil:
		line("kid", e.Key.KID)
	}
	line("submitter", e.Submitter)
	line("logged_at", e.LoggedAt.Format(log.LoggedAtLayout))
	if !e.AuthorizedUntil.IsZero() {
		line("authorized_until", e.AuthorizedUntil.Format(log.AuthorizedUntilLayout))
	}
	line("leaf_hash", base64.StdEncoding.EncodeToString(v.LeafHash[:]))
	fmt.Fprintf(w, "checkpoint: %s %d %s\n", field(v.Checkpoint.Origin), v.Checkpoint.Size, base64.StdEncoding.EncodeToString(v.Checkpoint.Hash[:]))
}

const timeLayout = "2006-01-02T15:04:05.999999999Z07:00"
