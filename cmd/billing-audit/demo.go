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

	env := map[string]string{
		"SMARTSHEET_API_TOKEN": demoToken,
		"SMARTSHEET_BASE_URL":  base,
		"SOURCE_FOLDER_IDS":    strconv.FormatInt(scn.Gen.FolderID, 10),
		"STATE_DIR":            filepath.Join(*out, "state"),
		"OUTPUT_DIR":           *out,
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	a, err := openApp(cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	a.clock = srv.Now
	if err := setup(ctx, a, stdout); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\n== Baseline scan")
	if _, err := runAudit(ctx, a, stdout, newProgress(stderr, a.requests), logger, false); err != nil {
		return err
	}
	expected, err := scn.Script(srv)
	if err != nil {
		return fmt.Errorf("apply scripted edits: %w", err)
	}
	fmt.Fprintf(stdout, "\n== Scripted edits applied by Kim, Raj, Jesse, Dana and an automation (%d expected findings, plus a same-value save)\n", len(expected))
	for _, e := range expected {
		fmt.Fprintf(stdout, "  - %s\n", e.Label)
	}
	fmt.Fprintln(stdout, "\n== Audit run")
	sum, err := runAudit(ctx, a, stdout, newProgress(stderr, a.requests), logger, false)
	if err != nil {
		return err
	}
	auditID, _ := a.auditSheetID(ctx)
	statePath := filepath.Join(*out, "smartsim-state.json")
	if err := srv.SaveFile(statePath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nFound %d of %d expected changes; %d change rows now on the audit-log sheet %d, each sealed in the ledger.\n", len(sum.Changes), len(expected), len(sum.Written), auditID)
	if len(sum.Changes) != len(expected) {
		return fmt.Errorf("the audit found %d changes, the scenario made %d", len(sum.Changes), len(expected))
	}

	fmt.Fprintln(stdout, "\n== Someone edits the audit log: Dana deletes a row, zeroes a Money Impact and types in a forged row")
	tam, err := demo.Tamper(srv, auditID)
	if err != nil {
		return err
	}
	r, err := a.runner(ctx, logger, nil)
	if err != nil {
		return err
	}
	v, err := r.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "billing-audit verify:")
	printVerification(stdout, v)
	if err := srv.SaveFile(statePath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nWhere to look:\n  audit-log sheet: %s/sheets/%d (simulator state saved to %s;\n    serve it again with `go run ./cmd/smartsim -state %s`, then\n    curl -H 'Authorization: Bearer %s' http://127.0.0.1:8089/2.0/sheets/%d)\n  workbook: %s\n  signed digests and their public key: %s\n  local state and ledger: %s\n",
		base, auditID, statePath, statePath, demoToken, auditID, cfg.OutputDir, string(a.digests), a.store.Path())
	for kind, id := range map[audit.ProblemKind]string{audit.ProblemDeletedRow: tam.Deleted, audit.ProblemAlteredCell: tam.Altered, audit.ProblemForgedRow: tam.Forged} {
		if !slices.ContainsFunc(v.Problems, func(p audit.Problem) bool { return p.Kind == kind && p.ChangeID == id }) {
			return fmt.Errorf("verify did not name the %s of change %s", kind, id)
		}
	}
	return nil
}
