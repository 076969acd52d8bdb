package xlsx

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// findCell returns the first cell of sheet whose value is v.
func findCell(tb testing.TB, f *excelize.File, sheet, v string) string {
	tb.Helper()
	rows, err := f.GetRows(sheet)
	if err != nil {
		tb.Fatal(err)
	}
	for r, row := range rows {
		for c, got := range row {
			if got == v {
				ref, _ := excelize.CoordinatesToCellName(c+1, r+1)
				return ref
			}
		}
	}
	tb.Fatalf("no cell %q on %q", v, sheet)
	return ""
}

// offset moves ref by dc columns.
func offset(tb testing.TB, ref string, dc int) string {
	tb.Helper()
	c, r, err := excelize.CellNameToCoordinates(ref)
	if err != nil {
		tb.Fatal(err)
	}
	out, _ := excelize.CoordinatesToCellName(c+dc, r)
	return out
}

func cellValue(tb testing.TB, f *excelize.File, sheet, ref string) string {
	tb.Helper()
	v, err := f.GetCellValue(sheet, ref, excelize.Options{RawCellValue: true})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func numFmt(tb testing.TB, f *excelize.File, sheet, ref string) string {
	tb.Helper()
	id, err := f.GetCellStyle(sheet, ref)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := f.GetStyle(id)
	if err != nil {
		tb.Fatal(err)
	}
	if s.CustomNumFmt != nil {
		return *s.CustomNumFmt
	}
	return "builtin:" + strconv.Itoa(s.NumFmt)
}

func zipEntries(tb testing.TB, b []byte, pattern string) map[string][]byte {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	re := regexp.MustCompile(pattern)
	out := make(map[string][]byte)
	for _, zf := range zr.File {
		if !re.MatchString(zf.Name) {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			tb.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			tb.Fatal(err)
		}
		out[zf.Name] = data
	}
	return out
}

func TestWriteSheetOrder(t *testing.T) {
	_, f := MustWorkbook(t, audit.BuildReport(scenarioInput(t)))
	if diff := cmp.Diff(SheetNames, f.GetSheetList()); diff != "" {
		t.Errorf("GetSheetList() (-want +got):\n%s", diff)
	}
	if got := f.GetActiveSheetIndex(); got != 0 {
		t.Errorf("GetActiveSheetIndex() = %d, want 0", got)
	}
}

func TestDashboard(t *testing.T) {
	r := audit.BuildReport(scenarioInput(t))
	_, f := MustWorkbook(t, r)
	if got := cellValue(t, f, SheetDashboard, StatusCell); got != audit.StatusLineChanges {
		t.Errorf("status %s = %q, want %q", StatusCell, got, audit.StatusLineChanges)
	}
	all := findCell(t, f, SheetDashboard, "All changes")
	for i, want := range []string{"7", "1875.5", "1214.5"} { // count, gross, net of the scenario
		if got := cellValue(t, f, SheetDashboard, offset(t, all, i+1)); got != want {
			t.Errorf("All changes column %d = %q, want %q", i+2, got, want)
		}
	}
	unauth := findCell(t, f, SheetDashboard, "Unauthorized")
	if got := cellValue(t, f, SheetDashboard, offset(t, unauth, 1)); got != strconv.Itoa(r.Totals.Unauthorized.Count) {
		t.Errorf("Unauthorized count = %q, want %d", got, r.Totals.Unauthorized.Count)
	}
	if got := numFmt(t, f, SheetDashboard, offset(t, all, 2)); got != MoneyFormat {
		t.Errorf("gross number format = %q, want %q", got, MoneyFormat)
	}
	high := findCell(t, f, SheetDashboard, "HIGH (over $1,000.00)")
	if got := cellValue(t, f, SheetDashboard, offset(t, high, 2)); got != "1500" {
		t.Errorf("HIGH gross = %q, want 1500", got)
	}
	// The first top item links to its row.
	link := findCell(t, f, SheetDashboard, "Row 12")
	ok, target, err := f.GetCellHyperLink(SheetDashboard, link)
	if err != nil || !ok || target != r.Top[0].Permalink {
		t.Errorf("GetCellHyperLink(%s) = %v, %q, %v; want true, %q", link, ok, target, err, r.Top[0].Permalink)
	}
	if got := cellValue(t, f, SheetDashboard, offset(t, link, -1)); got != "WR-c1" {
		t.Errorf("top item work request = %q, want WR-c1 (largest unauthorized)", got)
	}
}

func TestChangeDetails(t *testing.T) {
	r := audit.BuildReport(scenarioInput(t))
	b, f := MustWorkbook(t, r)

	tables, err := f.GetTables(SheetDetails)
	if err != nil || len(tables) != 1 {
		t.Fatalf("GetTables = %v, %v; want one table", tables, err)
	}
	if tables[0].Name != DetailsTable || tables[0].Range != "A1:S8" {
		t.Errorf("table = %s %s, want %s A1:S8", tables[0].Name, tables[0].Range, DetailsTable)
	}
	panes, err := f.GetPanes(SheetDetails)
	if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
		t.Errorf("GetPanes = %+v, %v; want frozen header row", panes, err)
	}
	cfs, err := f.GetConditionalFormats(SheetDetails)
	if err != nil || len(cfs["K2:K8"]) != 4 {
		t.Errorf("GetConditionalFormats = %v, %v; want 4 rules on K2:K8", cfs, err)
	}
	rows, err := f.GetRows(SheetDetails)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DetailsColumns, rows[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if len(rows) != 1+len(r.Changes) {
		t.Errorf("rows = %d, want %d", len(rows), 1+len(r.Changes))
	}
	// Row 2 is the largest unauthorized change.
	c := r.Changes[0]
	if got := cellValue(t, f, SheetDetails, "A2"); got != c.WorkRequest {
		t.Errorf("A2 = %q, want %q", got, c.WorkRequest)
	}
	if got := cellValue(t, f, SheetDetails, "I2"); got != "1500" {
		t.Errorf("I2 (money impact) = %q, want 1500", got)
	}
	if got := numFmt(t, f, SheetDetails, "I2"); got != MoneyFormat {
		t.Errorf("I2 number format = %q, want %q", got, MoneyFormat)
	}
	if got := numFmt(t, f, SheetDetails, "P2"); got != dateTimeFormat {
		t.Errorf("P2 number format = %q, want %q", got, dateTimeFormat)
	}
	// Changed At is the Chicago wall clock as an Excel serial.
	wantAt := strconv.FormatFloat(serial(*c.Attribution.Time, r.Location), 'f', -1, 64)
	if got := cellValue(t, f, SheetDetails, "P2"); got != wantAt {
		t.Errorf("P2 = %q, want %q", got, wantAt)
	}
	if got, _ := f.GetCellValue(SheetDetails, "P2"); got != "2026-11-17 09:30" {
		t.Errorf("P2 formatted = %q, want 2026-11-17 09:30 (Chicago)", got)
	}
	if got := cellValue(t, f, SheetDetails, "D2"); got != "Row 12" {
		t.Errorf("D2 = %q, want Row 12", got)
	}
	formula, _ := f.GetCellFormula(SheetDetails, "D2")
	if want := `HYPERLINK("https://app.smartsheet.com/sheets/abc?rowId=100","Row 12")`; formula != want {
		t.Errorf("D2 formula = %q, want %q", formula, want)
	}
	// The unvalued change has no money figure, and says so.
	for i, ch := range r.Changes {
		ref := "I" + strconv.Itoa(i+2)
		got := cellValue(t, f, SheetDetails, ref)
		if ch.Unvalued {
			if got != "" || cellValue(t, f, SheetDetails, "J"+strconv.Itoa(i+2)) != "not computable" {
				t.Errorf("unvalued change %s: %s = %q, want blank and 'not computable'", ch.ChangeID, ref, got)
			}
		}
	}
	// Estimated impacts are marked.
	for i, ch := range r.Changes {
		if ch.Estimated {
			if got := cellValue(t, f, SheetDetails, "J"+strconv.Itoa(i+2)); got != "estimated" {
				t.Errorf("estimated change %s: Valuation = %q, want estimated", ch.ChangeID, got)
			}
		}
	}
	// The sheet is streamed: one sheetData, inline strings.
	sheets := zipEntries(t, b, `^xl/worksheets/sheet2\.xml$`)
	if !bytes.Contains(sheets["xl/worksheets/sheet2.xml"], []byte(`t="inlineStr"`)) {
		t.Error("Change Details has no inline strings: not streamed?")
	}
}

func TestTextLines(t *testing.T) {
	tests := []struct {
		s     string
		width float64
		want  int
	}{
		{"", 40, 1},
		{"short", 40, 1},
		{strings.Repeat("x", 34), 40, 1}, // 0.85 × 40 characters a line
		{strings.Repeat("x", 35), 40, 2},
		{strings.Repeat("é", 35), 40, 2}, // runes, not bytes
		{"a\nb", 40, 2},
		{strings.Repeat("x", 69) + "\nb", 40, 4},
		{"abc", 0.5, 3},
	}
	for _, tt := range tests {
		if got := textLines(tt.s, tt.width); got != tt.want {
			t.Errorf("textLines(%q, %v) = %d, want %d", tt.s, tt.width, got, tt.want)
		}
	}
	if len(detailsWidths) != len(DetailsColumns) || len(detailsWraps) != len(DetailsColumns) {
		t.Errorf("%d widths and %d wraps for %d columns", len(detailsWidths), len(detailsWraps), len(DetailsColumns))
	}
}

// A note or name wider than its column wraps, and its row is as tall as its
// longest cell: a streamed row keeps the height it is written with, so
// without one wrapped text overlaps the next row and is cut in print.
func TestChangeDetailsWrapsLongText(t *testing.T) {
	in := scenarioInput(t)
	note := strings.Repeat("billed in the week ending 2026-11-29, now in the week ending 2026-12-06; ", 3)
	in.Changes[1].Note = note
	r := audit.BuildReport(in)
	_, f := MustWorkbook(t, r)
	row := 0
	for i, c := range r.Changes {
		if c.Note == note {
			row = i + 2
		}
	}
	if row == 0 {
		t.Fatal("the long note is not on Change Details")
	}
	noteRef := "R" + strconv.Itoa(row)
	if got := cellValue(t, f, SheetDetails, noteRef); got != note {
		t.Fatalf("%s = %q, want the note", noteRef, got)
	}
	tests := []struct {
		ref      string
		wantWrap bool
	}{
		{noteRef, true},
		{"A" + strconv.Itoa(row), false}, // a short cell stays one line
	}
	for _, tt := range tests {
		id, err := f.GetCellStyle(SheetDetails, tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.GetStyle(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Alignment != nil && s.Alignment.WrapText; got != tt.wantWrap {
			t.Errorf("%s wraps = %v, want %v", tt.ref, got, tt.wantWrap)
		}
		if got := numFmt(t, f, SheetDetails, tt.ref); got != "builtin:49" {
			t.Errorf("%s number format = %q, want text (builtin:49)", tt.ref, got)
		}
	}
	wantHeight := float64(textLines(note, detailsWidths[17]) * lineHeight)
	if got, err := f.GetRowHeight(SheetDetails, row); err != nil || got != wantHeight {
		t.Errorf("row %d height = %v, %v; want %v (%d lines)", row, got, err, wantHeight, textLines(note, detailsWidths[17]))
	}
	// A row of short cells keeps the default height.
	for i, c := range r.Changes {
		if c.ChangeID == "c1" {
			if got, _ := f.GetRowHeight(SheetDetails, i+2); got != 15 {
				t.Errorf("row %d (short cells) height = %v, want the default 15", i+2, got)
			}
		}
	}
}

// Every sheet prints landscape, one page wide (Change Details two); the
// dashboard on one page; Change Details repeats its header row and Work
// Request # column on each page.
func TestPrintSetup(t *testing.T) {
	_, f := MustWorkbook(t, audit.BuildReport(scenarioInput(t)))
	for _, name := range SheetNames {
		opts, err := f.GetPageLayout(name)
		if err != nil {
			t.Fatal(err)
		}
		wantWide, wantTall := 1, 0
		switch name {
		case SheetDashboard:
			wantTall = 1
		case SheetDetails:
			wantWide = 2 // legible: at one page wide its 19 columns print at a third of their size
		}
		if opts.Orientation == nil || *opts.Orientation != "landscape" || opts.FitToWidth == nil || *opts.FitToWidth != wantWide ||
			opts.FitToHeight == nil || *opts.FitToHeight != wantTall {
			t.Errorf("%s page layout = orientation %v, fit %v × %v; want landscape, %d × %d", name, deref(opts.Orientation), deref(opts.FitToWidth), deref(opts.FitToHeight), wantWide, wantTall)
		}
	}
	var titles string
	for _, d := range f.GetDefinedName() {
		if d.Name == "_xlnm.Print_Titles" && d.Scope == SheetDetails {
			titles = d.RefersTo
		}
	}
	if want := "'" + SheetDetails + "'!$A:$A,'" + SheetDetails + "'!$1:$1"; titles != want {
		t.Errorf("Change Details print titles = %q, want %q", titles, want)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestCharts(t *testing.T) {
	b, _ := MustWorkbook(t, audit.BuildReport(scenarioInput(t)))
	charts := zipEntries(t, b, `^xl/charts/chart\d+\.xml$`)
	if len(charts) != 3 {
		t.Errorf("chart parts = %d, want 3 (impact by risk, changes per week, unauthorized impact per week)", len(charts))
	}
	// The risk chart: a bar per risk in its colour; every chart shows its
	// values.
	risk := charts["xl/charts/chart1.xml"]
	if n := bytes.Count(risk, []byte("<ser>")); n != 4 {
		t.Errorf("risk chart series = %d, want 4 (one per risk, each its own colour)", n)
	}
	for _, colour := range riskColours {
		if !bytes.Contains(risk, []byte(colour)) {
			t.Errorf("risk chart lacks colour %s", colour)
		}
	}
	for name, xml := range charts {
		if !bytes.Contains(xml, []byte(`showVal val="1"`)) {
			t.Errorf("%s shows no data labels", name)
		}
	}
}

func TestInsightsAndTrends(t *testing.T) {
	r := audit.BuildReport(scenarioInput(t))
	_, f := MustWorkbook(t, r)
	total := findCell(t, f, SheetInsights, "Total")
	if got := cellValue(t, f, SheetInsights, offset(t, total, 1)); got != "54" {
		t.Errorf("API total = %q, want 54", got)
	}
	for _, rec := range r.Recommendations {
		ref := findCell(t, f, SheetInsights, rec.Action)
		if got := cellValue(t, f, SheetInsights, offset(t, ref, 2)); got != rec.Trigger {
			t.Errorf("trigger of %s = %q, want %q", rec.Rule, got, rec.Trigger)
		}
	}
	tables, err := f.GetTables(SheetTrends)
	if err != nil || len(tables) != 1 || tables[0].Name != TrendTable {
		t.Errorf("GetTables(trends) = %v, %v", tables, err)
	}
	label := findCell(t, f, SheetTrends, r.Projection.Label)
	if !strings.HasPrefix(r.Projection.Label, "Linear projection") || label == "" {
		t.Errorf("projection label %q", r.Projection.Label)
	}
	cfs, err := f.GetConditionalFormats(SheetTrends)
	if err != nil || len(cfs) != 1 {
		t.Errorf("GetConditionalFormats(trends) = %v, %v; want the heat map colour scale", cfs, err)
	}
	// The editors cover the trend's weeks: Kim's change of this period and
	// her five of the weeks before.
	editor := findCell(t, f, SheetTrends, "Kim Lee <kim@example.com>")
	if got := cellValue(t, f, SheetTrends, offset(t, editor, 1)); got != "6" {
		t.Errorf("Kim's unauthorized changes = %q, want 6", got)
	}
}

func TestZeroChangeWorkbook(t *testing.T) {
	in := scenarioInput(t)
	in.Changes, in.History, in.Findings = nil, nil, nil
	r := audit.BuildReport(in)
	b, f := MustWorkbook(t, r)
	if got := cellValue(t, f, SheetDashboard, StatusCell); got != audit.StatusLineClean {
		t.Errorf("status = %q, want %q", got, audit.StatusLineClean)
	}
	findCell(t, f, SheetInsights, "No rule fired: nothing to recommend.")
	findCell(t, f, SheetTrends, "No projection: fewer than 4 of the last 12 weeks have changes.")
	if tables, err := f.GetTables(SheetDetails); err != nil || len(tables) != 1 {
		t.Errorf("GetTables = %v, %v; want the (empty) table", tables, err)
	}
	if len(zipEntries(t, b, `^xl/charts/chart\d+\.xml$`)) != 3 {
		t.Error("charts missing from the zero-change workbook")
	}
	convertWithLibreOffice(t, b)
}

// TestTextIsNeverAFormula: Smartsheet values that look like formulas are
// string cells showing the literal text, on the streamed sheet and on the
// normal ones.
func TestTextIsNeverAFormula(t *testing.T) {
	in := scenarioInput(t)
	in.Changes[0].WorkRequest = Injection // the top item on the dashboard
	r := audit.BuildReport(in)
	b, f := MustWorkbook(t, r)
	var injRow int
	for i, c := range r.Changes {
		if c.ChangeID == "c7" {
			injRow = i + 2
		}
	}
	row := strconv.Itoa(injRow)
	cases := []struct {
		name, sheet, ref, want string
	}{
		{"work request", SheetDetails, "A" + row, Injection},
		{"sheet", SheetDetails, "C" + row, "@SUM(A1)"},
		{"column", SheetDetails, "E" + row, "\tCU"},
		{"old", SheetDetails, "F" + row, "+1"},
		{"new", SheetDetails, "G" + row, "-2"},
		{"changed by", SheetDetails, "O" + row, "=cmd|' /C calc'!A0 <kim@example.com>"},
		{"note", SheetDetails, "R" + row, "\rnote"},
		{"dashboard top item", SheetDashboard, offset(t, findCell(t, f, SheetDashboard, "Row 12"), -1), Injection},
		{"finding raw", SheetInsights, findCell(t, f, SheetInsights, "=1+1"), "=1+1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ, err := f.GetCellType(tc.sheet, tc.ref)
			if err != nil || (typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString) {
				t.Errorf("GetCellType(%s) = %v, %v; want a string type", tc.ref, typ, err)
			}
			if formula, err := f.GetCellFormula(tc.sheet, tc.ref); formula != "" || err != nil {
				t.Errorf("GetCellFormula(%s) = %q, %v; want none", tc.ref, formula, err)
			}
			if got := cellValue(t, f, tc.sheet, tc.ref); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.ref, got, tc.want)
			}
			if got := numFmt(t, f, tc.sheet, tc.ref); got != "builtin:49" {
				t.Errorf("%s number format = %q, want Text (49)", tc.ref, got)
			}
		})
	}
	// The javascript: permalink gets no link.
	if formula, _ := f.GetCellFormula(SheetDetails, "D"+row); formula != "" {
		t.Errorf("D%s formula = %q, want no link for a javascript: URL", row, formula)
	}
	// The only formulas in the workbook are the Row links we build.
	parts := zipEntries(t, b, `^xl/worksheets/sheet\d+\.xml$`)
	fre := regexp.MustCompile(`<f>([^<]*)</f>`)
	for name, data := range parts {
		for _, m := range fre.FindAllSubmatch(data, -1) {
			if !strings.HasPrefix(string(m[1]), "HYPERLINK(&#34;https://") && !strings.HasPrefix(string(m[1]), `HYPERLINK("https://`) {
				t.Errorf("%s: unexpected formula %q", name, m[1])
			}
		}
	}
}

func TestFileName(t *testing.T) {
	loc := time.FixedZone("CST", -6*3600)
	start := time.Date(2026, 11, 16, 0, 0, 0, 0, loc)
	tests := []struct {
		name, runID string
		start, end  time.Time
		want        string
	}{
		{"week", "20261123T060000Z-ab12", start, start.AddDate(0, 0, 7), "billing-audit-detected-2026-11-16_2026-11-22-20261123T060000Z-ab12.xlsx"},
		{"unsafe id", "../../etc/pass wd?*", start, start.AddDate(0, 0, 7), "billing-audit-detected-2026-11-16_2026-11-22-etc-pass-wd.xlsx"},
		{"empty id", "", start, start.AddDate(0, 0, 1), "billing-audit-detected-2026-11-16_2026-11-16-run.xlsx"},
		{"same instant", "r", start, start, "billing-audit-detected-2026-11-16_2026-11-16-r.xlsx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := audit.Report{RunID: tc.runID, PeriodStart: tc.start, PeriodEnd: tc.end, Location: loc}
			if got := FileName(r); got != tc.want {
				t.Errorf("FileName(%q) = %q, want %q", tc.runID, got, tc.want)
			}
		})
	}
	// The billing weeks the changes hit name the workbook: the unauthorized
	// changes' weeks, else every change's.
	week := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	c := func(s audit.Status, w time.Time) *audit.Change { return &audit.Change{Status: s, WeekEnding: w} }
	weeks := []struct {
		name    string
		changes []*audit.Change
		want    string
	}{
		{"one week hit", []*audit.Change{c(audit.StatusUnauthorized, week(15)), c(audit.StatusAuthorized, week(22))}, "billing-audit-we-2026-11-15-r.xlsx"},
		{"two weeks hit", []*audit.Change{c(audit.StatusUnauthorized, week(15)), c(audit.StatusUnauthorized, week(8))}, "billing-audit-we-2026-11-08-to-2026-11-15-r.xlsx"},
		{"only authorized changes", []*audit.Change{c(audit.StatusAuthorized, week(22))}, "billing-audit-we-2026-11-22-r.xlsx"},
	}
	for _, tc := range weeks {
		t.Run(tc.name, func(t *testing.T) {
			r := audit.Report{RunID: "r", PeriodStart: start, PeriodEnd: start.AddDate(0, 0, 7), Location: loc, Changes: tc.changes}
			if got := FileName(r); got != tc.want {
				t.Errorf("FileName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHyperlinkFormula(t *testing.T) {
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"https", "https://app.smartsheet.com/sheets/x?rowId=1", true},
		{"quote", `https://x.test/a"b`, true},
		{"javascript", "javascript:alert(1)", false},
		{"relative", "/sheets/x", false},
		{"control", "https://x.test/\n", false},
		{"too long", "https://x.test/" + strings.Repeat("a", 250), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := linkURL(tc.url); ok != tc.ok {
				t.Errorf("linkURL(%q) ok = %v, want %v", tc.url, ok, tc.ok)
			}
		})
	}
	if got, want := hyperlinkFormula(`https://x.test/a"b`, "Row 1"), `HYPERLINK("https://x.test/a""b","Row 1")`; got != want {
		t.Errorf("hyperlinkFormula = %q, want %q", got, want)
	}
}

// TestLibreOfficeOpensWorkbook converts the fixed scenario to PDF with
// LibreOffice (install: apt-get install -y --no-install-recommends
// libreoffice-calc). It is skipped when soffice is not on PATH.
func TestLibreOfficeOpensWorkbook(t *testing.T) {
	b, _ := MustWorkbook(t, audit.BuildReport(scenarioInput(t)))
	convertWithLibreOffice(t, b)
}

func convertWithLibreOffice(t *testing.T, b []byte) {
	t.Helper()
	bin := ""
	for _, name := range []string{"soffice", "libreoffice"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("LibreOffice not found (soffice/libreoffice not on PATH): install with `apt-get install -y --no-install-recommends libreoffice-calc` to run the conversion check")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "audit.xlsx")
	if err := os.WriteFile(in, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A private profile lets tests run in parallel with each other and with
	// a user's LibreOffice.
	cmd := exec.CommandContext(t.Context(), bin, "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--headless", "--convert-to", "pdf", "--outdir", dir, in)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s --convert-to pdf: %v\n%s", bin, err, out)
	}
	pdf, err := os.ReadFile(filepath.Join(dir, "audit.pdf"))
	if err != nil {
		t.Fatalf("no PDF produced: %v\n%s", err, out)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 1000 {
		t.Errorf("PDF of %d bytes does not look like a PDF", len(pdf))
	}
}

// TestIntegrity: what verifying the audit log found is on the dashboard and
// on System Insights, each problem named; a clean log says verified; a
// report without verification says so.
func TestIntegrity(t *testing.T) {
	tampered := audit.Verification{Entries: 12, HeadSeq: 12, HeadHash: strings.Repeat("ab", 32), Rows: 11, Matched: 9, Digests: 3}
	tampered.Add(
		audit.Problem{Kind: audit.ProblemAlteredCell, ChangeID: "c2", WorkRequest: "91234567", RowNumber: 2, Seq: 2,
			Column: audit.LogImpact, Ledger: "120.00", Sheet: "0"},
		audit.Problem{Kind: audit.ProblemDeletedRow, ChangeID: "c1", WorkRequest: "91234500", Seq: 1, Detail: "the row was written to the audit sheet and is no longer there"},
	)
	clean := audit.Verification{Entries: 12, HeadSeq: 12, HeadHash: strings.Repeat("ab", 32), Rows: 12, Matched: 12, Digests: 3}
	tests := []struct {
		name        string
		integrity   *audit.Integrity
		wantVerdict string
		wantRows    []string // cells that must appear on System Insights
	}{
		{name: "tampered", integrity: &audit.Integrity{Verification: tampered, DigestName: "0000000004-run", DigestLocation: "out/digests/0000000004-run.json"},
			wantVerdict: "TAMPERING DETECTED", wantRows: []string{"ALTERED_CELL", "c2", `"120.00" → "0"`, "DELETED_ROW", "c1", "the row was written to the audit sheet and is no longer there"}},
		{name: "clean", integrity: &audit.Integrity{Verification: clean, DigestWithheld: "test mode"},
			wantVerdict: "VERIFIED", wantRows: []string{"none: test mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := scenarioInput(t)
			in.Integrity = tt.integrity
			r := audit.BuildReport(in)
			b, f := MustWorkbook(t, r)
			verdict := findCell(t, f, SheetInsights, "Verdict")
			if got := cellValue(t, f, SheetInsights, offset(t, verdict, 1)); got != tt.wantVerdict {
				t.Errorf("verdict = %q, want %q", got, tt.wantVerdict)
			}
			for _, v := range tt.wantRows {
				findCell(t, f, SheetInsights, v)
			}
			line := "Audit log " + tt.integrity.Verification.Summary()
			if got := cellValue(t, f, SheetDashboard, "A6"); got != line {
				t.Errorf("dashboard A6 = %q, want %q", got, line)
			}
			tamperRule := len(r.Recommendations) > 0 && r.Recommendations[0].Rule == audit.RuleInvestigateTampering
			if tamperRule != !tt.integrity.Verification.OK() {
				t.Errorf("first recommendation %v, want INVESTIGATE_TAMPERING exactly when tampered", r.Recommendations)
			}
			convertWithLibreOffice(t, b)
		})
	}
	r := audit.BuildReport(scenarioInput(t))
	_, f := MustWorkbook(t, r)
	findCell(t, f, SheetInsights, "Not verified in this run.")
}

// Exceptions lists every open exception oldest first, its Work Request #
// linking to the row in Smartsheet; a permalink that is not http(s) is
// shown, not linked. The sheet is streamed: a normal-mode hyperlink per row
// made 25,000 open exceptions take a minute.
func TestExceptionsSheet(t *testing.T) {
	in := scenarioInput(t)
	in.Changes[1].Permalink = "javascript:alert(1)"
	in.Changes[2].WorkRequest = strings.Repeat("W", 300) // a Work Request # too long for a formula's text
	r := audit.BuildReport(in)
	if len(r.Exceptions.List) < 2 {
		t.Fatalf("scenario has %d open exceptions, want 2 or more", len(r.Exceptions.List))
	}
	b, f := MustWorkbook(t, r)
	title := findCell(t, f, SheetExceptions, fmt.Sprintf("Open exceptions, oldest first (%d)", len(r.Exceptions.List)))
	_, titleRow, err := excelize.CellNameToCoordinates(title)
	if err != nil {
		t.Fatal(err)
	}
	if got := cellValue(t, f, SheetExceptions, "A"+strconv.Itoa(titleRow+1)); got != "Work Request #" {
		t.Errorf("the list's header starts %q, want Work Request #", got)
	}
	unsafe := 0
	for i, e := range r.Exceptions.List {
		ref := "A" + strconv.Itoa(titleRow+2+i)
		c := e.Change
		if got := cellValue(t, f, SheetExceptions, ref); got != c.WorkRequest {
			t.Errorf("%s = %q, want %q (exception %d)", ref, got, c.WorkRequest, i)
		}
		formula, err := f.GetCellFormula(SheetExceptions, ref)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if _, ok := linkURL(c.Permalink); ok && fitsFormula(c.WorkRequest) {
			want = hyperlinkFormula(c.Permalink, c.WorkRequest)
		} else {
			unsafe++
		}
		if formula != want {
			t.Errorf("%s formula = %q, want %q", ref, formula, want)
		}
	}
	if unsafe < 2 {
		t.Errorf("%d exceptions unlinked, want 2: the scenario does not test an unsafe permalink and a long label", unsafe)
	}
	sheets := zipEntries(t, b, `^xl/worksheets/_rels/sheet5\.xml\.rels$`)
	if rels := sheets["xl/worksheets/_rels/sheet5.xml.rels"]; bytes.Contains(rels, []byte("hyperlink")) {
		t.Errorf("Exceptions has hyperlink relationships, want formulas: %s", rels)
	}
}

func TestFitsFormula(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("é", 255), true},        // characters, not bytes
		{strings.Repeat("😀", 128), false},       // two UTF-16 units each
		{strings.Repeat("a", 254) + `"`, false}, // a quote is doubled
		{strings.Repeat("a", 253) + `"`, true},
	}
	for _, tt := range tests {
		if got := fitsFormula(tt.s); got != tt.want {
			t.Errorf("fitsFormula(%d runes) = %v, want %v", len([]rune(tt.s)), got, tt.want)
		}
	}
}
