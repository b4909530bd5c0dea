// Package cmdline is the command line of govlog's binaries (govlog,
// govlogd, govlog-witness, govlog-gate): one way to parse flags and one
// help style for all of them.
//
// A FlagSet is a standard flag.FlagSet with what the standard package
// lacks:
//
//   - flags before and after the arguments: "govlog verify --log-key K
//     r.tlog-proof --json" parses as "--log-key K --json r.tlog-proof";
//     "--" ends the flags, and "-" alone is an argument (stdin);
//   - defaults from the environment (Env: GOVLOG_URL, GOVLOG_TOKEN), named
//     in the help, never printed with their value;
//   - a configuration file (Config): one "flag value" a line, as the flag
//     names; the command line overrides it;
//   - help in one style: the usage line, one sentence on what the command
//     does, the flags in groups (double dash, one default each), examples.
//
// For example:
//
//	usage: govlog submit [flags] [FILE|-]
//
//	Submit a decision to a govlog server and save its receipt.
//
//	Server:
//	  --url URL            the server's base URL (default $GOVLOG_URL)
//	  --timeout DURATION   give up after this long (default 30s)
//
//	Examples:
//	  govlog submit --url http://127.0.0.1:8080 decision.json
//
// ServerFlags and ParseServer are the common part of the servers' command
// lines: --log-format, --log-level, --version. Version reports the module
// version and VCS revision from the build information.
package cmdline

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"unicode"
)

// CompleteFlags is the argument that makes Parse print the flag names, one
// a line, and return flag.ErrHelp: shell completion asks a command for its
// flags this way.
const CompleteFlags = "--complete-flags"

// FlagSet is the flag set of one command, with its help.
type FlagSet struct {
	*flag.FlagSet
	name     string
	args     string
	summary  string
	examples []example
	// groups are the flag groups, in the order of their Group calls; each
	// holds the flags defined after its call and before the next one.
	groups []group
	// env maps a flag name to the environment variable of its default.
	env map[string]string
	// config is the name of the flag holding a configuration file, "" for
	// none; readConfig reads it.
	config     string
	readConfig func(path string) ([]byte, error)
	// The flags of ServerFlags.
	logFormat *string
	logLevel  *slog.Level
	version   *bool
}

type group struct {
	title string
	// before holds the names of the flags defined before the group began.
	before map[string]bool
}

type example struct{ command, comment string }

// New returns the flag set of the command name (such as "govlog submit");
// args is the usage line after the name (such as "[flags] [FILE|-]"), and
// summary one sentence on what the command does.
func New(name, args, summary string) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &FlagSet{FlagSet: fs, name: name, args: args, summary: summary, env: map[string]string{}}
}

// Group starts a group of flags with a title: the flags defined from now
// on, until the next Group, are listed under it. Flags defined before the
// first Group are listed first, under "Flags".
func (f *FlagSet) Group(title string) {
	before := map[string]bool{}
	f.VisitAll(func(fl *flag.Flag) { before[fl.Name] = true })
	f.groups = append(f.groups, group{title: title, before: before})
}

// Example adds an example to the help: a command line and, optionally, a
// comment printed above it.
func (f *FlagSet) Example(command, comment string) {
	f.examples = append(f.examples, example{command, comment})
}

// ServerFlags defines the flags of every server binary: --log-format,
// --log-level and --version. ParseServer reads them.
func (f *FlagSet) ServerFlags() {
	f.logFormat = f.String("log-format", "text", "log `format`: text or json")
	f.logLevel = new(slog.Level)
	f.TextVar(f.logLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	f.version = f.Bool("version", false, "print the version and exit")
}

// ErrUsage is ParseServer's error for a command line that does not parse,
// once it has printed what is wrong.
var ErrUsage = errors.New("usage error")

// ParseServer parses the command line of a server binary, which takes no
// arguments (but "version", the same as --version), and returns the logger
// its --log-format and --log-level describe, writing to stderr. The help
// and the version go to stdout, and it returns flag.ErrHelp: there is
// nothing to run. A usage error goes to stderr, and it returns ErrUsage.
func (f *FlagSet) ParseServer(args []string, stdout, stderr io.Writer) (*slog.Logger, error) {
	if f.version == nil {
		panic("cmdline: ParseServer without ServerFlags")
	}
	if len(args) == 1 && args[0] == "version" {
		args = []string{"--version"}
	}
	err := f.Parse(args, stdout)
	var ue *UsageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s\n%s", f.name, ue.Msg, ue.Usage)
		return nil, ErrUsage
	case err != nil:
		return nil, err
	case *f.version:
		if _, err := io.WriteString(stdout, Version(f.name)); err != nil {
			return nil, err
		}
		return nil, flag.ErrHelp
	case f.NArg() != 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n%s", f.name, f.Arg(0), f.UsageLine())
		return nil, ErrUsage
	}
	opts := &slog.HandlerOptions{Level: *f.logLevel}
	switch *f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", *f.logFormat)
}

