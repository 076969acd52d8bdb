package xlsx

import (
	"fmt"

	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// Dashboard cells tests and readers rely on.
const (
	// StatusCell holds the status line.
	StatusCell = "A4"
)

func riskLabel(r *audit.Report, risk audit.Risk) string {
	switch risk {
	case audit.RiskHigh:
		return fmt.Sprintf("HIGH (over %s)", audit.MoneyText(r.HighRisk))
	case audit.RiskMedium:
		return fmt.Sprintf("MEDIUM (over %s)", audit.MoneyText(r.MediumRisk))
	case audit.RiskLow:
		return fmt.Sprintf("LOW (up to %s)", audit.MoneyText(r.MediumRisk))
	case audit.RiskUnknown:
		return "UNKNOWN (impact not computable)"
	}
	return string(risk)
}

// writeDashboard writes the executive dashboard: the status line on top, then
// money tables read down the page, the top items to act on, coverage, and the
// risk chart beside the tables. Each section writes from a row and returns
// the last row it wrote, so a section can grow without the others moving by
// hand.
func writeDashboard(f *excelize.File, st *styles, r *audit.Report) error {
	g := &grid{f: f, sheet: SheetDashboard}
	g.widths(36, 16, 24, 24, 18, 14, 12, 26, 18, 14)
	writeDashboardHead(g, st, r)

	row := writeTotals(g, st, r, 9) + 2
	riskFirst := row + 2 // the first data row of "By risk", below its title and header
	riskLast := writeBreakdown(g, st, row, "By risk", "Risk", riskLines(r))
	row = writeBreakdown(g, st, riskLast+2, "By kind", "Kind", kindLines(r))
	row = writeBreakdown(g, st, row+2, "By status", "Status", statusLines(r))
	row = writeTop(g, st, r, row+2)
	writeCoverage(g, st, r, row+2)

	writeRiskSeries(g, r, riskFirst)
	if g.err != nil {
		return g.err
	}
	return f.AddChart(SheetDashboard, "G7", riskChart(riskFirst, riskLast, len(r.ByRisk)))
}

// riskSeriesCol is the first of the hidden helper columns that hold the risk
// chart's series: one per risk, its gross impact on its own row and blank
// elsewhere, so a stacked column chart gives each risk one bar in its own
// colour (Excel colours a column chart's points alike within a series).
const riskSeriesCol = 20

// riskColours are the bars' colours, in ByRisk order: HIGH, MEDIUM, LOW,
// UNKNOWN (as the risk cells of Change Details).
var riskColours = []string{"C00000", "ED7D31", "70AD47", "7F7F7F"}

func writeRiskSeries(g *grid, r *audit.Report, first int) {
	for j, t := range r.ByRisk {
		g.set(riskSeriesCol+j, first-1, string(t.Risk), 0)
		for i := range r.ByRisk {
			if i == j {
				g.set(riskSeriesCol+j, first+i, t.Impact.Gross, 0)
			}
		}
	}
	if g.err == nil {
		from, _ := excelize.ColumnNumberToName(riskSeriesCol)
		to, _ := excelize.ColumnNumberToName(riskSeriesCol + len(r.ByRisk) - 1)
		g.err = g.f.SetColVisible(SheetDashboard, from+":"+to, false)
	}
}

// writeDashboardHead writes rows 1 to 7: title, run line, status (StatusCell),
// its detail, the audit log's verdict when verified, and the period.
func writeDashboardHead(g *grid, st *styles, r *audit.Report) {
	g.set(1, 1, "Billing audit — Executive Dashboard", st.title)
	sub := fmt.Sprintf("Run %s · generated %s (%s)", r.RunID, formatWhen(r.GeneratedAt, r.Location), tzName(r))
	if r.TestMode {
		sub += " · TEST MODE: nothing was written to Smartsheet"
	}
	g.set(1, 2, sub, st.note)
	g.set(1, 3, r.Headline(), st.subtitle)

	g.set(1, 4, r.Status, st.statusByLevel[r.Level])
	g.merge("A4", "F4")
	if g.err == nil {
		g.err = g.f.SetRowHeight(SheetDashboard, 4, 40)
	}
	g.set(1, 5, r.StatusDetail, st.text)
	if in := r.Integrity; in != nil {
		style := st.wrap
		if !in.Verification.OK() {
			style = st.alertWrap
		}
		g.set(1, 6, "Audit log "+in.Verification.Summary(), style)
		g.merge("A6", "D6") // within the first printed page
		if g.err == nil {
			g.err = g.f.SetRowHeight(SheetDashboard, 6, 30)
		}
	}

	g.row(7, []int{st.label}, "Period", r.PeriodText()+", "+tzName(r))
}

// moneyStyles are the styles of a "label, count, gross, net" line.
func moneyStyles(st *styles) []int { return []int{st.label, st.integer, st.money, st.money} }

// writeTotals writes the "Money impact" table from row on and returns the
// last row written.
func writeTotals(g *grid, st *styles, r *audit.Report, row int) int {
	g.set(1, row, "Money impact", st.subtitle)
	row++
	g.header(row, st.header, "Changes", "Count", "Gross (sum of |impact|)", "Net (signed sum)")
	t := r.Totals
	for _, l := range []impactLine{
		{"All changes", t.All},
		{"Unauthorized", t.Unauthorized},
		{"Needs review", t.NeedsReview},
		{"Estimated (quantity × unit price)", t.Estimated},
	} {
		row++
		g.row(row, moneyStyles(st), l.label, l.Count, l.Gross, l.Net)
	}
	row++
	g.row(row, []int{st.label, st.integer}, "Impact not computable", t.Unvalued)
	return row
}

// impactLine is one labelled line of a money table.
type impactLine struct {
	label string
	audit.Impact
}

func riskLines(r *audit.Report) []impactLine {
	lines := make([]impactLine, 0, len(r.ByRisk))
	for _, t := range r.ByRisk {
		lines = append(lines, impactLine{riskLabel(r, t.Risk), t.Impact})
	}
	return lines
}

func kindLines(r *audit.Report) []impactLine {
	lines := make([]impactLine, 0, len(r.ByKind))
	for _, t := range r.ByKind {
		lines = append(lines, impactLine{string(t.Kind), t.Impact})
	}
	return lines
}

func statusLines(r *audit.Report) []impactLine {
	lines := make([]impactLine, 0, len(r.ByStatus))
	for _, t := range r.ByStatus {
		lines = append(lines, impactLine{string(t.Status), t.Impact})
	}
	return lines
}

// writeBreakdown writes a titled "first, Count, Gross impact, Net impact"
// table from row on and returns the last row written (the header's when
// lines is empty).
func writeBreakdown(g *grid, st *styles, row int, title, first string, lines []impactLine) int {
	g.set(1, row, title, st.subtitle)
	row++
	g.header(row, st.header, first, "Count", "Gross impact", "Net impact")
	for _, l := range lines {
		row++
		g.row(row, moneyStyles(st), l.label, l.Count, l.Gross, l.Net)
	}
	return row
}

// writeTop writes the largest unauthorized changes from row on, each linked
// to its Smartsheet row, and returns the last row written.
func writeTop(g *grid, st *styles, r *audit.Report, row int) int {
	title := fmt.Sprintf("Act on these first: the %d largest unauthorized changes", len(r.Top))
	switch len(r.Top) {
	case 0:
		title = "Act on these first: the largest unauthorized changes"
	case 1:
		title = "Act on this first: the one unauthorized change"
	}
	g.set(1, row, title, st.subtitle)
	row++
	g.header(row, st.header, "Work Request #", "Row", "Source Sheet", "Column", "Money impact", "Risk", "Week ending", "Changed by", "Changed at", "Kind")
	if len(r.Top) == 0 {
		row++
		g.set(1, row, "No unauthorized change in the period.", st.note)
	}
	for _, c := range r.Top {
		row++
		writeTopItem(g, st, r, row, c)
	}
	return row
}

func writeTopItem(g *grid, st *styles, r *audit.Report, row int, c *audit.Change) {
	g.set(1, row, c.WorkRequest, st.text)
	label := fmt.Sprintf("Row %d", c.RowNumber)
	if u, ok := linkURL(c.Permalink); ok {
		g.link(2, row, u, label, st.link)
	} else {
		g.set(2, row, label, 0)
	}
	g.set(3, row, c.SheetName, st.text)
	g.set(4, row, c.Column, st.text)
	if c.Unvalued {
		g.set(5, row, "not computable", st.note)
	} else {
		g.set(5, row, c.Impact, st.money)
	}
	g.set(6, row, string(c.Risk), 0)
	if !c.WeekEnding.IsZero() {
		g.set(7, row, dateSerial(c.WeekEnding), st.date)
	}
	g.set(8, row, audit.Who(c.Attribution), st.text)
	if c.Attribution.Time != nil {
		g.set(9, row, serial(*c.Attribution.Time, r.Location), st.when)
	}
	g.set(10, row, string(c.Kind), 0)
}

// writeCoverage writes how much was read and attributed, from row on.
func writeCoverage(g *grid, st *styles, r *audit.Report, row int) {
	cv := r.Coverage
	g.set(1, row, "Coverage", st.subtitle)
	row++
	g.header(row, st.header, "Measure", "Value")
	lines := []measure{
		{"Sheets scanned", cv.SheetsScanned, st.integer},
		{"Sheets skipped (unchanged since last scan)", cv.SheetsSkipped, st.integer},
		{"Rows scanned", cv.RowsScanned, st.integer},
		{"Changes", cv.Changes, st.integer},
		{"Changes with a known author", cv.Attributed, st.integer},
		{"Share with a known author", cv.AttributedShare, st.percent},
		{"Changes with an exact time", cv.ExactTime, st.integer},
	}
	for _, s := range cv.BySource {
		lines = append(lines, measure{"Attributed by " + string(s.Source), s.Count, st.integer})
	}
	writeMeasures(g, st, row, lines)
}

// riskChart charts the gross impact column of "By risk" (rows first to last,
// its header the row above).
func riskChart(first, last, risks int) *excelize.Chart {
	series := make([]excelize.ChartSeries, risks)
	for j := range series {
		series[j] = excelize.ChartSeries{
			Name:       absRef(SheetDashboard, riskSeriesCol+j, first-1, first-1),
			Categories: absRef(SheetDashboard, 1, first, last),
			Values:     absRef(SheetDashboard, riskSeriesCol+j, first, last),
			Fill:       excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{riskColours[j%len(riskColours)]}},
		}
	}
	return &excelize.Chart{
		Type:      excelize.ColStacked,
		Series:    series,
		Title:     []excelize.RichTextRun{{Text: "Gross money impact by risk"}},
		Legend:    excelize.ChartLegend{Position: "none"},
		Dimension: excelize.ChartDimension{Width: 520, Height: 300},
		PlotArea:  excelize.ChartPlotArea{ShowVal: true, NumFmt: excelize.ChartNumFmt{CustomNumFmt: `"$"#,##0`}},
		XAxis:     readableAxis(excelize.ChartNumFmt{}),
		YAxis:     readableAxis(excelize.ChartNumFmt{CustomNumFmt: `"$"#,##0`}),
	}
}

// readableAxis is an axis with dark labels of a readable size.
func readableAxis(nf excelize.ChartNumFmt) excelize.ChartAxis {
	return excelize.ChartAxis{NumFmt: nf, Font: excelize.Font{Color: "262626", Size: 9}, MajorGridLines: true}
}
