package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/govlog/govlog/verifier"
	"golang.org/x/mod/sumdb/note"
)

// A receipt bundle is a JSON array whose items are receipts: each either
// a JSON receipt of the API (an object) or the text of a tlog-proof (a
// string), for example
//
//	[{"id":"d-1","index":0,…,"tlog_proof":"c2sp.org/tlog-proof@v1\n…"},
//	 "c2sp.org/tlog-proof@v1\nextra …\nindex 7\n…"]
//
// In a directory, every *.tlog-proof and *.json file is read (recursively):
// a JSON file holding an array is a bundle, one holding an object a JSON
// receipt. Other files are ignored.

// maxBundleBytes bounds a bundle file.
const maxBundleBytes = 1 << 30

// receiptItem is one receipt to verify: its name and its bytes, or the
// path to read them from.
type receiptItem struct {
	name string
	path string
	data []byte
	err  error
}

// receiptResult is the outcome of one receipt, as --json prints it.
type receiptResult struct {
	Name           string  `json:"name"`
	OK             bool    `json:"ok"`
	Error          string  `json:"error,omitempty"`
	Index          *uint64 `json:"index,omitempty"`
	Kind           string  `json:"kind,omitempty"`
	ID             string  `json:"id,omitempty"`
	Outcome        string  `json:"outcome,omitempty"`
	LeafHash       string  `json:"leaf_hash,omitempty"`
	CheckpointSize uint64  `json:"checkpoint_size,omitempty"`
	RootHash       string  `json:"root_hash,omitempty"`
	// Cosignatures are the valid cosignatures of the policy's witnesses
	// (with --witness-policy), earliest first.
	Cosignatures []verifier.Cosignature `json:"cosignatures,omitempty"`
	// InLogAt is the size of the latest checkpoint its checkpoint is
	// consistent with (with --against).
	InLogAt uint64 `json:"still_in_log_at_size,omitempty"`
}

// verifyReport is the JSON report of govlog verify.
type verifyReport struct {
	OK       bool            `json:"ok"`
	Verified int             `json:"verified"`
	Failed   int             `json:"failed"`
	Receipts []receiptResult `json:"receipts"`
}

// verifyMany verifies every receipt of the inputs (files, directories,
// bundles, "-" for stdin) and prints one line (or JSON item) each.
func verifyMany(inputs []string, key note.Verifier, policy *verifier.Policy, anc *against, asJSON bool, stdin io.Reader, stdout io.Writer) error {
	var items []receiptItem
	for _, in := range inputs {
		got, err := collectReceipts(in, stdin)
		if err != nil {
			return err
		}
		items = append(items, got...)
	}
	if len(items) == 0 {
		return fmt.Errorf("no receipt found in %s", strings.Join(inputs, ", "))
	}
	// Receipts are small and short-lived: collect garbage less often.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	rv := verifier.NewReceiptVerifier(key)
	results := make([]receiptResult, len(items))
	var wg sync.WaitGroup
	next := make(chan int, 1024)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = verifyItem(rv, policy, anc, &items[i])
				items[i].data = nil
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()

	rep := verifyReport{Receipts: results}
	for _, r := range results {
		if r.OK {
			rep.Verified++
		} else {
			rep.Failed++
		}
	}
	rep.OK = rep.Failed == 0
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		var b bytes.Buffer
		for _, r := range results {
			if r.OK {
				fmt.Fprintf(&b, "OK   %s: entry %d, %s %s", field(r.Name), *r.Index, r.Kind, field(r.ID))
				if r.Outcome != "" {
					fmt.Fprintf(&b, " (%s)", field(r.Outcome))
				}
				fmt.Fprintf(&b, ", checkpoint of size %d", r.CheckpointSize)
				if len(r.Cosignatures) > 0 {
					fmt.Fprintf(&b, ", cosigned by %s at %s", field(r.Cosignatures[0].Witness), r.Cosignatures[0].Time.Format(time.RFC3339))
					if n := len(r.Cosignatures) - 1; n > 0 {
						fmt.Fprintf(&b, " (+%d)", n)
					}
				}
				if r.InLogAt > 0 {
					fmt.Fprintf(&b, ", still in the log at size %d", r.InLogAt)
				}
				b.WriteByte('\n')
			} else {
				fmt.Fprintf(&b, "FAIL %s: %s\n", field(r.Name), escapeText(r.Error))
			}
			if b.Len() > 64<<10 {
				if _, err := stdout.Write(b.Bytes()); err != nil {
					return err
				}
				b.Reset()
			}
		}
		fmt.Fprintf(&b, "%d receipts: %d verified, %d failed\n", len(results), rep.Verified, rep.Failed)
		if _, err := stdout.Write(b.Bytes()); err != nil {
			return err
		}
	}
	if !rep.OK {
		return fmt.Errorf("%d of %d receipts do NOT verify", rep.Failed, len(results))
	}
	return nil
}

