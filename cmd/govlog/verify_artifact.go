package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// artifactResult is the JSON report of govlog verify-artifact.
type artifactResult struct {
	OK     bool                `json:"ok"`
	Error  string              `json:"error,omitempty"`
	Claims *log.ArtifactClaims `json:"claims,omitempty"`
	// Key is the logged key that signed the artifact (not with --jwks).
	Key *artifactKey `json:"key,omitempty"`
}

type artifactKey struct {
	Kid            string `json:"kid"`
	Index          uint64 `json:"index"`
	CheckpointSize uint64 `json:"checkpoint_size"`
}

// verifyArtifact checks an authorization artifact offline.
func verifyArtifact(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	f := newFlags("verify-artifact", "[flags] ARTIFACT|FILE|-",
		"Check an authorization artifact (a JWT) offline with nothing but the log's verifier key: the receipt of its signing key's "+
			"key entry, the signature with that key, its claims and expiry, and optionally what it must authorize.")
	keyArg := f.String("log-key", "", "the log's note verifier `key`: a file holding it, or the key text (required)")
	f.Group("Where the artifact key's receipt comes from (one of)")
	keysArg := f.String("keys", "", "the log's artifact keys with their receipts, as GET /v1/keys answers, in `FILE`")
	keyReceiptArg := f.String("key-receipt", "", "the receipt of the signing key's key entry (tlog-proof or JSON receipt) in `FILE`")
	urlArg := f.String("url", "", "fetch GET /v1/keys from the log at this base `URL`, once")
	jwksArg := f.String("jwks", "", "a JWKS `FILE` (GET /.well-known/jwks.json) instead: checks the signature, not that the key was logged")
	f.Group("What the artifact must be")
	policyArg := f.String("witness-policy", "", "the key receipt's checkpoint must satisfy this witness policy `file`")
	audience := f.String("audience", "", "the `aud` the artifact must name (by default it must name none)")
	receiptArg := f.String("receipt", "", "the receipt the artifact came with, in `FILE`: the artifact must be bound to its entry and checkpoint")
	action := f.String("action", "", "the `action` about to be executed: the artifact's must be exactly this")
	resource := f.String("resource", "", "the `resource` it acts on (with --action; none by default)")
	subject := f.String("subject", "", "the `subject` about to act (with --action), when it must be checked")
	atArg := f.String("at", "", "check exp and nbf at this RFC 3339 `time` instead of now")
	asJSON := f.Bool("json", false, "print a JSON report")
	f.Example("govlog verify-artifact --log-key log.vkey --keys keys.json --action deploy --resource svc/api ARTIFACT", "before executing: is this artifact a valid authorization of exactly this?")
	f.Example("govlog verify-artifact --log-key log.vkey --url https://govlog.example artifact.jwt --json", "the key receipt fetched from the log, a JSON report")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	sources := 0
	for _, s := range []string{*keysArg, *keyReceiptArg, *urlArg, *jwksArg} {
		if s != "" {
			sources++
		}
	}
	switch {
	case *keyArg == "":
		return f.usagef("--log-key is required")
	case sources != 1:
		return f.usagef("want exactly one of --keys, --key-receipt, --url and --jwks")
	case f.NArg() != 1:
		return f.usagef("want one artifact (the JWT, a file holding it, or -), got %d arguments", f.NArg())
	case *action == "" && (*resource != "" || *subject != ""):
		return f.usagef("--resource and --subject go with --action")
	}
	key, err := readVerifierKey(*keyArg)
	if err != nil {
		return f.usagef("--log-key: %v", err)
	}
	opts := artifact.KeyBoundOptions{Options: artifact.Options{Origin: key.Name(), Audience: *audience}}
	if *policyArg != "" {
		if *jwksArg != "" {
			return f.usagef("--witness-policy checks the key receipt: not with --jwks")
		}
		if opts.Policy, err = readPolicy(*policyArg); err != nil {
			return f.usagef("--witness-policy: %v", err)
		}
	}
	if *atArg != "" {
		t, err := time.Parse(time.RFC3339Nano, *atArg)
		if err != nil {
			return f.usagef("--at: %q is not an RFC 3339 time", *atArg)
		}
		opts.Now = t
	}
	if *action != "" {
		opts.Expect = &artifact.Expected{Action: *action, Resource: *resource, Subject: *subject}
	}
	token, err := readArtifact(f.Arg(0), stdin)
	if err != nil {
		return f.usagef("%v", err)
	}
	if *receiptArg != "" {
		data, err := readInput(*receiptArg, stdin, verifier.MaxReceiptBytes)
		if err != nil {
			return f.usagef("--receipt: %v", err)
		}
		if opts.Receipt, err = verifyReceipt(data, key); err != nil {
			return artifactFailed(stdout, *asJSON, fmt.Errorf("the receipt does NOT verify: %w", err))
		}
	}

	res := artifactResult{}
	var vk *verifier.VerifiedKey
	switch {
	case *jwksArg != "":
		data, err := readInput(*jwksArg, stdin, artifact.MaxKeysBytes)
		if err != nil {
			return f.usagef("--jwks: %v", err)
		}
		set, err := jwk.Parse(data)
		if err != nil {
			return f.usagef("--jwks: %v", err)
		}
		res.Claims, err = artifact.Verify(token, set, opts.Options)
		if err == nil && opts.Expect != nil {
			err = expectClaims(res.Claims, opts.Expect)
		}
		if err != nil {
			return artifactFailed(stdout, *asJSON, err)
		}
	case *keyReceiptArg != "":
		data, err := readInput(*keyReceiptArg, stdin, verifier.MaxReceiptBytes)
		if err != nil {
			return f.usagef("--key-receipt: %v", err)
		}
		if res.Claims, vk, err = artifact.VerifyKeyBound(token, data, key, opts); err != nil {
			return artifactFailed(stdout, *asJSON, err)
		}
	default:
		var keys []byte
		if *keysArg != "" {
			if keys, err = readInput(*keysArg, stdin, artifact.MaxKeysBytes); err != nil {
				return f.usagef("--keys: %v", err)
			}
		} else if keys, err = fetchKeys(ctx, *urlArg); err != nil {
			return f.usagef("--url: %v", err)
		}
		if res.Claims, vk, err = artifact.VerifyWithKeys(token, keys, key, opts); err != nil {
			return artifactFailed(stdout, *asJSON, err)
		}
	}
	res.OK = true
	if vk != nil {
		res.Key = &artifactKey{Kid: vk.Key.KID, Index: vk.Index, CheckpointSize: vk.Checkpoint.Size}
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	c := res.Claims
	fmt.Fprintf(stdout, "OK: artifact of decision %s, valid until %s, issued by the log %s\n", field(c.ID),
		time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339), field(c.Issuer))
	line := func(name, value string) {
		if value != "" {
			fmt.Fprintf(stdout, "%s: %s\n", name, field(value))
		}
	}
	line("subject", c.Subject)
	line("action", c.Action)
	line("resource", c.Resource)
	line("audience", c.Audience)
	fmt.Fprintf(stdout, "index: %d (the decision's entry)\n", c.Govlog.Index)
	if vk != nil {
		fmt.Fprintf(stdout, "key: %s, logged at index %d (receipt against the checkpoint of size %d)\n", field(vk.Key.KID), vk.Index, vk.Checkpoint.Size)
	} else {
		fmt.Fprintln(stdout, "key: from the JWKS given; not checked against the log (use --keys, --key-receipt or --url for that)")
	}
	if opts.Expect != nil {
		fmt.Fprintln(stdout, "authorizes: exactly the action, resource and subject expected")
	}
	return nil
}