// Env makes the environment variable the default of the flag name, when
// the command line (and the configuration file) leave it unset. The help
// names the variable, never its value.
func (f *FlagSet) Env(name, variable string) {
	if f.Lookup(name) == nil {
		panic("cmdline: Env of an undefined flag " + name)
	}
	f.env[name] = variable
}

// Config defines the flag name holding a configuration file, read with
// read: each line is a flag name and its value, separated by white space
// (the value is the rest of the line, taken as it is; a flag alone is a
// boolean set to true); empty lines and lines starting with # are ignored.
// Flags given on the command line override the file.
func (f *FlagSet) Config(name, usage string, read func(path string) ([]byte, error)) {
	f.String(name, "", usage)
	f.config, f.readConfig = name, read
}

// UsageError is a command line that does not parse: the message, and the
// usage line of the command.
type UsageError struct {
	Msg   string
	Usage string
}

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError of the command.
func (f *FlagSet) Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...), Usage: f.UsageLine()}
}

// UsageLine is the first line of the help, with a pointer to the rest.
func (f *FlagSet) UsageLine() string {
	return fmt.Sprintf("usage: %s %s\nRun \"%s --help\" for the flags and examples.\n", f.name, f.args, f.name)
}

// Parse parses args, flags before and after the arguments. With -h or
// --help it prints the help to out and returns flag.ErrHelp; with the
// single argument CompleteFlags it prints the flag names and returns
// flag.ErrHelp. A command line that does not parse is a *UsageError.
// After the command line, it applies the configuration file (Config), then
// the environment (Env), to the flags still unset.
func (f *FlagSet) Parse(args []string, out io.Writer) error {
	if len(args) == 1 && args[0] == CompleteFlags {
		f.VisitAll(func(fl *flag.Flag) { fmt.Fprintf(out, "--%s\n", fl.Name) })
		return flag.ErrHelp
	}
	ordered, err := f.reorder(args)
	if err == nil {
		err = f.FlagSet.Parse(ordered)
	}
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(out, f.Help())
		return flag.ErrHelp
	}
	if err != nil {
		return &UsageError{Msg: f.flagError(err), Usage: f.UsageLine()}
	}
	if f.config != "" {
		if path := f.Lookup(f.config).Value.String(); path != "" {
			if err := f.applyConfig(path); err != nil {
				return err
			}
		}
	}
	set := f.setFlags()
	for name, variable := range f.env {
		if v := os.Getenv(variable); v != "" && !set[name] {
			if err := f.Lookup(name).Value.Set(v); err != nil {
				return &UsageError{Msg: fmt.Sprintf("$%s: %v", variable, err), Usage: f.UsageLine()}
			}
		}
	}
	return nil
}

// stdFlagName finds the flag names in the standard package's errors
// ("flag provided but not defined: -nope", "invalid value … for flag -n").
var stdFlagName = regexp.MustCompile(`(: | flag )-([A-Za-z0-9][-A-Za-z0-9]*)`)

// flagError rewrites an error of the standard parser in the help's style:
// long flags with two dashes, "unknown flag" for an undefined one.
func (f *FlagSet) flagError(err error) string {
	msg := strings.Replace(err.Error(), "flag provided but not defined", "unknown flag", 1)
	return stdFlagName.ReplaceAllStringFunc(msg, func(m string) string {
		sub := stdFlagName.FindStringSubmatch(m)
		if len(sub[2]) == 1 {
			return m
		}
		return sub[1] + "--" + sub[2]
	})
}

// IsSet reports whether the flag name was set by the command line or the
// configuration file (not by the environment).
func (f *FlagSet) IsSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

func (f *FlagSet) setFlags() map[string]bool {
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

// reorder moves the flags of args before its arguments, ending them with
// "--", so that the standard parser, which stops at the first argument,
// sees them all. A flag that takes a value takes the next argument unless
// it is written --flag=value; an unknown flag is left for the parser to
// report.
func (f *FlagSet) reorder(args []string) ([]string, error) {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		fl := f.Lookup(name)
		if fl == nil || isBool(fl) {
			continue
		}
		if i+1 == len(args) {
			return nil, fmt.Errorf("flag needs an argument: %s", a)
		}
		i++
		flags = append(flags, args[i])
	}
	return append(append(flags, "--"), rest...), nil
}

