package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// The audit sheet is read back by verification (verifySheet): each row's
// cells are read into a buffer (readCells) and printed against the print of
// its ledger entry; a row whose print differs is read into a map (sheetRow)
// and compared field by field (audit.CompareRow) to name what differs. The
// fuzz targets here feed that read-back what a person with edit rights could
// leave in the cells, and what the product writes.

// readBack is one audit-sheet row as verification reads it: whether it is
// blank, the Change ID it names, whether its print matches the entry's, and
// the problems CompareRow names in it.
type readBack struct {
	blank    bool
	changeID string
	printsOK bool
	problems []audit.Problem
}

// readAuditRow reads row of a sheet with cols the way verifySheet does and
// compares it with entry e (which the index holds under its Subject).
func readAuditRow(cols []smartsheet.Column, row *smartsheet.Row, e audit.LedgerEntry) readBack {
	skip := audit.EditableColumns()
	ix := ledgerIndex{entries: map[string]indexed{}}
	ix.add(e, skip)
	titles, pos, titlePos := map[int64]string{}, map[int64]int{}, map[string]int{}
	for i, c := range cols {
		titles[c.ID], pos[c.ID], titlePos[c.Title] = c.Title, i, i
	}
	buf := make([]audit.SheetCell, len(cols))
	cell := func(title string) audit.SheetCell {
		if i, ok := titlePos[title]; ok {
			return buf[i]
		}
		return audit.SheetCell{}
	}
	var rb readBack
	rb.blank = readCells(buf, pos, row)
	rb.changeID = strings.TrimSpace(cell(audit.LogChangeID).Value)
	in := ix.entries[e.Subject]
	rb.printsOK = audit.CellsPrint(ix.layouts[in.layout], in.sealed, cell, skip) == in.print
	rb.problems = audit.CompareRow(e, sheetRow(row, titles), skip, skip)
	return rb
}

// FuzzAuditRowCells reads an audit-sheet row holding arbitrary text in every
// column (as a sheet owner could type it: text, or a number where the text
// is one) against a ledger entry whose sealed values are arbitrary text too,
// as a source cell's text is. Reading must not panic or stall, and the fast
// comparison (prints) must agree with the one that names problems: a row
// whose print matches has nothing CompareRow would name, and a row in which
// CompareRow names something never passes on its print — otherwise an edit
// of the audit log would count as a matched row. A row holding exactly what
// was sealed always matches.
func FuzzAuditRowCells(f *testing.F) {
	sep := "\x1f" // splits the strings into one value per column
	f.Add("WR-1\x1f2026-11-29\x1fCrew A\x1fRow 4\x1fUnit Price\x1f650\x1f5000\x1f4350.00\x1f4350.00", "WR-1\x1f2026-11-29\x1fCrew A\x1fRow 4\x1fUnit Price\x1f650.00\x1f5000\x1f4350\x1f4350", "https://app.smartsheet.com/sheets/x?rowId=4", uint32(1<<7|1<<8), false)
	f.Add("0123\x1f11/29/2026\x1f\x1f\x1f\x1f 1e5\x1f-0\x1f7\x1f.5", "123\x1f2026-11-29\x1f\x1f\x1f\x1f100000\x1f0\x1f7\x1f0.50", "", uint32(1<<5|1<<6), true)
	f.Add("", "", "", uint32(0), false)
	cols, ids := auditColumnsWithIDs()
	f.Fuzz(func(t *testing.T, sealed, cells, link string, numbers uint32, adopted bool) {
		// The sealed entry: the layout with the sealed values, its Change
		// ID the entry's subject (a hex id, as audit.ChangeID makes).
		fields := audit.LogLayout()
		for i, v := range strings.SplitN(sealed, sep, len(fields)) {
			fields[i].Value = v
		}
		for i := range fields {
			switch fields[i].Title {
			case audit.LogSourceRow:
				fields[i].Link = link
			case audit.LogChangeID:
				fields[i].Value = "c0ffee"
			}
		}
		typ := audit.EntryChange
		if adopted {
			typ = audit.EntryAdopted
		}
		e := audit.NextEntry(audit.LedgerEntry{}, typ, "c0ffee", time.Unix(1764547200, 0), fields)

		// The row on the sheet: an arbitrary value in each column (a
		// number where the text is a JSON number and its bit is set), the
		// Change ID cell naming the entry unless it is given.
		row := smartsheet.Row{ID: 9, RowNumber: 2}
		for i, v := range strings.SplitN(cells, sep, len(cols)) {
			if cols[i].Title == audit.LogChangeID && v == "" {
				v = e.Subject
			}
			c := smartsheet.Cell{ColumnID: cols[i].ID, Value: smartsheet.StringValue(v)}
			if n, err := smartsheet.ParseNumberValue(v); err == nil && numbers&(1<<i) != 0 {
				c.Value = n
			}
			if v == "" {
				c.Value = smartsheet.Value{}
			}
			if cols[i].Title == audit.LogSourceRow && link != "" && numbers&(1<<31) == 0 {
				c.Hyperlink = &smartsheet.Hyperlink{URL: link}
			}
			row.Cells = append(row.Cells, c)
		}
		rb := readAuditRow(cols, &row, e)
		if rb.printsOK != (len(rb.problems) == 0) {
			t.Fatalf("row %q against entry %q: print matches = %v, CompareRow = %v; want them to agree", cells, sealed, rb.printsOK, rb.problems)
		}

		// The row exactly as sealed reads back as sealed.
		same := auditRow(ids, e)
		same.ID, same.RowNumber = 9, 2
		if rb := readAuditRow(cols, &same, e); !rb.printsOK || len(rb.problems) > 0 || rb.changeID != e.Subject {
			t.Fatalf("the row of entry %q reads back as change %q, print matches = %v, problems %v; want it to match", sealed, rb.changeID, rb.printsOK, rb.problems)
		}
	})
}

