package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// filterFlags are the search filters of search and export (wire contract
// §4), each a query parameter of the same name.
type filterFlags struct {
	values map[string]*string
	order  []string
}

func addFilterFlags(f *flags) *filterFlags {
	f.Group("Filters (all must match)")
	ff := &filterFlags{values: map[string]*string{}}
	for _, d := range []struct{ name, help string }{
		{"kind", "entries of this `kind`: decision, execution, revocation or key"},
		{"subject", "decisions of this `subject`"},
		{"action", "decisions of this `action`"},
		{"resource", "decisions on this `resource`"},
		{"outcome", "decisions with this `outcome`: allow or deny"},
		{"policy-id", "decisions by this `policy` id"},
		{"decision-id", "the executions and revocation of this decision `id`"},
		{"violation", "executions recorded with this violation `code`, or any"},
		{"from", "entries logged at or after this RFC 3339 `time`"},
		{"to", "entries logged before this RFC 3339 `time`"},
	} {
		ff.values[d.name] = f.String(d.name, "", d.help)
		ff.order = append(ff.order, d.name)
	}
	return ff
}

// params returns the filters given, as query parameters.
func (ff *filterFlags) params() url.Values {
	p := url.Values{}
	for _, name := range ff.order {
		if v := *ff.values[name]; v != "" {
			p.Set(paramOf(name), v)
		}
	}
	return p
}

// paramOf is the query parameter of a filter flag.
func paramOf(flag string) string {
	switch flag {
	case "policy-id":
		return "policy_id"
	case "decision-id":
		return "decision_id"
	}
	return flag
}

