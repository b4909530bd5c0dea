// Command govlog is govlog's command line: it generates log keys, submits
// decisions, verifies receipts offline, audits and monitors logs, and
// checks and backs up data directories.
//
//	govlog keygen --name ORIGIN [--out DIR]
//	govlog submit [--url URL] [--log-key VKEY] [--execution] [--json] [FILE|-]
//	govlog revoke [--url URL] --decision ID [--reason TEXT] [--id ID] [--json]
//	govlog verify --log-key VKEY [--witness-policy FILE] [--against URL] [--json] RECEIPT|BUNDLE|DIR|-...
//	govlog verify-artifact --log-key VKEY (--keys FILE | --key-receipt FILE | --url URL | --jwks FILE) [--action A --resource R --subject S] [--at TIME] [--json] ARTIFACT
//	govlog audit [--url URL] --log-key VKEY [--state FILE] [--witness-policy FILE] [--trusted-checkpoint FILE] [--require-anchor] [--json] [--fail-on-findings]
//	govlog monitor [--url URL] --log-key VKEY [--state FILE] [--subject S] [--action A] [--once]
//	govlog demo [--url URL] [--log-key VKEY] [--out DIR]
//	govlog fsck --data DIR [--db FILE] [--json]
//	govlog backup --data DIR --out FILE [--json]
//	govlog bench [--url URL] [-n N | --duration D] [-c C] [--batch B] [--json]
//	govlog completion bash|zsh
//	govlog version
//
// Every command takes its flags before or after its arguments ("--" ends
// them) and prints its help with --help. The commands that talk to a
// server take --url from $GOVLOG_URL and the bearer token from
// $GOVLOG_TOKEN unless told otherwise. Logged content (subjects, ids, a
// server's messages, file names) is printed quoted or escaped, never raw:
// it cannot forge a line of govlog's output or drive the terminal.
//
// Exit status: 0 on success, 1 when something failed (for verify: a
// receipt does not verify; for audit and monitor: the log failed a
// check), 2 on a usage error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
