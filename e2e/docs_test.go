package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The documentation check: every shell block of README.md and docs/*.md
// runs as written, the way testscript runs a txtar file. Each ```sh (or
// bash) block is marked, on the line just above it, with
//
//	<!-- docs-check: run -->
//	<!-- docs-check: skip: REASON -->
//
// and an unmarked block fails the check. The blocks marked run of a file
// run in order in one bash (set -euo pipefail), as if pasted into one
// terminal, in a new directory where:
//
//   - bin/ holds govlogd, govlog and govlog-witness, and is on PATH (as
//     README's "The commands on your PATH" says);
//   - govlogd serves ./data on 127.0.0.1:8080, as make run does;
//   - for the pages of docs/, README.md's blocks have run first (so the
//     quickstart's decision deploy-42 is logged, its receipts saved), and
//     log.vkey is a copy of data/log.vkey: an auditor's key.
//
// Every address 127.0.0.1:PORT in a block is replaced by a free port of
// this machine (8080 by the server's), the same within a file. Servers a
// block starts in the background are killed with the shell's process
// group when the file is done.

// docBlock is a shell block of a documentation file.
type docBlock struct {
	file string
	line int
	run  bool
	text string
}

var (
	docsMarker = regexp.MustCompile(`^<!-- docs-check: (run|skip: .+) -->$`)
	docsFence  = regexp.MustCompile("^```(sh|bash|shell)\\s*$")
	docsAddr   = regexp.MustCompile(`127\.0\.0\.1:([0-9]{2,5})`)
)

// docBlocks reads the shell blocks of a markdown file.
func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []docBlock
		prev   string
		cur    *docBlock
		inCode bool
		n      int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case inCode && strings.HasPrefix(line, "```"):
			inCode = false
		case inCode:
		case docsFence.MatchString(line):
			m := docsMarker.FindStringSubmatch(prev)
			if m == nil {
				t.Errorf("%s:%d: a shell block without a <!-- docs-check: run --> or <!-- docs-check: skip: REASON --> line above it", path, n)
			}
			cur = &docBlock{file: path, line: n, run: m != nil && m[1] == "run"}
		case strings.HasPrefix(line, "```"):
			inCode = true
		}
		prev = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s:%d: unterminated block", path, cur.line)
	}
	return blocks
}

func TestDocs(t *testing.T) {
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := docBlocks(t, "../README.md")
	bin := t.TempDir()
	for name, src := range map[string]string{
		"govlogd":        filepath.Join(binDir, "govlogd"),
		"govlog":         filepath.Join(binDir, "govlog"),
		"govlog-witness": witnessBinary(t),
	} {
		if err := os.Symlink(src, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	runs := 0
	for _, path := range append([]string{"../README.md"}, pages...) {
		blocks := docBlocks(t, path)
		if !hasRun(blocks) {
			continue
		}
		runs++
		t.Run(filepath.Base(path), func(t *testing.T) {
			work := t.TempDir()
			if err := os.Symlink(bin, filepath.Join(work, "bin")); err != nil {
				t.Fatal(err)
			}
			d := startDocsServer(t, filepath.Join(work, "data"))
			var setup []docBlock
			if path != "../README.md" {
				setup = append(readme, docBlock{file: "(docs check)", run: true, text: "cp data/log.vkey log.vkey\n"})
			}
			runDocBlocks(t, work, d.addr, setup, blocks)
		})
	}
	if runs < 4 {
		t.Errorf("only %d files have blocks marked run", runs)
	}
}

func hasRun(blocks []docBlock) bool {
	for _, b := range blocks {
		if b.run {
			return true
		}
	}
	return false
}

// startDocsServer starts govlogd on data as make run does: no --origin.
func startDocsServer(t *testing.T, data string) *daemon {
	t.Helper()
	d := startDaemon(t, data, "")
	return d
}

// runDocBlocks runs the blocks marked run, setup's first, in one bash in
// work, with the addresses replaced, and fails with the output of the
// block that failed.
func runDocBlocks(t *testing.T, work, serverAddr string, setup, blocks []docBlock) {
	t.Helper()
	ports := map[string]string{"8080": serverAddr}
	addr := func(s string) string {
		return docsAddr.ReplaceAllStringFunc(s, func(a string) string {
			port := strings.TrimPrefix(a, "127.0.0.1:")
			if ports[port] == "" {
				ports[port] = freeAddr(t)
			}
			return ports[port]
		})
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range append(setup, blocks...) {
		if !b.run {
			continue
		}
		fmt.Fprintf(&script, "echo '>>> %s:%d' >&2\n%s\n", strings.TrimPrefix(b.file, "../"), b.line, addr(b.text))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(work, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+work)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A file, not a pipe: the servers left in the background hold the
	// output open, and Wait would wait for them.
	out, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	// The servers the blocks left in the background go with the group.
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	output, _ := os.ReadFile(out.Name())
	if err != nil {
		text := string(output)
		if i := strings.LastIndex(text, ">>> "); i >= 0 {
			text = text[i:]
		}
		t.Fatalf("a documented block failed: %v\n%s", err, text)
	}
	t.Logf("ran the blocks:\n%s", output)
}