// verifyItem verifies one receipt.
func verifyItem(rv *verifier.ReceiptVerifier, policy *verifier.Policy, anc *against, it *receiptItem) receiptResult {
	r := receiptResult{Name: it.name}
	data, err := it.data, it.err
	if err == nil && data == nil {
		data, err = readReceiptFile(it.path)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	var v *verifier.Verified
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		v, err = rv.ReceiptJSON(data)
	} else {
		v, err = rv.Receipt(data)
	}
	if err == nil && policy != nil {
		err = policy.Check(v.Checkpoint.Note)
	}
	if err == nil && anc != nil {
		err = anc.check(v.Checkpoint)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	e := v.Entry
	index := v.Index
	r.OK, r.Index, r.Kind, r.ID = true, &index, e.Kind.String(), e.ID
	if e.Decision != nil {
		r.Outcome = e.Decision.Outcome
	}
	r.LeafHash = base64.StdEncoding.EncodeToString(v.LeafHash[:])
	r.CheckpointSize, r.RootHash = v.Checkpoint.Size, base64.StdEncoding.EncodeToString(v.Checkpoint.Hash[:])
	if policy != nil {
		r.Cosignatures = policy.Cosignatures(v.Checkpoint.Note)
	}
	if anc != nil {
		r.InLogAt = anc.latest.Size
	}
	return r
}

// readReceiptFile reads a receipt file of at most
// verifier.MaxReceiptBytes, in one read.
func readReceiptFile(path string) ([]byte, error) {
	return readFileLimit(path, verifier.MaxReceiptBytes)
}

// readFileLimit reads a file of at most limit bytes, in one read.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the input: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("failed to read the input: %w", err)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	return data, nil
}

// collectReceipts lists the receipts of one input: a receipt file, a
// bundle, a directory, or "-".
func collectReceipts(in string, stdin io.Reader) ([]receiptItem, error) {
	if in != "-" {
		fi, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("failed to read the input: %w", err)
		}
		if fi.IsDir() {
			return collectDir(in)
		}
	}
	var data []byte
	var err error
	if in == "-" {
		data, err = readInput(in, stdin, maxBundleBytes)
	} else {
		data, err = readFileLimit(in, maxBundleBytes)
	}
	if err != nil {
		return nil, err
	}
	if isBundle(data) {
		return bundleItems(in, data), nil
	}
	return []receiptItem{{name: in, data: data}}, nil
}

// collectDir lists the receipts of a directory tree, in lexical order.
func collectDir(dir string) ([]receiptItem, error) {
	var items []receiptItem
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case strings.HasSuffix(path, ".tlog-proof"):
			items = append(items, receiptItem{name: path, path: path})
		case strings.HasSuffix(path, ".json"):
			data, err := readFileLimit(path, maxBundleBytes)
			if err != nil {
				items = append(items, receiptItem{name: path, err: err})
			} else if isBundle(data) {
				items = append(items, bundleItems(path, data)...)
			} else {
				items = append(items, receiptItem{name: path, data: data})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read the directory %s: %w", dir, err)
	}
	return items, nil
}

