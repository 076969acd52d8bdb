package demo_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/xlsx"
	"github.com/xuri/excelize/v2"
)

type dirSink string

func (d dirSink) Put(_ context.Context, name string, data []byte) (string, error) {
	p := filepath.Join(string(d), name)
	return p, os.WriteFile(p, data, 0o600)
}

// published reads what the audit sheet holds: its current attachments, the
// versions of the first, and its summary fields (title → value).
func (s *stack) published(t *testing.T) (atts []smartsheet.Attachment, versions int, summary map[string]string) {
	t.Helper()
	atts, err := s.client.ListAttachments(context.Background(), s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) > 0 {
		data, _, err := s.srv.AttachmentData(atts[0].ID)
		if err != nil || len(data) == 0 {
			t.Fatalf("attachment %d has no data: %v", atts[0].ID, err)
		}
		versions = s.srv.AttachmentVersions(atts[0].ID)
	}
	fields, err := s.srv.SummaryFields(s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	summary = map[string]string{}
	for _, f := range fields {
		summary[f.Title] = f.ObjectValue.Text()
	}
	return atts, versions, summary
}

func (s *stack) report(t *testing.T, sum pipeline.Summary, dir string, mod func(*pipeline.Options)) (pipeline.ReportResult, error) {
	t.Helper()
	return s.runner(t, mod).Report(context.Background(), sum.Run, pipeline.ReportOptions{
		Workbook: xlsx.Workbook{}, Sink: dirSink(dir), Findings: sum.Findings,
	})
}

// scripted takes the baseline, plays the scenario's edits an hour later and
// returns the audit run an hour after that.
func (s *stack) scripted(t *testing.T, mod func(*pipeline.Options)) pipeline.Summary {
	t.Helper()
	s.run(t, mod)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.setup.Script(s.srv); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	return s.run(t, mod)
}

func TestPublication(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	dir := t.TempDir()
	first := s.scripted(t, nil)
	res, err := s.report(t, first, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	atts, versions, summary := s.published(t)
	if len(atts) != 1 || versions != 1 || res.AttachmentID == 0 || res.Versioned {
		t.Fatalf("first publish: %d attachments, %d versions, %+v; want 1, 1", len(atts), versions, res)
	}
	// The run falls in the week of 2026-11-23 and its changes hit the
	// billing week that ended the day before: the workbook is named for it.
	if atts[0].Name != res.FileName || !strings.HasPrefix(res.FileName, "billing-audit-we-2026-11-22-") {
		t.Errorf("attachment %q, file %q: want the workbook of the week ending 2026-11-22", atts[0].Name, res.FileName)
	}
	if got, want := summary[pipeline.SumPeriod], "week ending 2026-11-22 (changes detected 2026-11-23 to 2026-11-29)"; got != want {
		t.Errorf("summary %s = %q, want %q", pipeline.SumPeriod, got, want)
	}
	if _, err := os.Stat(res.Location); err != nil {
		t.Errorf("workbook not in the output folder: %v", err)
	}
	checkSummary(t, s, summary, audit.StatusLineChanges, first.Run.RunID)
	rowsBefore := len(s.auditRows(t))

	// Re-publishing the same run changes nothing.
	s.srv.ResetCounters()
	if _, err := s.report(t, first, dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{smartsim.EndpointAttachFile, smartsim.EndpointAttachNewVersion, smartsim.EndpointAddRows,
		smartsim.EndpointUpdateRows, smartsim.EndpointUpdateSummaryFields} {
		if n := s.srv.Counter(ep).Calls; n != 0 {
			t.Errorf("re-publishing the same run made %d %s calls, want 0", n, ep)
		}
	}

	// A second run in the same period: a new version, the summary updated,
	// and the audit sheet still holds change rows only.
	s.srv.AdvanceClock(time.Hour)
	sheet := s.setup.Gen.SheetIDs[1]
	sh, _ := s.srv.Sheet(sheet)
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Raj}, sheet, sh.Rows[0].ID, s.setup.Columns[sheet][smartsim.ColQuantity], smartsheet.IntValue(77)); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Minute)
	second := s.run(t, nil)
	res2, err := s.report(t, second, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	atts, versions, summary = s.published(t)
	if len(atts) != 1 || versions != 2 || !res2.Versioned || atts[0].Name != res2.FileName {
		t.Fatalf("second publish: %d attachments (%v), %d versions, versioned %v; want 1 (%s), 2, true", len(atts), atts, versions, res2.Versioned, res2.FileName)
	}
	// Raj's edit hit an older week, so the name now spans two weeks; it is
	// still the period's attachment, versioned, not a second one.
	if !strings.HasPrefix(res2.FileName, "billing-audit-we-2026-11-15-to-2026-11-22-") {
		t.Errorf("second workbook %q, want it named for the weeks ending 2026-11-15 to 2026-11-22", res2.FileName)
	}
	checkSummary(t, s, summary, audit.StatusLineChanges, second.Run.RunID)
	if got := len(s.auditRows(t)); got != rowsBefore+1 {
		t.Errorf("audit sheet has %d rows after one more change, want %d: change rows only", got, rowsBefore+1)
	}

	// The workbook holds the period's changes: both runs'.
	data, _, err := s.srv.AttachmentData(atts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.GetRows("Change Details")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rows) - 1; got != 11 {
		t.Errorf("Change Details has %d changes, want 11 (10 + 1)", got)
	}
}

// checkSummary checks the summary fields a publication sets.
func checkSummary(t *testing.T, s *stack, summary map[string]string, line, runID string) {
	t.Helper()
	if summary[pipeline.SumStatus] != line || summary[pipeline.SumLastRun] != runID || !strings.Contains(summary[pipeline.SumCounts], "changes") ||
		!strings.HasPrefix(summary[pipeline.SumWorkbook], "billing-audit-") {
		t.Errorf("summary = %v, want %q for run %s", summary, line, runID)
	}
	var net float64
	if _, err := fmt.Sscan(summary[pipeline.SumNet], &net); err != nil {
		t.Errorf("summary %s = %q, want a number", pipeline.SumNet, summary[pipeline.SumNet])
	}
	fields, _ := s.srv.SummaryFields(s.auditID)
	for _, f := range fields {
		if f.Title == pipeline.SumNet && !strings.HasPrefix(f.DisplayValue, "$") && !strings.HasPrefix(f.DisplayValue, "-$") {
			t.Errorf("summary %s shows %q, want dollars", f.Title, f.DisplayValue)
		}
	}
}

func TestPublicationRepairedByNextRun(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	dir := t.TempDir()
	sum := s.scripted(t, nil)
	// The upload works; updating the summary fails (a plain 500 is not retried).
	s.srv.FailNext(smartsim.EndpointUpdateSummaryFields, 1, smartsim.Fault500)
	if _, err := s.report(t, sum, dir, nil); err == nil {
		t.Fatal("Report() with a failing summary update succeeded")
	}
	if atts, _, summary := s.published(t); len(atts) != 1 || summary[pipeline.SumLastRun] != "" {
		t.Fatalf("after the failure: %d attachments, summary %v; want 1 and no run", len(atts), summary)
	}
	// The next run finds nothing new, yet finishes the publication.
	s.srv.AdvanceClock(time.Hour)
	next := s.run(t, nil)
	res, err := s.report(t, next, dir, nil)
	if err != nil || !res.Skipped {
		t.Fatalf("next Report() = %+v, %v; want skipped, nil", res, err)
	}
	atts, versions, summary := s.published(t)
	if len(atts) != 1 || versions != 1 {
		t.Fatalf("after repair: %d attachments, %d versions; want 1, 1", len(atts), versions)
	}
	checkSummary(t, s, summary, audit.StatusLineChanges, sum.Run.RunID)
}

func TestReportTestModeAndZeroChanges(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 2})
	dir := t.TempDir()
	s.run(t, nil)
	s.srv.AdvanceClock(time.Hour)
	sum := s.run(t, nil)
	if res, err := s.report(t, sum, dir, nil); err != nil || !res.Skipped {
		t.Fatalf("Report(no change) = %+v, %v; want skipped", res, err)
	}
	s.srv.ResetCounters()
	res, err := s.runner(t, func(o *pipeline.Options) { o.TestMode = true }).Report(context.Background(), sum.Run,
		pipeline.ReportOptions{Workbook: xlsx.Workbook{}, Sink: dirSink(dir), Force: true})
	if err != nil || res.Skipped || res.AttachmentID != 0 {
		t.Fatalf("Report(forced, test mode) = %+v, %v", res, err)
	}
	for ep, c := range s.srv.Counters() {
		if c.Calls > 0 && ep != smartsim.EndpointGetSheet && ep != smartsim.EndpointListAttachments {
			t.Errorf("test-mode report called %s %d times", ep, c.Calls)
		}
	}
	f, err := excelize.OpenFile(res.Location)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := false
	for _, row := range must(f.GetRows("Executive Dashboard")) {
		if strings.Contains(strings.Join(row, " "), audit.StatusLineClean) {
			found = true
		}
	}
	if !found {
		t.Errorf("zero-change workbook does not say %q", audit.StatusLineClean)
	}
}

