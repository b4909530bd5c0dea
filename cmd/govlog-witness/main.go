// Command govlog-witness is a cosigning witness for transparency logs: it
// speaks the C2SP tlog-witness protocol (POST /add-checkpoint) and returns
// Ed25519 cosignature/v1 cosignatures (see the witness package).
//
//	govlog-witness --listen 127.0.0.1:7380 --data ./witness --name witness.example/w1 \
//	    --log-key example.com/govlog+7f05e4cd+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c
//
// --log-key is repeatable: the witness follows every log whose note
// verifier key it is given (the log's origin is the key's name), as the key
// text or the name of a file that holds it. On first start it creates the
// data directory (0700) and generates the witness key in it: witness.key
// (the private key, 0600) and witness.vkey (its cosignature/v1 verifier
// key, for log operators and clients). It refuses a witness.key that the
// group or others can read, or whose name is not --name. The state, the
// latest checkpoint cosigned for each log, is in witness.db. One witness
// at a time may use a data directory: it holds an exclusive lock on
// DIR/lock, and a second one on the same directory exits at once, naming
// the first one's process id.
//
// Besides the witness API it serves GET /metrics (Prometheus) and GET
// /healthz. The protocol has no authentication beyond the log signatures
// it verifies, so any listen address is allowed. On SIGTERM or SIGINT it
// answers the requests in flight and exits.
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
		fmt.Fprintln(os.Stderr, "govlog-witness:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that does not parse (already reported).
var errUsage = cmdline.ErrUsage

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint([]string(*l)) }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// cli parses the command line and runs the witness until ctx is done; help
// and the version go to stdout, everything else to stderr.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdline.New("govlog-witness", "--log-key KEY [--log-key KEY…] [flags]",
		"Cosign the checkpoints of transparency logs as a C2SP tlog-witness: verify each against the log's key "+
			"and a consistency proof from the last one cosigned, and answer with an Ed25519 cosignature.")
	var (
		cfg     Config
		logKeys listFlag
	)
	fs.Group("Witness")
	fs.Var(&logKeys, "log-key", "note verifier `key` of a log to witness, or a file holding it (repeatable; the log origin is the key's name)")
	fs.StringVar(&cfg.Name, "name", "", "witness `name`, such as witness.example/w1: the name of its key and cosignatures (required on first start)")
	fs.StringVar(&cfg.DataDir, "data", "./witness", "data `directory`: the witness key and state (created if missing)")
	fs.Group("Server")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:7380", "`address` to listen on")
	fs.ServerFlags()
	fs.Example("govlog-witness --name witness.example/w1 --log-key ./data/log.vkey", "witness the log of ./data, on 127.0.0.1:7380, state in ./witness")
	fs.Example("govlog-witness --listen 0.0.0.0:7380 --data /var/lib/govlog-witness --name witness.example/w1 --log-key /etc/govlog/log.vkey --log-key /etc/govlog/other.vkey", "two logs, on every address")
	var err error
	if cfg.Logger, err = fs.ParseServer(args, stdout, stderr); err != nil {
		return err
	}
	if len(logKeys) == 0 {
		fmt.Fprintf(stderr, "govlog-witness: at least one --log-key is required\n%s", fs.UsageLine())
		return errUsage
	}
	if cfg.LogKeys, err = readLogKeys(logKeys); err != nil {
		return err
	}
	return Run(ctx, cfg)
}
