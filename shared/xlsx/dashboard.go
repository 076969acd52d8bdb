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

func writeDashboard(f *excelize.File, st *styles, r *audit.Report) error {
	g := &grid{f: f, sheet: SheetDashboard}
	g.widths(26, 16, 24, 24, 18, 14, 12, 26, 18, 14)
	loc := r.Location
	money3 := []int{st.label, st.integer, st.money, st.money}

	g.set(1, 1, "Billing audit — Executive Dashboard", st.title)
	sub := fmt.Sprintf("Run %s · generated %s (%s)", r.RunID, formatWhen(r.GeneratedAt, loc), tzName(r))
	if r.TestMode {
		sub += " · TEST MODE: nothing was written to Smartsheet"
	}
	g.set(1, 2, sub, st.note)

	g.set(1, 4, r.Status, st.statusByLevel[r.Level])
	g.merge("A4", "F4")
	if g.err == nil {
		g.err = f.SetRowHeight(SheetDashboard, 4, 40)
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
			g.err = f.SetRowHeight(SheetDashboard, 6, 30)
		}
	}

	g.row(7, []int{st.label}, "Period", periodText(*r)+" ("+tzName(r)+")")

	row := 9
	g.set(1, row, "Money impact", st.subtitle)
	row++
	g.header(row, st.header, "Changes", "Count", "Gross (sum of |impact|)", "Net (signed sum)")
	row++
	t := r.Totals
	g.row(row, money3, "All changes", t.All.Count, t.All.Gross, t.All.Net)
	g.row(row+1, money3, "Unauthorized", t.Unauthorized.Count, t.Unauthorized.Gross, t.Unauthorized.Net)
	g.row(row+2, money3, "Needs review", t.NeedsReview.Count, t.NeedsReview.Gross, t.NeedsReview.Net)
	g.row(row+3, money3, "Estimated (quantity × unit price)", t.Estimated.Count, t.Estimated.Gross, t.Estimated.Net)
	g.row(row+4, []int{st.label, st.integer}, "Impact not computable", t.Unvalued)
	row += 6

	g.set(1, row, "By risk", st.subtitle)
	row++
	g.header(row, st.header, "Risk", "Count", "Gross impact", "Net impact")
	riskFirst := row + 1
	for _, rt := range r.ByRisk {
		row++
		g.row(row, money3, riskLabel(r, rt.Risk), rt.Count, rt.Gross, rt.Net)
	}
	riskLast := row
	row += 2

	g.set(1, row, "By kind", st.subtitle)
	row++
	g.header(row, st.header, "Kind", "Count", "Gross impact", "Net impact")
	for _, kt := range r.ByKind {
		row++
		g.row(row, money3, string(kt.Kind), kt.Count, kt.Gross, kt.Net)
	}
	row += 2

	g.set(1, row, "By status", st.subtitle)
	row++
	g.header(row, st.header, "Status", "Count", "Gross impact", "Net impact")
	for _, s := range r.ByStatus {
		row++
		g.row(row, money3, string(s.Status), s.Count, s.Gross, s.Net)
	}
	row += 2

	g.set(1, row, fmt.Sprintf("Act on these first: the %d largest unauthorized changes", audit.TopItems), st.subtitle)
	row++
	g.header(row, st.header, "Work Request #", "Row", "Source Sheet", "Column", "Money impact", "Risk", "Week ending", "Changed by", "Changed at", "Kind")
	if len(r.Top) == 0 {
		row++
		g.set(1, row, "No unauthorized change in the period.", st.note)
	}
	for _, c := range r.Top {
		row++
		g.set(1, row, c.WorkRequest, st.text)
		label := fmt.Sprintf("Row %d", c.RowNumber)
		g.set(2, row, label, 0)
		if u, ok := linkURL(c.Permalink); ok && g.err == nil {
			ref := g.cell(2, row)
			tip := "Open the row in Smartsheet"
			g.err = f.SetCellHyperLink(SheetDashboard, ref, u, "External", excelize.HyperlinkOpts{Display: &label, Tooltip: &tip})
			if g.err == nil {
				g.err = f.SetCellStyle(SheetDashboard, ref, ref, st.link)
			}
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
			g.set(9, row, serial(*c.Attribution.Time, loc), st.when)
		}
		g.set(10, row, string(c.Kind), 0)
	}
	row += 2

	cv := r.Coverage
	g.set(1, row, "Coverage", st.subtitle)
	row++
	g.header(row, st.header, "Measure", "Value")
	for _, kv := range []struct {
		label string
		v     any
		style int
	}{
		{"Sheets scanned", cv.SheetsScanned, st.integer},
		{"Sheets skipped (unchanged since last scan)", cv.SheetsSkipped, st.integer},
		{"Rows scanned", cv.RowsScanned, st.integer},
		{"Changes", cv.Changes, st.integer},
		{"Changes with a known author", cv.Attributed, st.integer},
		{"Share with a known author", cv.AttributedShare, st.percent},
		{"Changes with an exact time", cv.ExactTime, st.integer},
	} {
		row++
		g.row(row, []int{st.label, kv.style}, kv.label, kv.v)
	}
	for _, s := range cv.BySource {
		row++
		g.row(row, []int{st.label, st.integer}, "Attributed by "+string(s.Source), s.Count)
	}

	if g.err != nil {
		return g.err
	}
	return f.AddChart(SheetDashboard, "G7", &excelize.Chart{
		Type: excelize.Col,
		Series: []excelize.ChartSeries{{
			Name:       absRef(SheetDashboard, 3, riskFirst-1, riskFirst-1),
			Categories: absRef(SheetDashboard, 1, riskFirst, riskLast),
			Values:     absRef(SheetDashboard, 3, riskFirst, riskLast),
			Fill:       excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"C00000"}},
		}},
		Title:     []excelize.RichTextRun{{Text: "Gross money impact by risk"}},
		Legend:    excelize.ChartLegend{Position: "none"},
		Dimension: excelize.ChartDimension{Width: 520, Height: 300},
		YAxis:     excelize.ChartAxis{NumFmt: excelize.ChartNumFmt{CustomNumFmt: `"$"#,##0`}},
	})
}
