// Command smartsim serves the Smartsheet API simulator on a loopback address.
//
//	smartsim -addr 127.0.0.1:8089 -state file.json -sheets 3 -rows 2000 -weeks 6 -seed 1
//
// It loads the state file if it exists, otherwise generates billing sheets,
// prints the API base URL, and saves the state on SIGINT/SIGTERM.
//
// For Smartsheet-like timing (scale tests), each API request can wait
// -latency plus -latency-per-row for each row it carries, jittered by
// -latency-jitter (a fraction, seeded by -seed); requests refused with 401 or
// 429 wait only smartsim.DefaultRejectedLatency. Rate limits stay on. A
// suggested setting, an assumption rather than a measurement:
//
//	smartsim -latency 400ms -latency-per-row 1ms -latency-jitter 0.3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

func main() {
	if err := run(); err != nil {
		slog.Error("smartsim", "err", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address (loopback only)")
	statePath := flag.String("state", "", "state file: loaded if present, saved on exit")
	sheets := flag.Int("sheets", 3, "billing sheets to generate")
	rows := flag.Int("rows", 2000, "rows per sheet")
	weeks := flag.Int("weeks", 6, "weeks of rows")
	seed := flag.Uint64("seed", 1, "seed for ids, data and faults")
	endWeek := flag.String("end-week", "", "last week ending YYYY-MM-DD (default: last Sunday)")
	nested := flag.Bool("nested", false, "put the billing folder inside a workspace folder")
	tokens := flag.String("tokens", "", "accepted tokens, comma separated (default: any token)")
	noLimits := flag.Bool("no-rate-limit", false, "disable rate limiting")
	latency := flag.Duration("latency", 0, "base latency of every API request, e.g. 400ms")
	perRow := flag.Duration("latency-per-row", 0, "latency added per row a request carries, e.g. 1ms")
	jitter := flag.Float64("latency-jitter", 0, "spread of each latency as a fraction of it, 0 to 1")
	hookDebounce := flag.Duration("webhook-debounce", 0, "how long a webhook's events are gathered into one callback (default 1s; Smartsheet: about 1m)")
	hookDelay := flag.Duration("webhook-delay", 0, "extra delay of every webhook callback, e.g. 30s (Smartsheet's arrive up to a minute late)")
	flag.Parse()

	lat, err := latencyOf(*latency, *perRow, *jitter)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	opts := smartsim.Options{Seed: *seed, Logger: log, Limits: smartsim.Limits{Disabled: *noLimits}, Latency: lat,
		Webhooks: smartsim.WebhookOptions{Debounce: *hookDebounce, Delay: *hookDelay}}
	if *tokens != "" {
		opts.Tokens = map[string]smartsheet.User{}
		for _, t := range strings.Split(*tokens, ",") {
			opts.Tokens[strings.TrimSpace(t)] = smartsim.DefaultUser
		}
	}
	srv := smartsim.NewServer(opts)

	loaded := false
	if *statePath != "" {
		err := srv.LoadFile(*statePath)
		switch {
		case err == nil:
			loaded = true
			log.Info("state loaded", "path", *statePath)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if !loaded {
		cfg := smartsim.GenConfig{Sheets: *sheets, Rows: *rows, Weeks: *weeks, Seed: *seed, Nested: *nested}
		if *endWeek != "" {
			t, err := time.Parse(time.DateOnly, *endWeek)
			if err != nil {
				return fmt.Errorf("-end-week: %w", err)
			}
			cfg.EndWeek = t
		}
		g, err := srv.Populate(cfg)
		if err != nil {
			return err
		}
		log.Info("generated billing sheets", "folderId", g.FolderID, "sheetIds", g.SheetIDs)
	}

	base, err := srv.Listen(*addr)
	if err != nil {
		return err
	}
	fmt.Println(base)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		log.Warn("close", "err", err)
	}
	if *statePath != "" {
		if err := srv.SaveFile(*statePath); err != nil {
			return err
		}
		log.Info("state saved", "path", *statePath)
	}
	return nil
}

// latencyOf checks the latency flags.
func latencyOf(base, perRow time.Duration, jitter float64) (smartsim.Latency, error) {
	switch {
	case base < 0:
		return smartsim.Latency{}, fmt.Errorf("-latency %v: must not be negative", base)
	case perRow < 0:
		return smartsim.Latency{}, fmt.Errorf("-latency-per-row %v: must not be negative", perRow)
	case jitter < 0 || jitter > 1:
		return smartsim.Latency{}, fmt.Errorf("-latency-jitter %v: must be between 0 and 1", jitter)
	}
	return smartsim.Latency{Base: base, PerRow: perRow, Jitter: jitter}, nil
}
