package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/internal/cmdline"
)

// command is a subcommand of govlog. run gets the arguments after the
// subcommand's name; it prints results to stdout and returns an error for
// anything else: a *cmdline.UsageError for bad usage (exit status 2),
// flag.ErrHelp when it printed its help, and any other error for a failure
// (exit status 1).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"keygen", "generate a log's keys (log.key, log.vkey, artifact.jwk), rotate its artifact key, or make a bearer token", keygen},
		{"submit", "submit a decision or execution report and save its receipt", submit},
		{"revoke", "withdraw an allow: log a revocation", revoke},
		{"verify", "verify receipts offline (files, directories, bundles)", verify},
		{"verify-artifact", "check an authorization artifact offline: its logged key, signature, claims and expiry", verifyArtifact},
		{"search", "find entries by subject, action, resource, outcome, policy, violation, time", search},
		{"get", "print one decision or execution report by id, with its receipt", get},
		{"export", "write an evidence bundle of the entries matching filters", export},
		{"audit", "replay a log through its tiles API and check everything", audit},
		{"monitor", "follow a log, print matching decisions, alert on any inconsistency", monitor},
		{"bench", "load-test a server, verifying every receipt", bench},
		{"demo", "play the governed-execution story against a running server, printing how to verify each step", demo},
		{"fsck", "check a data directory of the embedded log offline", fsck},
		{"backup", "copy the embedded log's database online and check the copy", backup},
		{"trillian-createtree", "create a Trillian log tree for govlogd --backend trillian", trillianCreateTree},
		{"completion", "print the shell completion script for bash or zsh", completion},
		{"version", "print the version", version},
	}
}

// Environment variables that give the commands that talk to a server
// their defaults.
const (
	envURL   = "GOVLOG_URL"
	envToken = "GOVLOG_TOKEN"
)

// run runs govlog with args (without the program name) and returns the
// exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		mainUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		mainUsage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			mainUsage(stdout)
			return 0
		}
		args = []string{args[1], "--help"}
	case "-version", "--version":
		args[0] = "version"
	case completeCommand:
		return completeWords(ctx, args[1:], stdout)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout)
		var ue *cmdline.UsageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "govlog %s: %s\n%s", c.name, escapeText(ue.Msg), ue.Usage)
			return 2
		default:
			fmt.Fprintf(stderr, "govlog %s: %s\n", c.name, escapeText(explain(err)))
			return 1
		}
	}
	fmt.Fprintf(stderr, "govlog: unknown command %q\n", args[0])
	mainUsage(stderr)
	return 2
}

// explain returns the message of a failure; a 404 names the URL that was
// tried, and when the answer was not govlog's JSON error, says that --url
// may not be a govlog server's.
func explain(err error) string {
	msg := err.Error()
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		msg += fmt.Sprintf(" (%s %s)", ae.Method, ae.URL)
		if ae.Code == "" {
			msg += "; is --url the base URL of a govlog server?"
		}
	}
	return msg
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, "usage: govlog <command> [flags] [arguments]\n\n")
	fmt.Fprint(w, "govlog is the command line of a govlog decision log: keys, submissions,\noffline verification of receipts, audits and monitoring, checks and backups.\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nEnvironment:\n")
	fmt.Fprintf(w, "  %-20s %s\n", envURL, "the server's base URL, the default of --url")
	fmt.Fprintf(w, "  %-20s %s\n", envToken, "the bearer token sent to the server, unless --token-file is given")
	fmt.Fprint(w, "\nRun \"govlog <command> --help\" for the flags and examples of a command.\n")
}

// flags is the flag set of a command.
type flags struct {
	*cmdline.FlagSet
}

// newFlags returns the flag set of a command: args is its usage line
// after "govlog name", summary one sentence on what it does.
func newFlags(name, args, summary string) *flags {
	return &flags{cmdline.New("govlog "+name, args, summary)}
}

// parse parses args. Errors come back as *cmdline.UsageError; --help
// prints the help to stdout and returns flag.ErrHelp.
func (f *flags) parse(args []string, stdout io.Writer) error {
	return f.Parse(args, stdout)
}

func (f *flags) usagef(format string, args ...any) error {
	return f.Usagef(format, args...)
}

// serverFlags are the flags of every command that talks to a server.
type serverFlags struct {
	url, tokenFile *string
}

// addServerFlags defines --url and --token-file, with their defaults from
// the environment, in a group of their own.
func addServerFlags(f *flags) *serverFlags {
	f.Group("Server")
	s := &serverFlags{
		url:       f.String("url", "", "the govlog server's base `URL`, such as http://127.0.0.1:8080"),
		tokenFile: f.String("token-file", "", "send the bearer token in this `file` (default $"+envToken+", if set)"),
	}
	f.Env("url", envURL)
	return s
}

// check returns the usage error of a missing --url.
func (s *serverFlags) check(f *flags) error {
	if *s.url == "" {
		return f.usagef("--url is required (or set %s)", envURL)
	}
	return nil
}

// parse parses args (see flags.parse), then checks that --url is set.
func (s *serverFlags) parse(f *flags, args []string, stdout io.Writer) error {
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	return s.check(f)
}

// token returns the bearer token: the content of --token-file, else
// $GOVLOG_TOKEN ("" when neither is set).
func (s *serverFlags) token() (string, error) {
	return readToken(*s.tokenFile)
}

// newClient returns the client of the server at --url, sending the bearer
// token (see token) and with opts. When logKey, the argument of a --log-key
// flag, is set, the client verifies every receipt with that key, which
// newClient returns too (nil without one).
func (s *serverFlags) newClient(f *flags, logKey string, opts ...client.Option) (*client.Client, note.Verifier, error) {
	var key note.Verifier
	if logKey != "" {
		var err error
		if key, err = readVerifierKey(logKey); err != nil {
			return nil, nil, f.usagef("--log-key: %v", err)
		}
		opts = append(opts, client.WithLogKey(key))
	}
	token, err := s.token()
	if err != nil {
		return nil, nil, err
	}
	if token != "" {
		opts = append(opts, client.WithBearerToken(token))
	}
	c, err := client.New(*s.url, opts...)
	if err != nil {
		return nil, nil, f.usagef("--url: %v", err)
	}
	return c, key, nil
}

// loggedState says whether a submission was logged now (created) or had
// been already, its receipt then being the original one.
func loggedState(created bool) string {
	if created {
		return "logged"
	}
	return "already logged (this is the original receipt)"
}

// counted is n and the noun for n: "1 revocation", "2 revocations".
func counted(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// version prints the version of govlog.
func version(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("version", "", "Print govlog's version: the module version, the VCS revision it was built from, and the Go version.")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	_, err := io.WriteString(stdout, cmdline.Version("govlog"))
	return err
}
