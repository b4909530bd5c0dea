package client_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
	"github.com/govlog/govlog/server"
)

// realLog is govlogd's server on a real SQLite log, over real HTTP.
type realLog struct {
	url  string
	dir  string
	db   string
	keys *keys.Keys
	srv  *server.Server
	hs   *httptest.Server
	// requests counts the requests, by path prefix.
	requests atomic.Int64
	bundles  atomic.Int64
}

const realOrigin = "example.com/govlog-client-test"

// startLog serves the log in dir (keys are generated there unless present)
// and stops it at the end of the test.
func startLog(t testing.TB, dir string) *realLog {
	t.Helper()
	ctx := context.Background()
	if ok, err := keys.Present(dir); err != nil {
		t.Fatal(err)
	} else if !ok {
		if err := keys.Generate(dir, realOrigin); err != nil {
			t.Fatal(err)
		}
	}
	k, err := keys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "log.db")
	b, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := log.New(ctx, log.Config{Backend: b, Signer: k.Signer, Verifier: k.Verifier})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, ArtifactKey: k.Artifact, VerifierKey: k.VerifierKey, Audience: "runtime.example"})
	if err != nil {
		t.Fatal(err)
	}
	r := &realLog{dir: dir, db: db, keys: k, srv: srv}
	r.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if bytes.HasPrefix([]byte(req.URL.Path), []byte("/tile/entries/")) {
			r.bundles.Add(1)
		}
		srv.ServeHTTP(w, req)
	}))
	r.url = r.hs.URL
	t.Cleanup(r.stop)
	return r
}

func (r *realLog) stop() {
	r.hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.srv.Close(ctx)
}

// cloneKeys copies a log's key files into a new directory: a second log
// with the same identity (a fork, when it logs something else).
func cloneKeys(t testing.TB, from string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{keys.SignerFile, keys.VerifierFile, keys.ArtifactFile} {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testDecision(id, outcome string, extra string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"outcome":%q,"decided_at":%q,"subject":"agent-7","action":"deploy",`+
		`"resource":"svc/api","policy":{"id":"prod-deploy"}%s}`, id, outcome, time.Now().UTC().Format(time.RFC3339), extra)
}

// fill logs n decisions named prefix-i through the batch endpoint.
func (r *realLog) fill(t testing.TB, prefix string, n int) {
	t.Helper()
	for done := 0; done < n; {
		k := min(n-done, 1000)
		items := make([]json.RawMessage, k)
		for i := range items {
			outcome := "allow"
			if (done+i)%3 == 2 {
				outcome = "deny"
			}
			items[i] = testDecision(fmt.Sprintf("%s-%d", prefix, done+i), outcome, "")
		}
		body, _ := json.Marshal(map[string]any{"decisions": items})
		resp, err := http.Post(r.url+"/v1/decisions/batch", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("batch: %d", resp.StatusCode)
		}
		done += k
	}
}

// tamper runs SQL on the log's database while the server runs.
func (r *realLog) tamper(t testing.TB, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite3", r.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s changed nothing", query)
	}
}

func (r *realLog) client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(r.url, append([]client.Option{client.WithLogKey(r.keys.Verifier)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
