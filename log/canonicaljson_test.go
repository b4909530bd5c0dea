package log_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	reference "github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/gowebpki/jcs"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
)

// The Parse functions read a body once, writing its RFC 8785 form as they
// go. These tests hold that reader to two independent implementations:
// gowebpki/jcs, which refuses what RFC 8785 cannot canonicalize (the same
// strict JSON the wire contract asks for), for the verdict and the bytes;
// and cyberphone/json-canonicalization, the reference implementation of
// the RFC's author, which is lenient, for the bytes of what is accepted.

// checkJCS checks the one-pass canonical form of body, or its refusal,
// against both implementations.
func checkJCS(t *testing.T, body []byte) {
	t.Helper()
	got, err := log.CanonicalJSON(body)
	want, wantErr := jcs.Transform(body)
	if err != nil && !errors.Is(err, log.ErrInvalidJSON) {
		t.Fatalf("error %v does not wrap ErrInvalidJSON", err)
	}
	if wantErr == nil && (len(want) == 0 || want[0] != '{') {
		// gowebpki/jcs takes any JSON text; a body must be an object.
		if err == nil {
			t.Fatalf("accepted %q, which is not an object", body)
		}
		return
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("verdicts differ on %q: %v; gowebpki/jcs: %v", clipBytes(body), err, wantErr)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("canonical forms differ on %q:\n%q\ngowebpki/jcs:\n%q", clipBytes(body), got, want)
	}
	ref, err := reference.Transform(body)
	if err != nil || !bytes.Equal(got, ref) {
		t.Fatalf("canonical forms differ on %q:\n%q\nreference (%v):\n%q", clipBytes(body), got, err, ref)
	}
}

func clipBytes(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "…"...)
	}
	return b
}

