package cmdline

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

type testFlags struct {
	fs      *FlagSet
	url     *string
	key     *string
	json    *bool
	timeout *time.Duration
	keys    list
}

func newTest() *testFlags {
	t := &testFlags{fs: New("govlog test", "[flags] FILE...", "Test the command line.")}
	t.fs.Group("Server")
	t.url = t.fs.String("url", "", "the server's base `URL`")
	t.fs.Env("url", "GOVLOG_TEST_URL")
	t.timeout = t.fs.Duration("timeout", 30*time.Second, "give up after this long")
	t.fs.Group("Output")
	t.json = t.fs.Bool("json", false, "print JSON")
	t.key = t.fs.String("log-key", "", "the log's `key`")
	t.fs.Var(&t.keys, "k", "a `key` (repeatable)")
	t.fs.Example("govlog test --url http://127.0.0.1:8080 a b", "two files")
	return t
}

func TestReorder(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		key      string
		json     bool
		rest     []string
		keysWant string
	}{
		{[]string{"--log-key", "log.vkey", "today.json", "--json"}, "log.vkey", true, []string{"today.json"}, ""},
		{[]string{"a", "--json", "b", "--log-key=x", "c"}, "x", true, []string{"a", "b", "c"}, ""},
		{[]string{"-", "--log-key", "-"}, "-", false, []string{"-"}, ""},
		{[]string{"--json", "--", "--log-key", "-x"}, "", true, []string{"--log-key", "-x"}, ""},
		{[]string{"a", "-k", "1", "b", "-k", "2"}, "", false, []string{"a", "b"}, "1,2"},
		{[]string{"--timeout", "5s", "f", "--json=false"}, "", false, []string{"f"}, ""},
	} {
		f := newTest()
		if err := f.fs.Parse(tc.args, &bytes.Buffer{}); err != nil {
			t.Fatalf("Parse(%q): %v", tc.args, err)
		}
		if *f.key != tc.key || *f.json != tc.json || strings.Join(f.fs.Args(), "|") != strings.Join(tc.rest, "|") || f.keys.String() != tc.keysWant {
			t.Errorf("Parse(%q): key %q json %v args %q keys %q", tc.args, *f.key, *f.json, f.fs.Args(), f.keys.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	f := newTest()
	var ue *UsageError
	if err := f.fs.Parse([]string{"a", "--nope"}, &bytes.Buffer{}); !errors.As(err, &ue) ||
		!strings.Contains(ue.Msg, "nope") || !strings.HasPrefix(ue.Usage, "usage: govlog test [flags] FILE...\n") {
		t.Fatalf("unknown flag: %v", err)
	}
	if ue.Msg != "unknown flag: --nope" {
		t.Errorf("unknown flag: %q", ue.Msg)
	}
	f = newTest()
	if err := f.fs.Parse([]string{"a", "--timeout"}, &bytes.Buffer{}); !errors.As(err, &ue) || ue.Msg != "flag needs an argument: --timeout" {
		t.Fatalf("flag without its value: %v", err)
	}
	f = newTest()
	if err := f.fs.Parse([]string{"-k"}, &bytes.Buffer{}); !errors.As(err, &ue) || ue.Msg != "flag needs an argument: -k" {
		t.Fatalf("short flag without its value: %v", err)
	}
	f = newTest()
	if err := f.fs.Parse([]string{"--timeout", "soon"}, &bytes.Buffer{}); !errors.As(err, &ue) || !strings.HasPrefix(ue.Msg, `invalid value "soon" for flag --timeout: `) {
		t.Fatalf("bad value: %v", err)
	}
	var out bytes.Buffer
	f = newTest()
	if err := f.fs.Parse([]string{"x", "--help"}, &out); !errors.Is(err, flag.ErrHelp) || out.String() != f.fs.Help() {
		t.Fatalf("--help: %v %q", err, out.String())
	}
	out.Reset()
	if err := newTest().fs.Parse([]string{CompleteFlags}, &out); !errors.Is(err, flag.ErrHelp) ||
		out.String() != "--json\n--k\n--log-key\n--timeout\n--url\n" {
		t.Fatalf("%s: %v %q", CompleteFlags, err, out.String())
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("GOVLOG_TEST_URL", "http://env")
	f := newTest()
	if err := f.fs.Parse(nil, &bytes.Buffer{}); err != nil || *f.url != "http://env" || f.fs.IsSet("url") {
		t.Fatalf("env default: %v %q", err, *f.url)
	}
	f = newTest()
	if err := f.fs.Parse([]string{"--url", "http://flag"}, &bytes.Buffer{}); err != nil || *f.url != "http://flag" {
		t.Fatalf("flag over env: %v %q", err, *f.url)
	}
	if h := f.fs.Help(); !strings.Contains(h, "(default $GOVLOG_TEST_URL)") || strings.Contains(h, "http://env") {
		t.Errorf("the help must name the variable, not its value:\n%s", h)
	}
}

func TestHelp(t *testing.T) {
	want := `usage: govlog test [flags] FILE...

Test the command line.

Server:
  --timeout DURATION  give up after this long (default 30s)
  --url URL           the server's base URL (default $GOVLOG_TEST_URL)

Output:
  --json              print JSON
  -k KEY              a key (repeatable)
  --log-key KEY       the log's key

Examples:
  # two files
  govlog test --url http://127.0.0.1:8080 a b
`
	if got := newTest().fs.Help(); got != want {
		t.Errorf("help:\n%s\nwant:\n%s", got, want)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	read := func(path string) ([]byte, error) { return os.ReadFile(path) }
	newConfig := func() (*FlagSet, *string, *bool, *list) {
		fs := New("govlogd", "[flags]", "Serve.")
		fs.Config("config", "read flags from this `file`", read)
		listen := fs.String("listen", "127.0.0.1:8080", "`address`")
		auth := fs.Bool("auth-read", false, "reads need a token")
		var keys list
		fs.Var(&keys, "log-key", "`key` (repeatable)")
		return fs, listen, auth, &keys
	}
	path := filepath.Join(dir, "govlogd.conf")
	os.WriteFile(path, []byte("# comment\n\nlisten   0.0.0.0:8443\nauth-read\nlog-key a+b+c\nlog-key d e f\n"), 0o600)

	fs, listen, auth, keys := newConfig()
	if err := fs.Parse([]string{"--config", path}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if *listen != "0.0.0.0:8443" || !*auth || keys.String() != "a+b+c,d e f" || !fs.IsSet("listen") {
		t.Fatalf("from the file: %q %v %q", *listen, *auth, keys.String())
	}
	fs, listen, _, keys = newConfig()
	if err := fs.Parse([]string{"--listen", "127.0.0.1:9", "--config", path, "--log-key", "x+y+z"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:9" || keys.String() != "x+y+z" {
		t.Fatalf("the command line must override the file: %q %q", *listen, keys.String())
	}
	for _, tc := range []struct{ text, want string }{
		{"nope 1\n", ":1: unknown setting \"nope\""},
		{"\nauth-read maybe\n", ":2: invalid value \"maybe\" for auth-read"},
		{"config other\n", "cannot name another"},
	} {
		os.WriteFile(path, []byte(tc.text), 0o600)
		fs, _, _, _ := newConfig()
		if err := fs.Parse([]string{"--config", path}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: %v, want %q", tc.text, err, tc.want)
		}
	}
	fs, _, _, _ = newConfig()
	if err := fs.Parse([]string{"--config", filepath.Join(dir, "missing")}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestVersion(t *testing.T) {
	v := Version("govlogd")
	if !strings.HasPrefix(v, "govlogd ") || !strings.Contains(v, "go1.") {
		t.Errorf("Version = %q", v)
	}
}

func TestParseServer(t *testing.T) {
	newServer := func() *FlagSet {
		fs := New("govlogd", "[flags]", "Serve.")
		fs.String("data", "./data", "`directory`")
		fs.ServerFlags()
		return fs
	}
	var stdout, stderr bytes.Buffer
	logger, err := newServer().ParseServer([]string{"--log-format", "json", "--log-level", "warn"}, &stdout, &stderr)
	if err != nil || !logger.Enabled(t.Context(), slog.LevelWarn) || logger.Enabled(t.Context(), slog.LevelInfo) {
		t.Fatalf("ParseServer: %v", err)
	}
	logger.Warn("hello")
	if !strings.HasPrefix(stderr.String(), `{"time":`) {
		t.Errorf("json log %q", stderr.String())
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout.Reset()
		if _, err := newServer().ParseServer(args, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(stdout.String(), "govlogd ") {
			t.Errorf("%q: %v %q", args, err, stdout.String())
		}
	}
	for _, args := range [][]string{{"extra"}, {"--nope"}, {"version", "x"}} {
		stderr.Reset()
		if _, err := newServer().ParseServer(args, &stdout, &stderr); !errors.Is(err, ErrUsage) || !strings.HasPrefix(stderr.String(), "govlogd: ") {
			t.Errorf("%q: %v %q", args, err, stderr.String())
		}
	}
	if _, err := newServer().ParseServer([]string{"--log-format", "xml"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("--log-format xml: %v", err)
	}
}
