package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWitnessConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "witness w1 witness.example/w1+7b0d6455+BGf1CNdXQA7xrCpSXM9PmHbI/KFBYTNd7qNqd31wi/Eo https://w1.example\nquorum w1\n")
	none := write("none", "quorum none\n")
	bad := write("bad", "witness w1 nope https://w1.example\nquorum w1\n")
	noURL := write("nourl", "witness w1 witness.example/w1+7b0d6455+BGf1CNdXQA7xrCpSXM9PmHbI/KFBYTNd7qNqd31wi/Eo A0000:0\nquorum w1\n")
	for _, tc := range []struct {
		name string
		cfg  WitnessConfig
		want string // "" when valid
	}{
		{"no witnesses", WitnessConfig{}, ""},
		{"async", WitnessConfig{WitnessPolicy: good}, ""},
		{"sync", WitnessConfig{WitnessPolicy: good, WitnessMode: "sync", WitnessTimeout: time.Second}, ""},
		{"quorum none, async", WitnessConfig{WitnessPolicy: none}, ""},
		{"quorum none, sync", WitnessConfig{WitnessPolicy: none, WitnessMode: "sync"}, "names no witness"},
		{"sync without a policy", WitnessConfig{WitnessMode: "sync"}, "needs a --witness-policy"},
		{"unknown mode", WitnessConfig{WitnessPolicy: good, WitnessMode: "eventually"}, "async or sync"},
		{"negative timeout", WitnessConfig{WitnessPolicy: good, WitnessTimeout: -time.Second}, "negative"},
		{"opaque URL", WitnessConfig{WitnessPolicy: noURL}, "not an http or https URL"},
		{"negative interval", WitnessConfig{WitnessPolicy: good, WitnessInterval: -time.Second}, "--witness-interval must not be negative"},
		{"missing file", WitnessConfig{WitnessPolicy: filepath.Join(dir, "missing")}, "failed to read the witness policy"},
		{"not a policy", WitnessConfig{WitnessPolicy: bad}, "a configuration error in --witness-policy " + bad + ": invalid witness policy: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate: %v, want an error mentioning %q", err, tc.want)
			}
			if err == nil && (tc.cfg.WitnessMode == "" || tc.cfg.WitnessTimeout <= 0 || (tc.cfg.WitnessPolicy != "") != (tc.cfg.policy != nil)) {
				t.Fatalf("validate left %+v", tc.cfg)
			}
		})
	}
}