// errArtifactInvalid is returned (exit status 1) once a failed check is
// printed.
var errArtifactInvalid = errors.New("the artifact does NOT verify")

// artifactFailed prints why an artifact does not verify and returns the
// error of exit status 1.
func artifactFailed(stdout io.Writer, asJSON bool, err error) error {
	if asJSON {
		if perr := printJSON(stdout, artifactResult{Error: err.Error()}); perr != nil {
			return perr
		}
		return errArtifactInvalid
	}
	return fmt.Errorf("%w: %w", errArtifactInvalid, err)
}

// expectClaims checks that verified claims authorize what e says.
func expectClaims(c *log.ArtifactClaims, e *artifact.Expected) error {
	switch {
	case c.Action != e.Action:
		return fmt.Errorf("%w: it authorizes action %q, not %q", artifact.ErrNotAuthorized, c.Action, e.Action)
	case c.Resource != e.Resource:
		return fmt.Errorf("%w: it authorizes resource %q, not %q", artifact.ErrNotAuthorized, c.Resource, e.Resource)
	case e.Subject != "" && c.Subject != e.Subject:
		return fmt.Errorf("%w: it authorizes subject %q, not %q", artifact.ErrNotAuthorized, c.Subject, e.Subject)
	}
	return nil
}

// readArtifact returns the token given as an argument: the JWT itself, a
// file holding it, or - for stdin.
func readArtifact(arg string, stdin io.Reader) (string, error) {
	if arg != "-" && strings.Count(arg, ".") == 2 && !strings.ContainsAny(arg, "/\\ \n") {
		return arg, nil
	}
	data, err := readInput(arg, stdin, artifact.MaxBytes+2)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// fetchKeys GETs /v1/keys from the log at base.
func fetchKeys(ctx context.Context, base string) ([]byte, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", base)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("/v1/keys").String(), nil)
	if err != nil {
		return nil, err
	}
	token, err := readToken("")
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to get the log's keys: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, artifact.MaxKeysBytes+1))
	if err != nil {
		return nil, fmt.Errorf("failed to get the log's keys: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to get the log's keys: GET %s answered %d", req.URL, resp.StatusCode)
	}
	return body, nil
}
