package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
		return errUsage
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
	a, err := openApp(cfg, logger)
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

// cmdListen serves webhook callbacks until interrupted: the receiver with
// the bolt store's ports, and the refresh of each edited row.
func cmdListen(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", listen.DefaultAddr, "host:port to listen on")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
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
	a, err := openApp(cfg, logger)
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
	acts, err := r.EnsureWebhooks(ctx, nil)
	printActions(stdout, acts)
	if err != nil {
		return fmt.Errorf("register webhooks: %w", err)
	}
	fmt.Fprintf(stdout, "listening on %s, callback %s; Ctrl-C stops\n", l.Addr(), cfg.WebhookCallbackURL)
	<-ctx.Done()
	return l.Close()
}