func isBool(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// applyConfig sets, from the configuration file at path, every flag the
// command line left unset.
func (f *FlagSet) applyConfig(path string) error {
	data, err := f.readConfig(path)
	if err != nil {
		return fmt.Errorf("failed to read --%s: %w", f.config, err)
	}
	set := f.setFlags()
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		name, value := text, ""
		if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
			name, value = text[:i], strings.TrimSpace(text[i:])
		}
		name = strings.TrimLeft(name, "-")
		fl := f.Lookup(name)
		switch {
		case fl == nil:
			return fmt.Errorf("%s:%d: unknown setting %q (the settings are the flags of %s --help, without dashes)", path, line, name, f.name)
		case name == f.config:
			return fmt.Errorf("%s:%d: a configuration file cannot name another one", path, line)
		case set[name]:
			continue // the command line overrides the file
		case value == "" && isBool(fl):
			value = "true"
		}
		// Set marks the flag set, as the command line would: IsSet sees
		// it, and a repeatable flag named twice in the file keeps both.
		if err := f.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: invalid value %q for %s: %w", path, line, value, name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	return nil
}

// Help renders the help of the command.
func (f *FlagSet) Help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s %s\n\n", f.name, f.args)
	b.WriteString(wrap(f.summary, 0, 79))
	b.WriteString("\n")
	type row struct{ left, right string }
	var sections []struct {
		title string
		rows  []row
	}
	width := 0
	titles := []string{"Flags"}
	var members [][]*flag.Flag
	members = append(members, nil)
	for _, g := range f.groups {
		titles = append(titles, g.title)
		members = append(members, nil)
	}
	f.VisitAll(func(fl *flag.Flag) {
		i := 0
		for j, g := range f.groups {
			if !g.before[fl.Name] {
				i = j + 1
			}
		}
		members[i] = append(members[i], fl)
	})
	for i, fls := range members {
		if len(fls) == 0 {
			continue
		}
		var rows []row
		for _, fl := range fls {
			left, right := f.describe(fl)
			width = max(width, len(left))
			rows = append(rows, row{left, right})
		}
		sections = append(sections, struct {
			title string
			rows  []row
		}{titles[i], rows})
	}
	width = min(width, 30)
	for _, s := range sections {
		fmt.Fprintf(&b, "\n%s:\n", s.title)
		for _, r := range s.rows {
			if len(r.left) > width {
				fmt.Fprintf(&b, "  %s\n%s\n", r.left, wrap(r.right, width+4, 79))
				continue
			}
			text := wrap(r.right, width+4, 79)
			fmt.Fprintf(&b, "  %-*s%s\n", width+2, r.left, text[width+4:])
		}
	}
	if len(f.examples) > 0 {
		b.WriteString("\nExamples:\n")
		for i, e := range f.examples {
			if e.comment != "" {
				if i > 0 {
					b.WriteString("\n")
				}
				fmt.Fprintf(&b, "  # %s\n", e.comment)
			}
			fmt.Fprintf(&b, "  %s\n", e.command)
		}
	}
	return b.String()
}

// describe returns the two columns of a flag: "--name ARG" and its usage
// with its one default.
func (f *FlagSet) describe(fl *flag.Flag) (string, string) {
	arg, usage := flag.UnquoteUsage(fl)
	if arg != "" {
		arg = strings.ToUpper(arg)
	}
	dash := "--"
	if len(fl.Name) == 1 {
		dash = "-"
	}
	left := dash + fl.Name
	if arg != "" && !isBool(fl) {
		left += " " + arg
	}
	var def []string
	if v, ok := f.env[fl.Name]; ok {
		def = append(def, "$"+v)
	}
	if d := fl.DefValue; d != "" && d != "0" && d != "false" && d != "0s" && d != "[]" {
		def = append(def, d)
	}
	if len(def) > 0 && !strings.Contains(usage, "(default") {
		// Joined by NULs, which wrap does not break at: the default stays
		// on one line.
		usage += " " + strings.ReplaceAll("(default "+strings.Join(def, ", else ")+")", " ", "\x00")
	}
	return left, usage
}

// wrap wraps text into lines of at most width columns, each indented by
// indent spaces; a NUL is a space that does not break.
func wrap(text string, indent, width int) string {
	var b strings.Builder
	pad := strings.Repeat(" ", indent)
	line := 0
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
			b.WriteString(pad)
			line = indent
		case line+1+len(w) > width:
			b.WriteString("\n" + pad)
			line = indent
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	if b.Len() == 0 {
		b.WriteString(pad)
	}
	return strings.ReplaceAll(b.String(), "\x00", " ")
}

// Version describes the build of the running binary: the module version
// (a tag, or "(devel)" for a build from a work tree), the VCS revision and
// time when the build recorded them, and the Go version.
func Version(program string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Sprintf("%s (no build information) %s\n", program, runtime.Version())
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var parts []string
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		r := "revision " + rev
		if settings["vcs.modified"] == "true" {
			r += " (modified)"
		}
		parts = append(parts, r)
	}
	if t := settings["vcs.time"]; t != "" {
		parts = append(parts, "committed "+t)
	}
	parts = append(parts, bi.GoVersion, runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("%s %s %s\n  %s\n", program, bi.Main.Path, version, strings.Join(slices.Clip(parts), ", "))
}
