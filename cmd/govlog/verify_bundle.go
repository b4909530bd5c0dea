package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/verifier"
)

// isEvidenceBundle reports whether the file at path starts like an
// evidence bundle: a JSON object whose first member is "format".
func isEvidenceBundle(path string) bool {
	s := bytes.TrimLeft(fileHead(path, 64), " \t\r\n")
	if !bytes.HasPrefix(s, []byte("{")) {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(s[1:], " \t\r\n"), []byte(`"format"`))
}

// bundleSubjectJSON is one subject of the JSON report of a bundle.
type bundleSubjectJSON struct {
	Subject string `json:"subject"`
	// Unknown is set for the executions and revocations whose decision
	// the bundle does not hold.
	Unknown bool `json:"decision_not_in_bundle,omitempty"`
	verifier.SubjectCounts
}

type bundleReportJSON struct {
	Verified   bool                `json:"verified"`
	File       string              `json:"file"`
	Origin     string              `json:"origin"`
	TreeSize   uint64              `json:"tree_size"`
	RootHash   string              `json:"root_hash"`
	Entries    int                 `json:"entries"`
	Kinds      map[string]int      `json:"kinds"`
	Query      map[string]string   `json:"query"`
	Keys       []string            `json:"keys"`
	Subjects   []bundleSubjectJSON `json:"subjects"`
	Cosigners  []string            `json:"cosigners,omitempty"`
	Error      string              `json:"error,omitempty"`
	PolicyUsed bool                `json:"witness_policy_checked"`
}

// verifyBundle verifies an evidence bundle file offline and prints what it
// shows, per subject.
func verifyBundle(path string, key note.Verifier, policy *verifier.Policy, asJSON bool, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to read the bundle: %w", err)
	}
	defer f.Close()
	rep, err := verifier.Bundle(bufio.NewReaderSize(f, 256<<10), key, policy, nil)
	if err != nil {
		if asJSON {
			out := bundleReportJSON{File: path, Error: err.Error(), PolicyUsed: policy != nil}
			_ = printJSON(stdout, out)
		}
		return fmt.Errorf("%s does NOT verify: %w", field(path), err)
	}
	out := bundleReportJSON{Verified: true, File: path, Origin: rep.Origin, TreeSize: rep.Checkpoint.Size,
		RootHash: base64.StdEncoding.EncodeToString(rep.Checkpoint.Hash[:]), Entries: rep.Entries,
		Kinds: rep.Kinds, Query: rep.Query, Keys: []string{}, Subjects: []bundleSubjectJSON{}, PolicyUsed: policy != nil}
	for _, k := range rep.Keys {
		out.Keys = append(out.Keys, k.KID)
	}
	for _, s := range rep.SubjectNames() {
		out.Subjects = append(out.Subjects, bundleSubjectJSON{Subject: s, Unknown: s == verifier.UnknownSubject, SubjectCounts: *rep.Subjects[s]})
	}
	if policy != nil {
		out.Cosigners = cosigners(policy, rep.Checkpoint.Note)
	}
	if asJSON {
		return printJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "OK: evidence bundle %s: %d entries of the log %s, each proven in its checkpoint of size %d (root %s)\n",
		field(path), rep.Entries, field(rep.Origin), rep.Checkpoint.Size, out.RootHash)
	if policy != nil {
		fmt.Fprintf(stdout, "witness_policy: satisfied (%s)\n", escapeText(strings.Join(out.Cosigners, ", ")))
	}
	var q []string
	for _, k := range sortedKeys(rep.Query) {
		q = append(q, k+"="+field(rep.Query[k]))
	}
	if len(q) == 0 {
		q = []string{"(everything)"}
	}
	fmt.Fprintf(stdout, "query: %s\n", strings.Join(q, " "))
	if len(out.Keys) > 0 {
		var kids []string
		for _, k := range out.Keys {
			kids = append(kids, field(k))
		}
		fmt.Fprintf(stdout, "artifact keys: %s (each with a verified receipt)\n", strings.Join(kids, ", "))
	}
	if len(out.Subjects) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "subject\tallowed\tdenied\texecuted\tviolated\trevoked")
	for _, s := range out.Subjects {
		name := field(s.Subject)
		if s.Unknown {
			name = "(decision not in the bundle)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", name, s.Allowed, s.Denied, s.Executed, s.Violated, s.Revoked)
	}
	return tw.Flush()
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
