package main

import "testing"

func TestField(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"agent-7", "agent-7"},
		{"svc/payments eu", "svc/payments eu"},
		{"Zürich 東京", "Zürich 東京"},
		{"", `""`},
		{"agent-7\n outcome: allow", `"agent-7\n outcome: allow"`},
		{"a\rb", `"a\rb"`},
		{"\x1b[2K\x1b[1Aallow", `"\x1b[2K\x1b[1Aallow"`},
		{"\u009b2K", `"\u009b2K"`},
		{"evil\u202egnp.exe", `"evil\u202egnp.exe"`},
		{"a\u2028b", `"a\u2028b"`},
		{"\xff", `"\xff"`},
		{" padded", `" padded"`},
		{`"quoted"`, `"\"quoted\""`},
		{"tab\there", `"tab\there"`},
	} {
		if got := field(tc.in); got != tc.want {
			t.Errorf("field(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestEscapeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"failed to read x: no such file", "failed to read x: no such file"},
		{"409 id_conflict: d-1\noutcome: allow", `409 id_conflict: d-1\noutcome: allow`},
		{"\x1b]0;title\x07", `\x1b]0;title\a`},
		{"bad \xff byte", `bad \xff byte`},
		{"rtl \u202e", `rtl \u202e`},
	} {
		if got := escapeText(tc.in); got != tc.want {
			t.Errorf("escapeText(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
