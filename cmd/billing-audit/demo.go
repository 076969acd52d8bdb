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

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
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
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	// A new demo is a new audit log: a new ledger, a new key, new digests.
	for _, dir := range []string{"state", "digests"} {
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

	d := &demoRun{srv: srv, base: base, out: *out, statePath: filepath.Join(*out, "smartsim-state.json"),
		stdout: stdout, stderr: stderr, logger: logger}
	if d.a, err = d.openApp(scn); err != nil {
		return err
	}
	defer d.a.Close()
	if err := setup(ctx, d.a, stdout); err != nil {
		return err
	}
	auditID, err := d.audit(ctx, scn)
	if err != nil {
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
}

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
	a, err := openApp(cfg, d.logger)
	if err != nil {
		return nil, err
	}
	a.clock = d.srv.Now
	return a, nil
}

// audit takes the baseline, applies the scripted edits and runs the audit,
// which must find exactly the expected changes; it returns the audit-log
// sheet's id.
func (d *demoRun) audit(ctx context.Context, scn *demo.Setup) (int64, error) {
	stdout := d.stdout
	fmt.Fprintln(stdout, "\n== Baseline scan")
	if _, err := runAudit(ctx, d.a, stdout, newProgress(d.stderr, d.a.requests), d.logger, false); err != nil {
		return 0, err
	}
	expected, err := scn.Script(d.srv)
	if err != nil {
		return 0, fmt.Errorf("apply scripted edits: %w", err)
	}
	fmt.Fprintf(stdout, "\n== Scripted edits applied by Kim, Raj, Jesse, Dana and an automation (%d expected findings, plus a same-value save)\n", len(expected))
	for _, e := range expected {
		fmt.Fprintf(stdout, "  - %s\n", e.Label)
	}
	fmt.Fprintln(stdout, "\n== Audit run")
	sum, err := runAudit(ctx, d.a, stdout, newProgress(d.stderr, d.a.requests), d.logger, false)
	if err != nil {
		return 0, err
	}
	auditID, _ := d.a.auditSheetID(ctx)
	if err := d.srv.SaveFile(d.statePath); err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "\nFound %d of %d expected changes; %d change rows now on the audit-log sheet %d, each sealed in the ledger.\n", len(sum.Changes), len(expected), len(sum.Written), auditID)
	if len(sum.Changes) != len(expected) {
		return 0, fmt.Errorf("the audit found %d changes, the scenario made %d", len(sum.Changes), len(expected))
	}
	return auditID, nil
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
