package distributor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// maxResponseBytes bounds a witness's answer.
const maxResponseBytes = 64 << 10

// maxConflictRetries is how many 409 answers one push follows.
const maxConflictRetries = 2

// maxClockSkew is how far the timestamp of a cosignature may be from the
// time of the request that got it, either way. A witness signs with its
// clock when it cosigns: a timestamp far from now is a broken clock or a
// replay, and a receipt carrying it would fail a verifier that checks
// freshness (tlog-cosignature: "verifiers MAY reject cosignatures with
// timestamps in the future").
const maxClockSkew = 10 * time.Minute

// worker pushes the rounds' checkpoints to one witness, one at a time.
type worker struct {
	d    *Distributor
	idx  int
	url  string
	key  note.Verifier
	jobs chan *round // capacity 1: the newest round not yet taken

	// The fields below are owned by the worker's goroutine.

	// size is the size the witness last cosigned for the log, as far as
	// the worker knows: 0 until it cosigns or a 409 says otherwise.
	size uint64
	// ahead is set when size comes from a 409 naming a size larger than
	// the log's: evidence of a fork, or a lie. It holds for the push that
	// learned it only; the next push asks the witness again from the size
	// it last cosigned, so that cosigning resumes once the witness is
	// fixed.
	ahead bool
	// last is the last cosignature the witness returned, and for which
	// checkpoint: a round of the same checkpoint reuses it.
	lastSize uint64
	lastHash [32]byte
	lastLine []byte
	// failures counts consecutive failed pushes (for the backoff).
	failures int
}

// pushError is a push the witness refused, or that did not reach it.
type pushError struct {
	result string // the metrics label
	err    error
}

func (e *pushError) Error() string { return e.err.Error() }
func (e *pushError) Unwrap() error { return e.err }

