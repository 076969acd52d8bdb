// Package xlsx renders an [audit.Report] as the Excel workbook managers
// open, with github.com/xuri/excelize/v2. It computes nothing: every figure
// comes from the report.
//
// The workbook has four sheets, in order: Executive Dashboard, Change
// Details (streamed, so large runs stay within memory), System Insights and
// Trends & Analytics.
//
// # Text is never a formula
//
// Values from Smartsheet (work requests, sheet and column names, old and new
// values, users, notes) are written as string cells (shared or inline
// strings): OOXML evaluates only a cell's <f> element, so a string cell
// holding "=HYPERLINK(…)" shows exactly that text and runs nothing. The
// value is shown unaltered — an audit must show what the sheet held, so no
// apostrophe or other marker is prepended. Such cells also carry the Text
// number format ("@"), so that if a user opens the cell and presses Enter,
// Excel keeps it as text instead of parsing it as a formula.
//
// The only formulas in the workbook are HYPERLINK formulas this package
// builds for the Change Details "Row" column from a validated http(s)
// permalink (quotes doubled): Excel allows at most 65,530 hyperlink
// relationships per worksheet, and excelize adds each in linear time, so
// relationship links do not scale to 100,000 rows. The dashboard's top items
// use real hyperlinks.
//
// Money is decimal until the cell: it is rounded to cents and converted to
// float64 as the value is written. Times are shown in the audit timezone as
// Excel date-times.
package xlsx

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// The sheet names, in workbook order.
const (
	SheetDashboard = "Executive Dashboard"
	SheetDetails   = "Change Details"
	SheetInsights  = "System Insights"
	SheetTrends    = "Trends & Analytics"
	// SheetExceptions is the exceptions people act on: open ones by age,
	// disposition and reviewer.
	SheetExceptions = "Exceptions"
)

// SheetNames lists the sheets in workbook order.
var SheetNames = []string{SheetDashboard, SheetDetails, SheetInsights, SheetTrends, SheetExceptions}

// DetailsTable is the name of the Excel table on the Change Details sheet.
const DetailsTable = "ChangeDetails"

// MoneyFormat is the number format of money cells.
const MoneyFormat = `"$"#,##0.00;[Red]-"$"#,##0.00`

// Formats of other cells.
const (
	dateFormat     = "yyyy-mm-dd"
	dateTimeFormat = "yyyy-mm-dd hh:mm"
	percentFormat  = "0.0%"
	booleanFormat  = `"TRUE";"TRUE";"FALSE"`
)

// Write renders r as an xlsx workbook to w.
func Write(w io.Writer, r audit.Report) error {
	f := excelize.NewFile()
	defer f.Close()
	// The zip goes straight to w rather than to excelize's in-memory buffer
	// (which would hold the whole file), deflated at BestSpeed: about three
	// times faster than the default level on a large Change Details sheet,
	// for a slightly larger file. On error, w may hold a partial file.
	bw := bufio.NewWriterSize(w, 256<<10)
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(bw)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(out, flate.BestSpeed)
		})
		return zw
	})
	if err := f.SetSheetName("Sheet1", SheetDashboard); err != nil {
		return fmt.Errorf("xlsx: rename sheet: %w", err)
	}
	for _, name := range SheetNames[1:] {
		if _, err := f.NewSheet(name); err != nil {
			return fmt.Errorf("xlsx: new sheet %q: %w", name, err)
		}
	}
	// Before the sheets are written: the streamed one (Change Details) keeps
	// the page setup it started with.
	if err := setPrinting(f); err != nil {
		return fmt.Errorf("xlsx: page setup: %w", err)
	}
	st, err := newStyles(f)
	if err != nil {
		return fmt.Errorf("xlsx: styles: %w", err)
	}
	if r.Location == nil {
		r.Location = time.UTC
	}
	for _, step := range []struct {
		sheet string
		fn    func(*excelize.File, *styles, *audit.Report) error
	}{
		{SheetDashboard, writeDashboard},
		{SheetDetails, writeDetails},
		{SheetInsights, writeInsights},
		{SheetTrends, writeTrends},
		{SheetExceptions, writeExceptions},
	} {
		if err := step.fn(f, st, &r); err != nil {
			return fmt.Errorf("xlsx: sheet %q: %w", step.sheet, err)
		}
	}
	f.SetActiveSheet(0)
	if err := f.SetDocProps(&excelize.DocProperties{
		Title:   "Billing audit, " + r.PeriodText(),
		Subject: "Changes to billed rows",
		Creator: "billing-audit",
	}); err != nil {
		return fmt.Errorf("xlsx: doc props: %w", err)
	}
	// WriteToBuffer drives the zip writer above; its own buffer stays empty.
	if _, err := f.WriteToBuffer(); err != nil {
		return fmt.Errorf("xlsx: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("xlsx: write: %w", err)
	}
	return nil
}

