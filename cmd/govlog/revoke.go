package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/govlog/govlog/log"
)

// revokeReport is what revoke --json prints.
type revokeReport struct {
	ID         string `json:"id"`
	DecisionID string `json:"decision_id"`
	Index      uint64 `json:"index"`
	Created    bool   `json:"created"`
	Verified   bool   `json:"verified"`
}

// revoke logs the revocation of an allow (wire contract §2c).
func revoke(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("revoke", "--decision ID [flags]",
		"Withdraw an allow: log a revocation of decision ID. Later claims on it are recorded as violations (revoked), "+
			"and decisions naming it as parent are refused. The revocation's id is derived from the decision's unless --id "+
			"is given: the same command with the same --at logs it once (a retry gets the original receipt).")
	srv := addServerFlags(f)
	timeout := f.Duration("timeout", 30*time.Second, "give up after this long, retries included")
	f.Group("Revocation")
	decision := f.String("decision", "", "the `id` of the allow to revoke (required)")
	reason := f.String("reason", "", "why, in 1 to 1024 characters (logged)")
	id := f.String("id", "", "the revocation's `id` (default: revoke- and the decision id, or a digest of it when that is too long)")
	at := f.String("at", "", "revoked_at, an RFC 3339 `timestamp` (default: now, to the second)")
	keyArg := f.String("log-key", "", "verify the receipt with this note verifier `key` (a file or the key text)")
	asJSON := f.Bool("json", false, "print a JSON report instead of text")
	f.Example("govlog revoke --url http://127.0.0.1:8080 --decision deploy-42 --reason 'credentials leaked'", "revoke deploy-42")
	if err := srv.parse(f, args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %s", field(f.Arg(0)))
	}
	if *decision == "" {
		return f.usagef("--decision is required")
	}
	if *id == "" {
		*id = "revoke-" + *decision
		if len(*id) > 128 {
			sum := sha256.Sum256([]byte(*decision))
			*id = "revoke-" + hex.EncodeToString(sum[:16])
		}
	}
	c, _, err := srv.newClient(f, *keyArg)
	if err != nil {
		return err
	}
	if *at == "" {
		*at = time.Now().UTC().Format(time.RFC3339)
	}
	body := map[string]string{"id": *id, "decision_id": *decision, "revoked_at": *at}
	if *reason != "" {
		body["reason"] = *reason
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if _, err := log.ParseRevocation(b, time.Now()); err != nil {
		return f.usagef("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, created, err := c.Revoke(ctx, b)
	if err != nil {
		return err
	}
	rep := revokeReport{ID: *id, DecisionID: *decision, Index: r.Index, Created: created, Verified: *keyArg != ""}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "revocation %s of decision %s: %s at index %d\n", field(*id), field(*decision), loggedState(created), r.Index)
	if rep.Verified {
		fmt.Fprintln(stdout, "receipt: verified with the log key")
	}
	return nil
}
