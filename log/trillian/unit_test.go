package trillian

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/govlog/govlog/log"
)

// The leaf identity hash is part of the data: Trillian deduplicates by it
// forever, so it must never change for an existing tree. The vectors are
// printf 'govlog/leaf-identity/v1\x00\x01d-1' | sha256sum, and \x02.
func TestIdentityHash(t *testing.T) {
	tests := []struct {
		kind log.Kind
		id   string
		want string
	}{
		{log.KindDecision, "d-1", "8b0e4eb11b6c855dfc7ad5ee126f2e4f8d1c9b57c6372f89e11564c25cd119de"},
		{log.KindExecution, "d-1", "f98fd86703db6d34218bc0003cf0532b0037d8f43c70f8cdea48fac64a6a3524"},
		{log.KindDecision, "d-2", ""},
	}
	seen := make(map[[32]byte]bool)
	for _, tt := range tests {
		t.Run(tt.kind.String()+"/"+tt.id, func(t *testing.T) {
			h := identityHash(tt.kind, tt.id)
			if tt.want != "" && hex.EncodeToString(h[:]) != tt.want {
				t.Errorf("identityHash(%v, %q) = %x, want %s", tt.kind, tt.id, h, tt.want)
			}
			if seen[h] {
				t.Errorf("identityHash(%v, %q) collides with another test case", tt.kind, tt.id)
			}
			seen[h] = true
		})
	}
}

func TestMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no schema migrations embedded")
	}
	var tables []string
	for _, m := range ms {
		for _, s := range m.stmts {
			if strings.Contains(s, ";") || strings.Contains(s, "--") {
				t.Errorf("%s: statement not split cleanly: %q", m.name, s)
			}
			switch {
			case strings.HasPrefix(s, "CREATE TABLE IF NOT EXISTS "):
				tables = append(tables, strings.Fields(s)[5])
			case strings.HasPrefix(s, "INSERT IGNORE INTO "):
				// An upgrade of existing rows: applied again, it keeps
				// the rows it inserted the first time.
			default:
				t.Errorf("%s: statement is not idempotent: %q", m.name, s)
			}
		}
	}
	want := []string{"govlog_trees", "govlog_ids", "govlog_sequences", "govlog_checkpoints", "govlog_authorizations", "govlog_search", "govlog_search_indexed"}
	if !slices.Equal(tables, want) {
		t.Errorf("tables %v, want %v", tables, want)
	}
}

func TestSplitSQL(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"comments only", "-- a\n  -- b\n", nil},
		{"two", "-- c\nCREATE TABLE a (\n\tx INT\n);\n\nDROP TABLE b;\n", []string{"CREATE TABLE a (\n\tx INT\n)", "DROP TABLE b"}},
		{"no final semicolon", "SELECT 1", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitSQL(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("splitSQL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		n, width int
		want     string
	}{
		{1, 1, "(?)"},
		{2, 3, "(?, ?, ?), (?, ?, ?)"},
	}
	for _, tt := range tests {
		if got := placeholders(tt.n, tt.width); got != tt.want {
			t.Errorf("placeholders(%d, %d) = %q, want %q", tt.n, tt.width, got, tt.want)
		}
	}
}

// TestStatementRows checks how multi-row statements are cut: by rows, by
// bytes, and never fewer than one row, however large.
func TestStatementRows(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    int
		size int
		want int
	}{
		{"none", 0, 10, 0},
		{"all fit", 7, 10, 7},
		{"cut by rows", rowsPerStatement + 1, 10, rowsPerStatement},
		{"cut by bytes", 10, bytesPerStatement / 4, 4},
		{"exactly the bytes", 4, bytesPerStatement / 4, 4},
		{"one row above the bytes", 3, bytesPerStatement + 1, 1},
	} {
		if got := statementRows(tt.n, func(int) int { return tt.size }); got != tt.want {
			t.Errorf("%s: statementRows(%d, %d bytes each) = %d, want %d", tt.name, tt.n, tt.size, got, tt.want)
		}
	}
}