// isBundle reports whether data is a JSON array.
func isBundle(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '['
}

// bundleItems splits a bundle into its receipts; a bundle that is not a
// JSON array of objects and strings is one failed item. It scans the
// array itself, without decoding the receipts: each is verified (and so
// parsed strictly) on its own.
func bundleItems(name string, data []byte) []receiptItem {
	bad := func(why string) []receiptItem {
		return []receiptItem{{name: name, err: fmt.Errorf("%w: not a receipt bundle (a JSON array of receipts): %s", verifier.ErrMalformed, why)}}
	}
	i := 0
	ws := func() {
		for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
			i++
		}
	}
	ws()
	if i == len(data) || data[i] != '[' {
		return bad("it does not start with [")
	}
	i++
	var items []receiptItem
	for {
		ws()
		if i < len(data) && data[i] == ']' && len(items) == 0 {
			i++
			break
		}
		it := receiptItem{name: fmt.Sprintf("%s[%d]", name, len(items))}
		end, err := jsonValueEnd(data, i)
		if err != nil {
			return bad(err.Error())
		}
		switch data[i] {
		case '{':
			it.data = data[i:end:end]
		case '"':
			if text, ok := unquoteNewlines(data[i+1 : end-1]); ok {
				it.data = text
				break
			}
			var s string
			if err := json.Unmarshal(data[i:end], &s); err != nil {
				it.err = fmt.Errorf("%w: %w", verifier.ErrMalformed, err)
			} else {
				it.data = []byte(s)
			}
		default:
			it.err = fmt.Errorf("%w: a bundle item must be a JSON receipt or a tlog-proof string", verifier.ErrMalformed)
		}
		items = append(items, it)
		i = end
		ws()
		if i < len(data) && data[i] == ',' {
			i++
			continue
		}
		if i < len(data) && data[i] == ']' {
			i++
			break
		}
		return bad(fmt.Sprintf("expected , or ] at byte %d", i))
	}
	ws()
	if i != len(data) {
		return bad(fmt.Sprintf("data after the array at byte %d", i))
	}
	return items
}

// unquoteNewlines decodes the contents of a JSON string whose only
// escapes are \n, as a tlog-proof's are; ok is false for anything else
// (then decoded by encoding/json).
func unquoteNewlines(q []byte) (text []byte, ok bool) {
	out := make([]byte, 0, len(q))
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c < 0x20 || c == '"':
			return nil, false
		case c == '\\':
			if i+1 == len(q) || q[i+1] != 'n' {
				return nil, false
			}
			out = append(out, '\n')
			i++
		default:
			out = append(out, c)
		}
	}
	return out, true
}

// jsonValueEnd returns the end of the JSON value that starts at data[i]:
// a string, an object or array (matching brackets outside strings), or a
// literal or number (up to the next delimiter).
func jsonValueEnd(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errors.New("unexpected end")
	}
	depth, inString := 0, false
	for j := i; j < len(data); j++ {
		c := data[j]
		switch {
		case inString:
			switch c {
			case '\\':
				j++
			case '"':
				inString = false
				if depth == 0 {
					return j + 1, nil
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				if j == i {
					return 0, fmt.Errorf("unexpected %c at byte %d", c, j)
				}
				return j, nil
			}
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			if j == i {
				return 0, fmt.Errorf("unexpected %q at byte %d", c, j)
			}
			return j, nil
		}
	}
	if depth != 0 || inString {
		return 0, errors.New("unexpected end")
	}
	return len(data), nil
}

// isBundleFile reports whether the file at path holds a bundle: its first
// non-space byte is '['.
func isBundleFile(path string) bool {
	return isBundle(fileHead(path, 512))
}

// fileHead returns the first n bytes of the file at path, or fewer: all
// of a shorter file, none of stdin ("-") or of a file it cannot read.
func fileHead(path string, n int) []byte {
	if path == "-" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, n)
	n, _ = io.ReadFull(f, head)
	return head[:n]
}
