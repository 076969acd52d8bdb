package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// commands are the CLI's commands in the order the general usage lists them:
// each one's synopsis and what it does. The general usage and each
// command's --help are made from them, so the two cannot drift apart.
var commands = []struct{ name, synopsis, what string }{
	{"setup", "billing-audit setup", "create or complete the audit-log sheet, print its id; create the digest signing key"},
	{"run", "billing-audit run [--test] [--force-report] [--wide]", "scan the source sheets and write the audit log"},
	{"verify", "billing-audit verify [--json]", "check the audit log: ledger chain, signed digests, every audit row (exit 3 on a problem)"},
	{"demo", "billing-audit demo [--out DIR]", "twelve weeks of edits and audits against the built-in simulator, in seconds"},
	{"listen", "billing-audit listen [--addr 127.0.0.1:8090] [--scan-every 4h]",
		"the local service: receive webhooks and audit each edit in seconds; run the audit at start and every --scan-every (0: never)"},
	{"webhooks", "billing-audit webhooks list | ensure | reset-secret ID",
		"list the webhooks, keep one enabled per source sheet calling WEBHOOK_CALLBACK_URL, or rotate a webhook's secret"},
}

// synopsis is a command's usage line and what it does.
func synopsis(name string) string {
	for _, c := range commands {
		if c.name == name {
			return c.synopsis + "\n  " + c.what
		}
	}
	return "billing-audit " + name
}

// generalUsage is billing-audit's usage: every command, then the exit
// statuses and where the settings come from.
func generalUsage() string {
	var b strings.Builder
	b.WriteString("billing-audit — finds every change to billed Smartsheet rows.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %s\n", c.synopsis)
		line := "     "
		for _, w := range strings.Fields(c.what) { // wrapped to fit 100 columns
			if len(line)+1+len(w) > 100 {
				b.WriteString(line + "\n")
				line = "     "
			}
			line += " " + w
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(`  billing-audit help

Exit status: 0 done; 1 failed; 2 usage; 3 done, but the audit log failed
verification (each problem is printed).

Settings come from environment variables (and a .env file when present):
see README.md and .env.example.
`)
	return b.String()
}

// helpError is a command's --help: its usage, printed to stdout, exit 0.
type helpError struct{ text string }

func (e helpError) Error() string { return e.text }

// flagError is a command-line mistake in one command: named, with that
// command's usage, exit 2.
type flagError struct {
	cmd, msg, usage string
}

func (e flagError) Error() string { return e.msg }

func (e flagError) Unwrap() error { return errUsage }

// commandUsage is a command's synopsis and its flags.
func commandUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %s\n", strings.ReplaceAll(synopsis(fs.Name()), "\n", "\n  "))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nFlags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return b.String()
}

// parseFlags parses a command's flags, and maxArgs positional arguments at
// most: -h/--help is a helpError, a flag the command does not have, a bad
// value or an extra argument a flagError that names it.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return helpError{commandUsage(fs)}
	case err != nil:
		return flagError{cmd: fs.Name(), msg: err.Error(), usage: commandUsage(fs)}
	case fs.NArg() > maxArgs:
		return flagError{cmd: fs.Name(), msg: fmt.Sprintf("unexpected argument %q", fs.Arg(maxArgs)), usage: commandUsage(fs)}
	}
	return nil
}