// FuzzAuditRowRoundTrip writes the audit row of a valid change as the
// product does (LogFields, sealed by NextEntry, laid out by auditRow, sent as
// JSON), lets Smartsheet keep it in one of the forms it returns values in,
// reads the sheet back through the client's decoder and verification's
// reading, and wants the row to match its entry: a row the product wrote and
// nobody touched is never reported altered.
func FuzzAuditRowRoundTrip(f *testing.F) {
	f.Add("91234567", "Crew A — Week 48", "Unit Price", "650", "5000", "priya@example.com", int64(435000), int64(435000), int64(1764460800), uint32(4), uint64(0))
	f.Add("WR-0042", "Sheet", "Quantity", "3", "3.5", "Dana Ruiz", int64(-4050), int64(50), int64(1800000000), uint32(12), uint64(1<<8|3<<10|1<<16))
	f.Add("", "", "", "", "", "", int64(0), int64(0), int64(0), uint32(0), uint64(1<<9|1<<12|2<<14))
	f.Add("1e5", " 0123 ", "+7.", "-0", "1e300", "x", int64(1), int64(-1), int64(-1), uint32(1), uint64(0xffffffffffffffff))
	cols, ids := auditColumnsWithIDs()
	f.Fuzz(func(t *testing.T, wr, sheetName, column, oldV, newV, who string, impact, delta, at int64, rowNumber uint32, sel uint64) {
		c, loc := fuzzChange(wr, sheetName, column, oldV, newV, who, impact, delta, at, rowNumber, sel)
		e := audit.NextEntry(audit.LedgerEntry{Seq: 41, Hash: strings.Repeat("ab", 32)}, audit.EntryChange, c.ChangeID, c.DetectedAt, audit.LogFields(c, loc))
		row := keptBySmartsheet(t, cols, auditRow(ids, e), byte(sel>>40))
		rb := readAuditRow(cols, &row, e)
		if rb.blank || rb.changeID != c.ChangeID || !rb.printsOK || len(rb.problems) > 0 {
			t.Fatalf("the audit row of %+v reads back as change %q (blank %v), print matches = %v, problems %v; want it to match its entry",
				c, rb.changeID, rb.blank, rb.printsOK, rb.problems)
		}
	})
}

