package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/govlog/govlog/log"
)

// TestAnswersAsEncodingJSON checks that receipts and batch answers, written
// by hand, are byte for byte what encoding/json writes for them.
func TestAnswersAsEncodingJSON(t *testing.T) {
	e := newEnv(t, envOptions{})
	same := func(what string, body []byte, v any) {
		t.Helper()
		want, err := encodeJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, want) {
			t.Fatalf("%s\n%s\nencoding/json\n%s", what, body, want)
		}
	}
	receiptOf := func(body []byte) *log.Receipt {
		var r log.Receipt
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	allow := e.post("/v1/decisions", decision("j-1", "allow", map[string]any{"subject": "<&> \u2028 é"}))
	if allow.status != http.StatusCreated {
		t.Fatal(allow)
	}
	same("allow", allow.body, receiptOf(allow.body))
	denied := decision("j-2", "deny", nil)
	deny := e.post("/v1/decisions", denied)
	same("deny", deny.body, receiptOf(deny.body))
	again := e.post("/v1/decisions", denied)
	if again.status != http.StatusOK {
		t.Fatal(again)
	}
	same("resubmission", again.body, receiptOf(again.body))
	x := e.post("/v1/executions", claim("x-1", "j-1", receiptOf(allow.body).Artifact))
	same("execution", x.body, receiptOf(x.body))
	g := e.get("/v1/decisions/j-1")
	same("GET", g.body, receiptOf(g.body))

	b := e.post("/v1/decisions/batch", []byte(`{"decisions":[`+string(decision("j-3", "allow", nil))+`,{"id":"j-4"},`+
		string(decision("j-5", "deny", nil))+`,{"id":"a","id":"b"}]}`))
	if b.status != http.StatusOK {
		t.Fatal(b)
	}
	var raw struct{ Results []json.RawMessage }
	if err := json.Unmarshal(b.body, &raw); err != nil || len(raw.Results) != 4 {
		t.Fatalf("%v: %s", err, b.body)
	}
	results := make([]any, len(raw.Results))
	for i, r := range raw.Results {
		var eb errorBody
		if json.Unmarshal(r, &eb) == nil && eb.Error.Code != "" {
			results[i] = eb
		} else {
			results[i] = receiptOf(r)
		}
	}
	same("batch", b.body, struct {
		Results []any `json:"results"`
	}{results})
}
