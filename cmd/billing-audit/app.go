package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldaudit/billing-audit/shared/alert"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/digestfile"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/xlsx"
)

// app is the wired CLI: config → client → store → runner.
type app struct {
	cfg    config.Config
	client *smartsheet.Client
	store  *bolt.Store
	// signer signs the digests (nil until setup created the key); digests
	// keeps them under OUTPUT_DIR/digests.
	signer  *digestfile.Signer
	digests digestfile.Dir
	// clock is the scan time source (nil: time.Now); the demo uses the simulator's.
	clock func() time.Time
	// alerts are channels besides the configured ones (the demo's console).
	alerts []pipeline.AlertChannel
	// wide prints every field of each change (run --wide).
	wide bool
}

func loadConfig(getenv config.Getenv) (config.Config, error) {
	if getenv == nil {
		var err error
		if getenv, err = config.Environ(""); err != nil {
			return config.Config{}, err
		}
	}
	return config.Load(getenv)
}

// openApp opens the client, the store and the signer. clock is the time the
// client's rate budget and the scans run on (nil: time.Now); the demo passes
// the simulator's, whose weeks of history pass in seconds.
func openApp(cfg config.Config, logger *slog.Logger, clock func() time.Time) (*app, error) {
	if err := cfg.RequireToken(); err != nil {
		return nil, err
	}
	client, err := smartsheet.New(smartsheet.Config{
		BaseURL: cfg.BaseURL, Token: cfg.Token.Reveal(), ChangeAgent: cfg.ChangeAgent,
		RetryBudget: cfg.RetryBudget, RequestsPerMinute: cfg.RequestsPerMinute, HistoryPerMinute: cfg.HistoryPerMinute,
		Logger: logger, Now: clock,
	})
	if err != nil {
		return nil, err
	}
	store, err := bolt.Open(cfg.StateDir)
	if errors.Is(err, bolt.ErrInUse) {
		return nil, fmt.Errorf("%w: %s", err, inUseHint(cfg.StateDir))
	}
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, client: client, store: store, digests: digestfile.Dir(filepath.Join(cfg.OutputDir, "digests")), clock: clock}
	if err := a.openSigner(); err != nil {
		store.Close()
		return nil, err
	}
	return a, nil
}

// openSigner reads the digest signing key, if setup created it.
func (a *app) openSigner() error {
	s, err := digestfile.Open(a.cfg.StateDir)
	if errors.Is(err, digestfile.ErrNoKey) {
		return nil
	}
	a.signer = s
	return err
}

func (a *app) Close() error { return a.store.Close() }

