package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// exportPage is how many entries GET /v1/export reads (and proves) at a
// time: its memory does not grow with the number of entries.
const exportPage = 1000

// exportWriteTimeout bounds the writing of one bundle.
const exportWriteTimeout = 15 * time.Minute

// maxExport is the most entries one export holds.
func (s *Server) maxExport() int {
	if s.exportLimit > 0 {
		return s.exportLimit
	}
	return verifier.MaxBundleEntries
}

// getExport handles GET /v1/export: the evidence bundle
// (verifier.BundleFormat) of the entries matching the filters, every
// inclusion proof against the latest checkpoint, streamed.
func (s *Server) getExport(c echo.Context, q query) error {
	ctx := c.Request().Context()
	lq, err := parseSearchQuery(q)
	if err != nil {
		return err
	}
	cp, err := s.log.Latest(ctx)
	if err != nil {
		return readError(err)
	}
	s.noteTreeSize(cp.Size)
	backend := s.log.Backend()
	// Count first: a bundle that would be too large is refused before
	// anything is written.
	count := 0
	for start := uint64(0); start < cp.Size; {
		found, err := backend.Search(ctx, lq, start, cp.Size, exportPage)
		if err != nil {
			return err
		}
		count += len(found)
		if count > s.maxExport() {
			return &apiError{http.StatusRequestEntityTooLarge, codeTooLarge,
				fmt.Sprintf("at least %d entries match, an export holds at most %d: narrow the filters (such as from and to)", count, s.maxExport())}
		}
		if len(found) < exportPage {
			break
		}
		start = found[len(found)-1].Index + 1
	}
	filters := map[string]string{}
	for k, v := range q {
		filters[k] = v
	}
	head, err := json.Marshal(struct {
		Format      string            `json:"format"`
		Origin      string            `json:"origin"`
		VerifierKey string            `json:"verifier_key"`
		Checkpoint  string            `json:"checkpoint"`
		Query       map[string]string `json:"query"`
	}{verifier.BundleFormat, s.log.Origin(), s.cfg.VerifierKey, string(s.cosignedNote(cp)), filters})
	if err != nil {
		return err
	}
	keys, err := s.bundleKeys(ctx, cp.Size)
	if err != nil {
		return err
	}

	// From here on the answer is 200: a failure can only break the
	// connection off, which leaves a bundle that does not parse.
	resp := c.Response()
	// A large bundle may take longer than the server's write timeout,
	// which is sized for submissions.
	_ = http.NewResponseController(resp.Writer).SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	resp.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	resp.Header().Set("Content-Disposition", `attachment; filename="evidence.json"`)
	resp.WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(resp, 64<<10)
	w.Write(head[:len(head)-1])
	w.WriteString(`,"entries":[`)
	var buf []byte
	n := 0
	for start := uint64(0); start < cp.Size; {
		found, err := backend.Search(ctx, lq, start, cp.Size, exportPage)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		for _, f := range found {
			proof, err := backend.InclusionProof(ctx, f.Index, cp.Size)
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			buf = buf[:0]
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"index":`...)
			buf = strconv.AppendUint(buf, f.Index, 10)
			buf = append(buf, `,"entry":"`...)
			buf = base64.StdEncoding.AppendEncode(buf, f.Leaf)
			buf = append(buf, `","inclusion_proof":[`...)
			for i, h := range proof {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, '"')
				buf = base64.StdEncoding.AppendEncode(buf, h[:])
				buf = append(buf, '"')
			}
			buf = append(buf, "]}"...)
			if _, err := w.Write(buf); err != nil {
				panic(http.ErrAbortHandler)
			}
			n++
		}
		if n > s.maxExport() {
			// More matched than when counted: entries only grow beyond
			// cp.Size, which the search does not reach, so this is storage
			// misbehaving.
			panic(http.ErrAbortHandler)
		}
		if len(found) < exportPage {
			break
		}
		start = found[len(found)-1].Index + 1
		if err := w.Flush(); err != nil {
			panic(http.ErrAbortHandler)
		}
		resp.Flush()
	}
	w.WriteString(`],"keys":`)
	w.Write(keys)
	w.WriteString("}\n")
	if err := w.Flush(); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// bundleKeys returns the keys member of a bundle: every artifact key the
// log holds below size (its key entries, wire contract §2e), each with
// its JWK and its receipt (without artifact) against the latest
// checkpoint.
func (s *Server) bundleKeys(ctx context.Context, size uint64) ([]byte, error) {
	found, err := s.log.Backend().Search(ctx, &log.Query{Kind: log.SearchKey}, 0, size, maxBundleKeys)
	if err != nil {
		return nil, err
	}
	out := []byte{'['}
	for i, f := range found {
		p, err := log.ParseEntry(f.Leaf)
		if err != nil || p.Key == nil {
			return nil, fmt.Errorf("%w: key entry %d does not parse: %w", log.ErrUnavailable, f.Index, err)
		}
		var content struct {
			JWK json.RawMessage `json:"jwk"`
		}
		if err := json.Unmarshal(p.Key.Canonical, &content); err != nil {
			return nil, fmt.Errorf("%w: key entry %d: %w", log.ErrUnavailable, f.Index, err)
		}
		res, err := s.log.Lookup(ctx, log.KindKey, p.Key.KID)
		if err != nil {
			return nil, err
		}
		if res, err = s.witnessedReceipt(ctx, res); err != nil {
			return nil, err
		}
		rec := *res.Receipt
		rec.Artifact = ""
		if i > 0 {
			out = append(out, ',')
		}
		kid, _ := json.Marshal(p.Key.KID)
		out = append(out, `{"kid":`...)
		out = append(out, kid...)
		out = append(out, `,"jwk":`...)
		out = append(out, content.JWK...)
		out = append(out, `,"index":`...)
		out = strconv.AppendUint(out, f.Index, 10)
		out = append(out, `,"receipt":`...)
		out = rec.AppendJSON(out)
		out = append(out, '}')
	}
	return append(out, ']'), nil
}

// maxBundleKeys is the most artifact keys a bundle lists (the verifier's
// limit).
const maxBundleKeys = 1000
