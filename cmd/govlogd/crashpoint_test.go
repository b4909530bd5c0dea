//go:build crashpoint

package main

import (
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

func TestWithCrashPoint(t *testing.T) {
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/crash")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	b, _ := publishedLog(t, signer, "c", 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name, point, batch string
		want               string // error; "" for none
	}{
		{"off", "", "", ""},
		{"before-commit", "before-commit", "3", ""},
		{"after-commit default batch", "after-commit", "", ""},
		{"unknown point", "during-lunch", "", "before-commit or after-commit"},
		{"bad batch", "after-commit", "0", "positive integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(crashPointEnv, tc.point)
			t.Setenv(crashBatchEnv, tc.batch)
			got, err := withCrashPoint(b, logger)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("withCrashPoint: %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.point == "" && got != log.Backend(b) {
				t.Fatal("without the hook the backend must be unchanged")
			}
			if _, ok := got.(log.TileReader); !ok {
				t.Fatal("the wrapped backend lost its tiles API")
			}
		})
	}
}
