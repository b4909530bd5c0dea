package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log/trillian/trilliantest"
)

// The tests in this file run the real govlogd with --backend trillian on
// real trillian_log_server and trillian_log_signer processes and a fresh
// MariaDB/MySQL database (see package trilliantest): they are skipped,
// loudly, when no database is reachable at 127.0.0.1:3306, and fail then
// when GOVLOG_REQUIRE_MARIADB is set.

// trillianTree creates a log tree with the real `govlog trillian-createtree`
// and returns its id.
func trillianTree(t *testing.T, env *trilliantest.Env) int64 {
	t.Helper()
	code, out := govlog(t, t.TempDir(), nil, "trillian-createtree", "--admin-addr", env.Servers.LogRPC, "--name", "govlog-e2e")
	if code != 0 {
		t.Fatalf("govlog trillian-createtree: exit %d: %s", code, out)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || id <= 0 {
		t.Fatalf("govlog trillian-createtree printed %q, want a tree id", out)
	}
	return id
}

// startTrillianDaemon starts govlogd on a Trillian tree, with its keys in
// data.
func startTrillianDaemon(t *testing.T, env *trilliantest.Env, tree int64, data string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{
		"--backend", "trillian",
		"--trillian-addr", env.Servers.LogRPC,
		"--trillian-tree-id", strconv.FormatInt(tree, 10),
		"--trillian-mysql-dsn", env.DSN,
	}, extra...)
	return startDaemon(t, data, "", args...)
}

// TestTrillianEndToEnd runs the end-to-end tests of the embedded log on
// Trillian, each on a tree of its own.
func TestTrillianEndToEnd(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	tests := []struct {
		name string
		fn   func(t *testing.T, d *daemon)
	}{
		{"Decisions", testDecisionsEndToEnd},
		{"Batch", testBatchEndToEnd},
		{"MalformedInput", testMalformedInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, startTrillianDaemon(t, env, trillianTree(t, env), t.TempDir()))
		})
	}
}

