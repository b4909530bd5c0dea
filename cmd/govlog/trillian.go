package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/govlog/govlog/log/trillian"
)

// trillianCreateTree creates a Trillian log tree for govlogd --backend
// trillian and prints its id.
func trillianCreateTree(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("trillian-createtree", "--admin-addr HOST:PORT [flags]",
		"Create a Trillian log tree for govlogd --backend trillian and print its id, alone on stdout.")
	addr := f.String("admin-addr", "", "gRPC `host:port` of trillian_log_server, which serves Trillian's admin API (required)")
	name := f.String("name", "govlog", "display `name` of the tree, at most 20 characters")
	timeout := f.Duration("timeout", 30*time.Second, "give up after this `duration` (Trillian may still be starting)")
	f.Example("govlog trillian-createtree --admin-addr 127.0.0.1:8090", "then: govlogd --backend trillian --trillian-tree-id ID …")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	switch {
	case f.NArg() != 0:
		return f.usagef("unexpected argument %q", f.Arg(0))
	case *addr == "":
		return f.usagef("--admin-addr is required")
	case *timeout <= 0:
		return f.usagef("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	id, err := trillian.CreateTree(ctx, *addr, *name)
	if err != nil {
		return err
	}
	// The id alone on stdout, for scripts: govlogd --trillian-tree-id.
	fmt.Fprintln(stdout, id)
	return nil
}