func (w *worker) run() {
	defer w.d.wg.Done()
	for {
		var r *round
		select {
		case <-w.d.ctx.Done():
			return
		case r = <-w.jobs:
		}
		start := time.Now()
		line, err := w.push(r.cp)
		w.d.metrics.push(w.key.Name(), err, time.Since(start))
		if w.d.ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			w.failures++
			level := w.d.logger.Debug
			if w.failures == 1 {
				level = w.d.logger.Warn
			}
			var pe *pushError
			if errors.As(err, &pe) && pe.result == "inconsistent" {
				level = w.d.logger.Error
			}
			level("failed to get a checkpoint cosigned", "witness", w.key.Name(), "url", w.url, "size", r.cp.Size,
				"failures", w.failures, "err", err)
		case w.failures > 0:
			w.d.logger.Info("witness is cosigning again", "witness", w.key.Name(), "size", r.cp.Size, "after_failures", w.failures)
			w.failures = 0
		}
		w.d.report(r, w, line, pushResult(err))
		if w.failures > 0 {
			backoff := min(w.d.cfg.MaxBackoff, 50*time.Millisecond<<min(w.failures, 10))
			select {
			case <-w.d.ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// push gets cp cosigned and returns the witness's verified cosignature
// line(s).
func (w *worker) push(cp log.Checkpoint) ([]byte, error) {
	if w.lastLine != nil && w.lastSize == cp.Size && w.lastHash == cp.Hash {
		return w.lastLine, nil
	}
	if w.ahead {
		w.size, w.ahead = w.lastSize, false
	}
	for attempt := 0; ; attempt++ {
		old := w.size
		if old > cp.Size {
			return nil, &pushError{"conflict", fmt.Errorf("the witness cosigned size %d, more than this checkpoint's %d; waiting for a newer checkpoint", old, cp.Size)}
		}
		body, err := w.request(old, cp)
		if err != nil {
			return nil, &pushError{"error", err}
		}
		sent := time.Now()
		status, resp, err := w.post(body)
		if err != nil {
			return nil, &pushError{"unreachable", err}
		}
		switch {
		case status == http.StatusOK:
			line, err := w.verify(cp, resp, sent)
			if err != nil {
				return nil, &pushError{"invalid_cosignature", err}
			}
			w.size, w.ahead = cp.Size, false
			w.lastSize, w.lastHash, w.lastLine = cp.Size, cp.Hash, line
			return line, nil
		case status == http.StatusConflict && attempt < maxConflictRetries:
			// SPEC: "If it doesn't match, the witness MUST respond with a
			// "409 Conflict" HTTP status code. The response body MUST
			// consist of the tree size of the latest cosigned checkpoint in
			// decimal, followed by a newline".
			n, err := strconv.ParseUint(strings.TrimSpace(string(resp)), 10, 64)
			if err != nil {
				return nil, &pushError{"conflict", fmt.Errorf("the witness answered 409 without a tree size: %q", clip(resp))}
			}
			if n == old {
				return nil, &pushError{"conflict", fmt.Errorf("the witness answered 409 with the old size %d it was sent", n)}
			}
			w.d.mu.Lock()
			latest := w.d.latest.Size
			w.d.mu.Unlock()
			w.ahead = n > latest
			if w.ahead {
				w.d.logger.Error("a witness has cosigned a checkpoint of this log larger than the log: "+
					"the log's storage was rolled back, or another log uses its key and origin",
					"witness", w.key.Name(), "witness_size", n, "log_size", latest)
			}
			w.d.metrics.push(w.key.Name(), &pushError{"conflict", nil}, 0)
			w.size = n
		default:
			return nil, &pushError{resultOf(status), fmt.Errorf("the witness answered %d: %s", status, clip(resp))}
		}
	}
}

// request builds the add-checkpoint body for cp from the size old.
func (w *worker) request(old uint64, cp log.Checkpoint) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	if old > 0 && old < cp.Size {
		ctx, cancel := context.WithTimeout(w.d.ctx, w.d.cfg.PushTimeout)
		p, err := w.d.cfg.Source.ConsistencyProof(ctx, old, cp.Size)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("failed to read the consistency proof from %d to %d: %w", old, cp.Size, err)
		}
		for _, h := range p {
			b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	b.Write(cp.Note)
	return b.Bytes(), nil
}

// post sends an add-checkpoint request.
func (w *worker) post(body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(w.d.ctx, w.d.cfg.PushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("failed to build the request: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := w.d.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("failed to reach the witness: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("failed to read the witness's answer: %w", err)
	}
	if len(b) > maxResponseBytes {
		return 0, nil, fmt.Errorf("the witness's answer exceeds %d bytes", maxResponseBytes)
	}
	return resp.StatusCode, b, nil
}

// verify checks a 200 answer to a request sent at sent: signature lines,
// among which a valid cosignature by the witness's key on cp's body, with
// a timestamp within maxClockSkew of the request. It returns that
// signature's line; the others are ignored.
//
// SPEC: "The client MUST ignore any cosignatures from unknown keys. To parse
// the response, the client MAY concatenate it to the checkpoint, and use a
// [note] verification function configured with the witness keys it
// trusts."
func (w *worker) verify(cp log.Checkpoint, resp []byte, sent time.Time) ([]byte, error) {
	if len(resp) == 0 || !bytes.HasSuffix(resp, []byte("\n")) {
		return nil, fmt.Errorf("the witness's answer is not signature lines: %q", clip(resp))
	}
	i := bytes.LastIndex(cp.Note, []byte("\n\n"))
	if i < 0 {
		return nil, errors.New("the checkpoint pushed is not a signed note")
	}
	text := cp.Note[:i+2] // the checkpoint body and the blank line
	n, err := note.Open(append(bytes.Clone(text), resp...), note.VerifierList(w.key))
	if err != nil {
		return nil, fmt.Errorf("the witness's answer holds no valid cosignature by %s: %w", w.key.Name(), err)
	}
	if len(n.Sigs) != 1 {
		return nil, fmt.Errorf("the witness's answer holds %d cosignatures by its key", len(n.Sigs))
	}
	// SPEC: "timestamp is the time at which the cosignature was generated,
	// as a POSIX timestamp. It MUST NOT exceed 2^63 - 1". The verifier
	// checked key ID || timestamp || signature. The cosignature is stored
	// and served as the witness wrote it, so it must be the one canonical
	// base64 of its bytes: x/mod's note decoder also takes the encodings
	// whose unused low bits are set, which strict verifiers refuse.
	sig, err := log.DecodeBase64(base64.StdEncoding, n.Sigs[0].Base64)
	if err != nil || len(sig) < 12 {
		return nil, fmt.Errorf("the witness's cosignature is not key ID, timestamp and signature: %q", clip(resp))
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	if ts > math.MaxInt64 {
		return nil, fmt.Errorf("the witness's cosignature has timestamp %d, beyond 2^63-1", ts)
	}
	if at := time.Unix(int64(ts), 0); at.Before(sent.Add(-maxClockSkew)) || at.After(time.Now().Add(maxClockSkew)) {
		return nil, fmt.Errorf("the witness's cosignature is dated %s, more than %v away from the request (%s): is its clock wrong?",
			at.UTC().Format(time.RFC3339), maxClockSkew, sent.UTC().Format(time.RFC3339))
	}
	return fmt.Appendf(nil, "— %s %s\n", n.Sigs[0].Name, n.Sigs[0].Base64), nil
}

// resultOf names a refusal for the metrics.
func resultOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "unknown_log"
	case http.StatusConflict:
		return "conflict"
	case http.StatusUnprocessableEntity:
		return "inconsistent"
	default:
		return "refused"
	}
}

// clip shortens a witness's answer for errors and logs.
func clip(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
