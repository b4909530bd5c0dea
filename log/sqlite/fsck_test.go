package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// buildLog appends n entries in batches of varied sizes (decisions with and
// without sequences, denies, execution reports), closes the backend and
// returns the file's path and the signer.
func buildLog(t *testing.T, n int) (string, testKey) {
	t.Helper()
	path := tempDB(t)
	sign, v := newSign(t)
	// Most entries' leaf-hash rows are written, the newest wait.
	b, err := Open(context.Background(), path, Options{HashMerge: 200})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, sign) // the size-0 checkpoint
	batchSizes := []int{1, 7, 250, 3, 300, 64}
	for i, k := 0, 0; i < n; k++ {
		var batch []*log.Entry
		for j := 0; j < batchSizes[k%len(batchSizes)] && i < n; j++ {
			switch {
			case i%10 == 9:
				batch = append(batch, execution(t, fmt.Sprintf("x-%d", i), fmt.Sprintf("d-%d", i-1), "alice"))
			case i%10 == 3:
				batch = append(batch, decision(t, fmt.Sprintf("d-%d", i), decisionOpts{outcome: log.OutcomeDeny, sequence: uint64(i + 1)}))
			default:
				batch = append(batch, decision(t, fmt.Sprintf("d-%d", i), decisionOpts{sequence: uint64(i%2) * uint64(i+1)}))
			}
			i++
		}
		res, _ := mustAppend(t, b, sign, batch...)
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("append: %v", r.Err)
			}
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path, testKey{sign, v}
}

// testKey is the signer and verifier of a test log.
type testKey struct {
	sign log.SignFunc
	v    note.Verifier
}

