//go:build ignore

// Command gen writes the test vectors of package vectors into the
// module's testdata directory: run it from anywhere in the module with
//
//	go run ./testdata/gen.go
//
// Files under testdata that it does not write are left alone.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/govlog/govlog/log/logtest/vectors"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	files, err := vectors.Files()
	if err != nil {
		return fmt.Errorf("failed to build the vectors: %w", err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(root, "testdata", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("failed to create the directory of %s: %w", name, err)
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return fmt.Errorf("failed to write %s: %w", name, err)
		}
	}
	fmt.Printf("wrote %d files under %s\n", len(names), filepath.Join(root, "testdata"))
	return nil
}

// moduleRoot is the nearest directory, from the working directory up, that
// holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("failed to find the working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("failed to find go.mod above the working directory")
		}
		dir = parent
	}
}
