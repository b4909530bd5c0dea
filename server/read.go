package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/docs"
	"github.com/govlog/govlog/log"
)

// idPattern is the syntax of decision and execution ids; a path id that
// does not match cannot be in the log.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// readyTimeout bounds the storage probe of /readyz.
const readyTimeout = 5 * time.Second

// getReceipt handles GET /v1/decisions/{id} and /v1/executions/{id}: the
// receipt against the latest checkpoint, never with an artifact.
func (s *Server) getReceipt(kind log.Kind) handlerFunc {
	return func(c echo.Context, _ query) error {
		id := c.Param("id")
		if !idPattern.MatchString(id) {
			return &apiError{http.StatusNotFound, codeNotFound, fmt.Sprintf("no %s has this id", kind)}
		}
		res, err := s.log.Lookup(c.Request().Context(), kind, id)
		if err != nil {
			return err
		}
		s.noteTreeSize(res.Checkpoint.Size)
		if res, err = s.witnessedReceipt(c.Request().Context(), res); err != nil {
			return err
		}
		rec := *res.Receipt
		rec.Artifact = ""
		return writeReceipt(c, http.StatusOK, &rec)
	}
}

// getCheckpoint handles GET /v1/checkpoint.
func (s *Server) getCheckpoint(c echo.Context, _ query) error {
	cp, err := s.log.Latest(c.Request().Context())
	if err != nil {
		return readError(err)
	}
	s.noteTreeSize(cp.Size)
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", s.cosignedNote(cp))
}

// latestSize returns the size of the latest checkpoint.
func (s *Server) latestSize(ctx context.Context) (uint64, error) {
	cp, err := s.log.Latest(ctx)
	if err != nil {
		return 0, readError(err)
	}
	s.noteTreeSize(cp.Size)
	return cp.Size, nil
}

// readError makes a failure to read the latest checkpoint unavailability:
// a log always has one (New creates the size-0 checkpoint).
func readError(err error) error {
	return fmt.Errorf("%w: failed to read the latest checkpoint: %w", log.ErrUnavailable, err)
}

type inclusionResponse struct {
	Index    uint64   `json:"index"`
	TreeSize uint64   `json:"tree_size"`
	Hashes   [][]byte `json:"hashes"`
}

// getInclusion handles GET /v1/proofs/inclusion.
func (s *Server) getInclusion(c echo.Context, q query) error {
	ctx := c.Request().Context()
	index, hasIndex, err := q.uint("index")
	if err != nil {
		return err
	}
	leafHash, hasHash, err := q.leafHash("leaf_hash")
	if err != nil {
		return err
	}
	switch {
	case hasIndex && hasHash:
		return invalidRequest("give index or leaf_hash, not both")
	case !hasIndex && !hasHash:
		return invalidRequest("index or leaf_hash is required")
	}
	size, hasSize, err := q.uint("tree_size")
	if err != nil {
		return err
	}
	latest, err := s.latestSize(ctx)
	if err != nil {
		return err
	}
	if !hasSize {
		size = latest
	}
	if size > latest {
		return invalidRequest("tree_size %d is beyond the log (size %d)", size, latest)
	}
	if hasHash {
		if index, err = s.log.Backend().LookupHash(ctx, leafHash); err != nil {
			return err
		}
	}
	if index >= size {
		return invalidRequest("index %d is not in the tree of size %d", index, size)
	}
	proof, err := s.log.Backend().InclusionProof(ctx, index, size)
	if err != nil {
		return err
	}
	return writeProof(c, `{"index":`, index, `,"tree_size":`, size, proof)
}

type consistencyResponse struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes [][]byte `json:"hashes"`
}

// getConsistency handles GET /v1/proofs/consistency.
func (s *Server) getConsistency(c echo.Context, q query) error {
	ctx := c.Request().Context()
	from, hasFrom, err := q.uint("from")
	if err != nil {
		return err
	}
	to, hasTo, err := q.uint("to")
	if err != nil {
		return err
	}
	if !hasFrom || !hasTo {
		return invalidRequest("from and to are required")
	}
	latest, err := s.latestSize(ctx)
	if err != nil {
		return err
	}
	if from == 0 || from > to || to > latest {
		return invalidRequest("need 0 < from <= to <= %d (the log size), got from %d, to %d", latest, from, to)
	}
	proof, err := s.log.Backend().ConsistencyProof(ctx, from, to)
	if err != nil {
		return err
	}
	return writeProof(c, `{"from":`, from, `,"to":`, to, proof)
}

