package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govlog/govlog/internal/keys"
)

// keygen writes a new log's keys, as govlogd does on its first start; or
// rotates its artifact key, prunes retired artifact keys, or makes a static
// bearer token.
//
//	govlog keygen --name NAME [--out DIR]          a new log's keys
//	govlog keygen --rotate-artifact [--out DIR]    retire artifact.jwk, write a new one
//	govlog keygen --prune-retired AGE [--out DIR]  drop keys retired at least AGE ago
//	govlog keygen --token IDENTITY [--permissions P]   a bearer token for govlogd --auth-tokens
func keygen(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("keygen", "--name ORIGIN [--out DIR] | --rotate-artifact [--out DIR] | --prune-retired AGE [--out DIR] | --token IDENTITY [--permissions P]",
		"Generate a new log's keys (as govlogd does on its first start), rotate or prune its artifact keys, "+
			"or make a bearer token for govlogd --auth-tokens.")
	f.Group("A new log's keys")
	name := f.String("name", "", "the log `origin`, which names the keys, such as example.com/govlog")
	out := f.String("out", "data", "the `directory` of log.key, log.vkey and artifact.jwk; use it as govlogd --data")
	f.Group("Artifact key rotation")
	rotate := f.Bool("rotate-artifact", false, "retire the artifact key of --out (its public key moves to "+keys.RetiredFile+", still published) and write a new one; restart govlogd afterwards")
	prune := f.Duration("prune-retired", 0, "remove from "+keys.RetiredFile+" the keys retired at least this `age` ago (at least the artifact TTL plus the time until govlogd was restarted)")
	f.Group("Bearer tokens")
	token := f.String("token", "", "print a new random bearer token for `identity` and its line for govlogd --auth-tokens")
	perms := f.String("permissions", "", "with --token: the token's permissions, a comma list of decisions, executions, read, or * (default decisions,executions)")
	f.Example("govlog keygen --name example.com/govlog --out ./data", "the keys of a new log, ready for govlogd --data ./data")
	f.Example("govlog keygen --token ci-pipeline --permissions decisions", "a token, and the line of govlogd's token file that lets it in")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	modes := 0
	for _, set := range []bool{*name != "", *rotate, *prune != 0, *token != ""} {
		if set {
			modes++
		}
	}
	switch {
	case modes == 0:
		return f.usagef("--name is required")
	case modes > 1:
		return f.usagef("give one of --name, --rotate-artifact, --prune-retired and --token")
	case *perms != "" && *token == "":
		return f.usagef("--permissions goes with --token")
	case *out == "":
		return f.usagef("--out must not be empty")
	}
	switch {
	case *rotate:
		return rotateArtifact(*out, stdout)
	case *prune != 0:
		if *prune < 0 {
			return f.usagef("--prune-retired must be positive")
		}
		return pruneRetired(*out, *prune, stdout)
	case *token != "":
		return newToken(f, *token, *perms, stdout)
	}
	if err := keys.ValidName(*name); err != nil {
		return f.usagef("--name: %v", err)
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

func rotateArtifact(dir string, stdout io.Writer) error {
	oldKID, newKID, err := keys.RotateArtifact(dir, time.Now())
	if err != nil {
		return fmt.Errorf("failed to rotate the artifact key: %w", err)
	}
	fmt.Fprintf(stdout, "retired artifact key %s: its public key is in %s\n", oldKID, filepath.Join(dir, keys.RetiredFile))
	fmt.Fprintf(stdout, "wrote %s (private, 0600): new artifact key %s\n", filepath.Join(dir, keys.ArtifactFile), newKID)
	fmt.Fprintf(stdout, "restart govlogd to sign with the new key; keep the retired key published until the artifact TTL has passed since the restart, then run govlog keygen --prune-retired AGE --out %s\n", dir)
	return nil
}

func pruneRetired(dir string, age time.Duration, stdout io.Writer) error {
	removed, err := keys.PruneRetired(dir, age, time.Now())
	if err != nil {
		return fmt.Errorf("failed to prune retired artifact keys: %w", err)
	}
	if len(removed) == 0 {
		fmt.Fprintf(stdout, "no artifact key was retired %v ago or earlier\n", age)
		return nil
	}
	for _, kid := range removed {
		fmt.Fprintf(stdout, "removed retired artifact key %s\n", kid)
	}
	fmt.Fprintln(stdout, "restart govlogd to stop publishing them")
	return nil
}

// tokenBytes is the entropy of a generated bearer token.
const tokenBytes = 32

// newToken prints a random bearer token and the line of govlogd's token
// file that lets it in: the file holds only the token's SHA-256.
func newToken(f *flags, identity, perms string, stdout io.Writer) error {
	if identity == "" || strings.ContainsFunc(identity, func(r rune) bool { return r == ' ' || r == '\t' || r < 0x20 || r == 0x7f }) {
		return f.usagef("--token: the identity must be non-empty, without white space or control characters")
	}
	if identity == "anonymous" || identity == "*" {
		return f.usagef("--token: the identity %q is reserved", identity)
	}
	if perms != "" {
		for word := range strings.SplitSeq(perms, ",") {
			switch word {
			case "decisions", "executions", "read", "*", "none":
			default:
				return f.usagef("--permissions: unknown permission %q (want decisions, executions, read, * or none)", word)
			}
		}
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("failed to generate a token: %w", err)
	}
	tok := "govlog_" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	line := identity + " " + hex.EncodeToString(sum[:])
	if perms != "" {
		line += " " + perms
	}
	fmt.Fprintf(stdout, "token: %s\n", tok)
	fmt.Fprintf(stdout, "token file line: %s\n", line)
	return nil
}
