package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// synopses are each command's usage line, as the general usage gives it.
var synopses = map[string]string{
	"setup":    "billing-audit setup\n  create or complete the audit-log sheet, print its id; create the digest signing key",
	"run":      "billing-audit run [--test] [--force-report] [--wide]\n  scan the source sheets and write the audit log",
	"verify":   "billing-audit verify [--json]\n  check the audit log: ledger chain, signed digests, every audit row (exit 3 on a problem)",
	"demo":     "billing-audit demo [--out DIR]\n  a full audit run against the built-in simulator",
	"listen":   "billing-audit listen [--addr 127.0.0.1:8090] [--scan-every 4h]\n  receive webhooks and audit each edit in seconds; run the audit at start and every --scan-every",
	"webhooks": "billing-audit webhooks list | ensure | reset-secret ID\n  list the webhooks, keep one per source sheet, or rotate a webhook's secret",
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
	fmt.Fprintf(&b, "Usage:\n  %s\n", strings.ReplaceAll(synopses[fs.Name()], "\n", "\n  "))
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
