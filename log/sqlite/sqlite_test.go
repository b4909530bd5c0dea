package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
)

func TestConformance(t *testing.T) {
	conformance(t, Options{})
}

// TestConformanceMerged runs the suite with the ids rows merged into runs
// every two entries: each name a batch uses is then looked up in the
// stored runs (and a key entry, once found there, in the writer's cache
// of key entries), not among the pending rows of the newest entries.
func TestConformanceMerged(t *testing.T) {
	conformance(t, Options{HashMerge: 2})
}

func conformance(t *testing.T, opts Options) {
	logtest.Run(t, func(t *testing.T) logtest.Opener {
		path := filepath.Join(t.TempDir(), "log.db")
		return func(t *testing.T) log.Backend {
			b, err := Open(context.Background(), path, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return b
		}
	})
}
