package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
	"github.com/govlog/govlog/server"
)

type auditEnvKey struct{}

// auditEnv holds the servers of one audit script.
type auditEnv struct {
	mu      sync.Mutex
	logs    map[string]*scriptLog
	proxy   atomic.Pointer[scriptLog]
	alerts  []string // events received by the webhook
	workDir string
}

// scriptLog is govlogd's server on a real SQLite log.
type scriptLog struct {
	dir string
	srv *server.Server
	hs  *httptest.Server
}

// TestAuditScripts runs the scripts of testdata/audit. Each gets, besides
// the govlog command:
//
//   - startlog NAME [KEYS-OF]: serves a new real log (SQLite, the server
//     of govlogd) with new keys, or with the keys of log KEYS-OF (a fork);
//     sets $NAME_URL (upper case) and writes NAME.vkey;
//   - fill NAME N PREFIX: logs N decisions, PREFIX-0 …, through the batch
//     endpoint (every third a deny);
//   - sql NAME QUERY: runs SQL on the log's database while it is served;
//   - proxy NAME: $PROXY_URL serves log NAME from now on;
//   - webhook: $WEBHOOK_URL records the alerts POSTed to it;
//   - alerts N [EVENT]: requires N alerts received (the last one EVENT);
//   - waitfile FILE: waits (30s at most) until FILE exists;
//   - status N CMD ARGS...: runs CMD and requires exit status N;
//   - statev1 STATE OUT: writes STATE as a state of format v1 to OUT.
func TestAuditScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "audit"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			ae := &auditEnv{logs: map[string]*scriptLog{}, workDir: env.WorkDir}
			env.Values[auditEnvKey{}] = ae
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				l := ae.proxy.Load()
				if l == nil {
					http.Error(w, "no log behind the proxy", http.StatusBadGateway)
					return
				}
				u, _ := url.Parse(l.hs.URL)
				httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
			}))
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					Event string `json:"event"`
				}
				data, _ := io.ReadAll(r.Body)
				if json.Unmarshal(data, &body) != nil || r.Header.Get("Content-Type") != "application/json" {
					http.Error(w, "bad alert", http.StatusBadRequest)
					return
				}
				ae.mu.Lock()
				ae.alerts = append(ae.alerts, body.Event)
				ae.mu.Unlock()
			}))
			env.Setenv("PROXY_URL", proxy.URL)
			env.Setenv("WEBHOOK_URL", hook.URL)
			env.Defer(func() {
				proxy.Close()
				hook.Close()
				for _, l := range ae.logs {
					l.stop()
				}
			})
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"startlog": cmdStartLog,
			"fill":     cmdFill,
			"sql":      cmdSQL,
			"proxy":    cmdProxy,
			"alerts":   cmdAlerts,
			"waitfile": cmdWaitFile,
			"status":   cmdStatus,
			"statev1":  cmdStateV1,
		},
	})
}

func (l *scriptLog) stop() {
	l.hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = l.srv.Close(ctx)
}

func scriptEnv(ts *testscript.TestScript) *auditEnv { return ts.Value(auditEnvKey{}).(*auditEnv) }

func cmdStartLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: startlog NAME [KEYS-OF]")
	}
	ae := scriptEnv(ts)
	name := args[0]
	dir := ts.MkAbs(".logs/" + name)
	ts.Check(os.MkdirAll(dir, 0o700))
	if len(args) == 2 {
		from := ae.logs[args[1]]
		if from == nil {
			ts.Fatalf("no log %s", args[1])
		}
		for _, f := range []string{keys.SignerFile, keys.VerifierFile, keys.ArtifactFile} {
			data, err := os.ReadFile(filepath.Join(from.dir, f))
			ts.Check(err)
			ts.Check(os.WriteFile(filepath.Join(dir, f), data, 0o600))
		}
	} else {
		ts.Check(keys.Generate(dir, "example.com/govlog-audit"))
	}
	k, err := keys.Load(dir)
	ts.Check(err)
	ctx := context.Background()
	b, err := sqlite.Open(ctx, filepath.Join(dir, "log.db"), sqlite.Options{})
	ts.Check(err)
	lg, err := log.New(ctx, log.Config{Backend: b, Signer: k.Signer, Verifier: k.Verifier})
	ts.Check(err)
	srv, err := server.New(server.Config{Log: lg, ArtifactKey: k.Artifact, VerifierKey: k.VerifierKey})
	ts.Check(err)
	l := &scriptLog{dir: dir, srv: srv, hs: httptest.NewServer(srv)}
	ae.logs[name] = l
	ts.Setenv(strings.ToUpper(name)+"_URL", l.hs.URL)
	ts.Check(os.WriteFile(ts.MkAbs(name+".vkey"), []byte(k.VerifierKey+"\n"), 0o644))
}

func scriptLogNamed(ts *testscript.TestScript, name string) *scriptLog {
	l := scriptEnv(ts).logs[name]
	if l == nil {
		ts.Fatalf("no log %s", name)
	}
	return l
}

func cmdFill(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: fill NAME N PREFIX")
	}
	l := scriptLogNamed(ts, args[0])
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	now := time.Now().UTC().Format(time.RFC3339)
	for done := 0; done < n; {
		k := min(n-done, 1000)
		items := make([]json.RawMessage, k)
		for i := range items {
			outcome := "allow"
			if (done+i)%3 == 2 {
				outcome = "deny"
			}
			items[i] = fmt.Appendf(nil, `{"id":"%s-%d","outcome":%q,"decided_at":%q,"subject":"agent-%d","action":"deploy",`+
				`"resource":"svc/api","policy":{"id":"prod-deploy"}}`, args[2], done+i, outcome, now, (done+i)%2)
		}
		body, _ := json.Marshal(map[string]any{"decisions": items})
		resp, err := http.Post(l.hs.URL+"/v1/decisions/batch", "application/json", bytes.NewReader(body))
		ts.Check(err)
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || bytes.Contains(data, []byte(`"error"`)) {
			ts.Fatalf("batch: %d %.300s", resp.StatusCode, data)
		}
		done += k
	}
}

func cmdSQL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sql NAME QUERY")
	}
	l := scriptLogNamed(ts, args[0])
	db, err := sql.Open("sqlite3", filepath.Join(l.dir, "log.db"))
	ts.Check(err)
	defer db.Close()
	res, err := db.Exec(args[1])
	ts.Check(err)
	if n, _ := res.RowsAffected(); n == 0 {
		ts.Fatalf("the query changed nothing")
	}
}

func cmdProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: proxy NAME")
	}
	scriptEnv(ts).proxy.Store(scriptLogNamed(ts, args[0]))
}

func cmdAlerts(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: alerts N [EVENT]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	ae := scriptEnv(ts)
	ae.mu.Lock()
	defer ae.mu.Unlock()
	if len(ae.alerts) != want {
		ts.Fatalf("%d alerts received (%q), want %d", len(ae.alerts), ae.alerts, want)
	}
	if len(args) == 2 && (want == 0 || ae.alerts[want-1] != args[1]) {
		ts.Fatalf("alerts %q, want the last to be %s", ae.alerts, args[1])
	}
}

func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear within 30s", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdStateV1 rewrites an audit state as one of format v1 (its first line
// and checksum), as earlier versions left them.
func cmdStateV1(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: statev1 STATE OUT")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	const v1, v2 = "govlog-audit-state/v1\n", "govlog-audit-state/v2\n"
	if !strings.HasPrefix(string(data), v2) {
		ts.Fatalf("%s is no v2 state", args[0])
	}
	body := append([]byte(v1), data[len(v2):len(data)-sha256.Size]...)
	sum := sha256.Sum256(body)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), append(body, sum[:]...), 0o600))
}
