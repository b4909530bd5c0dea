package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/govlog/govlog/log"
)

// Handler returns the witness's HTTP API: POST /add-checkpoint, GET / and
// GET /<origin hash>/checkpoint (see the package documentation). Handlers
// decode the request, call the transport-free core (Update), and encode the
// result; errors map to statuses in one place, status.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.serveAddCheckpoint)
	mux.HandleFunc("GET /{$}", w.serveInfo)
	mux.HandleFunc("GET /{hash}/checkpoint", w.serveCheckpoint)
	return mux
}

// serveAddCheckpoint handles POST /add-checkpoint.
func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		http.Error(rw, fmt.Sprintf("the request body exceeds %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(rw, "failed to read the request body", http.StatusBadRequest)
		return
	}
	oldSize, consistency, checkpoint, err := ParseRequest(body)
	if err == nil {
		var cosig []byte
		if cosig, err = w.Update(r.Context(), oldSize, checkpoint, consistency); err == nil {
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			rw.Write(cosig)
			return
		}
	}
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		// SPEC: "The response body MUST consist of the tree size of the
		// latest cosigned checkpoint in decimal, followed by a newline
		// (U+000A). The response MUST have a `Content-Type` of
		// `text/x.tlog.size`."
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", conflict.Size)
		return
	}
	code := status(err)
	if code == http.StatusServiceUnavailable {
		w.logger.Error("failed to process add-checkpoint", "err", err)
		rw.Header().Set("Retry-After", "1")
	}
	http.Error(rw, err.Error(), code)
}

// status maps an error of Update or ParseRequest to its HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrOldSize):
		return http.StatusBadRequest
	case errors.Is(err, ErrNoSignature):
		return http.StatusForbidden
	case errors.Is(err, ErrUnknownLog):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrInconsistent):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusServiceUnavailable
	}
}

// ParseRequest parses an add-checkpoint request body: the old size, the
// consistency proof and the checkpoint note (not yet verified). Errors
// wrap ErrMalformed.
//
// SPEC: "The request body MUST be a sequence of an old size line, zero or
// more consistency proof lines, and an empty line, followed by a
// [checkpoint]. Each line MUST terminate in a newline character (U+000A)."
func ParseRequest(body []byte) (oldSize uint64, consistency [][]byte, checkpoint []byte, err error) {
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return 0, nil, nil, fmt.Errorf("%w: the body has no old size line", ErrMalformed)
	}
	// SPEC: "The old size line MUST consist of the string `old`, a single
	// space (0x20), and the tree size of the previous checkpoint encoded as
	// an ASCII decimal with no leading zeroes (unless the size is zero, in
	// which case the encoding MUST be `0`)."
	num, ok := strings.CutPrefix(string(line), "old ")
	if !ok {
		return 0, nil, nil, fmt.Errorf("%w: the first line is not \"old <size>\"", ErrMalformed)
	}
	if oldSize, err = parseDecimal(num); err != nil {
		return 0, nil, nil, fmt.Errorf("%w: old size: %w", ErrMalformed, err)
	}
	consistency = [][]byte{}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return 0, nil, nil, fmt.Errorf("%w: the body has no empty line before the checkpoint", ErrMalformed)
		}
		if len(line) == 0 {
			break
		}
		// SPEC: "Each consistency proof line MUST encode a single hash in
		// base64. The client MUST NOT send more than 63 consistency proof
		// lines."
		if len(consistency) == MaxProofHashes {
			return 0, nil, nil, fmt.Errorf("%w: more than %d consistency proof lines", ErrMalformed, MaxProofHashes)
		}
		// The line must be the hash's one encoding (FuzzParseRequest
		// found a \r inside one accepted).
		h, err := log.DecodeBase64(base64.StdEncoding, string(line))
		if err != nil || len(h) != 32 {
			return 0, nil, nil, fmt.Errorf("%w: consistency proof line %d is not the base64 of a 32-byte hash", ErrMalformed, len(consistency)+1)
		}
		consistency = append(consistency, h)
	}
	if len(rest) == 0 {
		return 0, nil, nil, fmt.Errorf("%w: the body has no checkpoint", ErrMalformed)
	}
	return oldSize, consistency, rest, nil
}

// parseDecimal parses a canonical ASCII decimal: digits only, no leading
// zeros unless the number is 0.
func parseDecimal(s string) (uint64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a canonical decimal")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// Info is the body of GET /.
type Info struct {
	// Name is the witness name.
	Name string `json:"name"`
	// VerifierKey is its cosignature/v1 verifier key.
	VerifierKey string `json:"verifier_key"`
	// Logs are the logs it follows.
	Logs []LogInfo `json:"logs"`
}

// LogInfo describes one log in Info. When several keys are trusted for an
// origin, the log appears once per key.
type LogInfo struct {
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
	TreeSize    uint64 `json:"tree_size"`
}

// Info describes the witness and the state of its logs.
func (w *Witness) Info(ctx context.Context) (*Info, error) {
	logs, err := w.Logs(ctx)
	if err != nil {
		return nil, err
	}
	info := &Info{Name: w.name, VerifierKey: w.verifierKey, Logs: []LogInfo{}}
	for _, l := range logs {
		for _, k := range l.VerifierKeys {
			info.Logs = append(info.Logs, LogInfo{Origin: l.Origin, VerifierKey: k, TreeSize: l.Size})
		}
	}
	return info, nil
}

// serveInfo handles GET /.
func (w *Witness) serveInfo(rw http.ResponseWriter, r *http.Request) {
	info, err := w.Info(r.Context())
	if err != nil {
		w.logger.Error("failed to read the witness state", "err", err)
		rw.Header().Set("Retry-After", "1")
		http.Error(rw, "the witness state is unavailable", http.StatusServiceUnavailable)
		return
	}
	b, err := json.Marshal(info)
	if err != nil {
		http.Error(rw, "failed to encode the witness info", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(append(b, '\n'))
}

// serveCheckpoint handles GET /<origin hash>/checkpoint.
//
// SPEC: "The origin hash is the SHA-256 hash of the log's origin, hex
// encoded, in lowercase. The response body MUST be a [checkpoint] for the
// log identified by the origin, and it MUST include the cosignature(s) from
// the witness's key(s) that were returned from add-checkpoint and the
// cosignature from the log key(s) that the witness verified." and "If the
// witness has never cosigned a checkpoint for that log, it MUST respond
// with a "404 Not Found" HTTP status code instead."
func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	origin, ok := w.originByHash(r.PathValue("hash"))
	if !ok {
		http.Error(rw, "no such log", http.StatusNotFound)
		return
	}
	cp, err := w.Checkpoint(r.Context(), origin)
	if err != nil {
		code := status(err)
		if code == http.StatusServiceUnavailable {
			rw.Header().Set("Retry-After", "1")
		}
		http.Error(rw, err.Error(), code)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Write(cp)
}
