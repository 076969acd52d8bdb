package xlsx

import (
	"cmp"
	"fmt"

	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// writeExceptions writes Exceptions: the money of unauthorized changes gross,
// net and still open; the open exceptions by age, disposition and reviewer;
// and the list of open ones, oldest first, with their links.
func writeExceptions(f *excelize.File, st *styles, r *audit.Report) error {
	ex := r.Exceptions
	g := streamGrid(f, SheetExceptions)
	g.widths(34, 12, 14, 15, 16, 22, 32, 14, 16, 30, 32)
	g.set(1, 1, "Exceptions", st.title)
	basis := "Dispositions as the audit sheet showed them when this run verified it; set them there (Reviewer, Disposition, Resolution Note)."
	if !ex.Reviewed {
		basis = "The audit sheet was not read for this workbook: each exception shows the disposition the product gave it (Open; Reversed when the value was put back)."
	}
	g.set(1, 2, fmt.Sprintf("Unauthorized changes and changes to review of the last %d weeks. Gross counts the money moved by each (a reversal not again), net what it adds to the bill.", audit.TrendWeeks), st.note)
	g.set(1, 3, basis, st.note)

	row := writeMeasures(g, st, 4, []measure{
		{"Unauthorized changes", ex.Count, st.integer},
		{"Gross impact (Σ|impact|)", ex.Gross, st.money},
		{"Net impact (a reversal nets out)", ex.Net, st.money},
		{"Still open: exceptions", ex.OpenCount, st.integer},
		{"Still open: net impact", ex.Open, st.moneyBold},
	})

	row = writeExceptionTotals(g, st, row+2, "Open exceptions by age (days since detected)", "Age", ex.ByAge)
	row = writeExceptionTotals(g, st, row+2, "All exceptions by disposition", "Disposition", ex.ByDisposition)
	reviewers := make([]audit.ExceptionTotal, len(ex.ByReviewer))
	for i, t := range ex.ByReviewer {
		reviewers[i] = t
		if t.Label == "" {
			reviewers[i].Label = "(no reviewer)"
		}
	}
	row = writeExceptionTotals(g, st, row+2, "Open exceptions by reviewer", "Reviewer", reviewers)
	writeOpenList(g, st, r, row+2)
	return g.close()
}

// printLandscape sets the sheet to print landscape, fitted to wide pages
// across and tall pages down (0: as many as it needs).
func printLandscape(g *grid, wide, tall int) {
	if g.err != nil {
		return
	}
	landscape := "landscape"
	g.err = g.f.SetPageLayout(g.sheet, &excelize.PageLayoutOptions{Orientation: &landscape, FitToWidth: &wide, FitToHeight: &tall})
	if g.err == nil {
		fit := true
		g.err = g.f.SetSheetProps(g.sheet, &excelize.SheetPropsOptions{FitToPage: &fit})
	}
}

func writeExceptionTotals(g *grid, st *styles, row int, title, first string, ts []audit.ExceptionTotal) int {
	g.set(1, row, title, st.subtitle)
	row++
	g.header(row, st.header, first, "Exceptions", "Net impact", "Oldest (days)")
	if len(ts) == 0 {
		row++
		g.set(1, row, "None.", st.note)
	}
	for _, t := range ts {
		row++
		g.row(row, []int{st.text, st.integer, st.money, st.integer}, t.Label, t.Count, t.Impact, t.OldestDays)
	}
	return row
}

func writeOpenList(g *grid, st *styles, r *audit.Report, row int) {
	ex := r.Exceptions
	g.set(1, row, fmt.Sprintf("Open exceptions, oldest first (%d)", len(ex.List)), st.subtitle)
	row++
	g.header(row, st.header, "Work Request #", "Week ending", "Detected", "Days open", "Days after close",
		"Sheet", "Column: old → new", "Net impact", "Disposition", "Reviewer", "Changed by")
	if len(ex.List) == 0 {
		row++
		g.set(1, row, "No open exception.", st.note)
		return
	}
	for _, e := range ex.List {
		row++
		c := e.Change
		disp := e.Review.Disposition
		if disp == "" {
			disp = audit.DispositionOpen
		}
		change := fmt.Sprintf("%s: %s → %s", c.Column, c.OldValue, c.NewValue)
		if c.Column == "" {
			change = string(c.Kind)
		}
		g.row(row, []int{st.text, st.date, st.date, st.integer, st.integer, st.text, st.text, st.money, st.text, st.text, st.text},
			c.WorkRequest, dateSerial(c.WeekEnding), serial(c.DetectedAt, r.Location), e.AgeDays, e.DaysAfterClose,
			c.SheetName, change, c.Impact, disp, e.Review.Reviewer, cmp.Or(c.Attribution.User, c.Attribution.Name, "unknown"))
		if u, ok := linkURL(c.Permalink); ok {
			g.link(1, row, u, c.WorkRequest, st.link)
		}
	}
}