// fuzzChange builds a change the detector could have made from fuzzed
// parts: text as a sheet holds it (valid UTF-8, at most Smartsheet's 4,000
// characters a cell), amounts in cents, times from 2000 to 2199, and the
// enums, the attribution's form and the audit timezone picked by sel's bits.
func fuzzChange(wr, sheetName, column, oldV, newV, who string, impact, delta, at int64, rowNumber uint32, sel uint64) (audit.Change, *time.Location) {
	text := func(s string) string {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if utf8.RuneCountInString(s) > 4000 {
			s = string([]rune(s)[:4000])
		}
		return s
	}
	bits := func(shift, n uint) uint64 { return (sel >> shift) & (1<<n - 1) }
	kinds := []audit.Kind{audit.KindValueChanged, audit.KindRowDeleted, audit.KindRowAddedLate, audit.KindWeekMoved}
	statuses := []audit.Status{audit.StatusUnauthorized, audit.StatusAuthorized, audit.StatusNeedsReview, ""}
	risks := []audit.Risk{audit.RiskLow, audit.RiskMedium, audit.RiskHigh, audit.RiskUnknown}
	sources := []audit.AttributionSource{audit.SourceWebhook, audit.SourceWriterInfo, audit.SourceCellHistory, audit.SourceUnknown}

	const start, span = 946684800, 200 * 365 * 24 * 3600 // 2000-01-01, 200 years
	detected := time.Unix(start+(at%span+span)%span, 0).UTC()
	// The audit timezone: whole quarter hours from −12:00 to +14:00.
	loc := time.FixedZone("audit", (int(bits(0, 7))%105-48)*15*60)
	c := audit.Change{
		RunID:       detected.Format("20060102T150405Z") + "-" + strconv.FormatUint(sel>>48, 16),
		Kind:        kinds[bits(7, 2)],
		SheetID:     int64(bits(24, 16)) + 1,
		SheetName:   text(sheetName),
		RowID:       int64(rowNumber) + 1e6,
		RowNumber:   int(rowNumber % 100000),
		WorkRequest: text(wr),
		Column:      text(column),
		OldValue:    text(oldV),
		NewValue:    text(newV),
		Impact:      decimal.New(impact, -2),
		Unvalued:    bits(9, 1) == 1,
		Risk:        risks[bits(10, 2)],
		Status:      statuses[bits(12, 2)],
		DetectedAt:  detected,
	}
	if bits(14, 2) != 0 {
		c.WeekEnding = audit.WeekEndingOf(detected.AddDate(0, 0, -7*int(bits(14, 2))))
	}
	if bits(16, 1) == 1 {
		d := decimal.New(delta, -2)
		c.Delta = &d
	}
	if bits(17, 1) == 1 {
		c.Permalink = "https://app.smartsheet.com/sheets/x?rowId=" + strconv.FormatInt(c.RowID, 10)
	}
	if bits(18, 1) == 1 {
		c.Reverses = strings.Repeat("5e", 16)
	}
	a := audit.Attribution{Source: sources[bits(19, 2)]}
	if bits(21, 1) == 1 {
		a.User = text(who)
	} else {
		a.Name = text(who)
	}
	switch bits(22, 2) {
	case 0: // the exact time
		when := detected.Add(-time.Duration(at&0xffff) * time.Second)
		a.Time = &when
	case 1: // a window since the first scan
		a.WindowEnd = detected
	case 2: // a window between two scans
		a.WindowStart, a.WindowEnd = detected.Add(-time.Hour), detected
	}
	c.Attribution = a
	c.ChangeID = audit.ChangeID(c.SheetID, c.RowID, 0, c.Column, c.Kind, c.OldValue, c.NewValue)
	return c, loc
}

// keptBySmartsheet sends row as the client does, keeps each cell in one of
// the forms form picks (one bit per column), and returns the row as the
// client decodes it from a GET of the sheet. Smartsheet returns a value as
// written, or — the forms verification allows for — trimmed, and with a
// text in a TEXT_NUMBER column that is a plain number kept as a number,
// written shortest ("4350.00" → 4350) or as a float ("1e+06").
func keptBySmartsheet(t *testing.T, cols []smartsheet.Column, row smartsheet.Row, form byte) smartsheet.Row {
	t.Helper()
	body, err := json.Marshal([]smartsheet.Row{row})
	if err != nil {
		t.Fatalf("encode the audit row: %v", err)
	}
	var sent []smartsheet.Row
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatalf("decode the audit row sent %s: %v", body, err)
	}
	typ := map[int64]string{}
	for _, c := range cols {
		typ[c.ID] = c.Type
	}
	kept := smartsheet.Row{ID: 9001, RowNumber: 1}
	for i, c := range sent[0].Cells {
		c.Value = keptValue(c.Value, typ[c.ColumnID], (form>>(i%8))&1 == 1, form&0x80 != 0)
		if !c.Value.IsZero() || c.Hyperlink != nil {
			kept.Cells = append(kept.Cells, c)
		}
	}
	sheet := smartsheet.Sheet{ID: 7, Name: "Audit Log", Columns: cols, Rows: []smartsheet.Row{kept}}
	answer, err := json.Marshal(sheet)
	if err != nil {
		t.Fatalf("encode the sheet: %v", err)
	}
	var got smartsheet.Sheet
	if err := smartsheet.DecodeSheet(answer, &got); err != nil {
		t.Fatalf("DecodeSheet(%s): %v", answer, err)
	}
	return got.Rows[0]
}

// keptValue is v as Smartsheet keeps it in a column of type typ: as written
// unless convert, else trimmed and, in a TEXT_NUMBER column, a plain number
// of at most 15 significant digits (what a float64 holds exactly) as a
// number, written shortest or, with float, as strconv writes a float64.
func keptValue(v smartsheet.Value, typ string, convert, float bool) smartsheet.Value {
	if !convert {
		return v
	}
	s := strings.TrimSpace(v.Text())
	if s == "" {
		return smartsheet.Value{}
	}
	if typ != smartsheet.TypeTextNumber || !plainNumber(s) {
		return smartsheet.StringValue(s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil || len(strings.Trim(d.Coefficient().String(), "-0")) > 15 {
		return smartsheet.StringValue(s)
	}
	out := d.String()
	if float {
		x, _ := d.Float64()
		out = strconv.FormatFloat(x, 'g', -1, 64)
	}
	n, err := smartsheet.ParseNumberValue(out)
	if err != nil {
		panic(fmt.Sprintf("keptValue(%q): %v", s, err))
	}
	return n
}

// plainNumber reports a number written with digits, an optional sign and
// an optional fraction: "4350", "-40.50", "0123".
func plainNumber(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart+frac == "" {
		return false
	}
	for _, r := range intPart + frac {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