// search prints the entries matching filters.
func search(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("search", "[flags]",
		"Find entries by subject, action, resource, outcome, policy, decision, violation and time, in log order. "+
			"The answer is the server's; export the same filters to get verifiable evidence.")
	srv := addServerFlags(f)
	ff := addFilterFlags(f)
	f.Group("Output")
	limit := f.Int("limit", 100, "print at most `N` entries (pages of up to 1000 are fetched as needed)")
	after := f.String("after", "", "start after this `cursor` (the next of an earlier --json answer)")
	asJSON := f.Bool("json", false, "print the results as JSON: {\"results\": [...], \"next\": cursor}")
	f.Example("govlog search --url http://127.0.0.1:8080 --subject agent-7 --outcome deny", "what agent-7 was denied")
	f.Example("govlog search --violation any --from 2026-12-01T00:00:00Z --json", "with $GOVLOG_URL set: executions that broke a rule since December 1st")
	if err := srv.parse(f, args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	if *limit < 1 {
		return f.usagef("--limit must be at least 1")
	}
	c, _, err := srv.newClient(f, "")
	if err != nil {
		return err
	}
	params := ff.params()
	if *after != "" {
		params.Set("after", *after)
	}
	var all client.SearchPage
	all.Results = []client.SearchResult{}
	for {
		params.Set("limit", fmt.Sprint(min(*limit-len(all.Results), 1000)))
		page, err := c.Search(ctx, params)
		if err != nil {
			return err
		}
		all.Results = append(all.Results, page.Results...)
		all.Next = page.Next
		if page.Next == "" || len(all.Results) >= *limit {
			break
		}
		params.Set("after", page.Next)
	}
	if *asJSON {
		return printJSON(stdout, all)
	}
	for _, r := range all.Results {
		fmt.Fprintf(stdout, "%d %s %s %s", r.Index, r.LoggedAt, r.Kind, field(r.ID))
		for _, kv := range [][2]string{{"outcome", r.Outcome}, {"subject", r.Subject}, {"action", r.Action}, {"resource", r.Resource},
			{"decision_id", r.DecisionID}, {"status", r.Status}, {"violation", r.Violation}} {
			if kv[1] != "" {
				fmt.Fprintf(stdout, " %s=%s", kv[0], field(kv[1]))
			}
		}
		fmt.Fprintln(stdout)
	}
	switch {
	case len(all.Results) == 0:
		fmt.Fprintln(stdout, "no entries match")
	case all.Next != "":
		fmt.Fprintf(stdout, "more: --after %s\n", all.Next)
	}
	return nil
}

// get prints one decision or execution report by id, with its receipt.
func get(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("get", "[flags] ID",
		"Print the decision (or, failing that, the execution report) with this id and its receipt against the latest checkpoint; "+
			"with --log-key the receipt is verified first.")
	srv := addServerFlags(f)
	keyArg := f.String("log-key", "", "verify the receipt with this note verifier `key` (a file or the key text)")
	execution := f.Bool("execution", false, "look up an execution report only")
	asJSON := f.Bool("json", false, "print the receipt as JSON")
	f.Example("govlog get --url http://127.0.0.1:8080 --log-key data/log.vkey deploy-42", "the decision deploy-42, verified")
	if err := srv.parse(f, args, stdout); err != nil {
		return err
	}
	if f.NArg() != 1 {
		return f.usagef("want one id, got %d arguments", f.NArg())
	}
	c, key, err := srv.newClient(f, *keyArg)
	if err != nil {
		return err
	}
	id := f.Arg(0)
	var r *log.Receipt
	if !*execution {
		r, err = c.Decision(ctx, id)
	}
	var ae *client.APIError
	if *execution || (errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
		r, err = c.Execution(ctx, id)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, r)
	}
	if key != nil {
		data, _ := json.Marshal(r)
		v, err := verifier.ReceiptJSON(data, key)
		if err != nil {
			return fmt.Errorf("the receipt of %s does NOT verify: %w", field(id), err)
		}
		printVerified(stdout, v)
		return nil
	}
	s, err := log.Summarize(r.Entry)
	if err != nil {
		return fmt.Errorf("the server sent an entry that does not parse: %w", err)
	}
	fmt.Fprintf(stdout, "entry %d (receipt NOT verified: give --log-key to verify it)\n", r.Index)
	for _, kv := range [][2]string{{"kind", s.Kind}, {"id", s.ID}, {"outcome", s.Outcome}, {"subject", s.Subject}, {"action", s.Action},
		{"resource", s.Resource}, {"policy", s.PolicyID}, {"decision_id", s.DecisionID}, {"status", s.Status}, {"violation", s.Violation},
		{"logged_at", s.LoggedAt.Format(log.LoggedAtLayout)}} {
		if kv[1] != "" {
			fmt.Fprintf(stdout, "%s: %s\n", kv[0], field(kv[1]))
		}
	}
	return nil
}

// export writes an evidence bundle to a file.
func export(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("export", "[flags] -o FILE",
		"Write the evidence bundle (govlog-evidence/v1) of the entries matching the filters: every entry with its inclusion proof "+
			"against one checkpoint and its cosignatures, and the log's artifact keys. \"govlog verify --log-key KEY FILE\" checks it offline.")
	srv := addServerFlags(f)
	ff := addFilterFlags(f)
	f.Group("Output")
	out := f.String("o", "", "write the bundle to this `file` (required; replaced only once the whole bundle arrived)")
	timeout := f.Duration("timeout", 10*time.Minute, "give up after this long")
	f.Example("govlog export --url http://127.0.0.1:8080 --subject agent-7 --from 2026-12-01T00:00:00Z -o agent-7.evidence.json", "one agent's evidence since December 1st")
	if err := srv.parse(f, args, stdout); err != nil {
		return err
	}
	if *out == "" {
		return f.usagef("-o FILE is required")
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	c, _, err := srv.newClient(f, "")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
	if err != nil {
		return fmt.Errorf("failed to create the bundle file: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := c.Export(ctx, ff.params(), tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("failed to write the bundle file: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes); check it with: govlog verify --log-key KEY %s\n", field(*out), n, field(*out))
	return nil
}
