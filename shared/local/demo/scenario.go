// Package demo is the scripted scenario of `make demo` and of the end-to-end
// tests: generated billing sheets in the simulator, a baseline, then a set of
// edits by named users that the audit must find — and nothing else.
package demo

import (
	"errors"
	"fmt"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// The people of the scenario.
var (
	Kim        = smartsheet.User{Name: "Kim Lee", Email: "kim.lee@fieldops.example.com"}
	Raj        = smartsheet.User{Name: "Raj Patel", Email: "raj.patel@fieldops.example.com"}
	Jesse      = smartsheet.User{Name: "Jesse Ramirez", Email: "jramirez@crews.example.com"}
	Dana       = smartsheet.User{Name: "Dana Whitfield", Email: "dwhitfield@crews.example.com"}
	Automation = smartsheet.User{Name: "Automation", Email: "automation@smartsheet.com"}
)

// Size of the generated data.
type Size struct{ Sheets, Rows, Weeks int }

// DefaultSize is the demo's: 3 sheets × 2,000 rows over 6 weeks.
var DefaultSize = Size{Sheets: 3, Rows: 2000, Weeks: 6}

// Setup is the generated data plus what the scenario prepared before the
// baseline.
type Setup struct {
	Gen          smartsim.Generated
	Columns      map[int64]map[string]int64 // sheet → title → column id
	ClosedWeek   time.Time                  // the last week that has ended
	CurrentWeek  time.Time                  // the open week
	blankWeekRow int64                      // sheet C row whose week-ending cell is blank
}

// Prepare fills the simulator with billing sheets whose weeks end with the
// current one. Crew C leaves "Weekly Reference Logged Date" blank on one
// closed-week row, so its week comes from its Snapshot Date.
func Prepare(srv *smartsim.Server, size Size) (*Setup, error) {
	now := srv.Now().UTC()
	current := sundayOnOrAfter(now)
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: size.Sheets, Rows: size.Rows, Weeks: size.Weeks, Seed: 7, EndWeek: current})
	if err != nil {
		return nil, fmt.Errorf("generate sheets: %w", err)
	}
	if len(gen.SheetIDs) < 3 {
		return nil, errors.New("the scenario needs at least 3 sheets")
	}
	s := &Setup{Gen: gen, Columns: map[int64]map[string]int64{}, ClosedWeek: current.AddDate(0, 0, -7), CurrentWeek: current}
	for _, id := range gen.SheetIDs {
		sh, err := srv.Sheet(id)
		if err != nil {
			return nil, err
		}
		cols := map[string]int64{}
		for _, c := range sh.Columns {
			cols[c.Title] = c.ID
		}
		s.Columns[id] = cols
	}
	c := gen.SheetIDs[2]
	row, err := s.pick(srv, c, s.ClosedWeek, 5, nil)
	if err != nil {
		return nil, err
	}
	s.blankWeekRow = row.ID
	_, err = srv.SetCell(smartsim.Edit{User: Jesse, At: now.Add(-48 * time.Hour)}, c, row.ID, s.Columns[c][smartsim.ColWeekEnding], smartsheet.StringValue(""))
	if err != nil {
		return nil, fmt.Errorf("blank week ending: %w", err)
	}
	return s, nil
}

func sundayOnOrAfter(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, (7-int(d.Weekday()))%7)
}

// Expected is one change the audit must find.
type Expected struct {
	Label       string
	Kind        string
	SheetID     int64
	RowID       int64
	Column      string // "" for row changes
	Old, New    string
	Impact      decimal.Decimal
	Unvalued    bool
	Risk        string
	Status      string // UNAUTHORIZED | AUTHORIZED | NEEDS_REVIEW
	User        string // email, "" when unknown
	Attribution string
}

