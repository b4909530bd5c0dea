// Command govlog is govlog's command line: it generates log keys, submits
// decisions and verifies receipts offline.
//
//	govlog keygen --name NAME [--out DIR]
//	govlog submit --url URL [--out PREFIX] [--log-key VKEY] [FILE|-]
//	govlog verify --log-key VKEY RECEIPT.tlog-proof
//
// Exit status: 0 on success, 1 when something failed (for verify: the
// receipt does not verify), 2 on a usage error.
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
