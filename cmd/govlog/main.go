// Command govlog is govlog's command line: it generates log keys, submits
// decisions, verifies receipts offline, and audits and monitors logs.
//
//	govlog keygen --name NAME [--out DIR]
//	govlog submit --url URL [--out PREFIX] [--log-key VKEY] [FILE|-]
//	govlog verify --log-key VKEY [--json] RECEIPT.tlog-proof|RECEIPT.receipt.json|BUNDLE.json|DIR...
//	govlog audit --url URL --log-key VKEY [--state FILE] [--json] [--fail-on-findings]
//	govlog monitor --url URL --log-key VKEY [--state FILE] [--subject S] [--action A] [--interval D] [--webhook URL] [--once]
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
