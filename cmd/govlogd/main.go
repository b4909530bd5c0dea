// Command govlogd serves a govlog decision log over HTTP, on the embedded
// SQLite backend.
//
//	govlogd --listen 127.0.0.1:8080 --data ./data
//
// or on a Trillian log tree, with govlog's own tables in a MySQL/MariaDB
// database (normally Trillian's); the data directory then holds only the
// keys, and several govlogd replicas with the same keys may serve one tree:
//
//	govlogd --listen 127.0.0.1:8080 --data ./keys --origin example.com/govlog \
//	    --backend trillian --trillian-addr 127.0.0.1:8090 --trillian-tree-id 42 \
//	    --trillian-mysql-dsn 'govlog@tcp(127.0.0.1:3306)/trillian'
//
// Every flag may also be given in a configuration file, --config FILE: one
// flag a line, its name without dashes, then its value (the rest of the
// line); flags on the command line override the file (docs/operations.md
// has a complete example).
//
// On first start it creates the data directory (0700) and generates the
// log's keys in it: log.key (the note key that signs checkpoints, 0600),
// log.vkey (its verifier key) and artifact.jwk (the Ed25519 key that signs
// authorization artifacts, 0600), for the origin --origin, by default
// <hostname>/govlog. Later starts take the origin from log.key: a log's key
// is its identity, and an --origin that contradicts it is refused. It
// refuses private key files that the group or others can read.
//
// A data directory serves one process at a time: govlogd holds an
// exclusive lock on DIR/lock while it runs (whenever it writes to the
// directory: the embedded log, or the cosigned checkpoints of
// --witness-policy), and a second govlogd on the same directory exits at
// once with status 1, naming the first one's process id.
//
// Without authentication govlogd only listens on a loopback address
// (127.0.0.0/8, ::1 or localhost), says so, and refuses anything else.
// With --auth-jwks (JWT bearer tokens from an issuer) or --auth-tokens
// (static bearer tokens, stored as SHA-256) writers authenticate, their
// identity becomes the entries' submitter, and any address may be served;
// --tls-cert and --tls-key serve HTTPS, --rate-limit bounds each identity's
// submissions (see docs/security.md and docs/operations.md).
//
// On SIGTERM or SIGINT it stops accepting submissions (readiness and new
// submissions answer 503), answers every submission in flight, and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/govlog/govlog/internal/cmdline"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/server"
)

func main() {
	server.SetRuntimeDefaults()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	err := cli(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "govlogd:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that does not parse (already reported).
var errUsage = cmdline.ErrUsage

// cli parses the command line and runs the server until ctx is done; help
// and the version go to stdout, everything else to stderr.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseCLI(args, stdout, stderr)
	if err != nil {
		return err
	}
	return Run(ctx, *cfg)
}

// parseCLI parses the command line (and the configuration file it names)
// into a Config. It returns flag.ErrHelp when it printed the help or the
// version, and errUsage when it printed a usage error.
func parseCLI(args []string, stdout, stderr io.Writer) (*Config, error) {
	fs := cmdline.New("govlogd", "[flags]",
		"Serve a govlog decision log over HTTP: append decisions, answer with receipts (and artifacts for allows), "+
			"serve proofs, checkpoints and the tiles API.")
	var cfg Config
	fs.Group("Server")
	fs.Config("config", "read flags from this `file`: one flag a line, its name without dashes and its value; the command line overrides it", keys.ReadConfig)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "`address` to listen on; must be loopback (127.0.0.0/8, ::1, localhost) unless --auth-jwks or --auth-tokens is given")
	fs.StringVar(&cfg.DataDir, "data", "./data", "data `directory`: the log's keys and, on the embedded backend, its database (created if missing)")
	fs.StringVar(&cfg.Origin, "origin", "", "log `origin`: the name of the log's key and the first line of its checkpoints (default: the name of DIR/log.key; for a new log, <hostname>/govlog)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&cfg.PprofListen, "pprof", "", "serve Go profiling endpoints on this loopback `address` (default off)")
	fs.ServerFlags()
	fs.Group("Log and artifacts")
	fs.DurationVar(&cfg.ArtifactTTL, "artifact-ttl", log.DefaultArtifactTTL, "authorization artifact lifetime (whole seconds, at least 1s)")
	fs.StringVar(&cfg.Audience, "artifact-audience", "", "\"aud\" claim of authorization artifacts (default none)")
	fs.IntVar(&cfg.MaxBatch, "max-batch", 1024, "most entries in one group commit")
	fs.IntVar(&cfg.MaxPending, "max-pending", 65536, "most submissions waiting for a commit; beyond it submissions get 429")
	fs.DurationVar(&cfg.CommitTimeout, "commit-timeout", 30*time.Second, "bound on one storage commit")
	fs.DurationVar(&cfg.SubmitTimeout, "submit-timeout", 30*time.Second, "how long a submission waits for its commit before it gets 503")
	fs.Group("Storage")
	fs.BoolVar(&cfg.NoExplorer, "no-explorer", false, "do not serve the explorer, the web page at / (the API alone)")
	fs.StringVar(&cfg.PublishedCheckpoint, "published-checkpoint", "", "`file` with the last published checkpoint: refuse to start if the stored log is smaller or forks from it (after a restore)")
	addBackendFlags(fs.FlagSet, &cfg)
	fs.Group("Authentication, TLS and limits")
	addSecurityFlags(fs.FlagSet, &cfg.SecurityConfig)
	fs.Group("Witnesses")
	addWitnessFlags(fs.FlagSet, &cfg.WitnessConfig)
	fs.Group("OPA decision logs")
	addOPAFlags(fs.FlagSet, &cfg.OPA)
	fs.Example("govlogd --data ./data", "the embedded log on 127.0.0.1:8080, without authentication (loopback only)")
	fs.Example("govlogd --config /etc/govlog/govlogd.conf", "everything from a configuration file (docs/operations.md)")
	fs.Example("govlogd --listen 0.0.0.0:8443 --data /var/lib/govlog --tls-cert tls.crt --tls-key tls.key --auth-tokens /etc/govlog/tokens", "serve a network: HTTPS and bearer tokens")
	var err error
	if cfg.Logger, err = fs.ParseServer(args, stdout, stderr); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// defaultOrigin derives an origin from the host name: "<hostname>/govlog",
// or "localhost/govlog" when the host name cannot be a key name.
func defaultOrigin() string {
	host, err := os.Hostname()
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if err != nil || host == "" || keys.ValidName(host) != nil || strings.Contains(host, "/") {
		host = "localhost"
	}
	return host + "/govlog"
}