// writeProof writes a proof answer, inclusionResponse or
// consistencyResponse: {"<a>":A,"<b>":B,"hashes":[…]}, byte for byte what
// writeJSON writes for them (the tests hold it to it), without the
// reflection: proofs are the most frequent reads.
func writeProof(c echo.Context, a string, av uint64, b string, bv uint64, proof [][32]byte) error {
	buf := answers.Get().(*[]byte)
	defer answers.Put(buf)
	*buf = appendProofJSON((*buf)[:0], a, av, b, bv, proof)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, *buf)
}

// appendProofJSON appends the JSON of a proof answer and a newline (as
// encodeJSON ends it).
func appendProofJSON(dst []byte, a string, av uint64, b string, bv uint64, proof [][32]byte) []byte {
	dst = append(dst, a...)
	dst = strconv.AppendUint(dst, av, 10)
	dst = append(dst, b...)
	dst = strconv.AppendUint(dst, bv, 10)
	dst = append(dst, `,"hashes":[`...)
	for i := range proof {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, proof[i][:])
		dst = append(dst, '"')
	}
	return append(dst, "]}\n"...)
}

type entriesResponse struct {
	Entries []entryItem `json:"entries"`
}

type entryItem struct {
	Index uint64 `json:"index"`
	Entry []byte `json:"entry"`
}

// getEntries handles GET /v1/entries.
func (s *Server) getEntries(c echo.Context, q query) error {
	ctx := c.Request().Context()
	start, hasStart, err := q.uint("start")
	if err != nil {
		return err
	}
	if !hasStart {
		return invalidRequest("start is required")
	}
	count, hasCount, err := q.uint("count")
	if err != nil {
		return err
	}
	switch {
	case !hasCount:
		count = MaxEntries
	case count < 1:
		return invalidRequest("count must be at least 1")
	case count > MaxEntries:
		count = MaxEntries
	}
	latest, err := s.latestSize(ctx)
	if err != nil {
		return err
	}
	if start >= latest {
		return invalidRequest("start %d is not below the log size %d", start, latest)
	}
	leaves, err := s.log.Backend().Entries(ctx, start, int(count))
	if err != nil {
		return err
	}
	out := entriesResponse{Entries: make([]entryItem, len(leaves))}
	for i, leaf := range leaves {
		out.Entries[i] = entryItem{start + uint64(i), leaf}
	}
	return writeJSON(c, http.StatusOK, out)
}

type logInfo struct {
	Origin             string `json:"origin"`
	VerifierKey        string `json:"verifier_key"`
	TreeSize           uint64 `json:"tree_size"`
	WitnessPolicy      string `json:"witness_policy"`
	JWKSURI            string `json:"jwks_uri"`
	ArtifactTTLSeconds int64  `json:"artifact_ttl_seconds"`
}

// getLogInfo handles GET /v1/log.
func (s *Server) getLogInfo(c echo.Context, _ query) error {
	size, err := s.latestSize(c.Request().Context())
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, logInfo{
		Origin:      s.log.Origin(),
		VerifierKey: s.cfg.VerifierKey,
		TreeSize:    size,
		// "" means none.
		WitnessPolicy:      s.witnessPolicy(),
		JWKSURI:            JWKSPath,
		ArtifactTTLSeconds: int64(s.log.ArtifactTTL() / time.Second),
	})
}

// getOpenAPI handles GET /openapi.json: docs/openapi.json, embedded.
func (s *Server) getOpenAPI(c echo.Context, _ query) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, docs.OpenAPI)
}

// getJWKS handles GET /.well-known/jwks.json.
func (s *Server) getJWKS(c echo.Context, _ query) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.jwks)
}

type statusBody struct {
	Status string `json:"status"`
}

// getHealthz is liveness: 200 while the process serves.
func (s *Server) getHealthz(c echo.Context, _ query) error {
	return writeJSON(c, http.StatusOK, statusBody{"ok"})
}

// getReadyz is readiness: 200 when the log can append now (in witness sync
// mode: and the witness quorum cosigns).
func (s *Server) getReadyz(c echo.Context, _ query) error {
	if err := s.accepting(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	if err := s.log.Ready(ctx); err != nil {
		return fmt.Errorf("%w: %w", log.ErrUnavailable, err)
	}
	// Without a key to check credentials with, no submission can be.
	if r, ok := s.cfg.Auth.(Readier); ok {
		if err := r.Ready(); err != nil {
			return &apiError{http.StatusServiceUnavailable, codeLogUnavailable, clip(err.Error())}
		}
	}
	// In sync mode a submission is acknowledged only once the witness
	// quorum cosigns: not ready while it has been stuck for longer than a
	// submission would wait.
	if w := s.cfg.Witnessing; w != nil && w.Sync {
		if err := w.Distributor.Ready(s.witnessTimeout()); err != nil {
			return fmt.Errorf("%w: %w", log.ErrUnavailable, err)
		}
	}
	return writeJSON(c, http.StatusOK, statusBody{"ready"})
}