// Script applies the scenario's edits at the simulator's current time (each
// a minute apart) and returns the changes they must produce. Thresholds are
// the defaults (HIGH > 1000, MEDIUM > 100).
func (s *Setup) Script(srv *smartsim.Server) ([]Expected, error) {
	a, b, c := s.Gen.SheetIDs[0], s.Gen.SheetIDs[1], s.Gen.SheetIDs[2]
	used := map[int64]bool{s.blankWeekRow: true}
	var out []Expected
	step := 0
	at := func(u smartsheet.User) smartsim.Edit {
		step++
		return smartsim.Edit{User: u, At: srv.Now().Add(time.Duration(step) * time.Minute)}
	}
	set := func(e smartsim.Edit, sheet, row int64, title string, v smartsheet.Value) error {
		_, err := srv.SetCell(e, sheet, row, s.Columns[sheet][title], v)
		if err != nil {
			return fmt.Errorf("edit %s of row %d: %w", title, row, err)
		}
		return nil
	}

	// 1. A foreman bumps a closed-week quantity on an expensive unit: HIGH.
	r, err := s.pick(srv, a, s.ClosedWeek, 0, func(q, p decimal.Decimal) bool {
		return p.Div(q).GreaterThanOrEqual(decimal.NewFromInt(600)) && used != nil
	})
	if err != nil {
		return nil, err
	}
	used[r.ID] = true
	q, p := r.qty, r.price
	if err := set(at(Jesse), a, r.ID, smartsim.ColQuantity, smartsheet.IntValue(q.IntPart()+2)); err != nil {
		return nil, err
	}
	imp := p.Div(q).Mul(decimal.NewFromInt(2))
	out = append(out, Expected{Label: "closed-week quantity bump", Kind: "VALUE_CHANGED", SheetID: a, RowID: r.ID, Column: smartsim.ColQuantity,
		Old: q.String(), New: q.Add(decimal.NewFromInt(2)).String(), Impact: imp, Risk: risk(imp), Status: "UNAUTHORIZED", User: Jesse.Email, Attribution: "writer-info"})

	// 2. A clerk retypes a closed-week price, +250.00: MEDIUM.
	if r, err = s.pickUnused(srv, a, s.ClosedWeek, used); err != nil {
		return nil, err
	}
	np := r.price.Add(decimal.NewFromInt(250))
	if err := set(at(Kim), a, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(np.StringFixed(2))); err != nil {
		return nil, err
	}
	out = append(out, Expected{Label: "closed-week price +250", Kind: "VALUE_CHANGED", SheetID: a, RowID: r.ID, Column: smartsim.ColTotalPrice,
		Old: r.priceRaw, New: np.StringFixed(2), Impact: decimal.NewFromInt(250), Risk: "MEDIUM", Status: "UNAUTHORIZED", User: Kim.Email, Attribution: "writer-info"})

	// 3. A closed-week price cut by 40.00: LOW, still unauthorized.
	if r, err = s.pickUnused(srv, b, s.ClosedWeek, used); err != nil {
		return nil, err
	}
	np = r.price.Sub(decimal.NewFromInt(40))
	if err := set(at(Raj), b, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(np.StringFixed(2))); err != nil {
		return nil, err
	}
	out = append(out, Expected{Label: "closed-week price −40", Kind: "VALUE_CHANGED", SheetID: b, RowID: r.ID, Column: smartsim.ColTotalPrice,
		Old: r.priceRaw, New: np.StringFixed(2), Impact: decimal.NewFromInt(-40), Risk: "LOW", Status: "UNAUTHORIZED", User: Raj.Email, Attribution: "writer-info"})

	// 4. A quantity fixed within the open week: found, but authorized.
	if r, err = s.pickUnused(srv, b, s.CurrentWeek, used); err != nil {
		return nil, err
	}
	imp = r.price.Div(r.qty)
	if err := set(at(Jesse), b, r.ID, smartsim.ColQuantity, smartsheet.IntValue(r.qty.IntPart()+1)); err != nil {
		return nil, err
	}
	out = append(out, Expected{Label: "open-week quantity fix", Kind: "VALUE_CHANGED", SheetID: b, RowID: r.ID, Column: smartsim.ColQuantity,
		Old: r.qty.String(), New: r.qty.Add(decimal.NewFromInt(1)).String(), Impact: imp, Risk: risk(imp), Status: "AUTHORIZED", User: Jesse.Email, Attribution: "writer-info"})

	// 5. An automation re-stamps Snapshot Date: the unit moves into the open week.
	moved, err := s.row(srv, c, s.blankWeekRow)
	if err != nil {
		return nil, err
	}
	today := srv.Now().UTC().Format(time.DateOnly)
	if _, err := srv.AutomationSetCell(at(Automation), c, moved.ID, s.Columns[c][smartsim.ColSnapshotDate], smartsheet.StringValue(today)); err != nil {
		return nil, err
	}
	out = append(out, Expected{Label: "automation re-stamp", Kind: "WEEK_MOVED", SheetID: c, RowID: moved.ID, Column: smartsim.ColSnapshotDate,
		Old: s.ClosedWeek.Format(time.DateOnly), New: s.CurrentWeek.Format(time.DateOnly), Impact: moved.price, Risk: risk(moved.price),
		Status: "UNAUTHORIZED", User: Automation.Email, Attribution: "writer-info"})

	// 6. A closed-week row deleted.
	if r, err = s.pickUnused(srv, c, s.ClosedWeek, used); err != nil {
		return nil, err
	}
	if _, err := srv.DeleteRows(at(Raj), c, []int64{r.ID}); err != nil {
		return nil, err
	}
	out = append(out, Expected{Label: "closed-week row deleted", Kind: "ROW_DELETED", SheetID: c, RowID: r.ID,
		Impact: r.price.Neg(), Risk: risk(r.price), Status: "UNAUTHORIZED", Attribution: "unknown"})

	// 7. A unit added late to a closed week.
	lateQty, latePrice := int64(3), decimal.RequireFromString("1387.50")
	cols := s.Columns[a]
	added, err := srv.AddRows(at(Kim), a, []smartsheet.Row{{ToBottom: true, Cells: []smartsheet.Cell{
		{ColumnID: cols[smartsim.ColWorkRequest], Value: smartsheet.IntValue(91234567)},
		{ColumnID: cols[smartsim.ColWeekEnding], Value: smartsheet.StringValue(s.ClosedWeek.Format(time.DateOnly))},
		{ColumnID: cols[smartsim.ColSnapshotDate], Value: smartsheet.StringValue(s.ClosedWeek.AddDate(0, 0, -2).Format(time.DateOnly))},
		{ColumnID: cols[smartsim.ColCompleted], Value: smartsheet.BoolValue(true)},
		{ColumnID: cols[smartsim.ColQuantity], Value: smartsheet.IntValue(lateQty)},
		{ColumnID: cols[smartsim.ColTotalPrice], Value: smartsheet.NumberValue(latePrice.StringFixed(2))},
		{ColumnID: cols[smartsim.ColForeman], Value: smartsheet.StringValue(Jesse.Name)},
		{ColumnID: cols[smartsim.ColCU], Value: smartsheet.StringValue("TX-25")},
	}}})
	if err != nil {
		return nil, err
	}
	out = append(out, Expected{Label: "row added late", Kind: "ROW_ADDED_LATE", SheetID: a, RowID: added[0].ID,
		Impact: latePrice, Risk: risk(latePrice), Status: "UNAUTHORIZED", User: Kim.Email, Attribution: "writer-info"})

	// 8. A typo: "$1,2O0" (a letter O) in a closed-week price.
	if r, err = s.pickUnused(srv, b, s.ClosedWeek, used); err != nil {
		return nil, err
	}
	if err := set(at(Raj), b, r.ID, smartsim.ColTotalPrice, smartsheet.StringValue("$1,2O0")); err != nil {
		return nil, err
	}
	out = append(out, Expected{Label: "price typo", Kind: "VALUE_CHANGED", SheetID: b, RowID: r.ID, Column: smartsim.ColTotalPrice,
		Old: r.priceRaw, New: "$1,2O0", Unvalued: true, Risk: "UNKNOWN", Status: "UNAUTHORIZED", User: Raj.Email, Attribution: "writer-info"})

	// 9. A same-value save: a save, not a change.
	if r, err = s.pickUnused(srv, c, s.ClosedWeek, used); err != nil {
		return nil, err
	}
	if err := set(at(Kim), c, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(r.priceRaw)); err != nil {
		return nil, err
	}

	// 10. Two edits to one closed-week row: writer info cannot tell them
	// apart, cell history can. The quantity change is carried by the price.
	if r, err = s.pickUnused(srv, a, s.ClosedWeek, used); err != nil {
		return nil, err
	}
	if err := set(at(Dana), a, r.ID, smartsim.ColQuantity, smartsheet.IntValue(r.qty.IntPart()+1)); err != nil {
		return nil, err
	}
	np = r.price.Add(decimal.NewFromInt(120))
	if err := set(at(Kim), a, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(np.StringFixed(2))); err != nil {
		return nil, err
	}
	out = append(out,
		Expected{Label: "two edits, quantity", Kind: "VALUE_CHANGED", SheetID: a, RowID: r.ID, Column: smartsim.ColQuantity,
			Old: r.qty.String(), New: r.qty.Add(decimal.NewFromInt(1)).String(), Impact: decimal.Zero, Risk: "LOW", Status: "UNAUTHORIZED", User: Dana.Email, Attribution: "cell-history"},
		Expected{Label: "two edits, price", Kind: "VALUE_CHANGED", SheetID: a, RowID: r.ID, Column: smartsim.ColTotalPrice,
			Old: r.priceRaw, New: np.StringFixed(2), Impact: decimal.NewFromInt(120), Risk: "MEDIUM", Status: "UNAUTHORIZED", User: Kim.Email, Attribution: "cell-history"})
	srv.AdvanceClock(time.Duration(step+1) * time.Minute)
	return out, nil
}

