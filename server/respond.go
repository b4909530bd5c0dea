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
// into buffers kept between answers (a receipt is about 4 KiB, a batch
// answer about 4 MiB).
var answers = sync.Pool{New: func() any { return new([]byte) }}

// writeReceipt writes a receipt as the body of the answer.
func writeReceipt(c echo.Context, status int, rec *log.Receipt) error {
	buf := answers.Get().(*[]byte)
	defer answers.Put(buf)
	*buf = append(rec.AppendJSON((*buf)[:0]), '\n')
	return c.Blob(status, echo.MIMEApplicationJSON, *buf)
}

// writeResults writes the answer of a batch, {"results":[…]}: a receipt or
// an errorBody per item.
func writeResults(c echo.Context, results []any) error {
	buf := answers.Get().(*[]byte)
	defer answers.Put(buf)
	b := append((*buf)[:0], `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		if rec, ok := r.(*log.Receipt); ok {
			b = rec.AppendJSON(b)
			continue
		}
		j, err := encodeJSON(r)
		if err != nil {
			return err
		}
		b = append(b, bytes.TrimSuffix(j, []byte("\n"))...)
	}
	*buf = append(b, "]}\n"...)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, *buf)
}
