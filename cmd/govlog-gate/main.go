// Command govlog-gate is govlog's enforcement point: a reverse proxy in
// front of an HTTP tool or API that forwards a request only with a valid,
// unused authorization artifact of a govlog log, claimed with the log
// before the tool is called (package internal/gate; docs/gate.md).
//
//	govlog-gate --config gate.json [--listen ADDR] [--admin-listen ADDR] [--upstream URL] [--log-url URL]
//
// The configuration file holds everything (routes, the log, OPA in policy
// mode, limits); the flags override the few things that differ per run.
// On SIGTERM or SIGINT it stops accepting requests, lets the ones in
// flight finish, sends their execution reports and exits.
//
// Exit status: 0 after a clean shutdown (or --help, --version), 1 when it
// cannot start or fails, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/govlog/govlog/internal/cmdline"
	"github.com/govlog/govlog/internal/gate"
)

func main() {
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
		fmt.Fprintln(os.Stderr, "govlog-gate:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that does not parse (already reported).
var errUsage = cmdline.ErrUsage

// cli parses the command line and runs the gate until ctx is done; help
// and the version go to stdout, everything else to stderr.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdline.New("govlog-gate", "--config FILE [flags]",
		"Guard an HTTP tool or API: forward a request only with a valid, unused authorization artifact of a govlog log, "+
			"claimed with the log before the tool is called, and report its outcome.")
	var config, listen, admin, upstream, logURL string
	fs.Group("Gate")
	fs.StringVar(&config, "config", "", "configuration `file` (JSON; see docs/gate.md); required")
	fs.StringVar(&listen, "listen", "", "`address` to serve callers on (overrides the file's listen; default "+gate.DefaultListen+")")
	fs.StringVar(&admin, "admin-listen", "", "`address` of /metrics, /healthz and /readyz, or off (overrides the file's admin_listen; default "+gate.DefaultAdminListen+")")
	fs.StringVar(&upstream, "upstream", "", "base `URL` of the tool behind the gate (overrides the file's upstream)")
	fs.StringVar(&logURL, "log-url", "", "base `URL` of the govlog server (overrides the file's log.url)")
	fs.Group("Server")
	fs.ServerFlags()
	fs.Example("govlog-gate --config gate.json", "everything from the configuration file")
	fs.Example("govlog-gate --config gate.json --upstream http://127.0.0.1:9000 --log-url http://127.0.0.1:8080", "another tool and log for this run")
	logger, err := fs.ParseServer(args, stdout, stderr)
	if err != nil {
		return err
	}
	if config == "" {
		fmt.Fprintf(stderr, "govlog-gate: --config is required\n%s", fs.UsageLine())
		return errUsage
	}
	cfg, err := gate.LoadConfig(config)
	if err != nil {
		return err
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{listen, &cfg.Listen}, {admin, &cfg.AdminListen}, {upstream, &cfg.Upstream}, {logURL, &cfg.Log.URL}} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration %s: %w", config, err)
	}
	return gate.Run(ctx, cfg, gate.Options{Logger: logger}, nil)
}
