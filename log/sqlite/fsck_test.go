package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
			sqlExec(t, path, `INSERT INTO search_postings (key, list) VALUES (-1, X'00')`)
		}, "the search index holds a row of time term"},
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

// editRow rewrites the first row of search_postings of range 0 whose
// postings (packPosting) edit changes: edit returns them changed, or nil
// to leave the row; encode (nil: the row's own encoding) encodes them.
func editRow(t *testing.T, path string, field bool, edit func([]uint64) []uint64, encode func([]uint64) []byte) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `SELECT key, list FROM search_postings WHERE key < 0 AND ` + sqlRowRange + ` = 0 ORDER BY key`
	if field {
		q = `SELECT key, list FROM search_postings WHERE key >= 0 AND key < 256 ORDER BY key`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		key  int64
		list []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.key, &r.list); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	rows.Close()
	for _, r := range all {
		var postings []uint64
		if field {
			postings, err = decodeBucket(r.list, uint64(r.key))
		} else {
			var offs []uint32
			offs, err = decodeList(nil, r.list)
			for _, off := range offs {
				postings = append(postings, packPosting(log.Term((r.key-timeKeyBase)>>timeRangeBits), uint64(off)))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		changed := edit(postings)
		if changed == nil {
			continue
		}
		var list []byte
		switch {
		case encode != nil:
			list = encode(changed)
		case field:
			list, _ = appendBucket(nil, changed, nil)
		default:
			list = appendList(nil, changed)
		}
		if _, err := db.Exec(`UPDATE search_postings SET list = ? WHERE key = ?`, list, r.key); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no row to edit")
}

// without returns an edit that removes the postings of the entry at off.
func without(off uint64) func([]uint64) []uint64 {
	return func(ps []uint64) []uint64 {
		out := slices.DeleteFunc(slices.Clone(ps), func(p uint64) bool { return p&rangeMask == off })
		if len(out) == len(ps) {
			return nil
		}
		return out
	}
}

// TestCheckSearchIndex: Check finds every posting of the full ranges, in
// their rows' encoding, no row of the last range (held in memory by a
// running log), a row that does not decode named as corrupt, and
// search_indexed at the end of the full ranges.
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
	const firstField = `(SELECT min(key) FROM search_postings WHERE key >= 0)`
	type edit func(t *testing.T, path string)
	sqlEdit := func(q string) edit { return func(t *testing.T, path string) { sqlExec(t, path, q) } }
	setList := func(list []byte) edit {
		return sqlEdit(fmt.Sprintf(`UPDATE search_postings SET list = X'%x' WHERE key = %s`, list, firstField))
	}
	// A term of the first field row, and a posting of it at an entry
	// that does not have it (the term's first posting, moved).
	moved := func(ps []uint64) []uint64 {
		p := ps[0]
		for off := uint64(0); off < 1<<rangeBits; off++ {
			q := p&^rangeMask | off
			if _, ok := slices.BinarySearch(ps, q); !ok {
				out := append(slices.Clone(ps), q)
				slices.Sort(out)
				return out
			}
		}
		return nil
	}
	// The same postings, each term as a list, singletons too: not the
	// canonical encoding.
	asLists := func(ps []uint64) []byte {
		var out []byte
		prev := int64(termBucket(log.Term(ps[0]>>rangeBits))<<(31-bucketBits)) - 1
		for i := 0; i < len(ps); {
			j := i + 1
			for j < len(ps) && ps[j]>>rangeBits == ps[i]>>rangeBits {
				j++
			}
			l := appendList(nil, ps[i:j])
			out = binary.AppendUvarint(binary.AppendUvarint(out, uint64(int64(ps[i]>>rangeBits)-prev-1)<<1), uint64(len(l)))
			out = append(out, l...)
			prev = int64(ps[i] >> rangeBits)
			i = j
		}
		return out
	}
	for _, tc := range []struct {
		name string
		edit edit
		want string
	}{
		{"clean", nil, ""},
		{"field posting missing", func(t *testing.T, path string) { editRow(t, path, true, without(90), nil) },
			"entry 90 is missing from the search index"},
		{"time posting missing", func(t *testing.T, path string) { editRow(t, path, false, without(16383), nil) },
			"entry 16383 is missing from the search index"},
		{"posting of an entry that lacks the term", func(t *testing.T, path string) { editRow(t, path, true, moved, nil) },
			"that the entry does not have"},
		{"not the encoding", func(t *testing.T, path string) {
			editRow(t, path, true, func(ps []uint64) []uint64 { return ps }, asLists)
		}, "holds the right postings, but not in their encoding"},
		{"row in the wrong range", sqlEdit(`UPDATE search_postings SET key = key + 256 WHERE key = ` + firstField), "is missing from the search index"},
		{"row of the last range", sqlEdit(`INSERT INTO search_postings (key, list) SELECT key + 256, list FROM search_postings WHERE key = ` + firstField),
			"the search index holds a row of entries 16384 to 32767, past the 16384 entries it covers"},
		{"time row of a term the range lacks", sqlEdit(fmt.Sprintf(`INSERT INTO search_postings (key, list) VALUES (%d, X'00')`, timeKey(12345, 0))),
			"the search index holds a row of time term 12345 for entries 0 to 16383, whose entries do not have it"},
		{"bad varint", setList(bytes.Repeat([]byte{0xff}, 11)), "bucket 0) is corrupt: corrupt postings: a bad varint"},
		{"truncated", setList([]byte{0x00, 0x05, 0x01}), "is corrupt: corrupt postings: a list of 5 bytes, 1 left"},
		{"offset past the range", setList(binary.AppendUvarint([]byte{0x01}, 1<<rangeBits)), "is corrupt: corrupt postings: an offset past the range"},
		{"gap past the range", setList([]byte{0x00, 0x04, 0xfe, 0xff, 0x01, 0x0a}), "is corrupt: corrupt postings: an offset past the range"},
		{"term past the bucket", setList(binary.AppendUvarint(nil, 1<<(31-bucketBits)<<1|1)), "is corrupt: corrupt postings: a term past the bucket"},
		{"covers the last range", sqlEdit(fmt.Sprintf(`UPDATE search_indexed SET size = %d`, n)), fmt.Sprintf("the search index covers %d entries", n)},
		{"not a range", sqlEdit(`UPDATE search_indexed SET size = 100`), "the search index covers 100 entries"},
		// While the last full range is merged (searchMerge): search_indexed
		// at its first entry, a prefix of its rows in key order (time rows
		// first) stored, not all of them.
		{"merge begun", sqlEdit(`DELETE FROM search_postings; UPDATE search_indexed SET size = 0`), ""},
		{"merge of the time rows", sqlEdit(`DELETE FROM search_postings WHERE key > (SELECT min(key) FROM search_postings); UPDATE search_indexed SET size = 0`), ""},
		{"merge of the field rows", sqlEdit(`DELETE FROM search_postings WHERE key > ` + firstField + `; UPDATE search_indexed SET size = 0`), ""},
		{"merge with a gap", sqlEdit(`DELETE FROM search_postings WHERE key < 0; UPDATE search_indexed SET size = 0`),
			"but not all those before it in key order"},
		{"merge missing a posting", func(t *testing.T, path string) {
			editRow(t, path, true, without(90), nil)
			sqlExec(t, path, `UPDATE search_indexed SET size = 0`)
		}, "entry 90 is missing from the search index"},
		{"merge of a row of the next range", sqlEdit(`DELETE FROM search_postings WHERE key >= 0; INSERT INTO search_postings (key, list) VALUES (256, X'0100'); UPDATE search_indexed SET size = 0`),
			"past the 16384 entries it covers"},
		{"merge done, not covered", sqlEdit(`UPDATE search_indexed SET size = 0`), "the search index holds every posting of entries 0 to 16383, but covers 0 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(t, path)
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
