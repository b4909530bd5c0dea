package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// terminal returns stderr when it is a terminal, and nil otherwise:
// progress and "waiting" messages are for people watching, never for
// scripts or logs.
func terminal() io.Writer {
	if isTerminal(os.Stderr) {
		return os.Stderr
	}
	return nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressDelay is how long an operation runs before its progress is
// drawn: quick ones print nothing.
const progressDelay = 500 * time.Millisecond

// progress draws the progress of a long operation on a terminal: a bar,
// done/total, the rate and the time left. A nil *progress draws nothing.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	unit  string
	start time.Time
	last  time.Time
	drawn bool
}

// newProgress returns the progress display of an operation counting unit
// (such as "entries") on stderr, or nil when quiet is set or stderr is
// not a terminal.
func newProgress(quiet bool, unit string) *progress {
	w := terminal()
	if quiet || w == nil {
		return nil
	}
	return &progress{w: w, unit: unit, start: time.Now()}
}

// update shows done of total (total 0: unknown).
func (p *progress) update(done, total uint64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	elapsed := now.Sub(p.start)
	if elapsed < progressDelay || (now.Sub(p.last) < 100*time.Millisecond && (total == 0 || done < total)) {
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "\r%s\x1b[K", progressLine(done, total, p.unit, elapsed))
	p.drawn = true
}

// progressLine renders one state of a progress display.
func progressLine(done, total uint64, unit string, elapsed time.Duration) string {
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	var b strings.Builder
	if total > 0 {
		const width = 30
		filled := min(int(float64(width)*float64(done)/float64(total)), width)
		fmt.Fprintf(&b, "[%s%s] %d/%d %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total, unit)
	} else {
		fmt.Fprintf(&b, "%d %s", done, unit)
	}
	fmt.Fprintf(&b, ", %.0f/s", rate)
	if total > done && rate > 0 {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&b, ", %v left", eta.Round(time.Second))
	}
	return b.String()
}

// finish ends the display: the cursor moves to the next line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\n")
		p.drawn = false
	}
}

// waitDelay is how long a request waits before waiting says so.
const waitDelay = 2 * time.Second

// waiting shows on a terminal, once a request has taken more than
// waitDelay, what it waits for and for how long, until stop is called;
// nothing when quiet is set or stderr is not a terminal.
func waiting(quiet bool, what string) (stop func()) {
	w := terminal()
	if quiet || w == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		drawn := false
		for {
			select {
			case <-done:
				if drawn {
					fmt.Fprint(w, "\r\x1b[K")
				}
				return
			case now := <-t.C:
				if took := now.Sub(start); took >= waitDelay {
					fmt.Fprintf(w, "\r%s for %v\x1b[K", what, took.Round(time.Second))
					drawn = true
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// retryLogger returns the logger of a client's retries that tells the
// person at the terminal what the command is waiting for.
func retryLogger(w io.Writer, prefix string) *slog.Logger {
	return slog.New(&retryHandler{w: w, prefix: prefix})
}

// retryHandler prints the client's retry records ("retrying govlog
// request" with attempt, wait and error) as one line each.
type retryHandler struct {
	w      io.Writer
	prefix string
}

func (h *retryHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *retryHandler) WithGroup(string) slog.Handler            { return h }

func (h *retryHandler) Handle(_ context.Context, r slog.Record) error {
	var attempt, wait, reason string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "attempt":
			attempt = a.Value.String()
		case "wait":
			wait = a.Value.Duration().Round(100 * time.Millisecond).String()
		case "error":
			reason = a.Value.String()
		}
		return true
	})
	// \r and erase-line: a line of waiting may be on the terminal.
	if attempt == "" {
		_, err := fmt.Fprintf(h.w, "\r\x1b[K%s: %s\n", h.prefix, escapeText(r.Message))
		return err
	}
	_, err := fmt.Fprintf(h.w, "\r\x1b[K%s: attempt %s: %s; retrying in %s\n", h.prefix, attempt, escapeText(reason), wait)
	return err
}

// printJSON prints v as indented JSON, the --json output of the commands.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
