package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/govlog/govlog/internal/cmdline"
)

// completeCommand is the hidden command the completion scripts call:
// "govlog __complete" prints the commands, "govlog __complete CMD" the
// flags of CMD, one a line. The scripts ask govlog itself, so they never
// fall behind its flags.
const completeCommand = "__complete"

// The completion scripts: commands after "govlog", flags after a command
// for a word starting with "-", file names otherwise.
const (
	bashCompletion = `# bash completion for govlog: source <(govlog completion bash)
_govlog() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ $COMP_CWORD -eq 1 ]]; then
		COMPREPLY=($(compgen -W "$(govlog __complete 2>/dev/null)" -- "$cur"))
	elif [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(govlog __complete "${COMP_WORDS[1]}" 2>/dev/null)" -- "$cur"))
	fi
}
complete -o default -F _govlog govlog
`
	zshCompletion = `#compdef govlog
# zsh completion for govlog: source <(govlog completion zsh), or save it as
# _govlog in a directory of $fpath.
_govlog() {
	if (( CURRENT == 2 )); then
		compadd -- ${(f)"$(govlog __complete 2>/dev/null)"}
	elif [[ $words[CURRENT] == -* ]]; then
		compadd -- ${(f)"$(govlog __complete $words[2] 2>/dev/null)"}
	else
		_files
	fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_govlog "$@"
else
	compdef _govlog govlog
fi
`
)

// completion prints a shell completion script.
func completion(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("completion", "bash|zsh", "Print the shell completion script of govlog for bash or zsh: commands, and each command's flags.")
	f.Example("source <(govlog completion bash)", "complete govlog in this bash session (add the line to ~/.bashrc to keep it)")
	f.Example("govlog completion zsh > \"${fpath[1]}/_govlog\"", "install it for zsh")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	if f.NArg() != 1 {
		return f.usagef("want one shell, bash or zsh")
	}
	switch f.Arg(0) {
	case "bash":
		_, err := io.WriteString(stdout, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(stdout, zshCompletion)
		return err
	}
	return f.usagef("unknown shell %q: want bash or zsh", f.Arg(0))
}

// completeWords prints the completions of "govlog WORDS...": the commands
// without a word, the flags of the command WORDS[0] otherwise. It always
// exits 0: a completion has no error to report.
func completeWords(ctx context.Context, words []string, stdout io.Writer) int {
	if len(words) == 0 {
		for _, c := range commands() {
			fmt.Fprintln(stdout, c.name)
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == words[0] {
			var out bytes.Buffer
			c.run(ctx, []string{cmdline.CompleteFlags}, strings.NewReader(""), &out)
			stdout.Write(out.Bytes())
		}
	}
	return 0
}