func risk(impact decimal.Decimal) string {
	switch a := impact.Abs(); {
	case a.GreaterThan(decimal.NewFromInt(1000)):
		return "HIGH"
	case a.GreaterThan(decimal.NewFromInt(100)):
		return "MEDIUM"
	default:
		return "LOW"
	}
}

type rowInfo struct {
	ID         int64
	qty, price decimal.Decimal
	priceRaw   string
}

func (s *Setup) row(srv *smartsim.Server, sheetID, rowID int64) (rowInfo, error) {
	sh, err := srv.Sheet(sheetID)
	if err != nil {
		return rowInfo{}, err
	}
	for i := range sh.Rows {
		if sh.Rows[i].ID == rowID {
			return s.info(sheetID, &sh.Rows[i])
		}
	}
	return rowInfo{}, fmt.Errorf("row %d not on sheet %d", rowID, sheetID)
}

func (s *Setup) info(sheetID int64, row *smartsheet.Row) (rowInfo, error) {
	cols := s.Columns[sheetID]
	qc, pc := row.Cell(cols[smartsim.ColQuantity]), row.Cell(cols[smartsim.ColTotalPrice])
	if qc == nil || pc == nil {
		return rowInfo{}, fmt.Errorf("row %d lacks quantity or price", row.ID)
	}
	q, err1 := decimal.NewFromString(qc.Value.Text())
	p, err2 := decimal.NewFromString(pc.Value.Text())
	if err := errors.Join(err1, err2); err != nil {
		return rowInfo{}, fmt.Errorf("row %d: %w", row.ID, err)
	}
	return rowInfo{ID: row.ID, qty: q, price: p, priceRaw: pc.Value.Text()}, nil
}

