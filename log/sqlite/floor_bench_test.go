package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/govlog/govlog/internal/cputime"
	"net/url"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFloorCommit is the floor of a group commit: what the cheapest
// durable commit of n entries costs on this machine, to set against
// Append's. One transaction inserts n leaves of about 800 bytes (the load
// generator's decisions) into a bare table keyed by index and commits
// with the WAL fsynced (the database opened like the log's writer: WAL,
// synchronous=FULL, BEGIN IMMEDIATE); no index, tile, id or checkpoint.
// Groups of 8 to 64 are those 64 clients give single decisions
// (govlog_commit_entries: about 20 to 30 on a busy 2-core machine).
// cpu-ns/commit and cpu-ns/entry are the process CPU time (user and
// system, the fsync's included).
func BenchmarkFloorCommit(b *testing.B) {
	for _, n := range []int{8, 16, 32, 64} {
		b.Run(fmt.Sprintf("group=%d", n), func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "floor.db")
			db, err := sql.Open("sqlite3", dsn(path, url.Values{
				"_journal_mode": {"WAL"},
				"_synchronous":  {"FULL"},
				"_txlock":       {"immediate"},
			}))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.ExecContext(ctx, `CREATE TABLE entries (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			m := newEntryMaker(b, 800)
			leaves := make([][]byte, 1024)
			for i := range leaves {
				leaves[i] = m.make().Leaf
			}
			stmt := "INSERT INTO entries (idx, leaf) VALUES (?, ?)"
			for range n - 1 {
				stmt += ", (?, ?)"
			}
			args := make([]any, 2*n)
			var idx int64
			commit := func() {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					args[2*i], args[2*i+1] = idx, leaves[idx%int64(len(leaves))]
					idx++
				}
				if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			// Start from a table that is not tiny.
			for range 20000 / n {
				commit()
			}
			commits := 0
			start, cpu := time.Now(), cputime.Process()
			for b.Loop() {
				commit()
				commits++
			}
			used := float64(cputime.Process() - cpu)
			b.ReportMetric(float64(commits*n)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(used/float64(commits), "cpu-ns/commit")
			b.ReportMetric(used/float64(commits*n), "cpu-ns/entry")
		})
	}
}
