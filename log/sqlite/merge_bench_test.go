package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/cputime"
)

// mergeTable is one randomly keyed index a merge of the held-back rows
// writes (see pendingIDs, pendingHashes), or the compact id index it
// could be: its insert statements (shapes) and a maker of random rows.
type mergeTable struct {
	name  string
	stmts []string
	n     int // values per row
	// rows returns count new random rows from entry next on, in key order.
	rows func(r *rand.Rand, next int64, count int) []any
}

// mergeTables are ids as it is (ids as UUIDs, or as BenchmarkAppendAtSize
// makes them when short), leaf_hashes, each merge one run of them (schema
// version 4, keyed by the run first), and ids_compact: an id index keyed
// by an 8-byte hash prefix of (kind, id), as leaf_hashes was before.
func mergeTables(short bool) []mergeTable {
	uuid := func(r *rand.Rand) string {
		if short {
			return fmt.Sprintf("b-%010x", r.Uint64()>>24)
		}
		hi, lo := r.Uint64(), r.Uint64()
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", hi>>32, hi>>16&0xffff, hi&0xfff, lo>>48&0x3fff|0x8000, lo&0xffffffffffff)
	}
	type kv struct {
		key  int64
		id   string
		idx  int64
		flag bool
	}
	sorted := func(rs []kv) []kv {
		slices.SortFunc(rs, func(a, b kv) int {
			return cmp.Or(cmp.Compare(a.key, b.key), strings.Compare(a.id, b.id), cmp.Compare(a.idx, b.idx))
		})
		return rs
	}
	return []mergeTable{
		{"ids", sqlInsertIDs, 5, func(r *rand.Rand, next int64, count int) []any {
			rs := make([]kv, count)
			for i := range rs {
				rs[i] = kv{id: uuid(r), idx: next + int64(i), flag: (next+int64(i))%10 != 3}
			}
			args := make([]any, 0, 5*count)
			for _, x := range sorted(rs) {
				args = append(args, next, int64(1), x.id, x.idx, x.flag) // one run
			}
			return args
		}},
		{"leaf_hashes", sqlInsertLeafs, 3, func(r *rand.Rand, next int64, count int) []any {
			rs := make([]kv, count)
			for i := range rs {
				rs[i] = kv{key: int64(r.Uint64()), idx: next + int64(i)}
			}
			args := make([]any, 0, 3*count)
			for _, x := range sorted(rs) {
				args = append(args, next, x.key, x.idx)
			}
			return args
		}},
		{"ids_compact", shapes(`INSERT OR FAIL INTO ids_compact (prefix, idx, allow) VALUES `, `(?, ?, ?)`, ``), 3, func(r *rand.Rand, next int64, count int) []any {
			rs := make([]kv, count)
			for i := range rs {
				rs[i] = kv{key: int64(r.Uint64()), idx: next + int64(i), flag: (next+int64(i))%10 != 3}
			}
			args := make([]any, 0, 3*count)
			for _, x := range sorted(rs) {
				args = append(args, x.key, x.idx, x.flag)
			}
			return args
		}},
	}
}

// insertShapes writes args (rows of n values) with stmts, as
// newRows.insert does.
func insertShapes(ctx context.Context, tx *sql.Tx, stmts []string, n int, args []any) error {
	for len(args) > 0 {
		rows := len(args) / n
		shape := min(bits.Len(uint(rows))-1, len(stmts)-1)
		k := 1 << shape
		if _, err := tx.ExecContext(ctx, stmts[shape], args[:k*n]...); err != nil {
			return err
		}
		args = args[k*n:]
	}
	return nil
}