// pick returns the (skip+1)-th row of the week whose quantity and price
// satisfy ok (nil: any).
func (s *Setup) pick(srv *smartsim.Server, sheetID int64, week time.Time, skip int, ok func(q, p decimal.Decimal) bool) (rowInfo, error) {
	sh, err := srv.Sheet(sheetID)
	if err != nil {
		return rowInfo{}, err
	}
	wc := s.Columns[sheetID][smartsim.ColWeekEnding]
	want := week.Format(time.DateOnly)
	for i := range sh.Rows {
		c := sh.Rows[i].Cell(wc)
		if c == nil || c.Value.Text() != want {
			continue
		}
		ri, err := s.info(sheetID, &sh.Rows[i])
		if err != nil || (ok != nil && !ok(ri.qty, ri.price)) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		return ri, nil
	}
	return rowInfo{}, fmt.Errorf("no suitable row in week %s of sheet %d", want, sheetID)
}

func (s *Setup) pickUnused(srv *smartsim.Server, sheetID int64, week time.Time, used map[int64]bool) (rowInfo, error) {
	r, err := s.pick(srv, sheetID, week, 0, func(q, p decimal.Decimal) bool { return true })
	for skip := 1; err == nil && used[r.ID]; skip++ {
		r, err = s.pick(srv, sheetID, week, skip, nil)
	}
	if err == nil {
		used[r.ID] = true
	}
	return r, err
}
