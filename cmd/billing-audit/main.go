// Command billing-audit is the operator CLI: set up the audit-log sheet, run
// an audit locally, and run the demo against the built-in simulator.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

var usage = generalUsage()

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a command-line mistake (exit 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// On a terminal a live progress line shows the run; elsewhere (CI, cron,
	// files) plain log lines do.
	level := slog.LevelInfo
	if isTerminal(stderr) {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "setup":
		err = cmdSetup(ctx, args[1:], stdout, logger)
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr, logger)
	case "verify":
		err = cmdVerify(ctx, args[1:], stdout, logger)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr, logger)
	case "listen":
		err = cmdListen(ctx, args[1:], stdout, logger)
	case "webhooks":
		err = cmdWebhooks(ctx, args[1:], stdout, logger)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var help helpError
	if errors.As(err, &help) {
		fmt.Fprint(stdout, help.text)
		return 0
	}
	var fe flagError
	if errors.As(err, &fe) {
		fmt.Fprintf(stderr, "billing-audit %s: %s\n\n%s", fe.cmd, fe.msg, fe.usage)
		return 2
	}
	if errors.Is(err, errUsage) {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if errors.Is(err, errTampered) {
		fmt.Fprintf(stderr, "billing-audit %s: %v\n", args[0], err)
		return 3
	}
	if err != nil {
		fmt.Fprintf(stderr, "billing-audit %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
