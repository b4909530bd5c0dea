package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/govlog/govlog/log"
)

// Execution evidence (wire contract §2b-§2e): violations answered with
// their receipt, revocations, authorization status, logged artifact keys.

// logKey appends the key entry of the artifact signing key (an identical
// entry already logged is a resubmission) and returns its index: the
// key_index of every artifact this server signs. New calls it before
// anything is signed with the key.
func logKey(ctx context.Context, l *log.Log, key jwk.Key) (uint64, error) {
	var raw ed25519.PrivateKey
	if err := key.Raw(&raw); err != nil {
		return 0, fmt.Errorf("failed to read the artifact key: %w", err)
	}
	content, err := log.NewKeyContent(key.KeyID(), raw.Public().(ed25519.PublicKey))
	if err != nil {
		return 0, err
	}
	res, err := l.Submit(ctx, log.KeySubmission(content, l.Origin()))
	if err != nil {
		return 0, fmt.Errorf("failed to log the artifact key %q: %w", key.KeyID(), err)
	}
	return res.Receipt.Index, nil
}

// violationBody is the answer to a report the log recorded with a
// violation: the error and the receipt of the recorded entry.
type violationBody struct {
	Error   errorDetail     `json:"error"`
	Receipt json.RawMessage `json:"receipt"`
}

// writeViolation answers 409 with the violation and the receipt. The
// message depends on the violation only, so that a resubmission of the
// report gets the same answer.
func writeViolation(c echo.Context, violation string, rec *log.Receipt) error {
	return writeJSON(c, http.StatusConflict, violationBody{
		Error: errorDetail{Code: violation, Message: "the report is logged with the violation " + violation +
			": the execution is not authorized; do not execute"},
		Receipt: rec.AppendJSON(nil),
	})
}

// postRevocation handles POST /v1/revocations.
func (s *Server) postRevocation(c echo.Context, _ query) error {
	ctx, cancel, body, who, err := s.single(c, PermDecisions)
	if err != nil {
		return err
	}
	defer cancel()
	r, err := log.ParseRevocation(body, s.cfg.Clock())
	if err != nil {
		return err
	}
	res, err := s.log.Submit(ctx, log.RevocationSubmission(r, who))
	if err != nil {
		return submitError(err)
	}
	s.noteTreeSize(res.Checkpoint.Size)
	if res, err = s.acknowledge(ctx, res); err != nil {
		return err
	}
	return writeReceipt(c, createdStatus(res.Created), res.Receipt)
}

// authorizationBody is the answer of GET /v1/authorizations/{id}.
type authorizationBody struct {
	DecisionID      string            `json:"decision_id"`
	Status          string            `json:"status"`
	AuthorizedUntil string            `json:"authorized_until,omitempty"`
	MaxExecutions   int               `json:"max_executions,omitempty"`
	Executor        string            `json:"executor,omitempty"`
	Uses            int               `json:"uses"`
	Checkpoint      string            `json:"checkpoint"`
	Receipts        []json.RawMessage `json:"receipts"`
}

// getAuthorization handles GET /v1/authorizations/{decision_id}.
func (s *Server) getAuthorization(c echo.Context, _ query) error {
	id := c.Param("id")
	if !idPattern.MatchString(id) {
		return &apiError{http.StatusNotFound, codeNotFound, "no decision has this id"}
	}
	ev, err := s.log.Authorization(c.Request().Context(), id)
	if errors.Is(err, log.ErrNotFound) {
		return &apiError{http.StatusNotFound, codeNotFound, "no decision has this id"}
	}
	if err != nil {
		return submitError(err)
	}
	s.noteTreeSize(ev.Checkpoint.Size)
	out := authorizationBody{DecisionID: id, Status: ev.Status, Checkpoint: string(ev.Checkpoint.Note)}
	if a := ev.Authorization; a != nil {
		out.AuthorizedUntil = a.AuthorizedUntil.Format(log.AuthorizedUntilLayout)
		out.MaxExecutions, out.Executor, out.Uses = a.MaxExecutions, a.Executor, a.Uses
	}
	for _, rec := range ev.Receipts {
		out.Receipts = append(out.Receipts, rec.AppendJSON(nil))
	}
	return writeJSON(c, http.StatusOK, out)
}

// keyBody is one logged artifact key of GET /v1/keys.
type keyBody struct {
	KID     string          `json:"kid"`
	JWK     json.RawMessage `json:"jwk"`
	Index   uint64          `json:"index"`
	Receipt json.RawMessage `json:"receipt"`
}

// getKeys handles GET /v1/keys: the current and retired artifact keys
// that are logged, each with its receipt against the latest checkpoint.
func (s *Server) getKeys(c echo.Context, _ query) error {
	ctx := c.Request().Context()
	cp, err := s.log.Latest(ctx)
	if err != nil {
		return readError(err)
	}
	s.noteTreeSize(cp.Size)
	kids := []string{s.cfg.ArtifactKey.KeyID()}
	for _, k := range s.cfg.RetiredArtifactKeys {
		if k.KeyID() != kids[0] {
			kids = append(kids, k.KeyID())
		}
	}
	out := struct {
		Keys []keyBody `json:"keys"`
	}{Keys: []keyBody{}}
	for _, kid := range kids {
		rec, err := s.log.LookupAt(ctx, log.KindKey, kid, cp)
		if errors.Is(err, log.ErrNotFound) {
			continue // a retired key that was never logged
		}
		if err != nil {
			return submitError(err)
		}
		p, err := log.ParseEntry(rec.Entry)
		if err != nil || p.Key == nil {
			return fmt.Errorf("%w: the key entry of %q does not parse", log.ErrUnavailable, kid)
		}
		var member struct {
			JWK json.RawMessage `json:"jwk"`
		}
		if err := json.Unmarshal(p.Content, &member); err != nil {
			return fmt.Errorf("%w: the key entry of %q does not parse", log.ErrUnavailable, kid)
		}
		out.Keys = append(out.Keys, keyBody{KID: kid, JWK: member.JWK, Index: rec.Index, Receipt: rec.AppendJSON(nil)})
	}
	return writeJSON(c, http.StatusOK, out)
}

// keyTimeout bounds the append of the key entry at start.
const keyTimeout = 30 * time.Second
