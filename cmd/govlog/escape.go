package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Logged content is untrusted text: a decision's subject, an id, a file
// name in a directory of receipts, a message from a server. govlog prints
// every such value through field or escapeText, so that it can never look
// like govlog's own output: no newline or carriage return to start a fake
// "outcome: allow" line, no ANSI escape sequence to rewrite the terminal,
// no bidirectional control to reorder what is shown.

// field returns a logged value as govlog prints it: as it is when it is
// plain text (non-empty, printable characters, no leading or trailing space, not
// starting with a double quote), otherwise as a Go double-quoted string
// whose escapes make every control, format and invalid byte visible
// (strconv.Quote: C0 and C1 controls, DEL, bidi controls, U+2028, …).
func field(s string) string {
	if s != "" && plain(s) && !strings.HasPrefix(s, `"`) && strings.TrimSpace(s) == s {
		return s
	}
	return strconv.Quote(s)
}

// escapeText returns a message, such as an error, with every character
// that is not plain text replaced by its Go escape (\n, \x1b, \u202e…),
// the rest left as it is.
func escapeText(s string) string {
	if plain(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
				continue
			}
		}
		if printable(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// plain reports whether s is valid UTF-8 of printable characters only.
func plain(s string) bool {
	for i, r := range s {
		if !printable(r) {
			return false
		}
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return false
			}
		}
	}
	return true
}

// printable is unicode.IsPrint: letters, marks, numbers, punctuation,
// symbols and the ASCII space; not controls (C0, DEL, C1), format
// characters (bidi controls, zero-width ones) or other spaces.
func printable(r rune) bool { return unicode.IsPrint(r) }
