package xlsx

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// DetailsColumns are the Change Details headers, in order.
var DetailsColumns = []string{
	"Work Request #", "Week Ending", "Source Sheet", "Row", "Column", "Old", "New", "Delta",
	"Money Impact", "Valuation", "Risk", "Status", "Unauthorized", "Kind", "Changed By",
	"Changed At", "Attribution", "Note", "Change ID",
}

// Columns of Change Details (1-based) that tests and formats refer to.
const (
	colRow    = 4
	colImpact = 9
	colRisk   = 11
	colAt     = 16
)

// detailsWidths are the columns' widths; Unauthorized, Kind and Changed By fit
// their header, ROW_ADDED_LATE and a name with its e-mail on two lines.
var detailsWidths = []float64{16, 12, 24, 10, 20, 16, 16, 10, 14, 13, 10, 14, 14, 17, 34, 17, 34, 40, 34}

// detailsWraps marks the columns of free text that wrap when too long for
// their width; codes, dates and ids keep one line.
var detailsWraps = []bool{
	false, false, true, false, true, true, true, false,
	false, true, false, false, false, false, true,
	false, true, true, false,
}

// lineHeight is one line of the default 11-point font, in points, and
// maxRowHeight the tallest row Excel allows.
const (
	lineHeight   = 15
	maxRowHeight = 409
)

// textLines is how many lines s takes wrapped in a column width wide. A
// column's width counts the default font's digits; e-mail addresses and
// capitals run wider and lines break at spaces, so it counts 0.85 width
// characters a line, and a line more at each newline.
func textLines(s string, width float64) int {
	per := max(int(width*0.85), 1)
	lines := 0
	for {
		para, rest, more := strings.Cut(s, "\n")
		lines += max((utf8.RuneCountInString(para)+per-1)/per, 1)
		if !more {
			return lines
		}
		s = rest
	}
}

// writeDetails streams Change Details, one row per change: the sheet can hold
// 100,000 rows, which normal-mode cells would keep in memory all at once.
func writeDetails(f *excelize.File, st *styles, r *audit.Report) error {
	sw, err := f.NewStreamWriter(SheetDetails)
	if err != nil {
		return err
	}
	if err := startDetails(sw, st); err != nil {
		return err
	}
	d := newDetailsRow(st, r.Location)
	for n, c := range r.Changes {
		ref, err := excelize.CoordinatesToCellName(1, n+2)
		if err != nil {
			return err
		}
		vals := d.fill(c)
		var opts []excelize.RowOpts
		if d.lines > 1 {
			// A streamed row keeps the height it is given: without one, wrapped
			// text would overlap the next row on screen and be cut in print.
			opts = append(opts, excelize.RowOpts{Height: min(float64(d.lines*lineHeight), maxRowHeight)})
		}
		if err := sw.SetRow(ref, vals, opts...); err != nil {
			return fmt.Errorf("row %d: %w", n+2, err)
		}
	}
	return finishDetails(f, sw, st, len(r.Changes)+1)
}

// startDetails writes what the stream writer needs before the first row:
// the frozen header pane, column widths, and the header row.
func startDetails(sw *excelize.StreamWriter, st *styles) error {
	if err := sw.SetPanes(&excelize.Panes{
		Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}},
	}); err != nil {
		return err
	}
	for i, w := range detailsWidths {
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return err
		}
	}
	hdr := make([]any, len(DetailsColumns))
	for i, h := range DetailsColumns {
		hdr[i] = excelize.Cell{StyleID: st.header, Value: h}
	}
	return sw.SetRow("A1", hdr, excelize.RowOpts{Height: 30})
}

// detailsRow is one Change Details row, its cells reused for every change:
// SetRow encodes a row as it is given, so one set of cells serves the whole
// sheet instead of one allocation per cell per row.
type detailsRow struct {
	st    *styles
	loc   *time.Location
	vals  []any // nil for an empty cell, else a pointer into cells
	cells []excelize.Cell
	lines int // the most lines a cell of the row wraps to
}

func newDetailsRow(st *styles, loc *time.Location) *detailsRow {
	return &detailsRow{
		st: st, loc: loc,
		vals:  make([]any, len(DetailsColumns)),
		cells: make([]excelize.Cell, len(DetailsColumns)),
	}
}

