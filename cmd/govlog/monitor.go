package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
	vaudit "github.com/govlog/govlog/verifier/audit"
)

// monitor follows a log: each round it audits what is new (checkpoint,
// consistency, hashes, entries, lineage), prints the decisions that
// match, and alerts on any failure.
func monitor(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("monitor", "[flags]",
		"Follow a log: every interval, audit what is new, print the decisions that match, "+
			"and alert (webhook, exit status 1) on any inconsistency or failure.")
	af := addAuditFlags(f)
	subject := f.String("subject", "", "print only decisions of this `subject` (and the execution reports of those decisions)")
	action := f.String("action", "", "print only decisions of this `action` (and the execution reports of those decisions)")
	f.Group("Polling and alerts")
	interval := f.Duration("interval", 10*time.Second, "how often to poll the log")
	webhook := f.String("webhook", "", "POST a JSON alert to this `URL` on any failure")
	once := f.Bool("once", false, "poll once and exit (status 1 on any failure)")
	f.Example("govlog monitor --url http://127.0.0.1:8080 --log-key data/log.vkey --state monitor.state --subject agent-7", "print agent-7's decisions as they are logged, checking the log all along")
	f.Example("govlog monitor --log-key log.vkey --state monitor.state --once --webhook https://alerts.example.com/govlog", "from cron, with $GOVLOG_URL set")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if *interval <= 0 {
		return f.usagef("--interval must be positive")
	}
	c, st, err := af.client(f)
	if err != nil {
		return err
	}
	m := &monitorState{
		out: stdout, asJSON: *af.asJSON, subject: *subject, action: *action,
		matched: map[string]bool{}, webhook: *webhook, url: *af.url,
	}
	for {
		var pending []vaudit.ScannedEntry
		rep, newState, err := c.Audit(ctx, auditOptionsFor(st, *af.workers, func(b *vaudit.Bundle) {
			for _, e := range b.Entries() {
				if m.matches(e) {
					pending = append(pending, e)
				}
			}
		}))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if newState != nil {
			// The tree verified: what matched is in the log.
			for _, e := range pending {
				m.print(e)
			}
			if err := saveState(*af.state, newState); err != nil {
				return err
			}
			st = newState
		}
		for _, p := range rep.Findings {
			fmt.Fprintf(os.Stderr, "govlog monitor: finding [%s]: %s\n", p.Code, escapeText(p.Message))
		}
		if failed := newFailures(rep); len(failed) > 0 {
			if onlyFetch(failed) && !*once {
				fmt.Fprintf(os.Stderr, "govlog monitor: %s (retrying in %v)\n", escapeText(failed[0].Message), *interval)
			} else {
				m.alert(ctx, rep, failed)
				return fmt.Errorf("%w: %d failures", errAuditFailed, len(failed))
			}
		}
		if *once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

func auditOptionsFor(st *vaudit.State, workers int, onBundle func(*vaudit.Bundle)) client.AuditOptions {
	return client.AuditOptions{State: st, Workers: workers, OnBundle: onBundle}
}

// newFailures returns the failures found by this round.
func newFailures(rep *vaudit.Report) []vaudit.Problem {
	var out []vaudit.Problem
	for _, p := range rep.Failures {
		if !p.Earlier {
			out = append(out, p)
		}
	}
	return out
}

// onlyFetch reports whether every failure is a resource the log did not
// serve: perhaps a transient outage.
func onlyFetch(ps []vaudit.Problem) bool {
	for _, p := range ps {
		if p.Code != vaudit.ProblemFetch {
			return false
		}
	}
	return true
}

type monitorState struct {
	out             io.Writer
	asJSON          bool
	subject, action string
	// matched holds the ids of the decisions printed, whose execution
	// reports are printed too.
	matched map[string]bool
	webhook string
	url     string
}

// matches reports whether an entry is to be printed.
func (m *monitorState) matches(e vaudit.ScannedEntry) bool {
	if e.Entry == nil {
		return false
	}
	filtered := m.subject != "" || m.action != ""
	switch {
	case e.Entry.Decision != nil:
		d := e.Entry.Decision
		if (m.subject != "" && d.Subject != m.subject) || (m.action != "" && d.Action != m.action) {
			return false
		}
		if filtered {
			m.matched[d.ID] = true
		}
		return true
	case e.Entry.Execution != nil:
		return !filtered || m.matched[e.Entry.Execution.DecisionID]
	}
	return false
}

func (m *monitorState) print(e vaudit.ScannedEntry) {
	if m.asJSON {
		fmt.Fprintf(m.out, "{\"index\":%d,\"entry\":%s}\n", e.Index, e.Leaf)
		return
	}
	p := e.Entry
	at := p.LoggedAt.Format(log.LoggedAtLayout)
	// Every value is quoted: the line's fields stay apart whatever they hold.
	q := strconv.Quote
	if d := p.Decision; d != nil {
		fmt.Fprintf(m.out, "#%d %s decision %s %s subject=%s action=%s", e.Index, at, field(d.ID), field(d.Outcome), q(d.Subject), q(d.Action))
		if d.Resource != "" {
			fmt.Fprintf(m.out, " resource=%s", q(d.Resource))
		}
		if d.ParentID != "" {
			fmt.Fprintf(m.out, " parent=%s", field(d.ParentID))
		}
		fmt.Fprintf(m.out, " submitter=%s\n", q(p.Submitter))
		return
	}
	x := p.Execution
	fmt.Fprintf(m.out, "#%d %s execution %s of %s status=%s submitter=%s\n", e.Index, at, field(x.ID), field(x.DecisionID), field(x.Status), q(p.Submitter))
}

// alertBody is what the webhook receives.
type alertBody struct {
	Event  string         `json:"event"`
	Origin string         `json:"origin"`
	URL    string         `json:"url"`
	Time   string         `json:"time"`
	Report *vaudit.Report `json:"report"`
}

// alert prints the failures and POSTs them to the webhook.
func (m *monitorState) alert(ctx context.Context, rep *vaudit.Report, failed []vaudit.Problem) {
	body := alertBody{Event: "govlog.monitor.failure", Origin: rep.Origin, URL: m.url, Time: time.Now().UTC().Format(time.RFC3339), Report: rep}
	if rep.Inconsistency != nil {
		body.Event = "govlog.monitor.inconsistency"
	}
	if m.asJSON {
		data, _ := json.Marshal(map[string]any{"alert": body})
		fmt.Fprintf(m.out, "%s\n", data)
	} else {
		for _, p := range failed {
			printProblem(m.out, "ALERT", p)
		}
		if ev := rep.Inconsistency; ev != nil {
			printInconsistency(m.out, ev)
		}
	}
	if m.webhook == "" {
		return
	}
	data, err := json.Marshal(body)
	if err != nil {
		fmt.Fprintf(os.Stderr, "govlog monitor: failed to encode the alert: %v\n", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.webhook, bytes.NewReader(data))
	if err != nil {
		fmt.Fprintf(os.Stderr, "govlog monitor: failed to send the alert: %v\n", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "govlog monitor: failed to send the alert: %v\n", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(os.Stderr, "govlog monitor: the webhook answered %s\n", resp.Status)
	}
}
