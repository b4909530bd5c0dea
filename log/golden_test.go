package log_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govlog/govlog/log/logtest/vectors"
)

// TestGolden checks that the files under testdata are what the vectors
// generator writes: run `go run ./testdata/gen.go` after a
// deliberate change, and review the diff.
func TestGolden(t *testing.T) {
	files, err := vectors.Files()
	if err != nil {
		t.Fatal(err)
	}
	dirs := make(map[string]bool)
	for name, want := range files {
		dirs[strings.SplitN(name, "/", 2)[0]] = true
		got, err := os.ReadFile(filepath.Join(testdata, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("%s: %v (run the generator)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is stale: run go run ./testdata/gen.go and review the diff", name)
		}
	}
	// No stale files in the generator's directories.
	for dir := range dirs {
		if !strings.Contains(dir, ".") {
			err := filepath.WalkDir(filepath.Join(testdata, dir), func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(testdata, path)
				if _, ok := files[filepath.ToSlash(rel)]; !ok {
					t.Errorf("testdata/%s is not written by the generator", filepath.ToSlash(rel))
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}
	}
	// Deterministic.
	again, err := vectors.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if !bytes.Equal(files[name], again[name]) {
			t.Errorf("%s differs between two runs of the generator", name)
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
