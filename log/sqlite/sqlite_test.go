package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
)

func TestConformance(t *testing.T) {
	logtest.Run(t, func(t *testing.T) logtest.Opener {
		path := filepath.Join(t.TempDir(), "log.db")
		return func(t *testing.T) log.Backend {
			b, err := Open(context.Background(), path, Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return b
		}
	})
}