// setPrinting makes every sheet print landscape, one page wide: the
// dashboard on one page, the others as many pages down as they need. Change
// Details, 19 columns, prints two pages wide (at one its text would be a
// third of its size, too small to read), each page with the header row and
// the Work Request # column.
func setPrinting(f *excelize.File) error {
	for _, name := range SheetNames {
		wide, tall := 1, 0
		switch name {
		case SheetDashboard:
			tall = 1
		case SheetDetails:
			wide = 2
		}
		g := &grid{f: f, sheet: name}
		printLandscape(g, wide, tall)
		if g.err != nil {
			return fmt.Errorf("%s: %w", name, g.err)
		}
	}
	return f.SetDefinedName(&excelize.DefinedName{Name: "_xlnm.Print_Titles", RefersTo: "'" + SheetDetails + "'!$A:$A,'" + SheetDetails + "'!$1:$1", Scope: SheetDetails})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// FileName is the workbook's file name, led by the billing weeks its changes
// hit, which is what its reader looks for:
// billing-audit-we-<week ending>[-to-<week ending>]-<run id>.xlsx, or
// billing-audit-detected-<first date>_<last date>-<run id>.xlsx when no
// change names a week; dates in the audit timezone, the run id reduced to
// letters, digits, '.', '_' and '-' (at most 64 of them; "run" when none is
// left).
func FileName(r audit.Report) string {
	id := strings.Trim(unsafeName.ReplaceAllString(r.RunID, "-"), "-.")
	if len(id) > 64 {
		id = id[:64]
	}
	if id == "" {
		id = "run"
	}
	var period string
	switch hit := r.WeeksHit(); len(hit) {
	case 0:
		first, last := r.PeriodDates()
		period = "detected-" + audit.FormatDate(first) + "_" + audit.FormatDate(last)
	case 1:
		period = "we-" + audit.FormatDate(hit[0])
	default:
		period = "we-" + audit.FormatDate(hit[0]) + "-to-" + audit.FormatDate(hit[len(hit)-1])
	}
	return "billing-audit-" + period + "-" + id + ".xlsx"
}

// styles are the style ids, created once per workbook.
type styles struct {
	title, subtitle, label, header, note, wrap int
	text, link                                 int
	// textWrap is text that wraps, bottom-aligned like the cells beside it.
	textWrap int
	// boolean shows a TRUE/FALSE cell as TRUE/FALSE in LibreOffice too,
	// which otherwise prints 1 and 0; Excel shows booleans so anyway.
	boolean int
	// alert is a value that must not be missed (the audit log failed
	// verification): bold dark red on light red; alertWrap wraps.
	alert, alertWrap                               int
	integer, money, moneyBold, percent, date, when int
	statusByLevel                                  map[audit.Level]int
	riskFill                                       map[audit.Risk]int // conditional formats
}

func newStyles(f *excelize.File) (*styles, error) {
	var err error
	add := func(s *excelize.Style) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = f.NewStyle(s)
		return id
	}
	cond := func(fg, bg string) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = f.NewConditionalStyle(&excelize.Style{
			Font: &excelize.Font{Color: fg, Bold: true},
			Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{bg}},
		})
		return id
	}
	num := func(format string, bold bool) *excelize.Style {
		return &excelize.Style{CustomNumFmt: &format, Font: &excelize.Font{Bold: bold}}
	}
	status := func(bg string) int {
		return add(&excelize.Style{
			Font:      &excelize.Font{Bold: true, Size: 24, Color: "FFFFFF"},
			Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{bg}},
			Alignment: &excelize.Alignment{Horizontal: "center", Vertical: "center"},
		})
	}
	s := &styles{
		title:    add(&excelize.Style{Font: &excelize.Font{Bold: true, Size: 18}}),
		subtitle: add(&excelize.Style{Font: &excelize.Font{Bold: true, Size: 13, Color: "1F3864"}}),
		label:    add(&excelize.Style{Font: &excelize.Font{Bold: true}}),
		header: add(&excelize.Style{
			Font:      &excelize.Font{Bold: true, Color: "FFFFFF"},
			Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"1F4E78"}},
			Alignment: &excelize.Alignment{Vertical: "center", WrapText: true},
		}),
		note:     add(&excelize.Style{Font: &excelize.Font{Italic: true, Color: "595959"}}),
		wrap:     add(&excelize.Style{NumFmt: 49, Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}}),
		text:     add(&excelize.Style{NumFmt: 49}),
		textWrap: add(&excelize.Style{NumFmt: 49, Alignment: &excelize.Alignment{WrapText: true}}),
		boolean:  add(num(booleanFormat, false)),
		link:     add(&excelize.Style{Font: &excelize.Font{Color: "0563C1", Underline: "single"}}),
		alert: add(&excelize.Style{
			NumFmt: 49,
			Font:   &excelize.Font{Bold: true, Color: "9C0006"},
			Fill:   excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"FFC7CE"}},
		}),
		alertWrap: add(&excelize.Style{
			NumFmt:    49,
			Font:      &excelize.Font{Bold: true, Color: "9C0006"},
			Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"FFC7CE"}},
			Alignment: &excelize.Alignment{WrapText: true, Vertical: "center"},
		}),
		integer:   add(&excelize.Style{NumFmt: 3}),
		money:     add(num(MoneyFormat, false)),
		moneyBold: add(num(MoneyFormat, true)),
		percent:   add(num(percentFormat, false)),
		date:      add(num(dateFormat, false)),
		when:      add(num(dateTimeFormat, false)),
		statusByLevel: map[audit.Level]int{
			audit.LevelChanges: status("C00000"),
			audit.LevelReview:  status("BF8F00"),
			audit.LevelClean:   status("2E7D32"),
		},
		riskFill: map[audit.Risk]int{
			audit.RiskHigh:    cond("9C0006", "FFC7CE"),
			audit.RiskMedium:  cond("9C5700", "FFEB9C"),
			audit.RiskLow:     cond("006100", "C6EFCE"),
			audit.RiskUnknown: cond("3F3F3F", "D9D9D9"),
		},
	}
	return s, err
}

