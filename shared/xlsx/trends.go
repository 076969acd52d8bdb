package xlsx

import (
	"fmt"

	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// TrendTable is the name of the Excel table holding the weekly trend.
const TrendTable = "WeeklyTrend"

// trendHeaderRow is the header row of the weekly trend table, under its
// title; the trend charts refer to the table from there.
const trendHeaderRow = 5

// heatmapRow is the earliest row of the weekday × hour table.
const heatmapRow = 36

var weekdays = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

// writeTrends writes Trends & Analytics: the weekly trend table, the
// projection, the top editors, the weekday × hour heat map, and two charts of
// the weekly trend beside the tables.
func writeTrends(f *excelize.File, st *styles, r *audit.Report) error {
	g := &grid{f: f, sheet: SheetTrends}
	g.widths(30, 11, 13, 15, 15, 17, 17, 9, 10, 9, 11)
	g.set(1, 1, "Trends & Analytics", st.title)
	g.set(1, 2, fmt.Sprintf("Weeks are Monday to Sunday in %s; a change counts in the week it was made (its attribution time when known, else when it was detected). Gross = sum of |impact|; net = signed sum.", tzName(r)), st.note)

	last := writeWeeks(g, st, r, trendHeaderRow-1)
	row := writeProjection(g, st, r, last+2)
	row = writeTopEditors(g, st, r, row+2)
	writeHeatmap(g, st, r, max(row+2, heatmapRow)) // below the charts, which sit beside the tables above
	if g.err != nil || len(r.Weeks) == 0 {
		return g.err
	}
	return addTrendCharts(f, trendHeaderRow, last)
}

// writeWeeks writes the weekly trend from row on, its header and weeks an
// Excel table, and returns the last row written.
func writeWeeks(g *grid, st *styles, r *audit.Report, row int) int {
	g.set(1, row, fmt.Sprintf("Last %d weeks", len(r.Weeks)), st.subtitle)
	row++
	first := row
	g.header(row, st.header, "Week ending", "Changes", "Unauthorized", "Gross impact", "Net impact",
		"Unauthorized gross", "Unauthorized net", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
	for _, w := range r.Weeks {
		row++
		g.row(row, []int{st.date, st.integer, st.integer, st.money, st.money, st.money, st.money, st.integer, st.integer, st.integer, st.integer},
			dateSerial(w.WeekEnding), w.All.Count, w.Unauthorized.Count, w.All.Gross, w.All.Net,
			w.Unauthorized.Gross, w.Unauthorized.Net, w.High, w.Medium, w.Low, w.Unknown)
	}
	if g.err == nil && len(r.Weeks) > 0 {
		g.err = g.f.AddTable(SheetTrends, &excelize.Table{
			Range: fmt.Sprintf("A%d:K%d", first, row), Name: TrendTable, StyleName: "TableStyleLight9",
		})
	}
	return row
}

// writeProjection writes the next week's projection, or why there is none,
// from row on and returns the last row written.
func writeProjection(g *grid, st *styles, r *audit.Report, row int) int {
	g.set(1, row, "Projection", st.subtitle)
	row++
	if p := r.Projection; p != nil {
		g.row(row, []int{st.label, st.date, st.moneyBold}, "Linear projection for week ending", dateSerial(p.WeekEnding), p.Value)
		row++
		g.set(1, row, p.Label, st.note)
	} else {
		g.set(1, row, fmt.Sprintf("No projection: fewer than %d of the last %d weeks have changes.", audit.MinProjectionWeeks, len(r.Weeks)), st.note)
	}
	return row
}

// writeTopEditors writes the editors of closed weeks from row on and returns
// the last row written.
func writeTopEditors(g *grid, st *styles, r *audit.Report, row int) int {
	g.set(1, row, fmt.Sprintf("Top editors of closed weeks, last %d weeks (unauthorized changes)", len(r.Weeks)), st.subtitle)
	row++
	g.header(row, st.header, "User", "Changes", "Gross impact", "Net impact")
	if len(r.TopEditors) == 0 {
		row++
		g.set(1, row, "No unauthorized change in the period.", st.note)
	}
	for _, e := range r.TopEditors {
		row++
		g.row(row, []int{st.text, st.integer, st.money, st.money}, e.User, e.Count, e.Gross, e.Net)
	}
	return row
}

// writeHeatmap writes the weekday × hour counts from row on, coloured by a
// two-colour scale.
func writeHeatmap(g *grid, st *styles, r *audit.Report, row int) {
	g.set(1, row, fmt.Sprintf("Changes by weekday and hour, last %d weeks (%s, changes with a known time)", len(r.Weeks), tzName(r)), st.subtitle)
	row++
	hdr := []any{"Weekday"}
	for h := range 24 {
		hdr = append(hdr, fmt.Sprintf("%02d", h))
	}
	hdr = append(hdr, "Total")
	for i, h := range hdr {
		g.set(i+1, row, h, st.header)
	}
	heatFirst := row + 1
	for d, name := range weekdays {
		row++
		g.set(1, row, name, st.label)
		total := 0
		for h := range 24 {
			n := r.Heatmap[d][h]
			total += n
			g.set(h+2, row, n, st.integer)
		}
		g.set(26, row, total, st.label)
	}
	heatLast := row
	row++
	g.set(1, row, fmt.Sprintf("%d changes without a known time are not shown.", r.Untimed), st.note)
	if g.err == nil {
		g.err = g.f.SetConditionalFormat(SheetTrends, fmt.Sprintf("B%d:Y%d", heatFirst, heatLast), []excelize.ConditionalFormatOptions{{
			Type: "2_color_scale", Criteria: "=", MinType: "min", MaxType: "max", MinColor: "#FFFFFF", MaxColor: "#F8696B",
		}})
	}
}

// addTrendCharts charts the trend table (header row first, weeks to last):
// changes and unauthorized changes per week, and the unauthorized gross.
func addTrendCharts(f *excelize.File, first, last int) error {
	cats := absRef(SheetTrends, 1, first+1, last)
	if err := f.AddChart(SheetTrends, "M4", &excelize.Chart{
		Type: excelize.Line,
		Series: []excelize.ChartSeries{
			{Name: absRef(SheetTrends, 2, first, first), Categories: cats, Values: absRef(SheetTrends, 2, first+1, last)},
			{Name: absRef(SheetTrends, 3, first, first), Categories: cats, Values: absRef(SheetTrends, 3, first+1, last)},
		},
		Title:     []excelize.RichTextRun{{Text: "Changes per week"}},
		Legend:    excelize.ChartLegend{Position: "bottom"},
		Dimension: excelize.ChartDimension{Width: 560, Height: 280},
		PlotArea:  excelize.ChartPlotArea{ShowVal: true},
		XAxis:     weekAxis(),
		YAxis:     readableAxis(excelize.ChartNumFmt{CustomNumFmt: "0"}),
	}); err != nil {
		return fmt.Errorf("line chart: %w", err)
	}
	return f.AddChart(SheetTrends, "M20", &excelize.Chart{
		Type: excelize.Col,
		Series: []excelize.ChartSeries{{
			Name: absRef(SheetTrends, 6, first, first), Categories: cats, Values: absRef(SheetTrends, 6, first+1, last),
			Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"C00000"}},
		}},
		Title:     []excelize.RichTextRun{{Text: "Unauthorized gross impact per week"}},
		Legend:    excelize.ChartLegend{Position: "none"},
		Dimension: excelize.ChartDimension{Width: 560, Height: 280},
		PlotArea:  excelize.ChartPlotArea{ShowVal: true, NumFmt: excelize.ChartNumFmt{CustomNumFmt: `"$"#,##0`}},
		XAxis:     weekAxis(),
		YAxis:     readableAxis(excelize.ChartNumFmt{CustomNumFmt: `"$"#,##0`}),
	})
}

// weekAxis is the trend charts' category axis: the weeks' ending dates as
// dates, slanted so twelve of them do not overlap.
func weekAxis() excelize.ChartAxis {
	a := readableAxis(excelize.ChartNumFmt{CustomNumFmt: "mmm d"})
	a.MajorGridLines = false
	a.Alignment = excelize.Alignment{TextRotation: -45}
	return a
}