// TestInjectionFromSmartsheet: a source cell holding formula text reaches the
// workbook as literal text, never as a formula.
func TestInjectionFromSmartsheet(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 2})
	const evil = `=HYPERLINK("http://x","y")`
	sheet := s.setup.Gen.SheetIDs[0]
	sh, _ := s.srv.Sheet(sheet)
	row := sh.Rows[0].ID
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, s.setup.Columns[sheet][smartsim.ColWorkRequest], smartsheet.StringValue(evil)); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Minute)
	s.run(t, nil)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, s.setup.Columns[sheet][smartsim.ColQuantity], smartsheet.IntValue(99)); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Minute)
	sum := s.run(t, nil)
	res, err := s.report(t, sum, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(res.Location)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := must(f.GetRows("Change Details"))
	for r := range rows {
		for c := range rows[r] {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if rows[r][c] == evil {
				if formula, _ := f.GetCellFormula("Change Details", cell); formula != "" {
					t.Errorf("%s holds formula %q", cell, formula)
				}
				return
			}
		}
	}
	t.Errorf("the literal %s is not in Change Details", evil)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestAnonymizedWorkbook: with ANONYMIZE_USERS the workbook names no person,
// and the same person has the same pseudonym in two runs.
func TestAnonymizedWorkbook(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	sum := s.scripted(t, nil)
	pseudo := audit.Pseudonymizer([]byte("test-key"))
	res, err := s.runner(t, func(o *pipeline.Options) { o.TestMode = true }).Report(context.Background(), sum.Run,
		pipeline.ReportOptions{Workbook: xlsx.Workbook{}, Sink: dirSink(t.TempDir()), Anonymize: pseudo})
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(res.Location)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all strings.Builder
	for _, name := range f.GetSheetList() {
		for _, row := range must(f.GetRows(name)) {
			all.WriteString(strings.Join(row, "\t") + "\n")
		}
	}
	text := all.String()
	for _, person := range []string{demo.Kim.Email, demo.Kim.Name, demo.Raj.Email, demo.Jesse.Email, demo.Dana.Email} {
		if strings.Contains(text, person) {
			t.Errorf("the anonymised workbook names %q", person)
		}
	}
	if p := pseudo(demo.Kim.Email); !strings.Contains(text, p) || p != audit.Pseudonymizer([]byte("test-key"))(demo.Kim.Email) {
		t.Errorf("Kim's stable pseudonym %q is not in the workbook", p)
	}
}

// TestWorkbookCountsTheAttestationsCalls: the workbook's API figures are the
// run's and those of verifying the audit log for it (the attestation reads
// the audit sheet back), which come after the run is recorded.
func TestWorkbookCountsTheAttestationsCalls(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	counted := func(o *pipeline.Options) { o.Stats = s.client.Stats }
	sum := s.scripted(t, counted)
	r := s.runner(t, counted)
	att, err := r.Attest(context.Background(), sum.Run)
	if err != nil {
		t.Fatal(err)
	}
	if att.Usage == nil || att.Usage.APICalls["GET /sheets/{sheetId}"] == 0 {
		t.Fatalf("attestation usage = %+v, want its reads of the audit sheet", att.Usage)
	}
	res, err := r.Report(context.Background(), sum.Run, pipeline.ReportOptions{
		Workbook: xlsx.Workbook{}, Sink: dirSink(t.TempDir()), Findings: sum.Findings, Integrity: att.Integrity(), Usage: att.Usage,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, n := range sum.Run.APICalls {
		want += n
	}
	for _, n := range att.Usage.APICalls {
		want += n
	}
	f, err := excelize.OpenFile(res.Location)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(xlsx.SheetInsights)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, row := range rows {
		if len(row) > 1 && row[0] == "Total" {
			got = row[1]
		}
	}
	if got != strconv.Itoa(want) {
		t.Errorf("System Insights total API calls = %q, want %d (the run's and the attestation's)", got, want)
	}
}
