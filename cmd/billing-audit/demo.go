package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/alert"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/shopspring/decimal"
)

// demoToken is the simulator's token in the demo; it grants nothing elsewhere.
const demoToken = "demo-token"

// cmdDemo plays the scripted scenario against an in-process Smartsheet
// simulator: a baseline scan, the scripted edits, an audit run that must find
// exactly the expected changes, then edits to the audit log that verify must
// name.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "out/demo", "where the demo keeps its state, the simulator's state and reports")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	// A new demo is a new audit log: a new ledger, a new key, new digests.
	for _, dir := range []string{"state", "digests", "history"} {
		if err := os.RemoveAll(filepath.Join(*out, dir)); err != nil {
			return err
		}
	}
	srv := smartsim.NewServer(smartsim.Options{})
	base, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "Smartsheet simulator at %s\n", base)

	scn, err := demo.Prepare(srv, demo.DefaultSize)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Generated %d sheets × %d rows over %d weeks in folder %d (closed week ending %s, open week ending %s)\n",
		demo.DefaultSize.Sheets, demo.DefaultSize.Rows, demo.DefaultSize.Weeks, scn.Gen.FolderID,
		scn.ClosedWeek.Format("2006-01-02"), scn.CurrentWeek.Format("2006-01-02"))
	hist, err := scn.History(srv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "The simulator's clock goes back to %s: the product is installed then, and %d weeks pass in seconds\n",
		srv.Now().Format("Mon 2006-01-02 15:04 MST"), len(hist.Runs())/2)

	d := &demoRun{srv: srv, base: base, out: *out, statePath: filepath.Join(*out, "smartsim-state.json"),
		stdout: stdout, stderr: stderr, logger: logger, alertOut: &switchWriter{w: stdout}}
	if d.a, err = d.openApp(scn); err != nil {
		return err
	}
	defer d.a.Close()
	if err := setup(ctx, d.a, stdout); err != nil {
		return err
	}
	auditID, sum, err := d.audit(ctx, scn, hist)
	if err != nil {
		return err
	}
	if err := d.followUp(ctx, auditID, sum); err != nil {
		return err
	}
	return d.tamper(ctx, auditID)
}

// demoRun is one demo: the simulator, the CLI's app on it, and where the
// demo writes.
type demoRun struct {
	srv       *smartsim.Server
	base      string // the simulator's API base URL
	out       string // the -out directory
	statePath string // where the simulator's state is saved
	a         *app
	stdout    io.Writer
	stderr    io.Writer
	logger    *slog.Logger
	// alertOut is where alerts are printed: nowhere while the history
	// plays (they are delivered and recorded all the same).
	alertOut *switchWriter
}