// TestTrillianReplicas runs two govlogd replicas, with the same keys, on
// one tree: each serves what the other logged, their checkpoints are one
// log's, and a decision sent to both at once is logged once.
func TestTrillianReplicas(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	tree := trillianTree(t, env)
	keys := t.TempDir()
	a := startTrillianDaemon(t, env, tree, keys)
	b := startTrillianDaemon(t, env, tree, keys) // the keys a generated
	v := a.logKey(t)
	ctx := context.Background()
	replicas := []*daemon{a, b}

	t.Run("found on the other replica", func(t *testing.T) {
		for i, d := range replicas {
			other := replicas[1-i]
			id := fmt.Sprintf("rep-%d", i)
			body := decision(id, "allow", "", 0)
			status, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
			if err != nil || status != http.StatusCreated {
				t.Fatalf("POST %s to replica %d: %d %v %s", id, i, status, err, resp)
			}
			r, _, _ := checkReceipt(t, resp, v, body)
			var got json.RawMessage
			if st := getJSON(t, other.url+"/v1/decisions/"+id, &got); st != http.StatusOK {
				t.Fatalf("GET %s from the other replica: %d", id, st)
			}
			r2, _, _ := checkReceipt(t, got, v, body)
			if r2.Index != r.Index || !bytes.Equal(r2.Entry, r.Entry) || r2.Artifact != "" {
				t.Fatalf("the other replica's receipt of %s: index %d (want %d), artifact %q", id, r2.Index, r.Index, r2.Artifact)
			}
			// An identical resubmission to the other replica gets the
			// original receipt.
			status, again, err := postJSON(ctx, other.url+"/v1/decisions", body)
			if err != nil || status != http.StatusOK {
				t.Fatalf("resubmission of %s to the other replica: %d %v %s", id, status, err, again)
			}
			if r3, _, _ := checkReceipt(t, again, v, body); r3.Index != r.Index || r3.Checkpoint != r.Checkpoint || r3.Artifact != r.Artifact {
				t.Fatalf("resubmission of %s to the other replica did not return the original receipt", id)
			}
		}
		// Lineage across replicas: the child, logged by b, names a's decision.
		child := decision("rep-child-1", "deny", "rep-0", 0)
		if status, resp, err := postJSON(ctx, b.url+"/v1/decisions", child); err != nil || status != http.StatusCreated {
			t.Fatalf("child on the other replica: %d %v %s", status, err, resp)
		}
	})

	t.Run("duplicate sent to both at once", func(t *testing.T) {
		for i := range 5 {
			id := fmt.Sprintf("dup-%d", i)
			body := decision(id, "allow", "", 0)
			var (
				wg     sync.WaitGroup
				status [2]int
				resp   [2][]byte
				errs   [2]error
			)
			for j, d := range replicas {
				wg.Go(func() { status[j], resp[j], errs[j] = postJSON(ctx, d.url+"/v1/decisions", body) })
			}
			wg.Wait()
			created := 0
			var index [2]uint64
			for j := range replicas {
				if errs[j] != nil || (status[j] != http.StatusCreated && status[j] != http.StatusOK) {
					t.Fatalf("%s to replica %d: %d %v %s", id, j, status[j], errs[j], resp[j])
				}
				if status[j] == http.StatusCreated {
					created++
				}
				r, _, _ := checkReceipt(t, resp[j], v, body)
				index[j] = r.Index
			}
			if index[0] != index[1] || created > 1 {
				t.Fatalf("%s: statuses %v, indices %v; want one entry (at most one 201, one index)", id, status, index)
			}
		}
	})

	t.Run("consistent checkpoints", func(t *testing.T) {
		// Both replicas append concurrently.
		var wg sync.WaitGroup
		for j, d := range replicas {
			wg.Go(func() {
				for i := range 40 {
					id := fmt.Sprintf("cc-%d-%02d", j, i)
					body := decision(id, "allow", "", 0)
					if status, resp, err := postJSON(ctx, d.url+"/v1/decisions", body); err != nil || status != http.StatusCreated {
						t.Errorf("POST %s: %d %v %s", id, status, err, resp)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		ca, cb := latest(t, a.url, v), latest(t, b.url, v)
		if ca.Size != cb.Size || ca.text != cb.text {
			// One replica may have stored a newer checkpoint in between:
			// they must still be one log's.
			old, cur := ca, cb
			if old.Size > cur.Size {
				old, cur = cur, old
			}
			checkConsistent(t, a.url, old, cur)
			checkConsistent(t, b.url, old, cur)
		}
		cur := latest(t, b.url, v)
		leaves := replay(t, a.url, cur)
		seen := make(map[string]int)
		for i, leaf := range leaves {
			var e entry
			if err := json.Unmarshal(leaf, &e); err != nil {
				t.Fatal(err)
			}
			if e.Decision == nil {
				continue // the artifact keys' entries (each replica logs its own key)
			}
			var x struct {
				ID       string `json:"id"`
				ParentID string `json:"parent_id"`
			}
			if err := json.Unmarshal(e.Decision, &x); err != nil {
				t.Fatal(err)
			}
			if x.ParentID != "" && seen[x.ParentID] == 0 {
				t.Fatalf("entry %d: parent %q is not earlier in the log", i, x.ParentID)
			}
			seen[x.ID]++
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s is in the log %d times", id, n)
			}
		}
		if want := 2 + 1 + 5 + 80; len(seen) != want {
			t.Errorf("%d distinct decisions in the log, want %d", len(seen), want)
		}
	})
}

// TestTrillianFailClosed kills trillian_log_server under govlogd: a
// submission gets 503 log_unavailable and no receipt or artifact, /readyz
// turns 503 while /healthz stays 200; once Trillian is back, govlogd
// appends again by itself.
func TestTrillianFailClosed(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	tree := trillianTree(t, env)
	d := startTrillianDaemon(t, env, tree, t.TempDir())
	v := d.logKey(t)
	ctx := context.Background()
	if status, resp, err := postJSON(ctx, d.url+"/v1/decisions", decision("fc-before-1", "allow", "", 0)); err != nil || status != http.StatusCreated {
		t.Fatalf("before: %d %v %s", status, err, resp)
	}
	statusOf := func(path string) int {
		status, _, _, err := call(ctx, http.MethodGet, d.url+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}

	env.Servers.KillServer()
	down := decision("fc-down-1", "allow", "", 0)
	status, resp, hdr, err := call(ctx, http.MethodPost, d.url+"/v1/decisions", "application/json", down)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusServiceUnavailable || errorCode(t, resp) != "log_unavailable" || hdr.Get("Retry-After") == "" {
		t.Fatalf("POST while Trillian is down: %d %s (Retry-After %q); want 503 log_unavailable with Retry-After", status, resp, hdr.Get("Retry-After"))
	}
	if bytes.Contains(resp, []byte("artifact")) || bytes.Contains(resp, []byte("checkpoint")) {
		t.Fatalf("a 503 carried a receipt or an artifact: %s", resp)
	}
	if st := statusOf("/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while Trillian is down: %d, want 503", st)
	}
	if st := statusOf("/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz while Trillian is down: %d, want 200", st)
	}

	if err := env.Servers.StartServer(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for statusOf("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 200 30s after Trillian came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := decision("fc-after-1", "allow", "", 0)
	status, resp, err = postJSON(ctx, d.url+"/v1/decisions", after)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("POST after Trillian came back: %d %v %s", status, err, resp)
	}
	checkReceipt(t, resp, v, after)
	// The submission that got 503 is safe to resubmit: logged once.
	status, resp, err = postJSON(ctx, d.url+"/v1/decisions", down)
	if err != nil || (status != http.StatusCreated && status != http.StatusOK) {
		t.Fatalf("resubmission of the decision that got 503: %d %v %s", status, err, resp)
	}
	r, _, _ := checkReceipt(t, resp, v, down)
	if r.Artifact == "" {
		t.Fatal("the resubmitted allow got no artifact")
	}
	cur := latest(t, d.url, v)
	count := 0
	for _, leaf := range replay(t, d.url, cur) {
		if bytes.Contains(leaf, []byte(`"id":"fc-down-1"`)) {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("the decision that got 503 is in the log %d times, want once", count)
	}
}
