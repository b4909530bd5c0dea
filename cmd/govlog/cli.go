package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// command is a subcommand of govlog. run gets the arguments after the
// subcommand's name; it prints results to stdout and returns an error for
// anything else: a *usageError for bad usage (exit status 2), flag.ErrHelp
// when it printed its help, and any other error for a failure (exit
// status 1).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"keygen", "generate a log's keys (log.key, log.vkey, artifact.jwk)", keygen},
		{"submit", "submit a decision and save its receipt", submit},
		{"verify", "verify receipts offline (files, directories, bundles)", verify},
		{"audit", "replay a log through its tiles API and check everything", audit},
		{"monitor", "follow a log, print matching decisions, alert on any inconsistency", monitor},
		{"bench", "load-test a server, verifying every receipt", bench},
		{"fsck", "check a data directory of the embedded log offline", fsck},
		{"backup", "copy the embedded log's database online and check the copy", backup},
		{"trillian-createtree", "create a Trillian log tree for govlogd --backend trillian", trillianCreateTree},
	}
}

// usageError is a usage mistake: the message and the usage of the command.
type usageError struct {
	msg   string
	usage string
}

func (e *usageError) Error() string { return e.msg }

// run runs govlog with args (without the program name) and returns the
// exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		mainUsage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		mainUsage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout)
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "govlog %s: %s\n%s", c.name, ue.msg, ue.usage)
			return 2
		default:
			fmt.Fprintf(stderr, "govlog %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "govlog: unknown command %q\n", args[0])
	mainUsage(stderr)
	return 2
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, "usage: govlog <command> [flags] [arguments]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"govlog <command> -h\" for the flags of a command.\n")
}

// flags is the flag set of a command, with its synopsis.
type flags struct {
	*flag.FlagSet
	synopsis string
}

// newFlags returns the flag set of a command; synopsis is its usage line
// after "govlog".
func newFlags(name, synopsis string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, synopsis: synopsis}
}

// parse parses args. Errors come back as *usageError; -h prints the usage
// to stdout and returns flag.ErrHelp.
func (f *flags) parse(args []string, stdout io.Writer) error {
	err := f.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, f.usage())
		return flag.ErrHelp
	}
	if err != nil {
		return &usageError{msg: err.Error(), usage: f.usage()}
	}
	return nil
}

func (f *flags) usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: f.usage()}
}

// usage renders the synopsis and the flags.
func (f *flags) usage() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "usage: govlog %s\n", f.synopsis)
	f.VisitAll(func(fl *flag.Flag) {
		name, usage := flag.UnquoteUsage(fl)
		fmt.Fprintf(&b, "  --%s", fl.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n        %s", usage)
		if fl.DefValue != "" && fl.DefValue != "false" {
			fmt.Fprintf(&b, " (default %s)", fl.DefValue)
		}
		b.WriteByte('\n')
	})
	return b.String()
}