// mergeDB builds, once, a database at path whose ids, leaf_hashes and
// ids_compact tables hold n rows each with random keys, inserted as
// merges insert them (sorted runs of DefaultHashMerge random keys), so
// that their B-trees are filled as a log's are.
func mergeDB(tb testing.TB, path string, n int) {
	if _, err := os.Stat(path); err == nil {
		return
	}
	ctx := context.Background()
	tmp := path + ".building"
	os.Remove(tmp)
	db, err := sql.Open("sqlite3", dsn(tmp, url.Values{"_synchronous": {"OFF"}, "_journal_mode": {"OFF"}}))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`PRAGMA cache_size = -3000000`,
		`CREATE TABLE ids (run INTEGER NOT NULL, kind INTEGER NOT NULL, id TEXT NOT NULL, idx INTEGER NOT NULL, allow INTEGER NOT NULL, PRIMARY KEY (run, kind, id)) WITHOUT ROWID`,
		`CREATE TABLE leaf_hashes (run INTEGER NOT NULL, prefix INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (run, prefix, idx)) WITHOUT ROWID`,
		`CREATE TABLE ids_compact (prefix INTEGER NOT NULL, idx INTEGER NOT NULL, allow INTEGER NOT NULL, PRIMARY KEY (prefix, idx)) WITHOUT ROWID`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	tables := mergeTables(false)
	start := time.Now()
	const perTx = 1 << 20
	for from := 0; from < n; from += perTx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		for at := from; at < min(from+perTx, n); at += DefaultHashMerge {
			count := min(DefaultHashMerge, n-at)
			for _, t := range tables {
				if err := insertShapes(ctx, tx, t.stmts, t.n, t.rows(r, int64(at), count)); err != nil {
					tb.Fatal(err)
				}
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %d rows of each table in %v", n, time.Since(start).Round(time.Second))
}

// BenchmarkIndexMerge times one merge of DefaultHashMerge held-back rows
// (random keys, in key order, one transaction and its COMMIT, with
// Append's synchronous=FULL and WAL) into each randomly keyed index on
// its own: the split of a merge's cost between ids and leaf_hashes, and
// what an id index keyed by an 8-byte hash prefix (ids_compact) would
// cost instead. Each iteration merges into every table, the order
// rotated. The database is GOVLOG_BENCH_MERGE_DB, built once with
// GOVLOG_BENCH_MERGE_N rows a table (default 1,000,000); pointed at a
// log instead, it merges into the tables the log has.
// GOVLOG_BENCH_MERGE_SHORT=1 makes ids as BenchmarkAppendAtSize does
// ("b-" and 10 hexadecimal digits) instead of UUIDs. Reported per merge:
// CPU of the inserts and of the COMMIT (which checkpoints the WAL: the
// default wal_autocheckpoint), their wall time, and the WAL frames the
// commit wrote (pages dirtied; journal_size_limit=0 makes the WAL's
// size tell them).
func BenchmarkIndexMerge(b *testing.B) {
	n := benchEnvInt(b, "GOVLOG_BENCH_MERGE_N", 1_000_000)
	path := os.Getenv("GOVLOG_BENCH_MERGE_DB")
	if path == "" {
		path = filepath.Join(os.TempDir(), fmt.Sprintf("govlog-merge-%d.db", n))
	}
	mergeDB(b, path, n)
	ctx := context.Background()
	abs, err := filepath.Abs(path)
	if err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite3", dsn(abs, url.Values{"_journal_mode": {"WAL"}, "_synchronous": {"FULL"}, "_txlock": {"immediate"}, "_stmt_cache_size": {"128"}}))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `PRAGMA journal_size_limit = 0`); err != nil {
		b.Fatal(err)
	}
	var (
		tables   []mergeTable
		next     int64
		pageSize int64
	)
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		b.Fatal(err)
	}
	for _, t := range mergeTables(os.Getenv("GOVLOG_BENCH_MERGE_SHORT") == "1") {
		var c int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, t.name).Scan(&c); err != nil {
			b.Fatal(err)
		}
		if c > 0 {
			tables = append(tables, t)
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(idx), 0) + 1 FROM leaf_hashes`).Scan(&next); err != nil {
		b.Fatal(err)
	}
	type sums struct {
		insertCPU, commitCPU, insertWall, commitWall time.Duration
		frames                                       int64
	}
	total := make([]sums, len(tables))
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	wal := abs + "-wal"
	var merges int
	for b.Loop() {
		for j := range tables {
			ti := (merges + j) % len(tables)
			t := tables[ti]
			args := t.rows(r, next, DefaultHashMerge)
			next += DefaultHashMerge
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			w, c := time.Now(), cputime.Process()
			if err := insertShapes(ctx, tx, t.stmts, t.n, args); err != nil {
				b.Fatal(err)
			}
			w1, c1 := time.Now(), cputime.Process()
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			w2, c2 := time.Now(), cputime.Process()
			fi, err := os.Stat(wal)
			if err != nil {
				b.Fatal(err)
			}
			s := &total[ti]
			s.insertCPU += time.Duration(c1 - c)
			s.commitCPU += time.Duration(c2 - c1)
			s.insertWall += w1.Sub(w)
			s.commitWall += w2.Sub(w1)
			s.frames += (fi.Size() - 32) / (pageSize + 24)
		}
		merges++
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(merges) }
	for i, t := range tables {
		s := total[i]
		b.ReportMetric(ms(s.insertCPU), t.name+"-insert-cpu-ms")
		b.ReportMetric(ms(s.commitCPU), t.name+"-commit-cpu-ms")
		b.ReportMetric(ms(s.insertWall), t.name+"-insert-ms")
		b.ReportMetric(ms(s.commitWall), t.name+"-commit-ms")
		b.ReportMetric(float64(s.frames)/float64(merges), t.name+"-frames")
	}
	b.ReportMetric(0, "ns/op")
}
