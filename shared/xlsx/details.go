package xlsx

import (
	"fmt"

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

var detailsWidths = []float64{16, 12, 24, 10, 20, 16, 16, 10, 14, 13, 10, 14, 12, 15, 28, 17, 34, 40, 34}

func writeDetails(f *excelize.File, st *styles, r *audit.Report) error {
	sw, err := f.NewStreamWriter(SheetDetails)
	if err != nil {
		return err
	}
	// Panes and widths must be set before the first row.
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
	if err := sw.SetRow("A1", hdr, excelize.RowOpts{Height: 30}); err != nil {
		return err
	}

	loc := r.Location
	vals := make([]any, len(DetailsColumns))
	cells := make([]excelize.Cell, len(DetailsColumns))
	text := func(i int, s string) {
		if s == "" {
			vals[i] = nil
			return
		}
		cells[i] = excelize.Cell{StyleID: st.text, Value: s}
		vals[i] = &cells[i]
	}
	num := func(i int, v float64, style int) {
		cells[i] = excelize.Cell{StyleID: style, Value: v}
		vals[i] = &cells[i]
	}
	for n, c := range r.Changes {
		clear(cells)
		text(0, c.WorkRequest)
		vals[1] = nil
		if !c.WeekEnding.IsZero() {
			num(1, dateSerial(c.WeekEnding), st.date)
		}
		text(2, c.SheetName)
		label := fmt.Sprintf("Row %d", c.RowNumber)
		if u, ok := linkURL(c.Permalink); ok {
			cells[3] = excelize.Cell{StyleID: st.link, Formula: hyperlinkFormula(u, label), Value: label}
			vals[3] = &cells[3]
		} else {
			text(3, label)
		}
		text(4, c.Column)
		text(5, c.OldValue)
		text(6, c.NewValue)
		vals[7] = nil
		if c.Delta != nil {
			d, _ := c.Delta.Float64()
			num(7, d, 0)
		}
		vals[8] = nil
		if !c.Unvalued {
			num(8, money(c.Impact), st.money)
		}
		text(9, valuation(c))
		text(10, string(c.Risk))
		text(11, string(c.Status))
		cells[12] = excelize.Cell{Value: c.Unauthorized()} // TRUE/FALSE: filterable, cheaper than text
		vals[12] = &cells[12]
		text(13, string(c.Kind))
		text(14, audit.Who(c.Attribution))
		vals[15] = nil
		if c.Attribution.Time != nil {
			num(15, serial(*c.Attribution.Time, loc), st.when)
		}
		text(16, attributionText(c.Attribution, loc))
		text(17, c.Note)
		text(18, c.ChangeID)
		ref, err := excelize.CoordinatesToCellName(1, n+2)
		if err != nil {
			return err
		}
		if err := sw.SetRow(ref, vals); err != nil {
			return fmt.Errorf("row %d: %w", n+2, err)
		}
	}

	last := len(r.Changes) + 1
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
