package server

import (
	"bytes"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/log"
)

// Receipts are the bulk of what the server writes: they are appended by
// hand (log.Receipt.AppendJSON), byte for byte what encodeJSON would write,
// into buffers kept between answers (a receipt is about 4 KiB; a batch's
// answer is written in pieces of about 64 KiB).
var answers = sync.Pool{New: func() any { return new([]byte) }}

// writeReceipt writes a receipt as the body of the answer.
func writeReceipt(c echo.Context, status int, rec *log.Receipt) error {
	buf := answers.Get().(*[]byte)
	defer answers.Put(buf)
	*buf = append(rec.AppendJSON((*buf)[:0]), '\n')
	return c.Blob(status, echo.MIMEApplicationJSON, *buf)
}

// writeResults writes the answer of a batch, {"results":[…]}: a receipt or
// an errorBody per item. The answer (about 4 MiB for 1,000 receipts) is
// written as it is built, a piece of about resultsChunk bytes at a time,
// from one pooled buffer: a whole answer in memory per request made the
// server copy it over and over as it grew, and churned the heap.
func writeResults(c echo.Context, results []any) error {
	// The error bodies first (the few refused items): nothing can fail
	// once the answer has begun.
	var encoded map[int][]byte
	for i, r := range results {
		if _, ok := r.(*log.Receipt); ok {
			continue
		}
		j, err := encodeJSON(r)
		if err != nil {
			return err
		}
		if encoded == nil {
			encoded = make(map[int][]byte)
		}
		encoded[i] = bytes.TrimSuffix(j, []byte("\n"))
	}
	buf := answers.Get().(*[]byte)
	defer answers.Put(buf)
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.WriteHeader(http.StatusOK)
	b := append((*buf)[:0], `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		if rec, ok := r.(*log.Receipt); ok {
			b = rec.AppendJSON(b)
		} else {
			b = append(b, encoded[i]...)
		}
		if len(b) >= resultsChunk {
			if _, err := w.Write(b); err != nil {
				*buf = b
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, "]}\n"...)
	*buf = b
	_, err := w.Write(b)
	return err
}

// resultsChunk is about how much of a batch's answer is written at once.
const resultsChunk = 64 << 10