// auditSheetID is AUDIT_SHEET_ID, else the sheet `setup` remembered.
func (a *app) auditSheetID(ctx context.Context) (int64, error) {
	if a.cfg.AuditSheetID != 0 {
		return a.cfg.AuditSheetID, nil
	}
	v, ok, err := a.store.Meta(ctx, "audit-sheet-id")
	if err != nil || !ok {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// runner is the pipeline over the CLI's adapters: the Smartsheet client, the
// bbolt store and the digest files. The options come from the same builder
// the Lambdas use (config.PipelineOptions); only the audit sheet found by
// setup, the progress line and the demo's clock are the CLI's own.
func (a *app) runner(ctx context.Context, logger *slog.Logger, progress pipeline.Progress) (*pipeline.Runner, error) {
	auditID, err := a.auditSheetID(ctx)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg
	cfg.AuditSheetID = auditID
	ports := config.Ports{
		Logger: logger, Stats: a.client.Stats,
		// Attribution: webhook record (stored by `listen`) → writer info → cell history → unknown.
		WebhookRecords: a.store, Users: a.client,
		WebhookAPI: a.client, WebhookSecrets: a.store,
		Digests: a.digests,
		// Alerts: ALERT_SLACK_WEBHOOK_URL and ALERT_TEAMS_WEBHOOK_URL, when set.
		Alerts: append(alert.Channels(cfg.AlertSlackWebhookURL.Reveal(), cfg.AlertTeamsWebhookURL.Reveal(), alert.Options{Location: cfg.Location}),
			a.alerts...),
	}
	if a.signer != nil {
		ports.Signer = a.signer
	}
	opts := cfg.PipelineOptions(ports)
	opts.Progress, opts.Clock = progress, a.clock
	return pipeline.New(a.client, a.store, opts)
}

func cmdSetup(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	a, err := openApp(cfg, logger, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	return setup(ctx, a, stdout)
}

func setup(ctx context.Context, a *app, stdout io.Writer) error {
	id, created, err := pipeline.EnsureAuditSheet(ctx, a.client, a.store, a.cfg.AuditSheetID, a.cfg.AuditSheetName)
	if err != nil {
		return err
	}
	verb := "found"
	if created {
		verb = "created"
	}
	fmt.Fprintf(stdout, "audit-log sheet %q %s: AUDIT_SHEET_ID=%d\n", a.cfg.AuditSheetName, verb, id)
	keyCreated, err := digestfile.CreateKey(a.cfg.StateDir)
	if err != nil {
		return err
	}
	if err := a.openSigner(); err != nil {
		return err
	}
	pub, err := a.signer.PublicKeyPEM(ctx)
	if err != nil {
		return err
	}
	if err := a.digests.PutPublicKey(ctx, pub); err != nil {
		return err
	}
	verb = "found"
	if keyCreated {
		verb = "created"
	}
	fmt.Fprintf(stdout, "digest signing key %s: %s (keep it private; its public key is %s, key id %s)\n",
		verb, filepath.Join(a.cfg.StateDir, digestfile.KeyFile), filepath.Join(string(a.digests), digestfile.PublicKeyFile), a.signer.KeyID())
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	testMode := fs.Bool("test", false, "read and compute, write nothing")
	forceReport := fs.Bool("force-report", false, "produce the workbook even with no changes")
	wide := fs.Bool("wide", false, "list every field of each change (wider than 100 columns)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	cfg.TestMode = cfg.TestMode || *testMode
	if err := cfg.RequireSources(); err != nil {
		return err
	}
	a, err := openApp(cfg, logger, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	a.wide = *wide
	_, err = runAudit(ctx, a, stdout, newProgress(stderr, a.requests), logger, *forceReport)
	return err
}

// runAudit is one run, printed.
func runAudit(ctx context.Context, a *app, stdout io.Writer, progress pipeline.Progress, logger *slog.Logger, forceReport bool) (pipeline.Summary, error) {
	r, err := a.runner(ctx, logger, progress)
	if err != nil {
		return pipeline.Summary{}, err
	}
	if a.signer == nil && !a.cfg.TestMode {
		return pipeline.Summary{}, digestfile.ErrNoKey
	}
	if err := a.checkAuditSheet(ctx); err != nil {
		return pipeline.Summary{}, err
	}
	sum, err := r.Run(ctx)
	printSummary(stdout, sum, a.cfg, a.wide)
	if err != nil {
		return sum, err
	}
	att, err := r.Attest(ctx, sum.Run)
	if err != nil {
		return sum, err
	}
	printAttestation(stdout, att)
	ro := pipeline.ReportOptions{Workbook: xlsx.Workbook{}, Sink: dirSink(a.cfg.OutputDir), Force: forceReport, Findings: sum.Findings,
		Integrity: att.Integrity(), Usage: att.Usage}
	if sum.Run.TestMode {
		ro.Extra = sum.Changes
	}
	if a.cfg.AnonymizeUsers {
		ro.Anonymize = audit.Pseudonymizer([]byte(a.cfg.AnonymizeKey.Reveal()))
	}
	res, err := r.Report(ctx, sum.Run, ro)
	if err != nil {
		return sum, fmt.Errorf("report: %w", err)
	}
	switch {
	case res.Skipped:
		fmt.Fprintln(stdout, "  no new change: no workbook (use --force-report to make one)")
	case res.AttachmentID != 0:
		how := "attached to"
		if res.Versioned {
			how = "uploaded as a new version on"
		}
		fmt.Fprintf(stdout, "  workbook %s (%s), %s the audit-log sheet\n", res.Location, res.Status, how)
	default:
		fmt.Fprintf(stdout, "  workbook %s (%s)\n", res.Location, res.Status)
	}
	if !att.Verification.OK() {
		return sum, errTampered
	}
	return sum, nil
}

// checkAuditSheet makes sure, before anything is scanned, that a run that
// writes has an audit sheet it can read (one small read): a run that found
// every change and then could not log them would be worse than one that
// stops at once with the fix.
func (a *app) checkAuditSheet(ctx context.Context) error {
	if a.cfg.TestMode {
		return nil
	}
	id, err := a.auditSheetID(ctx)
	if err != nil {
		return err
	}
	if id == 0 {
		return errors.New("no audit sheet: run `billing-audit setup` first (it creates one and remembers it), or set AUDIT_SHEET_ID")
	}
	_, _, err = a.client.GetSheet(ctx, id, smartsheet.GetSheetOptions{PageSize: 1, Page: 1})
	if smartsheet.IsNotFound(err) || smartsheet.IsForbidden(err) {
		return fmt.Errorf("audit sheet %d was not found or is not shared with the token's user (%w): check AUDIT_SHEET_ID, or run `billing-audit setup`", id, err)
	}
	if err != nil {
		return fmt.Errorf("read audit sheet %d: %w", id, err)
	}
	return nil
}

// printChanges lists a run's changes: within 100 columns (the sheet, Work
// Request #, what changed, impact, risk — "auth." for an authorized change —
// and who; long values cut with "…"), or every field in full with wide.
func printChanges(w io.Writer, changes []audit.Change, wide bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if wide {
		fmt.Fprintln(tw, "KIND\tSHEET\tROW\tWR #\tCOLUMN\tOLD\tNEW\tIMPACT\tRISK\tSTATUS\tBY\tHOW\tREVERSES")
	} else {
		fmt.Fprintln(tw, "SHEET\tWR #\tWHAT\tIMPACT\tRISK\tBY")
	}
	for _, c := range changes {
		impact := c.Impact.StringFixed(2)
		switch {
		case c.Unvalued:
			impact = "?"
		case c.Estimated:
			impact += "~"
		case c.ValuedElsewhere:
			impact = "on price"
		}
		who := cmp.Or(c.Attribution.User, c.Attribution.Name, "-")
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, c.SheetName, c.RowNumber, c.WorkRequest,
				dash(c.Column), dash(c.OldValue), dash(c.NewValue), impact, c.Risk, c.Status, who, c.Attribution.Source, dash(c.Reverses))
			continue
		}
		var what string
		switch c.Kind {
		case audit.KindRowAddedLate:
			what = "row added late: " + dash(c.NewValue)
		case audit.KindRowDeleted:
			what = "row deleted: " + dash(c.OldValue)
		case audit.KindWeekMoved:
			what = fmt.Sprintf("week moved %s → %s", audit.FormatDate(c.WeekEnding), audit.FormatDate(c.MovedTo))
		default:
			what = fmt.Sprintf("%s %s → %s", dash(c.Column), dash(c.OldValue), dash(c.NewValue))
		}
		if c.Reverses != "" {
			what = "put back: " + what
		}
		risk := string(c.Risk)
		switch c.Status {
		case audit.StatusAuthorized:
			risk = "auth."
		case audit.StatusNeedsReview:
			risk = "review"
		}
		who, _, _ = strings.Cut(who, "@")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cut(c.SheetName, 20), cut(c.WorkRequest, 8), cut(what, 36), impact, risk, cut(who, 10))
	}
}

// cut shortens s to n characters, the last one "…".
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// errTampered ends a run or a verification that found the audit log edited
// (exit 3): the run itself completed.
var errTampered = errors.New("the audit log failed verification: see the problems above")

// printAttestation prints what verifying the audit log found and the digest
// signed after it.
func printAttestation(w io.Writer, att pipeline.Attestation) {
	v := att.Verification
	fmt.Fprintf(w, "  audit log %s\n", v.Summary())
	printProblems(w, v, 20)
	switch {
	case att.Digest.Name != "":
		fmt.Fprintf(w, "  signed digest %d: %s\n", att.Digest.Digest.Number, att.Digest.Location)
	case att.Digest.Withheld != "":
		fmt.Fprintf(w, "  no digest signed: %s\n", att.Digest.Withheld)
	}
}

// printProblems lists a verification's problems, at most limit (0: all).
func printProblems(w io.Writer, v audit.Verification, limit int) {
	for i, p := range v.Problems {
		if limit > 0 && i == limit {
			fmt.Fprintf(w, "    … and %d more (billing-audit verify lists them all)\n", v.Total()-limit)
			return
		}
		fmt.Fprintf(w, "    %s\n", p)
	}
	if n := v.Total() - len(v.Problems); n > 0 && limit == 0 {
		fmt.Fprintf(w, "    … and %d more, counted above (the list stops at %d)\n", n, audit.MaxProblemsListed)
	}
}

// dirSink writes workbooks to a local folder (OUTPUT_DIR).
type dirSink string

func (d dirSink) Put(_ context.Context, name string, data []byte) (string, error) {
	if err := os.MkdirAll(string(d), 0o750); err != nil {
		return "", err
	}
	path := filepath.Join(string(d), name)
	if err := os.WriteFile(path, data, 0o640); err != nil {
		return "", err
	}
	return path, nil
}

func printSummary(w io.Writer, sum pipeline.Summary, cfg config.Config, wide bool) {
	run := sum.Run
	mode := ""
	if run.TestMode {
		mode = " (test mode: nothing written)"
	}
	fmt.Fprintf(w, "\nRun %s%s\n", run.RunID, mode)
	fmt.Fprintf(w, "  sheets scanned %d (unchanged %d), rows read %d, changes %d (unauthorized %d), audit rows written %d\n",
		run.SheetsScanned, run.SheetsSkipped, run.RowsScanned, run.Changes, run.Unauthorized, run.AuditRows)
	baseline, rows := 0, 0
	for _, o := range sum.Sheets {
		if o.FirstScan {
			baseline++
			rows += o.Rows
		}
	}
	if baseline > 0 {
		fmt.Fprintf(w, "  baseline taken for %d sheets (%d rows): changes to them are measured from the next run\n", baseline, rows)
	}
	if len(run.APICalls) > 0 {
		keys := make([]string, 0, len(run.APICalls))
		total := 0
		for k, v := range run.APICalls {
			keys = append(keys, k)
			total += v
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s ×%d", k, run.APICalls[k])
		}
		fmt.Fprintf(w, "  API calls %d: %s\n", total, strings.Join(parts, ", "))
	}
	if len(sum.Changes) > 0 {
		fmt.Fprintln(w)
		printChanges(w, sum.Changes, wide)
	}
	if len(sum.Findings) > 0 {
		fmt.Fprintf(w, "\nFindings (%d):\n", len(sum.Findings))
		for i, f := range sum.Findings {
			if i == 20 {
				fmt.Fprintf(w, "  … and %d more\n", len(sum.Findings)-20)
				break
			}
			fmt.Fprintf(w, "  %s %s row %d %s: %s\n", f.Kind, f.SheetName, f.RowNumber, f.Column, f.Message)
		}
	}
	for _, a := range sum.Alerts {
		switch {
		case a.Alerts == 0 && a.Err == nil: // nothing was owed on this channel
		case a.Err != nil && a.Digest:
			fmt.Fprintf(w, "  alerts on %s: the digest of %d changes was not delivered; the next run retries it (%v)\n", a.Channel, a.Alerts, a.Err)
		case a.Err != nil:
			fmt.Fprintf(w, "  alerts on %s: %d of %d delivered; the next run retries the rest (%v)\n", a.Channel, a.Notices, a.Alerts, a.Err)
		case a.Digest:
			fmt.Fprintf(w, "  alerts on %s: %d changes in one digest\n", a.Channel, a.Alerts)
		default:
			fmt.Fprintf(w, "  alerts on %s: %d sent\n", a.Channel, a.Notices)
		}
	}
	_ = cfg
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newProgress shows a live line on a terminal and nothing otherwise (the
// logger prints a line per sheet there).
func newProgress(w io.Writer, calls func() int64) pipeline.Progress {
	if isTerminal(w) {
		return &termProgress{w: w, calls: calls}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// requests is the number of API requests sent so far.
func (a *app) requests() int64 { return a.client.Stats().Requests }

type termProgress struct {
	w                 io.Writer
	calls             func() int64
	done, total, rows int
	name              string
}

func (p *termProgress) Sheet(done, total int, name string) {
	p.done, p.total, p.name = done, total, name
	p.draw()
}

func (p *termProgress) Rows(n int) { p.rows += n; p.draw() }

func (p *termProgress) draw() {
	fmt.Fprintf(p.w, "\r\033[Ksheets %d/%d · rows %d · API calls %d · %s", p.done, p.total, p.rows, p.calls(), p.name)
}

func (p *termProgress) Done() { fmt.Fprint(p.w, "\r\033[K") }
