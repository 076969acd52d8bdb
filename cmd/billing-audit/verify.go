package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// cmdVerify checks the audit log — the ledger's chain, every signed digest,
// and the audit sheet row by row against the ledger — prints every problem,
// and exits 3 when there is one. It writes nothing.
func cmdVerify(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the verification as JSON")
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
	r, err := a.runner(ctx, logger, nil)
	if err != nil {
		return err
	}
	v, err := r.Verify(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else {
		printVerification(stdout, v)
	}
	if !v.OK() {
		return errTampered
	}
	return nil
}

func printVerification(w io.Writer, v audit.Verification) {
	fmt.Fprintf(w, "Audit log: %s\n", v.Summary())
	fmt.Fprintf(w, "  ledger: %d entries for audit rows, head entry %d %s\n", v.Entries, v.HeadSeq, v.HeadHash)
	fmt.Fprintf(w, "  audit sheet: %d rows read, %d match the ledger, %d not written yet\n", v.Rows, v.Matched, v.Pending)
	fmt.Fprintf(w, "  signed digests checked: %d\n", v.Digests)
	for _, s := range v.Skipped {
		fmt.Fprintf(w, "  not checked: %s\n", s)
	}
	if !v.OK() {
		fmt.Fprintln(w, "Problems:")
		printProblems(w, v, 0)
	}
}