// switchWriter writes to w, which can be changed.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// openApp opens the CLI's app as its environment would configure it, on the
// simulator and its generated folder, with the simulator's clock.
func (d *demoRun) openApp(scn *demo.Setup) (*app, error) {
	env := map[string]string{
		"SMARTSHEET_API_TOKEN": demoToken,
		"SMARTSHEET_BASE_URL":  d.base,
		"SOURCE_FOLDER_IDS":    strconv.FormatInt(scn.Gen.FolderID, 10),
		"STATE_DIR":            filepath.Join(d.out, "state"),
		"OUTPUT_DIR":           d.out,
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	a, err := openApp(cfg, d.logger, d.srv.Now)
	if err != nil {
		return nil, err
	}
	// Alerts are printed as they would be posted to Slack or Teams.
	a.alerts = []pipeline.AlertChannel{{Name: "console", Notifier: alert.Console{W: d.alertOut, Location: cfg.Location}}}
	return a, nil
}

// audit takes the baseline, applies the scripted edits and runs the audit,
// which must find exactly the expected changes; it returns the audit-log
// sheet's id.
func (d *demoRun) audit(ctx context.Context, scn *demo.Setup, hist *demo.History) (int64, pipeline.Summary, error) {
	stdout := d.stdout
	fmt.Fprintf(stdout, "\n== Baseline scan, %s\n", d.srv.Now().Format("Mon 2006-01-02 15:04 MST"))
	if _, err := runAudit(ctx, d.a, stdout, newProgress(d.stderr, d.a.requests), d.logger, false); err != nil {
		return 0, pipeline.Summary{}, err
	}
	if err := d.history(ctx, hist); err != nil {
		return 0, pipeline.Summary{}, err
	}
	fmt.Fprintf(stdout, "\n== This week, %s\n", d.srv.Now().Format("Mon 2006-01-02 15:04 MST"))
	expected, err := scn.Script(d.srv)
	if err != nil {
		return 0, pipeline.Summary{}, fmt.Errorf("apply scripted edits: %w", err)
	}
	fmt.Fprintf(stdout, "\n== Scripted edits applied by Kim, Raj, Jesse, Dana and an automation (%d expected findings, plus a same-value save)\n", len(expected))
	for _, e := range expected {
		fmt.Fprintf(stdout, "  - %s\n", e.Label)
	}
	fmt.Fprintln(stdout, "\n== Audit run")
	sum, err := runAudit(ctx, d.a, stdout, newProgress(d.stderr, d.a.requests), d.logger, false)
	if err != nil {
		return 0, sum, err
	}
	auditID, _ := d.a.auditSheetID(ctx)
	if err := d.srv.SaveFile(d.statePath); err != nil {
		return 0, sum, err
	}
	fmt.Fprintf(stdout, "\nFound %d of %d expected changes; %d change rows now on the audit-log sheet %d, each sealed in the ledger.\n", len(sum.Changes), len(expected), len(sum.Written), auditID)
	if len(sum.Changes) != len(expected) {
		return 0, sum, fmt.Errorf("the audit found %d changes, the scenario made %d", len(sum.Changes), len(expected))
	}
	return auditID, sum, nil
}

// history plays the weeks before this one on the simulator's clock: each
// person's edits on their days and hours, two audits a week that must find
// exactly those edits, and Priya's reviews of the exceptions as they age. It
// prints a line a week; the audits' own output, alerts and workbooks (in
// OUT/history) are kept out of the way.
func (d *demoRun) history(ctx context.Context, h *demo.History) error {
	fmt.Fprintf(d.stdout, "\n== %d weeks of history: edits by Kim, Jesse, Raj, Dana and a rate-sync automation; audits Wednesday 12:00 and Sunday 20:00 UTC; Priya reviews\n", len(h.Runs())/2)
	d.alertOut.w = io.Discard
	outDir := d.a.cfg.OutputDir
	d.a.cfg.OutputDir = filepath.Join(outDir, "history")
	defer func() { d.alertOut.w, d.a.cfg.OutputDir = d.stdout, outDir }()
	var week struct {
		edits, found, unauthorized, reviewed int
		net                                  decimal.Decimal
		people                               []string
	}
	for i, at := range h.Runs() {
		want, err := h.PlayUntil(d.srv, at)
		if err != nil {
			return err
		}
		sum, err := runAudit(ctx, d.a, io.Discard, newProgress(io.Discard, d.a.requests), d.logger, false)
		if err != nil {
			return fmt.Errorf("history audit of %s: %w", at.Format(time.DateOnly), err)
		}
		if len(sum.Changes) != want.Edits {
			return fmt.Errorf("history audit of %s found %d changes, the history made %d", at.Format(time.DateOnly), len(sum.Changes), want.Edits)
		}
		auditID, err := d.a.auditSheetID(ctx)
		if err != nil {
			return err
		}
		n, err := h.Review(d.srv, auditID)
		if err != nil {
			return err
		}
		week.edits, week.found, week.reviewed = week.edits+want.Edits, week.found+len(sum.Changes), week.reviewed+n
		for _, c := range sum.Changes {
			if c.Unauthorized() {
				week.unauthorized++
				week.net = week.net.Add(c.Impact)
			}
		}
		for _, p := range want.People {
			if !slices.Contains(week.people, p) {
				week.people = append(week.people, p)
			}
		}
		if i == len(h.Runs())-1 {
			fmt.Fprintf(d.stdout, "  today, %s: %d changes since Sunday's audit; the crews' rows logged so far this week are now in the baseline\n",
				at.Format("Mon 15:04"), len(sum.Changes))
		} else if i%2 == 1 {
			fmt.Fprintf(d.stdout, "  week of %s: %2d edits (%s) → %2d changes found, %2d unauthorized, net %10s; %d reviewed by %s\n",
				at.AddDate(0, 0, -6).Format(time.DateOnly), week.edits, strings.Join(week.people, ", "), week.found,
				week.unauthorized, audit.MoneyText(week.net), week.reviewed, demo.Priya.Name)
			week.edits, week.found, week.unauthorized, week.reviewed, week.net, week.people = 0, 0, 0, 0, decimal.Zero, nil
		}
	}
	return nil
}

// followUp plays the day after: Raj puts a price back and Priya takes up an
// exception on the audit sheet; the next audit logs the reversal (and marks
// the change Reversed) and seals her review in the ledger.
func (d *demoRun) followUp(ctx context.Context, auditID int64, sum pipeline.Summary) error {
	stdout := d.stdout
	d.srv.AdvanceClock(time.Hour)
	f, err := demo.FollowUps(d.srv, auditID, sum.Changes)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n== The next day: %s puts WR %s's %s back to %s; %s marks WR %s's change %s on the audit sheet\n",
		demo.Raj.Name, f.PutBack.WorkRequest, f.PutBack.Column, f.PutBack.OldValue, demo.Priya.Name, f.Reviewed.WorkRequest, audit.DispositionInvestigating)
	d.srv.AdvanceClock(time.Minute)
	fmt.Fprintln(stdout, "\n== Audit run")
	next, err := runAudit(ctx, d.a, stdout, newProgress(d.stderr, d.a.requests), d.logger, false)
	if err != nil {
		return err
	}
	var reversal *audit.Change
	for i, c := range next.Changes {
		if slices.Contains(audit.ReversedIDs(c.Reverses), f.PutBack.ChangeID) {
			reversal = &next.Changes[i]
		}
	}
	if reversal == nil {
		return fmt.Errorf("the audit did not log %s's put-back as a reversal of change %s", demo.Raj.Name, f.PutBack.ChangeID)
	}
	fmt.Fprintf(stdout, "\nReversal: change %s (%s, %s → %s by %s) reverses change %s; both rows are now Disposition %s, and the pair nets to zero.\n",
		reversal.ChangeID, reversal.Column, reversal.OldValue, reversal.NewValue, reversal.Attribution.User, f.PutBack.ChangeID, audit.DispositionReversed)
	var reviews []audit.Review
	err = d.a.store.LedgerEntries(ctx, 1, func(e audit.LedgerEntry) error {
		if e.Type == audit.EntryDisposition {
			reviews = append(reviews, audit.ReviewOf(e))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(reviews, func(r audit.Review) bool { return r.ChangeID == f.Reviewed.ChangeID && r.By == demo.Priya.Email }) {
		return fmt.Errorf("the ledger has no disposition entry by %s for change %s", demo.Priya.Email, f.Reviewed.ChangeID)
	}
	fmt.Fprintf(stdout, "Dispositions sealed in the ledger: %d (%s's review of WR %s among them); the workbook's Exceptions sheet lists what is still open.\n",
		len(reviews), demo.Priya.Name, f.Reviewed.WorkRequest)
	return d.srv.SaveFile(d.statePath)
}

// tamper edits the audit-log sheet as an insider would and checks that
// verify names each edit.
func (d *demoRun) tamper(ctx context.Context, auditID int64) error {
	stdout := d.stdout
	fmt.Fprintln(stdout, "\n== Someone edits the audit log: Dana deletes a row, zeroes a Money Impact and types in a forged row")
	tam, err := demo.Tamper(d.srv, auditID)
	if err != nil {
		return err
	}
	r, err := d.a.runner(ctx, d.logger, nil)
	if err != nil {
		return err
	}
	v, err := r.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "billing-audit verify:")
	printVerification(stdout, v)
	if err := d.srv.SaveFile(d.statePath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nWhere to look:\n  audit-log sheet: %s/sheets/%d (simulator state saved to %s;\n    serve it again with `go run ./cmd/smartsim -state %s`, then\n    curl -H 'Authorization: Bearer %s' http://127.0.0.1:8089/2.0/sheets/%d)\n  workbook: %s\n  signed digests and their public key: %s\n  local state and ledger: %s\n",
		d.base, auditID, d.statePath, d.statePath, demoToken, auditID, d.a.cfg.OutputDir, string(d.a.digests), d.a.store.Path())
	for kind, id := range map[audit.ProblemKind]string{audit.ProblemDeletedRow: tam.Deleted, audit.ProblemAlteredCell: tam.Altered, audit.ProblemForgedRow: tam.Forged} {
		if !slices.ContainsFunc(v.Problems, func(p audit.Problem) bool { return p.Kind == kind && p.ChangeID == id }) {
			return fmt.Errorf("verify did not name the %s of change %s", kind, id)
		}
	}
	return nil
}