// money converts an amount for a cell: rounded to cents, then float64.
// Amounts of at most two decimals that fit 15 digits take a fast path:
// cents / 100 in float64 is the double nearest the exact amount, as
// Decimal.Float64 would give.
func money(d decimal.Decimal) float64 {
	if e := d.Exponent(); e >= -2 && e <= 0 && d.NumDigits() <= 15 {
		c := d.CoefficientInt64()
		for ; e > -2; e-- {
			c *= 10
		}
		return float64(c) / 100
	}
	f, _ := d.Round(2).Float64()
	return f
}

var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// serial is the Excel date-time serial of t's wall clock in loc.
func serial(t time.Time, loc *time.Location) float64 {
	lt := t.In(loc)
	wall := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), time.UTC)
	return float64(wall.Sub(excelEpoch)) / float64(24*time.Hour)
}

// dateSerial is the serial of a calendar date held as midnight UTC.
func dateSerial(d time.Time) float64 { return serial(d, time.UTC) }

// linkURL returns u when it is safe to link to: an absolute http(s) URL
// without control characters and short enough for a HYPERLINK formula
// (Excel limits a formula's text literal to 255 characters).
func linkURL(u string) (string, bool) {
	if u == "" || !fitsFormula(u) || strings.ContainsFunc(u, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return "", false
	}
	return u, true
}