// text sets column i (0-based) to s, leaving it empty when s is. Text wider
// than its column wraps, so a long note or name prints whole.
func (d *detailsRow) text(i int, s string) {
	if s == "" {
		d.vals[i] = nil
		return
	}
	style := d.st.text
	if detailsWraps[i] {
		if n := textLines(s, detailsWidths[i]); n > 1 {
			style = d.st.textWrap
			d.lines = max(d.lines, n)
		}
	}
	d.cells[i] = excelize.Cell{StyleID: style, Value: s}
	d.vals[i] = &d.cells[i]
}

func (d *detailsRow) num(i int, v float64, style int) {
	d.cells[i] = excelize.Cell{StyleID: style, Value: v}
	d.vals[i] = &d.cells[i]
}

// fill sets the row to c, in DetailsColumns' order, and returns its values.
func (d *detailsRow) fill(c *audit.Change) []any {
	st := d.st
	clear(d.cells)
	d.lines = 1
	d.text(0, c.WorkRequest)
	d.vals[1] = nil
	if !c.WeekEnding.IsZero() {
		d.num(1, dateSerial(c.WeekEnding), st.date)
	}
	d.text(2, c.SheetName)
	label := fmt.Sprintf("Row %d", c.RowNumber)
	if u, ok := linkURL(c.Permalink); ok {
		d.cells[3] = excelize.Cell{StyleID: st.link, Formula: hyperlinkFormula(u, label), Value: label}
		d.vals[3] = &d.cells[3]
	} else {
		d.text(3, label)
	}
	d.text(4, c.Column)
	d.text(5, c.OldValue)
	d.text(6, c.NewValue)
	d.vals[7] = nil
	if c.Delta != nil {
		v, _ := c.Delta.Float64()
		d.num(7, v, 0)
	}
	d.vals[8] = nil
	if !c.Unvalued {
		d.num(8, money(c.Impact), st.money)
	}
	d.text(9, valuation(c))
	d.text(10, string(c.Risk))
	d.text(11, string(c.Status))
	d.cells[12] = excelize.Cell{StyleID: st.boolean, Value: c.Unauthorized()} // TRUE/FALSE: filterable, cheaper than text
	d.vals[12] = &d.cells[12]
	d.text(13, string(c.Kind))
	d.text(14, audit.Who(c.Attribution))
	d.vals[15] = nil
	if c.Attribution.Time != nil {
		d.num(15, serial(*c.Attribution.Time, d.loc), st.when)
	}
	d.text(16, attributionText(c.Attribution, d.loc))
	d.text(17, c.Note)
	d.text(18, c.ChangeID)
	return d.vals
}

// finishDetails colours the Risk column, makes rows 1 to last a table and
// flushes the stream.
func finishDetails(f *excelize.File, sw *excelize.StreamWriter, st *styles, last int) error {
	if last < 2 {
		last = 2 // a table needs a data row
	}
	lastCol, _ := excelize.ColumnNumberToName(len(DetailsColumns))
	riskCol, _ := excelize.ColumnNumberToName(colRisk)
	riskRange := fmt.Sprintf("%s2:%s%d", riskCol, riskCol, last)
	var cf []excelize.ConditionalFormatOptions
	for _, risk := range []audit.Risk{audit.RiskHigh, audit.RiskMedium, audit.RiskLow, audit.RiskUnknown} {
		style := st.riskFill[risk]
		cf = append(cf, excelize.ConditionalFormatOptions{
			Type: "cell", Criteria: "==", Value: `"` + string(risk) + `"`, Format: &style,
		})
	}
	// The stream writer writes the worksheet's conditional formats on Flush.
	if err := f.SetConditionalFormat(SheetDetails, riskRange, cf); err != nil {
		return fmt.Errorf("conditional format: %w", err)
	}
	if err := sw.AddTable(&excelize.Table{
		Range:     fmt.Sprintf("A1:%s%d", lastCol, last),
		Name:      DetailsTable,
		StyleName: "TableStyleMedium2",
	}); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return sw.Flush()
}
