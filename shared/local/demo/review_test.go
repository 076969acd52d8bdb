package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/xlsx"
)

// priya and luis are declared in attribution_test.go (the same people as
// demo.Priya and a crew member).

// auditRowOf is the audit-sheet row of a change.
func (s *stack) auditRowOf(t *testing.T, changeID string) *smartsheet.Row {
	t.Helper()
	sh, err := s.srv.Sheet(s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	col := sh.Column(audit.LogChangeID).ID
	for _, r := range sh.Rows {
		if c := r.Cell(col); c != nil && c.Value.Text() == changeID {
			return &r
		}
	}
	t.Fatalf("no audit row for change %s", changeID)
	return nil
}

// dispositionEntries are the ledger's disposition entries, as reviews.
func (s *stack) dispositionEntries(t *testing.T) []audit.Review {
	t.Helper()
	var out []audit.Review
	err := s.store.LedgerEntries(context.Background(), 1, func(e audit.LedgerEntry) error {
		if e.Type == audit.EntryDisposition {
			out = append(out, audit.ReviewOf(e))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDispositionsAreAudited: a manager works an exception on the audit
// sheet (reviewer, disposition, note) and the next run seals what she set, as
// her, into the ledger; a crew member then puts the price back, and the run
// after logs the reversal as his, names the change it undoes, and marks both
// rows Reversed — itself recorded as a disposition change. The audit log
// still verifies clean: only the review columns differ from what was sealed.
func TestDispositionsAreAudited(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 3})
	s.attest(t, s.run(t, nil).Run)
	sheet := s.setup.Gen.SheetIDs[0]
	row, orig := s.closedWeekRow(t, sheet, 0)
	price := s.setup.Columns[sheet][smartsim.ColTotalPrice]
	var last struct {
		sum pipeline.Summary
		att pipeline.Attestation
	}
	runAndAttest := func(t *testing.T) []audit.Change {
		t.Helper()
		s.srv.AdvanceClock(time.Minute)
		last.sum = s.run(t, nil)
		last.att = s.attest(t, last.sum.Run)
		return last.sum.Changes
	}

	s.srv.AdvanceClock(time.Hour)
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, price, smartsheet.NumberValue("5000.00")); err != nil {
		t.Fatal(err)
	}
	changes := runAndAttest(t)
	if len(changes) != 1 || !changes[0].Unauthorized() {
		t.Fatalf("run found %+v, want one unauthorized change", changes)
	}
	edit := changes[0].ChangeID
	if got := s.auditRowOf(t, edit).Cell(s.auditColumn(t, audit.LogDisposition)); got == nil || got.Value.Text() != audit.DispositionOpen {
		t.Errorf("new exception's Disposition = %v, want %s", got, audit.DispositionOpen)
	}

	// Priya works the exception.
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.srv.UpdateRows(smartsim.Edit{User: priya}, s.auditID, []smartsheet.Row{{ID: s.auditRowOf(t, edit).ID, Cells: []smartsheet.Cell{
		{ColumnID: s.auditColumn(t, audit.LogReviewer), Value: smartsheet.StringValue(priya.Email)},
		{ColumnID: s.auditColumn(t, audit.LogDisposition), Value: smartsheet.StringValue(audit.DispositionInvestigating)},
		{ColumnID: s.auditColumn(t, audit.LogResolutionNote), Value: smartsheet.StringValue("asked Kim why")},
	}}}); err != nil {
		t.Fatal(err)
	}
	runAndAttest(t)
	reviewedAt := s.srv.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	want := []audit.Review{{ChangeID: edit, Reviewer: priya.Email, Disposition: audit.DispositionInvestigating, Note: "asked Kim why",
		By: priya.Email, At: reviewedAt}}
	if diff := cmp.Diff(want, s.dispositionEntries(t)); diff != "" {
		t.Errorf("disposition entries after Priya's review (-want +got):\n%s", diff)
	}
	// The next workbook shows it: open, Investigating, Priya reviewing.
	if got, want := s.openExceptions(t, last.sum, last.att), [][]string{{"Investigating", priya.Email, demo.Kim.Email}}; !cmp.Equal(got, want) {
		t.Errorf("workbook's open exceptions (disposition, reviewer, changed by) = %q, want %q", got, want)
	}

	// Luis puts the price back.
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.srv.SetCell(smartsim.Edit{User: luis}, sheet, row, price, smartsheet.NumberValue(orig)); err != nil {
		t.Fatal(err)
	}
	changes = runAndAttest(t)
	if len(changes) != 1 || changes[0].Reverses != edit || changes[0].Attribution.User != luis.Email {
		t.Fatalf("run found %+v, want Luis's change reversing %s", changes, edit)
	}
	back := s.auditRowOf(t, changes[0].ChangeID)
	if got := back.Cell(s.auditColumn(t, audit.LogReverses)).Value.Text(); got != edit {
		t.Errorf("reversal row's Reverses = %q, want %s", got, edit)
	}
	if got := back.Cell(s.auditColumn(t, audit.LogChangedBy)).Value.Text(); got != luis.Email {
		t.Errorf("reversal row's Changed By = %q, want %s", got, luis.Email)
	}
	for _, id := range []string{edit, changes[0].ChangeID} {
		if got := s.auditRowOf(t, id).Cell(s.auditColumn(t, audit.LogDisposition)).Value.Text(); got != audit.DispositionReversed {
			t.Errorf("change %s's Disposition = %q, want %s", id, got, audit.DispositionReversed)
		}
	}
	// The run that marked the edit Reversed recorded it at its attestation.
	entries := s.dispositionEntries(t)
	if n := len(entries); n != 2 || entries[1].ChangeID != edit || entries[1].Disposition != audit.DispositionReversed ||
		entries[1].Reviewer != priya.Email {
		t.Errorf("disposition entries after the reversal = %+v, want Priya's, then %s Reversed (her reviewer kept)", entries, edit)
	}
	if got := s.openExceptions(t, last.sum, last.att); len(got) != 0 {
		t.Errorf("workbook's open exceptions after the reversal = %q, want none", got)
	}
	if v := s.verify(t); !v.OK() || len(v.ReviewChanges) != 0 {
		t.Errorf("Verify() = %s, %d review changes; want clean and none left to record", v.Summary(), len(v.ReviewChanges))
	}
}

// openExceptions reads the Exceptions sheet of the run's workbook: each open
// exception's disposition, reviewer and author.
func (s *stack) openExceptions(t *testing.T, sum pipeline.Summary, att pipeline.Attestation) [][]string {
	t.Helper()
	res, err := s.runner(t, nil).Report(context.Background(), sum.Run, pipeline.ReportOptions{
		Workbook: xlsx.Workbook{}, Sink: dirSink(t.TempDir()), Findings: sum.Findings, Force: true, Integrity: att.Integrity(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(res.Location)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(xlsx.SheetExceptions)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	in := false
	for _, r := range rows {
		switch {
		case len(r) > 0 && r[0] == "Work Request #":
			in = true
		case in && len(r) >= 11:
			out = append(out, []string{r[8], r[9], r[10]})
		}
	}
	return out
}

// auditColumn is the id of an audit-sheet column.
func (s *stack) auditColumn(t *testing.T, title string) int64 {
	t.Helper()
	sh, err := s.srv.Sheet(s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	c := sh.Column(title)
	if c == nil {
		t.Fatalf("audit sheet has no column %q", title)
	}
	return c.ID
}

// A reviewer's decision stands: an exception marked Approved correction is
// not turned Reversed when the value is later put back (the reversal row is
// logged and names it all the same).
func TestReversalKeepsAReviewersDecision(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 3})
	s.attest(t, s.run(t, nil).Run)
	sheet := s.setup.Gen.SheetIDs[0]
	row, orig := s.closedWeekRow(t, sheet, 0)
	price := s.setup.Columns[sheet][smartsim.ColTotalPrice]
	step := func(t *testing.T) []audit.Change {
		t.Helper()
		s.srv.AdvanceClock(time.Minute)
		sum := s.run(t, nil)
		s.attest(t, sum.Run)
		return sum.Changes
	}
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, price, smartsheet.NumberValue("5000.00")); err != nil {
		t.Fatal(err)
	}
	edit := step(t)[0].ChangeID
	if _, err := s.srv.UpdateRows(smartsim.Edit{User: priya}, s.auditID, []smartsheet.Row{{ID: s.auditRowOf(t, edit).ID, Cells: []smartsheet.Cell{
		{ColumnID: s.auditColumn(t, audit.LogDisposition), Value: smartsheet.StringValue(audit.DispositionApproved)},
	}}}); err != nil {
		t.Fatal(err)
	}
	step(t)
	if _, err := s.srv.SetCell(smartsim.Edit{User: luis}, sheet, row, price, smartsheet.NumberValue(orig)); err != nil {
		t.Fatal(err)
	}
	back := step(t)
	if len(back) != 1 || back[0].Reverses != edit {
		t.Fatalf("run found %+v, want the put-back reversing %s", back, edit)
	}
	if got := s.auditRowOf(t, edit).Cell(s.auditColumn(t, audit.LogDisposition)).Value.Text(); got != audit.DispositionApproved {
		t.Errorf("the approved change's Disposition = %q, want %q kept", got, audit.DispositionApproved)
	}
	if v := s.verify(t); !v.OK() || len(v.ReviewChanges) != 0 {
		t.Errorf("Verify() = %s, %d review changes; want clean and none left to record", v.Summary(), len(v.ReviewChanges))
	}
}

// A cell changed twice and then put back undoes both changes: the put-back
// names them, oldest first, and both are marked Reversed; a put-back to the
// middle value first undoes only the later one.
func TestReversalUndoesEveryChangeSinceTheValue(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 3})
	s.attest(t, s.run(t, nil).Run)
	sheet := s.setup.Gen.SheetIDs[0]
	row, orig := s.closedWeekRow(t, sheet, 0)
	price := s.setup.Columns[sheet][smartsim.ColTotalPrice]
	edit := func(t *testing.T, who smartsheet.User, v string) audit.Change {
		t.Helper()
		if _, err := s.srv.SetCell(smartsim.Edit{User: who}, sheet, row, price, smartsheet.NumberValue(v)); err != nil {
			t.Fatal(err)
		}
		s.srv.AdvanceClock(time.Minute)
		sum := s.run(t, nil)
		s.attest(t, sum.Run)
		if len(sum.Changes) != 1 {
			t.Fatalf("run after %s set %s found %d changes, want 1", who.Name, v, len(sum.Changes))
		}
		return sum.Changes[0]
	}
	s.srv.AdvanceClock(time.Hour)
	first := edit(t, demo.Kim, "5000.00")
	second := edit(t, luis, "700.00")
	third := edit(t, demo.Raj, "5000.00") // back to the middle value: undoes the second only
	if third.Reverses != second.ChangeID {
		t.Errorf("back to 5000 reverses %q, want %q", third.Reverses, second.ChangeID)
	}
	fourth := edit(t, demo.Jesse, "1234.00")
	back := edit(t, demo.Raj, orig) // back to the first value: undoes the first and the fourth
	if want := audit.JoinReversed([]string{first.ChangeID, fourth.ChangeID}); back.Reverses != want {
		t.Errorf("back to %s reverses %q, want %q", orig, back.Reverses, want)
	}
	disposition := func(id string) string {
		return s.auditRowOf(t, id).Cell(s.auditColumn(t, audit.LogDisposition)).Value.Text()
	}
	for _, c := range []audit.Change{first, second, fourth} {
		if got := disposition(c.ChangeID); got != audit.DispositionReversed {
			t.Errorf("change %s (%s → %s) Disposition = %q, want %q", c.ChangeID, c.OldValue, c.NewValue, got, audit.DispositionReversed)
		}
	}
	if v := s.verify(t); !v.OK() {
		t.Errorf("Verify() = %s, want clean", v.Summary())
	}
}