// sqlQueryRow scans the one row of q, read from the database at path,
// into dest.
func sqlQueryRow(t *testing.T, path, q string, dest ...any) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(q).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func sqlExec(t *testing.T, path, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestCheckClean(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 257, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			path, key := buildLog(t, n)
			res, err := Check(context.Background(), path, key.v, nil)
			if err != nil || res.Size != uint64(n) {
				t.Fatalf("Check = %+v, %v", res, err)
			}
			_, v := newSign(t) // a different key
			if _, err := Check(context.Background(), path, v, nil); err == nil || !strings.Contains(err.Error(), "does not verify") {
				t.Fatalf("Check with another key: %v", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	const n = 700
	type corruption struct {
		name    string
		corrupt func(t *testing.T, path string, sign log.SignFunc)
		want    string // in the error; "" for a clean log
	}
	cases := []corruption{
		{"clean", func(*testing.T, string, log.SignFunc) {}, ""},
		{"entry replaced", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE entries SET leaf = (SELECT leaf FROM entries WHERE idx = 301) WHERE idx = 300`)
		}, "entry 300"},
		{"entry not JSON", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE entries SET leaf = x'00' WHERE idx = 5`)
		}, "entry 5 is not a valid entry"},
		{"entry deleted", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `DELETE FROM entries WHERE idx = 400`)
		}, "entry 400 is missing"},
		{"last entry deleted", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, fmt.Sprintf(`DELETE FROM entries WHERE idx = %d`, n-1))
		}, fmt.Sprintf("entry %d is missing", n-1)},
		{"entry beyond the checkpoint", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, fmt.Sprintf(`INSERT INTO entries (idx, leaf) SELECT %d, leaf FROM entries WHERE idx = 0`, n))
		}, fmt.Sprintf("entry %d is stored beyond", n)},
		{"full tile hash", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE tiles SET hashes = zeroblob(32) || substr(hashes, 33) WHERE level = 0 AND idx = 1`)
		}, "hash 0 of tile 0/1 (tree level 0, node 256)"},
		{"partial tile truncated", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE tiles SET hashes = substr(hashes, 1, 64) WHERE level = 0 AND idx = 2`)
		}, "tile 0/2 holds 2 hashes"},
		{"tile missing", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `DELETE FROM tiles WHERE level = 1 AND idx = 0`)
		}, "tile 1/0 is missing"},
		{"extra tile", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `INSERT INTO tiles (level, idx, hashes) VALUES (5, 0, zeroblob(32))`)
		}, "tiles are stored"},
		{"id index missing", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `DELETE FROM ids WHERE kind = 1 AND id = 'd-42'`)
		}, "entry 42 (decision \"d-42\") is missing from the id index"},
		{"id index wrong", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE ids SET idx = 44 WHERE kind = 1 AND id = 'd-43'`)
		}, "at entry 44, it is entry 43"},
		{"id index allow flipped", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE ids SET allow = 1 - allow WHERE kind = 1 AND id = 'd-3'`)
		}, "for entry 3"},
		{"extra id row", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `INSERT INTO ids (run, kind, id, idx, allow) VALUES (0, 1, 'ghost', 0, 1)`)
		}, "the ids index holds"},
		{"id run filter", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE id_runs SET filter = zeroblob(length(filter)) WHERE run = 0`)
		}, "the filter of the id index's run of entries 0 to"},
		{"leaf hash run filter", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE hash_runs SET filter = zeroblob(length(filter)) WHERE run = 0`)
		}, "the filter of the leaf-hash index's run of entries 0 to"},
		{"id run gap", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE id_runs SET upto = upto - 1 WHERE run = 0`)
		}, "follows one that ends at"},
		{"sequence index missing", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `DELETE FROM sequences WHERE sequence = 14`)
		}, "entry 13 (sequence 14"},
		{"sequence index wrong", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE sequences SET idx = 0 WHERE sequence = 14`)
		}, "at entry 0, it is entry 13"},
		{"leaf hash index missing", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `DELETE FROM leaf_hashes WHERE idx = 77`)
		}, "entry 77 is missing from the leaf-hash index"},
		{"leaf hash extra", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `INSERT INTO leaf_hashes (run, prefix, idx) VALUES (0, 1, 1)`)
		}, "the leaf_hashes index holds"},
		{"search index extra", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `INSERT INTO search_terms (rng, term, idx) VALUES (0, 1, 1)`)
		}, "the search_terms index holds"},
		{"search index short", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE search_indexed SET size = 3`)
		}, "the search index covers 3 entries"},
		{"checkpoint forged root", func(t *testing.T, path string, sign log.SignFunc) {
			cp, err := sign(261, [32]byte{1})
			if err != nil {
				t.Fatal(err)
			}
			sqlExec(t, path, `DELETE FROM checkpoints WHERE size = 261`)
			sqlExec(t, path, `INSERT INTO checkpoints (size, note) VALUES (261, ?)`, cp.Note)
		}, "the checkpoint of size 261 says"},
		{"checkpoint other key", func(t *testing.T, path string, _ log.SignFunc) {
			other, _ := newSign(t)
			cp, err := other(8, [32]byte{1})
			if err != nil {
				t.Fatal(err)
			}
			sqlExec(t, path, `UPDATE checkpoints SET note = ? WHERE size = 8`, cp.Note)
		}, "the checkpoint stored for size 8 does not verify"},
		{"checkpoint wrong size", func(t *testing.T, path string, _ log.SignFunc) {
			sqlExec(t, path, `UPDATE checkpoints SET size = 9 WHERE size = 8`)
		}, "stored for size 9 is for size 8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, key := buildLog(t, n)
			tc.corrupt(t, path, key.sign)
			var last uint64
			res, err := Check(ctx, path, key.v, func(k, _ uint64) { last = k })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if res.Size != n || last != n || res.Tiles != 4 || res.Checkpoints < 2 {
					t.Fatalf("Check = %+v, progress %d", res, last)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed a log with %s", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v\nwant the error to contain %q", err, tc.want)
			}
			if !errors.Is(err, log.ErrFork) {
				t.Fatalf("Check: %v does not wrap log.ErrFork", err)
			}
		})
	}
}

// TestCheckSearchIndex: Check finds every posting of the full ranges,
// no posting of the last range (held in memory by a running log) and no
// chunk of the layout before that, and search_indexed at the end of the
// full ranges.
func TestCheckSearchIndex(t *testing.T) {
	ctx := context.Background()
	const n = 1<<rangeBits + 300
	clean := tempDB(t)
	sign, v := newSign(t)
	bulkLogSigned(t, clean, n, sign) // the rows Append writes
	data, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"clean", "", ""},
		{"field posting missing", `DELETE FROM search_terms WHERE rng = 0 AND idx = 90 AND term = (SELECT min(term) FROM search_terms WHERE rng = 0 AND idx = 90)`,
			"entry 90 is missing from the search index"},
		{"time posting missing", `DELETE FROM search_terms WHERE rng = -1 AND idx = 16383 AND term = (SELECT min(term) FROM search_terms WHERE rng = -1 AND idx = 16383)`,
			"entry 16383 is missing from the search index"},
		{"posting in the wrong range", `UPDATE search_terms SET rng = 1 WHERE rng = 0 AND idx = 7`, "entry 7 is missing from the search index"},
		{"posting of the last range", `INSERT INTO search_terms (rng, term, idx) SELECT 1, term, 16500 FROM search_terms WHERE rng = 0 AND idx = 3`,
			"the search_terms index holds"},
		{"chunk of the old layout", `INSERT INTO search_terms (rng, term, idx) SELECT 1099511627840, term, 16400 FROM search_terms WHERE rng = 0 AND idx = 3`,
			"in chunks, the layout of an older version"},
		{"covers the last range", fmt.Sprintf(`UPDATE search_indexed SET size = %d`, n), fmt.Sprintf("the search index covers %d entries", n)},
		{"not a range", `UPDATE search_indexed SET size = 100`, "the search index covers 100 entries"},
		// While the last full range is merged (searchMerge): search_indexed
		// at its first entry, a prefix of its postings in key order (time
		// postings first) stored, not all of them.
		{"merge begun", `DELETE FROM search_terms; UPDATE search_indexed SET size = 0`, ""},
		{"merge of the time postings", `DELETE FROM search_terms WHERE rng = -1 AND term > (SELECT min(term) FROM search_terms WHERE rng = -1); DELETE FROM search_terms WHERE rng = 0; UPDATE search_indexed SET size = 0`, ""},
		{"merge of the field postings", `DELETE FROM search_terms WHERE rng = 0 AND term > (SELECT min(term) FROM search_terms WHERE rng = 0); UPDATE search_indexed SET size = 0`, ""},
		{"merge with a gap", `DELETE FROM search_terms WHERE rng = -1; UPDATE search_indexed SET size = 0`,
			"but not all those before it in key order"},
		{"merge missing a posting", `DELETE FROM search_terms WHERE rng = 0 AND idx = 90; UPDATE search_indexed SET size = 0`,
			"but not all those before it in key order"},
		{"merge of a posting not in the range", `DELETE FROM search_terms WHERE rng = 0; INSERT INTO search_terms (rng, term, idx) VALUES (0, 1, 5); UPDATE search_indexed SET size = 0`,
			"the search_terms index holds"},
		{"merge done, not covered", `UPDATE search_indexed SET size = 0`, "the search index holds every posting of entries 0 to 16383, but covers 0 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.sql != "" {
				sqlExec(t, path, tc.sql)
			}
			_, err := Check(ctx, path, v, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("Check passed a log with %s", tc.name)
			case !strings.Contains(err.Error(), tc.want) || !errors.Is(err, log.ErrFork):
				t.Fatalf("Check: %v\nwant log.ErrFork and the error to contain %q", err, tc.want)
			}
		})
	}
}

func TestCheckMissingFile(t *testing.T) {
	_, v := newSign(t)
	_, err := Check(context.Background(), filepath.Join(t.TempDir(), "nope.db"), v, nil)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Check: %v", err)
	}
}

func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	b := openAt(t, path, Options{})
	var first []*log.Entry
	for i := range 300 {
		first = append(first, decision(t, fmt.Sprintf("first-%d", i), decisionOpts{}))
	}
	mustAppend(t, b, sign, first...)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	errc := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			batch := []*log.Entry{decision(t, fmt.Sprintf("b-%d-a", i), decisionOpts{}), decision(t, fmt.Sprintf("b-%d-b", i), decisionOpts{})}
			if _, _, err := b.Append(ctx, batch, sign); err != nil {
				errc <- err
				return
			}
		}
	}()
	dir := t.TempDir()
	var sizes []uint64
	for i := range 3 {
		out := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
		if err := Backup(ctx, path, out); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		res, err := Check(ctx, out, v, nil)
		if err != nil {
			t.Fatalf("Check of backup %d: %v", i, err)
		}
		if res.Size < 300 || (i > 0 && res.Size < sizes[i-1]) {
			t.Fatalf("backup %d has size %d, after %v", i, res.Size, sizes)
		}
		sizes = append(sizes, res.Size)
		if err := Backup(ctx, path, out); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("Backup onto an existing file: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatalf("Append during backup: %v", err)
	default:
	}
	t.Logf("backup sizes %v", sizes)

	// A restored copy opens and keeps appending consistently.
	restored := openAt(t, filepath.Join(dir, "backup-2.db"), Options{})
	_, cp := mustAppend(t, restored, sign, decision(t, "after-restore", decisionOpts{}))
	if cp.Size != sizes[2]+1 {
		t.Fatalf("appended at size %d, want %d", cp.Size, sizes[2]+1)
	}
	if err := restored.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, filepath.Join(dir, "backup-2.db"), v, nil); err != nil {
		t.Fatalf("Check after appending to the restored copy: %v", err)
	}
}
