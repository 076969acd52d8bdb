package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldaudit/billing-audit/shared/listen"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// cmdWebhooks: webhooks list | ensure | reset-secret ID.
func cmdWebhooks(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		return flagError{cmd: "webhooks", msg: "which: list, ensure or reset-secret ID?", usage: commandUsage(flag.NewFlagSet("webhooks", flag.ContinueOnError))}
	}
	if a := args[0]; a == "-h" || a == "--help" || a == "-help" || a == "help" {
		return helpError{commandUsage(flag.NewFlagSet("webhooks", flag.ContinueOnError))}
	}
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	var id int64
	switch args[0] {
	case "list":
	case "ensure":
		if cfg.WebhookCallbackURL == "" {
			return errors.New("WEBHOOK_CALLBACK_URL is not set: the URL Smartsheet calls (`billing-audit listen`, through a tunnel)")
		}
		if err := cfg.RequireSources(); err != nil {
			return err
		}
	case "reset-secret":
		if len(args) != 2 {
			return errUsage
		}
		if id, err = strconv.ParseInt(args[1], 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("webhook id %q: not a positive number", args[1])
		}
	default:
		return errUsage
	}
	a, err := openApp(cfg, logger, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	switch args[0] {
	case "ensure":
		r, err := a.runner(ctx, logger, nil)
		if err != nil {
			return err
		}
		acts, err := r.EnsureWebhooks(ctx, nil)
		printActions(stdout, acts)
		return err
	case "reset-secret":
		now := time.Now().UTC()
		if err := pipeline.ResetWebhookSecret(ctx, a.client, a.store, id, cfg.WebhookSecretOverlap, now); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "webhook %d: new shared secret stored; the previous one is accepted until %s\n",
			id, now.Add(cfg.WebhookSecretOverlap).Format(time.RFC3339))
		return nil
	}
	return listWebhooks(ctx, a, stdout)
}

func listWebhooks(ctx context.Context, a *app, stdout io.Writer) error {
	hooks, err := a.client.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	if len(hooks) == 0 {
		fmt.Fprintln(stdout, "no webhooks")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHEET\tWEBHOOK\tSTATUS\tENABLED\tSECRET\tCALLBACK\tLAST ALERT")
	for _, w := range hooks {
		enabled := w.Enabled != nil && *w.Enabled
		secret := "-"
		if _, ok, err := a.store.SecretSet(ctx, w.ID); err != nil {
			return err
		} else if ok {
			secret = "stored"
		}
		alert := "-"
		if st, ok, err := pipeline.LastWebhookStatus(ctx, a.store, w.ID); err != nil {
			return err
		} else if ok {
			alert = st.Status + " at " + st.At.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%v\t%s\t%s\t%s\n", w.ScopeObjectID, w.ID, w.Status, enabled, secret, w.CallbackURL, alert)
	}
	return tw.Flush()
}

func printActions(w io.Writer, acts []pipeline.WebhookAction) {
	if len(acts) == 0 {
		fmt.Fprintln(w, "no webhook to keep: no source sheet with tracked columns")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHEET\tWEBHOOK\tDONE\tSTATUS")
	for _, a := range acts {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", a.SheetID, a.WebhookID, strings.Join(a.Actions, ", "), dash(a.Status))
	}
	tw.Flush()
}

// cmdListen is the local service: it serves webhook callbacks until
// interrupted (the receiver with the bolt store's ports, and the refresh of
// each edited row) and runs the scheduled audit itself, at start and every
// --scan-every, as the Scan function's schedule does in AWS.
func cmdListen(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", listen.DefaultAddr, "host:port to listen on")
	scanEvery := fs.Duration("scan-every", defaultScanEvery, "run the audit at start and this often (0: never)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *scanEvery < 0 {
		return flagError{cmd: "listen", msg: fmt.Sprintf("--scan-every %s: negative", *scanEvery), usage: commandUsage(fs)}
	}
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	if err := cfg.RequireSources(); err != nil {
		return err
	}
	if cfg.WebhookCallbackURL == "" {
		// Smartsheet itself needs a public https URL (a tunnel); the
		// simulator calls loopback directly.
		cfg.WebhookCallbackURL = "http://" + *addr + listen.DefaultPath
	}
	a, err := openApp(cfg, logger, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	r, err := a.runner(ctx, logger, nil)
	if err != nil {
		return err
	}
	l, err := listen.Start(ctx, listen.Options{
		Addr: *addr, Secrets: webhook.StoredSecrets(a.store, nil), Nonces: a.store, Records: a.store, Meta: a.store,
		Refresher: r, OwnChangeAgent: cfg.ChangeAgent, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer l.Close()
	unmark, err := markListening(cfg.StateDir, l.Addr(), *scanEvery)
	if err != nil {
		return err
	}
	defer unmark()
	acts, err := r.EnsureWebhooks(ctx, nil)
	printActions(stdout, acts)
	if err != nil {
		return fmt.Errorf("register webhooks: %w", err)
	}
	fmt.Fprintf(stdout, "listening on %s, callback %s; Ctrl-C stops\n", l.Addr(), cfg.WebhookCallbackURL)
	if *scanEvery > 0 {
		scheduledAudits(ctx, a, stdout, logger, *scanEvery)
	}
	<-ctx.Done()
	return l.Close()
}

// defaultScanEvery is listen's audit interval: the Scan function's schedule
// (every 4 hours).
const defaultScanEvery = 4 * time.Hour

// scheduledAudits runs the audit now and every interval until ctx ends. A
// failed run is printed and the next one still comes: the listener keeps
// serving, as the schedule keeps firing in AWS.
func scheduledAudits(ctx context.Context, a *app, stdout io.Writer, logger *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		fmt.Fprintf(stdout, "scheduled audit at %s (every %s)\n", time.Now().Format(time.RFC3339), every)
		if _, err := runAudit(ctx, a, stdout, nil, logger, false); err != nil && ctx.Err() == nil {
			fmt.Fprintf(stdout, "  scheduled audit failed: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// listenMark is the file in STATE_DIR that says a listener is running, so a
// command that finds the store in use can say by whom.
const listenMark = "listen.pid"

// markListening writes the listener's mark; the returned func removes it.
func markListening(stateDir, addr string, every time.Duration) (func(), error) {
	path := filepath.Join(stateDir, listenMark)
	body := fmt.Sprintf("pid %d\naddr %s\nscan-every %s\n", os.Getpid(), addr, every)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return func() { _ = os.Remove(path) }, nil
}

// inUseHint explains a store held by another process: by a listener (its
// mark names it) or by some other command still running.
func inUseHint(stateDir string) string {
	b, err := os.ReadFile(filepath.Join(stateDir, listenMark))
	if err != nil {
		return fmt.Sprintf("another billing-audit command is using STATE_DIR %s; wait for it to finish, or give this one its own STATE_DIR", stateDir)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		fields[k] = v
	}
	return fmt.Sprintf("`billing-audit listen` (pid %s, on %s) holds STATE_DIR %s and runs the audit itself every %s; "+
		"stop it (Ctrl-C) to run this command, or leave the audits to it", fields["pid"], fields["addr"], stateDir, fields["scan-every"])
}
