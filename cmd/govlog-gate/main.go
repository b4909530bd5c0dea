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
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

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
var errUsage = errors.New("usage error")

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("govlog-gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		config, listen, admin, upstream, logURL, logFormat string
		logLevel                                           slog.Level
		version                                            bool
	)
	fs.StringVar(&config, "config", "", "configuration `file` (JSON; see docs/gate.md). Required")
	fs.StringVar(&listen, "listen", "", "`address` to serve callers on (overrides the file's listen; default "+gate.DefaultListen+")")
	fs.StringVar(&admin, "admin-listen", "", "`address` of /metrics, /healthz and /readyz, or off (overrides the file's admin_listen; default "+gate.DefaultAdminListen+")")
	fs.StringVar(&upstream, "upstream", "", "base `URL` of the tool behind the gate (overrides the file's upstream)")
	fs.StringVar(&logURL, "log-url", "", "base `URL` of the govlog server (overrides the file's log.url)")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if version {
		v := "(unknown)"
		if bi, ok := debug.ReadBuildInfo(); ok {
			v = bi.Main.Version
		}
		fmt.Fprintln(stdout, "govlog-gate", v)
		return nil
	}
	if fs.NArg() != 0 || config == "" {
		if config == "" {
			fmt.Fprintln(stderr, "govlog-gate: --config is required")
		} else {
			fmt.Fprintf(stderr, "govlog-gate: unexpected argument %q\n", fs.Arg(0))
		}
		fs.Usage()
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
	opts := &slog.HandlerOptions{Level: logLevel}
	var logger *slog.Logger
	switch logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, opts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, opts))
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", logFormat)
	}
	return gate.Run(ctx, cfg, gate.Options{Logger: logger}, nil)
}