// fitsFormula reports whether s can be a text literal of a formula: Excel
// takes at most 255 characters (UTF-16 units, doubled quotes counted) and
// "repairs" a workbook with a longer one by deleting the formula. linkURL
// holds URLs to the same bound.
func fitsFormula(s string) bool {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
		if r == '"' {
			n++
		}
	}
	return n <= 255
}

// hyperlinkFormula is HYPERLINK(url, label) with both quoted.
func hyperlinkFormula(u, label string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return "HYPERLINK(" + q(u) + "," + q(label) + ")"
}

func tzName(r *audit.Report) string {
	if r.Location == nil {
		return "UTC"
	}
	return r.Location.String()
}

// formatWhen formats an instant in the audit timezone for text.
func formatWhen(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2006-01-02 15:04")
}

func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%dh %02dm %02ds", h, m, s)
	}
	return fmt.Sprintf("%dm %02ds", m, s)
}

func attributionText(a audit.Attribution, loc *time.Location) string {
	src := string(a.Source)
	if src == "" {
		src = string(audit.SourceUnknown)
	}
	if a.Time != nil {
		return src
	}
	switch {
	case !a.WindowStart.IsZero() && !a.WindowEnd.IsZero():
		return fmt.Sprintf("%s; made between %s and %s", src, formatWhen(a.WindowStart, loc), formatWhen(a.WindowEnd, loc))
	case !a.WindowEnd.IsZero():
		return fmt.Sprintf("%s; made before %s", src, formatWhen(a.WindowEnd, loc))
	}
	return src
}

