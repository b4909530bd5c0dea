package server

import (
	"log"
	"net/http"
	"os"
	"runtime/debug"
	"time"
)

// gcPercent is the garbage collector's target unless GOGC is set: the
// request path allocates short-lived buffers, memory is plentiful next to
// CPU on a log server, and collecting 4× less often measurably raises
// throughput (see docs/performance.md).
const gcPercent = 400

// memoryLimit is the soft heap limit unless GOMEMLIMIT is set: with GOGC at
// 400 the heap would otherwise grow to five times what is live; near the
// limit the collector runs more often instead (at most half the CPU), which
// keeps the process under 300 MB resident (docs/performance.md).
const memoryLimit = 192 << 20

// SetRuntimeDefaults sets the garbage collector's target and soft memory
// limit of a process serving the API (govlogd, and the floor that measures
// it), unless GOGC or GOMEMLIMIT set them.
func SetRuntimeDefaults() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

// ReadHeaderTimeout is how long a server of this process waits for a
// request's header (the API's and the pprof listener's).
const ReadHeaderTimeout = 10 * time.Second

// DefaultSubmitTimeout is Config.SubmitTimeout when unset.
const DefaultSubmitTimeout = 30 * time.Second

// HTTP server limits.
const (
	readTimeout    = 60 * time.Second // a 4 MiB batch on a slow link
	idleTimeout    = 120 * time.Second
	maxHeaderBytes = 64 << 10
)

// NewHTTPServer returns the http.Server that serves h: its timeouts (a
// write may take submitTimeout and 30 s more), header limit and error log.
func NewHTTPServer(h http.Handler, submitTimeout time.Duration, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      submitTimeout + 30*time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
		// "OPTIONS *" is the API's to answer (405), like every OPTIONS.
		DisableGeneralOptionsHandler: true,
	}
}