// jsonTexts are objects, valid or not, that exercise the corners of strict
// JSON and RFC 8785.
func jsonTexts() []string {
	deep := func(n int, open, close string) string {
		return `{"a":` + strings.Repeat(open, n) + strings.Repeat(close, n) + `}`
	}
	texts := []string{
		`{}`, ` { } `, "\t{\n}\r\n", `{"":""}`, `{"a":1,"b":2}`, `{"b":2,"a":1}`,
		`{"b":{"d":[{"f":1,"e":2}],"c":null},"a":[true,false,null]}`,
		// Member order by UTF-16 code units: U+1F600 (a surrogate pair,
		// D83D DE00) before U+FF61, after U+20AC.
		`{"\uff61":0,"\ud83d\ude00":1,"\u20ac":2,"\u00e9":3,"a":4,"A":5,"":6,"aa":7,"\u007f":8,"\u0080":9}`,
		"{\"\U0001F600\":1,\"\uE000\":2,\"\uD7FF\":3,\"\U00010000\":4,\"\uFFFF\":5,\"\U0010FFFF\":6}",
		`{"ab":1,"a":2,"abc":3,"b":4,"a\u0000":5}`,
		// Escapes: the canonical form escapes only '"', '\\' and control
		// characters.
		`{"s":"\"\\\/\b\f\n\r\t\u0000\u001f\u0020\u007f\u00e9\u2028\u2029<>&"}`,
		`{"s":"\u00E9\u00e9é","\u0061":"\u0062"}`,
		"{\"s\":\"\x7f \u0080 \u00a0 \ufeff \U0010ffff\"}",
		// Numbers.
		`{"n":[0,-0,-0.0,0.0,1,-1,1.0,1.50,1e3,1E+3,1e-7,1e-6,0.000001,0.0000001,123.456e2,5e-324,1e-400,4.5e15,1e21,1e20,9.999999999999999e20]}`,
		`{"n":[9007199254740991,9007199254740992,9007199254740993,123456789012345678901,999999999999999,1000000000000000,-999999999999999,-1000000000000000]}`,
		`{"n":[3.141592653589793238462643383279,0.333333333333333314829616256247390992939472198486328125,1.7976931348623157e308,-1.7976931348623157e308,2.2250738585072014e-308,4.9e-324]}`,
		`{"n":1e400}`, `{"n":-1e400}`, `{"n":01}`, `{"n":+1}`, `{"n":.5}`, `{"n":1.}`, `{"n":1e}`, `{"n":1e+}`, `{"n":-}`, `{"n":0x10}`,
		`{"n":NaN}`, `{"n":Infinity}`, `{"n":1 2}`, `{"n":1_000}`, `{"n":١}`,
		// Literals and structure.
		`{"a":true,"b":false,"c":null}`, `{"a":tru}`, `{"a":truex}`, `{"a":nul}`, `{"a":True}`,
		`{"a":1,}`, `{,"a":1}`, `{"a":1"b":2}`, `{"a" 1}`, `{"a":}`, `{"a"}`, `{a:1}`, `{'a':1}`,
		`{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":[}`, `{"a":]}`, `{"a":{}}}`, `{"a":1}{}`, `{"a":1} x`,
		`{"a":1}/**/`, `{"a":"b`, `{"a":"b\`, `{"a":"b\"}`, `{"a`, `{`, ``, ` `, `[]`, `"a"`, `1`, `null`,
		// Duplicates, also by escape and deep inside.
		`{"a":1,"a":1}`, `{"a":1,"\u0061":2}`, `{"x":{"b":1,"a":2,"b":3}}`, `{"x":[{"\u00e9":1,"é":2}]}`,
		// Strings: escapes, surrogates, control characters.
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, `{"a":"\U0041"}`, `{"a":"\ud800"}`, `{"a":"\udc00"}`,
		`{"a":"\ud800\u0041"}`, `{"a":"\ud800\ud800"}`, `{"a":"\ud800\"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\uDBFF\uDFFF"}`,
		"{\"a\":\"\t\"}", "{\"a\":\"\x00\"}", "{\"a\":\"\x1f\"}", "{\"\n\":1}",
		// UTF-8.
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":\"\xe2\x82\\n\"}",
		"{\"\xff\":1}", "{\xff}", "\ufeff{}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\\u00e9\xc3\"}",
		// Nesting: gowebpki/jcs and this reader allow 10,000 levels.
		deep(9999, "[", "]"), deep(10000, "[", "]"), deep(9999, `{"b":`, "}"), deep(10000, `{"b":`, "}"),
	}
	return texts
}

func TestCanonicalJSON(t *testing.T) {
	for _, text := range jsonTexts() {
		t.Run(string(clipBytes([]byte(text))), func(t *testing.T) { checkJCS(t, []byte(text)) })
	}
	for _, body := range vectorBodies(t) {
		checkJCS(t, body)
	}
}

// TestCanonicalJSONCrossLanguage runs the RFC 8785 vectors the verifiers
// of every language share (testdata/verify/jcs.json): an object is
// canonicalized as they say, or refused; a body that is not an object is
// refused.
func TestCanonicalJSONCrossLanguage(t *testing.T) {
	var file struct {
		Cases []struct {
			Name, Want, Canonical string
			Input                 *string
			InputBase64           []byte `json:"input_base64"`
		}
	}
	readJSON(t, "verify/jcs.json", &file)
	objects := 0
	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			in := c.InputBase64
			if c.Input != nil {
				in = []byte(*c.Input)
			}
			checkJCS(t, in)
			got, err := log.CanonicalJSON(in)
			if trimmed := bytes.TrimLeft(in, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
				if err == nil {
					t.Fatalf("accepted %q, which is not an object", in)
				}
				return
			}
			objects++
			if (c.Want == "ok") != (err == nil) || (err == nil && string(got) != c.Canonical) {
				t.Fatalf("got %q, %v; want %s %q", got, err, c.Want, c.Canonical)
			}
		})
	}
	if objects < 10 {
		t.Fatalf("only %d of the vectors are objects", objects)
	}
}

// vectorBodies are the bodies of every vector: decisions and execution
// reports, valid and invalid, and entries.
func vectorBodies(t testing.TB) [][]byte {
	var bodies [][]byte
	for _, v := range append(vectors.ValidDecisions(), vectors.ValidExecutions()...) {
		bodies = append(bodies, []byte(v.Body))
	}
	for _, v := range append(vectors.InvalidDecisions(), vectors.InvalidExecutions()...) {
		bodies = append(bodies, v.Bytes())
	}
	for _, v := range vectors.BadEntries() {
		bodies = append(bodies, []byte(v.Leaf))
	}
	files, err := vectors.Files()
	if err != nil {
		t.Fatal(err)
	}
	var entries []vectors.Entry
	if err := json.Unmarshal(files["entries/valid.json"], &entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		bodies = append(bodies, []byte(e.Leaf), []byte(e.Content))
	}
	return bodies
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, text := range jsonTexts() {
		if len(text) < 1000 {
			f.Add([]byte(text))
		}
	}
	for _, body := range vectorBodies(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkJCS(t, body)
	})
}