func valuation(c *audit.Change) string {
	switch {
	case c.Unvalued:
		return "not computable"
	case c.Estimated:
		return "estimated"
	case c.ValuedElsewhere:
		return "counted on the price change"
	default:
		return "exact"
	}
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// grid writes cells of a sheet and keeps the first error: in normal mode,
// or through a stream writer (see streamGrid).
type grid struct {
	f     *excelize.File
	sheet string
	err   error
	// sw, when set, takes the cells: rows in order, one row gathered at a
	// time (at, cells) and written when the next one starts or on close.
	sw    *excelize.StreamWriter
	at    int
	cells []any
}

// streamGrid is a grid over a stream writer, for a sheet that can be long
// (Exceptions lists every open exception). Normal-mode cells cost far more
// memory each, and normal-mode hyperlinks time quadratic in their number:
// excelize rescans the sheet's relationships at each one, so 25,000 open
// exceptions took a minute. Cells must come in row order; close flushes.
func streamGrid(f *excelize.File, sheet string) *grid {
	g := &grid{f: f, sheet: sheet}
	g.sw, g.err = f.NewStreamWriter(sheet)
	return g
}

// put gathers a streamed cell; formula, when set, is the cell's formula and
// v its shown value.
func (g *grid) put(col, row int, v any, style int, formula string) {
	if g.err != nil {
		return
	}
	if row < g.at {
		g.err = fmt.Errorf("row %d after row %d: a streamed sheet takes its rows in order", row, g.at)
		return
	}
	if row > g.at {
		g.flushRow()
		g.at = row
	}
	for len(g.cells) < col {
		g.cells = append(g.cells, nil)
	}
	g.cells[col-1] = excelize.Cell{StyleID: style, Value: v, Formula: formula}
}

func (g *grid) flushRow() {
	if g.err != nil || len(g.cells) == 0 {
		return
	}
	g.err = g.sw.SetRow(g.cell(1, g.at), g.cells)
	g.cells = g.cells[:0]
}

// close writes out a streamed sheet; a normal-mode grid has nothing to do.
func (g *grid) close() error {
	if g.sw != nil {
		g.flushRow()
		if g.err == nil {
			g.err = g.sw.Flush()
		}
	}
	return g.err
}

// link makes (col, row) show label and open the Smartsheet row at u, a URL
// linkURL passed: a HYPERLINK formula when streamed, else a hyperlink with
// a tooltip.
func (g *grid) link(col, row int, u, label string, style int) {
	if g.sw != nil {
		if !fitsFormula(label) {
			g.put(col, row, label, 0, "") // shown, not linked: Excel would drop the formula
			return
		}
		g.put(col, row, label, style, hyperlinkFormula(u, label))
		return
	}
	g.set(col, row, label, style)
	if g.err != nil {
		return
	}
	ref := g.cell(col, row)
	tip := "Open the row in Smartsheet"
	g.err = g.f.SetCellHyperLink(g.sheet, ref, u, "External", excelize.HyperlinkOpts{Display: &label, Tooltip: &tip})
}

func (g *grid) cell(col, row int) string {
	name, err := excelize.CoordinatesToCellName(col, row)
	if err != nil && g.err == nil {
		g.err = err
	}
	return name
}

// set writes v at (col, row) with style (0: none). Strings are always
// string cells; numbers stay numbers.
func (g *grid) set(col, row int, v any, style int) {
	if g.err != nil {
		return
	}
	if g.sw != nil {
		switch x := v.(type) {
		case nil:
			return
		case decimal.Decimal:
			v = money(x)
		}
		g.put(col, row, v, style, "")
		return
	}
	ref := g.cell(col, row)
	switch v := v.(type) {
	case nil:
	case string:
		g.err = g.f.SetCellStr(g.sheet, ref, v)
	case decimal.Decimal:
		g.err = g.f.SetCellFloat(g.sheet, ref, money(v), -1, 64)
	default:
		g.err = g.f.SetCellValue(g.sheet, ref, v)
	}
	if g.err == nil && style != 0 {
		g.err = g.f.SetCellStyle(g.sheet, ref, ref, style)
	}
}

// row writes values from column 1 with one style per value (0: none; a
// shorter styles slice leaves the rest unstyled).
func (g *grid) row(row int, styles []int, values ...any) {
	for i, v := range values {
		s := 0
		if i < len(styles) {
			s = styles[i]
		}
		g.set(i+1, row, v, s)
	}
}

func (g *grid) header(row int, style int, titles ...string) {
	for i, t := range titles {
		g.set(i+1, row, t, style)
	}
}

// measure is one "label, value" line of a Measure/Value table.
type measure struct {
	label string
	v     any
	style int
}

// writeMeasures writes lines on the rows below row, label styled as a label
// and value with its own style, and returns the last row written.
func writeMeasures(g *grid, st *styles, row int, lines []measure) int {
	for _, m := range lines {
		row++
		g.row(row, []int{st.label, m.style}, m.label, m.v)
	}
	return row
}

func (g *grid) widths(widths ...float64) {
	for i, w := range widths {
		if g.err != nil {
			return
		}
		if g.sw != nil {
			g.err = g.sw.SetColWidth(i+1, i+1, w)
			continue
		}
		c, _ := excelize.ColumnNumberToName(i + 1)
		g.err = g.f.SetColWidth(g.sheet, c, c, w)
	}
}

func (g *grid) merge(from, to string) {
	if g.err != nil {
		return
	}
	if g.sw != nil {
		g.err = g.sw.MergeCell(from, to)
		return
	}
	g.err = g.f.MergeCell(g.sheet, from, to)
}

// absRef is 'Sheet'!$C$r1:$C$r2.
func absRef(sheet string, col, row1, row2 int) string {
	c, _ := excelize.ColumnNumberToName(col)
	return fmt.Sprintf("'%s'!$%s$%d:$%s$%d", strings.ReplaceAll(sheet, "'", "''"), c, row1, c, row2)
}

// Workbook is the workbook writer as the pipeline's port sees it.
type Workbook struct{}

// Write writes the report's workbook to w.
func (Workbook) Write(w io.Writer, r audit.Report) error { return Write(w, r) }

// FileName names the report's workbook.
func (Workbook) FileName(r audit.Report) string { return FileName(r) }
