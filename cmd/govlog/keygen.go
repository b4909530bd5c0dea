package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/govlog/govlog/internal/keys"
)

// keygen writes a new log's keys, as govlogd does on its first start.
func keygen(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("keygen", "keygen --name NAME [--out DIR]")
	name := f.String("name", "", "the log origin, which names the keys, e.g. example.com/govlog (required)")
	out := f.String("out", "data", "the `directory` to write log.key, log.vkey and artifact.jwk into; use it as govlogd --data")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	if *name == "" {
		return f.usagef("--name is required")
	}
	if err := keys.ValidName(*name); err != nil {
		return f.usagef("--name: %v", err)
	}
	if *out == "" {
		return f.usagef("--out must not be empty")
	}
	if err := keys.Generate(*out, *name); err != nil {
		return err
	}
	vkey, err := os.ReadFile(filepath.Join(*out, keys.VerifierFile))
	if err != nil {
		return fmt.Errorf("failed to read the new verifier key: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (private, 0600)\n", filepath.Join(*out, keys.SignerFile))
	fmt.Fprintf(stdout, "wrote %s (private, 0600)\n", filepath.Join(*out, keys.ArtifactFile))
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, keys.VerifierFile))
	fmt.Fprintf(stdout, "log verifier key: %s\n", strings.TrimSpace(string(vkey)))
	return nil
}
