package sqlitemigrate

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	_ "github.com/mattn/go-sqlite3"
)

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func version(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	one := fstest.MapFS{"schema/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")}}
	two := fstest.MapFS{
		"schema/0001_a.sql": one["schema/0001_a.sql"],
		"schema/0002_b.sql": {Data: []byte("CREATE TABLE b (y INTEGER);")},
	}
	db := open(t)
	var applied []int
	if err := Apply(ctx, db, one, func(v int) { applied = append(applied, v) }); err != nil {
		t.Fatal(err)
	}
	// Again: nothing to do. Then the next version only.
	if err := Apply(ctx, db, one, func(v int) { applied = append(applied, v) }); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, db, two, func(v int) { applied = append(applied, v) }); err != nil {
		t.Fatal(err)
	}
	if version(t, db) != 2 || len(applied) != 2 || applied[0] != 1 || applied[1] != 2 {
		t.Fatalf("version %d, applied %v", version(t, db), applied)
	}
	// A database newer than the program is refused.
	if err := Apply(ctx, db, one, nil); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("older migrations on a newer database: %v", err)
	}
	// A gap in the numbering is refused; a failing script leaves the version.
	gap := fstest.MapFS{"schema/0002_b.sql": two["schema/0002_b.sql"]}
	if err := Apply(ctx, open(t), gap, nil); err == nil || !strings.Contains(err.Error(), "not version 1") {
		t.Fatalf("gap: %v", err)
	}
	bad := fstest.MapFS{"schema/0001_a.sql": {Data: []byte("CREATE TABLE (")}}
	db2 := open(t)
	if err := Apply(ctx, db2, bad, nil); err == nil || version(t, db2) != 0 {
		t.Fatalf("bad script: %v, version %d", err, version(t, db2))
	}
}
