// Package testenv builds the real parts that tests of several packages
// run against: a log's keys and its embedded SQLite backend in a temporary
// directory, and a server behind a real HTTP listener.
package testenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
)

// Log is what a real embedded log is made of: its keys, generated in a new
// temporary directory Dir, and its SQLite backend on Dir/log.db.
type Log struct {
	Dir     string
	Keys    *keys.Keys
	Backend *sqlite.Backend
}

// NewLog generates the keys of a log named origin in a new temporary
// directory and opens its backend there. The backend is the caller's to
// close, usually by closing the log or server made of it.
func NewLog(t testing.TB, origin string) *Log {
	t.Helper()
	dir := t.TempDir()
	if err := keys.Generate(dir, origin); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqlite.Open(context.Background(), filepath.Join(dir, "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &Log{Dir: dir, Keys: k, Backend: b}
}

// Config returns the configuration of a log on l's backend, signed and
// verified with l's keys; the caller sets the rest.
func (l *Log) Config() log.Config {
	return log.Config{Backend: l.Backend, Signer: l.Keys.Signer, Verifier: l.Keys.Verifier}
}

// Server is what Serve serves: a handler that is closed at the end.
type Server interface {
	http.Handler
	Close(ctx context.Context) error
}

// Serve serves srv over HTTP until the end of the test. At the end it
// stops the listener (unless the test did), then closes srv, giving it 20
// seconds; a failure to close fails the test.
func Serve(t testing.TB, srv Server) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return hs
}
