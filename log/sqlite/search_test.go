package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/govlog/govlog/log"
)

// TestReindex: a log whose entries the search index does not cover (one
// written before the index existed) is indexed when it is opened for
// writing, and then passes Check.
func TestReindex(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	b := openAt(t, path, Options{})
	sign, v := newSign(t)
	var batch []*log.Entry
	for i := range reindexChunk + 10 {
		batch = append(batch, decision(t, fmt.Sprintf("d-%d", i), decisionOpts{}))
	}
	mustAppend(t, b, sign, batch...)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, path, `DELETE FROM search_terms`)
	sqlExec(t, path, `UPDATE search_indexed SET size = 0`)
	if _, err := Check(ctx, path, v, nil); err == nil {
		t.Fatal("Check passed a log with no search index")
	}
	b = openAt(t, path, Options{})
	found, err := b.Search(ctx, &log.Query{Kind: log.SearchDecision}, 0, 0, 1000)
	if err != nil || len(found) != 1000 {
		t.Fatalf("Search after reindexing: %d entries, %v; want 1000", len(found), err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check after reindexing: %v", err)
	}
}
