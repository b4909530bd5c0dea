package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/govlog/govlog/internal/cputime"
	"strings"
	"testing"
)

// checkSplit holds splitBatch to encoding/json (decodeBatch): whatever it
// accepts, encoding/json accepts with the same items.
func checkSplit(t testing.TB, body []byte) (fast bool) {
	t.Helper()
	items, ok := splitBatch(body)
	ref, err := decodeBatch(body)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("splitBatch accepts %q, encoding/json refuses it: %v", body, err)
	}
	if len(items) != len(ref) {
		t.Fatalf("%q: %d items, encoding/json %d", body, len(items), len(ref))
	}
	for i := range items {
		if !bytes.Equal(items[i], ref[i]) {
			t.Fatalf("%q: item %d is %q, encoding/json %q", body, i, items[i], ref[i])
		}
	}
	return true
}

var splitSeeds = []string{
	`{"decisions":[]}`, ` {"decisions":[]} `, "\t{\n\"decisions\"\r:\n[ ]\n}\n",
	`{"decisions":[{}]}`, `{"decisions":[{},{}]}`, `{"decisions":[1,"x",null,true,false,[],{}]}`,
	`{"decisions":[{"a":[1,-0,0.5,-1e10,2E+3,3e-2,10,-123.456e789],"b":{"c":{"d":[[[]]]}}}]}`,
	`{"decisions":[{"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00 é ` + "\xff\xc0\x80\x7f" + `"}]}`,
	`{"decisions":[{"id":"a","outcome":"allow"} , {"id":"b"}  ]}`,
	// Refused by both, or left to encoding/json.
	``, `[]`, `{}`, `{"decisions":null}`, `{"decisions":{}}`, `{"decisions":[`, `{"decisions":[{"id":}]}`,
	`{"decisions":[],"x":1}`, `{"decisions":[],"decisions":[]}`, `{"decisions":[]} {}`, `{"decisions":[]}x`,
	`{"decision\u0073":[{}]}`, `{"decisions":[01]}`, `{"decisions":[1.]}`, `{"decisions":[.5]}`, `{"decisions":[-]}`,
	`{"decisions":[1e]}`, `{"decisions":[+1]}`, `{"decisions":[tru]}`, `{"decisions":[nul]}`, `{"decisions":[{"a":1,}]}`,
	`{"decisions":[[1,]]}`, `{"decisions":[{},]}`, `{"decisions":[,{}]}`, `{"decisions":[{}{}]}`, `{"decisions":[{"a" 1}]}`,
	`{"decisions":[{1:2}]}`, "{\"decisions\":[\"a\x01\"]}", `{"decisions":["\x"]}`, `{"decisions":["\u12"]}`,
	`{"decisions":["\u12G4"]}`, `{"decisions":["abc]}`, "{\"decisions\":[]}\x00", "\ufeff{\"decisions\":[]}",
	"{\"decisions\":[]}\v", `{"decisions":[NaN]}`, `{"decisions":[Infinity]}`, `{"decisions":[{"a":1}}]}`,
}

// TestSplitBatch checks the fast path against encoding/json on the seeds,
// and that it takes the batches it is for.
func TestSplitBatch(t *testing.T) {
	fast := 0
	for _, s := range splitSeeds {
		if checkSplit(t, []byte(s)) {
			fast++
		}
	}
	if fast != 9 {
		t.Errorf("splitBatch took %d of the 9 valid seeds", fast)
	}
	// The batch the load generator sends, at the item limit.
	body := benchBatchBody(MaxBatchItems)
	if !checkSplit(t, body) {
		t.Fatal("splitBatch refused a batch of the limit")
	}
	// One more item is left to encoding/json, which refuses it.
	over := append(bytes.TrimSuffix(body, []byte("]}")), `,{}]}`...)
	if _, ok := splitBatch(over); ok {
		t.Fatal("splitBatch accepted more than MaxBatchItems")
	}
	if _, err := parseBatch(over); err == nil {
		t.Fatal("parseBatch accepted more than MaxBatchItems")
	}
	// Nesting: to its own limit by itself, beyond it by encoding/json.
	for _, depth := range []int{maxBatchDepth - 1, maxBatchDepth, 10_000, 10_001} {
		body := []byte(`{"decisions":[` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `]}`)
		fast := checkSplit(t, body)
		if fast != (depth <= maxBatchDepth) {
			t.Errorf("depth %d: fast path %v", depth, fast)
		}
		// encoding/json decodes each item with a scanner of its own.
		_, err := parseBatch(body)
		if (err == nil) != (depth <= 10_000) {
			t.Errorf("depth %d: %v", depth, err)
		}
	}
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSplit(t, body)
	})
}

// benchBatchBody is a batch of n decisions like those govlog bench sends.
func benchBatchBody(n int) []byte {
	var items [][]byte
	for i := range n {
		items = append(items, fmt.Appendf(nil, `{"id":"bench-%07d","outcome":"allow","decided_at":"2026-11-25T18:00:00Z",`+
			`"subject":"spiffe://prod.example/ns/agents/sa/agent-7","action":"deploy",`+
			`"resource":"arn:example:service/deploy/item-1","policy":{"id":"agent-guardrails","version":"2026.11.3","digest":"sha256:%064x"},`+
			`"input_digest":"sha256:%064x","context":{"session":"s-1","risk":0.25,"tool":"kubectl","args":"%s \u00e9"}}`, i, 1, 2, strings.Repeat("a", 300)))
	}
	body := append([]byte(`{"decisions":[`), bytes.Join(items, []byte(","))...)
	return append(body, "]}"...)
}

// BenchmarkParseBatch splits a batch of 1,000 decisions: by hand (the fast
// path) and with encoding/json's Decoder.
func BenchmarkParseBatch(b *testing.B) {
	body := benchBatchBody(MaxBatchItems)
	for _, c := range []struct {
		name  string
		parse func([]byte) ([]json.RawMessage, error)
	}{{"splitBatch", parseBatch}, {"encoding/json", decodeBatch}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			start := cputime.Process()
			for b.Loop() {
				if _, err := c.parse(body); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, start)
		})
	}
}
