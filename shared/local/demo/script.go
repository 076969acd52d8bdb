package demo

import (
	"fmt"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// Script applies the scenario's edits at the simulator's current time (each
// a minute apart) and returns the changes they must produce. Thresholds are
// the defaults (HIGH > 1000, MEDIUM > 100).
func (s *Setup) Script(srv *smartsim.Server) ([]Expected, error) {
	sc := &script{
		Setup: s, srv: srv,
		a: s.Gen.SheetIDs[0], b: s.Gen.SheetIDs[1], c: s.Gen.SheetIDs[2],
		used: map[int64]bool{s.blankWeekRow: true},
	}
	// The order matters: each edit is a minute after the one before, and
	// each picks the first suitable row not used by an earlier one.
	for _, e := range []struct {
		name string
		edit func() error
	}{
		{"closed-week quantity bump", sc.quantityBump},
		{"closed-week price +250", sc.priceUp},
		{"closed-week price −40", sc.priceCut},
		{"open-week quantity fix", sc.openWeekFix},
		{"automation re-stamp", sc.restamp},
		{"closed-week row deleted", sc.deleteRow},
		{"row added late", sc.addLateRow},
		{"price typo", sc.priceTypo},
		{"same-value save", sc.sameValueSave},
		{"two edits", sc.twoEdits},
	} {
		if err := e.edit(); err != nil {
			return nil, fmt.Errorf("scenario edit %q: %w", e.name, err)
		}
	}
	if s.Pace == 0 {
		srv.AdvanceClock(time.Duration(sc.step+1) * time.Minute)
	}
	return sc.out, nil
}

// script is one playing of the scenario: the edits made so far and the
// changes they must produce.
type script struct {
	*Setup
	srv     *smartsim.Server
	a, b, c int64          // the first three sheets (crews A, B, C)
	used    map[int64]bool // rows already edited: each edit takes a row of its own
	step    int            // edits so far; the next is a minute later
	out     []Expected
}

// at is the next edit by u, a minute after the last on the simulator's
// clock; with a Pace, Pace later in real time, made now.
func (sc *script) at(u smartsheet.User) smartsim.Edit {
	sc.step++
	if sc.Pace > 0 {
		time.Sleep(sc.Pace)
		return smartsim.Edit{User: u}
	}
	return smartsim.Edit{User: u, At: sc.srv.Now().Add(time.Duration(sc.step) * time.Minute)}
}

func (sc *script) set(e smartsim.Edit, sheet, row int64, title string, v smartsheet.Value) error {
	_, err := sc.srv.SetCell(e, sheet, row, sc.Columns[sheet][title], v)
	if err != nil {
		return fmt.Errorf("edit %s of row %d: %w", title, row, err)
	}
	return nil
}

func (sc *script) expect(e Expected) { sc.out = append(sc.out, e) }

// quantityBump: a foreman bumps a closed-week quantity on an expensive unit: HIGH.
func (sc *script) quantityBump() error {
	r, err := sc.pick(sc.srv, sc.a, sc.ClosedWeek, 0, func(q, p decimal.Decimal) bool {
		return p.Div(q).GreaterThanOrEqual(decimal.NewFromInt(600)) && sc.used != nil
	})
	if err != nil {
		return err
	}
	sc.used[r.ID] = true
	q, p := r.qty, r.price
	if err := sc.set(sc.at(Jesse), sc.a, r.ID, smartsim.ColQuantity, smartsheet.IntValue(q.IntPart()+2)); err != nil {
		return err
	}
	imp := p.Div(q).Mul(decimal.NewFromInt(2))
	sc.expect(Expected{Label: "closed-week quantity bump", Kind: "VALUE_CHANGED", SheetID: sc.a, RowID: r.ID, Column: smartsim.ColQuantity,
		Old: q.String(), New: q.Add(decimal.NewFromInt(2)).String(), Impact: imp, Risk: risk(imp), Status: "UNAUTHORIZED", User: Jesse.Email, Attribution: "writer-info"})
	return nil
}

// priceUp: a clerk retypes a closed-week price, +250.00: MEDIUM.
func (sc *script) priceUp() error {
	r, err := sc.pickUnused(sc.srv, sc.a, sc.ClosedWeek, sc.used)
	if err != nil {
		return err
	}
	np := r.price.Add(decimal.NewFromInt(250))
	if err := sc.set(sc.at(Kim), sc.a, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(np.StringFixed(2))); err != nil {
		return err
	}
	sc.expect(Expected{Label: "closed-week price +250", Kind: "VALUE_CHANGED", SheetID: sc.a, RowID: r.ID, Column: smartsim.ColTotalPrice,
		Old: r.priceRaw, New: np.StringFixed(2), Impact: decimal.NewFromInt(250), Risk: "MEDIUM", Status: "UNAUTHORIZED", User: Kim.Email, Attribution: "writer-info"})
	return nil
}

// priceCut: a closed-week price cut by 40.00: LOW, still unauthorized.
func (sc *script) priceCut() error {
	r, err := sc.pickUnused(sc.srv, sc.b, sc.ClosedWeek, sc.used)
	if err != nil {
		return err
	}
	np := r.price.Sub(decimal.NewFromInt(40))
	if err := sc.set(sc.at(Raj), sc.b, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(np.StringFixed(2))); err != nil {
		return err
	}
	sc.expect(Expected{Label: "closed-week price −40", Kind: "VALUE_CHANGED", SheetID: sc.b, RowID: r.ID, Column: smartsim.ColTotalPrice,
		Old: r.priceRaw, New: np.StringFixed(2), Impact: decimal.NewFromInt(-40), Risk: "LOW", Status: "UNAUTHORIZED", User: Raj.Email, Attribution: "writer-info"})
	return nil
}

// openWeekFix: a quantity fixed within the open week: found, but authorized.
func (sc *script) openWeekFix() error {
	r, err := sc.pickUnused(sc.srv, sc.b, sc.CurrentWeek, sc.used)
	if err != nil {
		return err
	}
	imp := r.price.Div(r.qty)
	if err := sc.set(sc.at(Jesse), sc.b, r.ID, smartsim.ColQuantity, smartsheet.IntValue(r.qty.IntPart()+1)); err != nil {
		return err
	}
	sc.expect(Expected{Label: "open-week quantity fix", Kind: "VALUE_CHANGED", SheetID: sc.b, RowID: r.ID, Column: smartsim.ColQuantity,
		Old: r.qty.String(), New: r.qty.Add(decimal.NewFromInt(1)).String(), Impact: imp, Risk: risk(imp), Status: "AUTHORIZED", User: Jesse.Email, Attribution: "writer-info"})
	return nil
}

// restamp: an automation re-stamps Snapshot Date of the row whose week
// ending Prepare blanked: the unit moves into the open week.
func (sc *script) restamp() error {
	moved, err := sc.row(sc.srv, sc.c, sc.blankWeekRow)
	if err != nil {
		return err
	}
	today := sc.srv.Now().UTC().Format(time.DateOnly)
	snapCol := sc.Columns[sc.c][smartsim.ColSnapshotDate]
	was, err := sc.cellText(sc.srv, sc.c, moved.ID, snapCol)
	if err != nil {
		return err
	}
	if _, err := sc.srv.AutomationSetCell(sc.at(Automation), sc.c, moved.ID, snapCol, smartsheet.StringValue(today)); err != nil {
		return err
	}
	sc.expect(Expected{Label: "automation re-stamp", Kind: "WEEK_MOVED", SheetID: sc.c, RowID: moved.ID, Column: smartsim.ColSnapshotDate,
		Old: was + " (week ending " + sc.ClosedWeek.Format(time.DateOnly) + ")", New: today + " (week ending " + sc.CurrentWeek.Format(time.DateOnly) + ")",
		Impact: moved.price, Risk: risk(moved.price),
		Status: "UNAUTHORIZED", User: Automation.Email, Attribution: "writer-info"})
	return nil
}

// deleteRow: a closed-week row deleted.
func (sc *script) deleteRow() error {
	r, err := sc.pickUnused(sc.srv, sc.c, sc.ClosedWeek, sc.used)
	if err != nil {
		return err
	}
	if _, err := sc.srv.DeleteRows(sc.at(Raj), sc.c, []int64{r.ID}); err != nil {
		return err
	}
	sc.expect(Expected{Label: "closed-week row deleted", Kind: "ROW_DELETED", SheetID: sc.c, RowID: r.ID,
		Impact: r.price.Neg(), Risk: risk(r.price), Status: "UNAUTHORIZED", Attribution: "unknown"})
	return nil
}

// addLateRow: a unit added late to a closed week.
func (sc *script) addLateRow() error {
	lateQty, latePrice := int64(3), decimal.RequireFromString("1387.50")
	cols := sc.Columns[sc.a]
	added, err := sc.srv.AddRows(sc.at(Kim), sc.a, []smartsheet.Row{{ToBottom: true, Cells: []smartsheet.Cell{
		{ColumnID: cols[smartsim.ColWorkRequest], Value: smartsheet.IntValue(91234567)},
		{ColumnID: cols[smartsim.ColWeekEnding], Value: smartsheet.StringValue(sc.ClosedWeek.Format(time.DateOnly))},
		{ColumnID: cols[smartsim.ColSnapshotDate], Value: smartsheet.StringValue(sc.ClosedWeek.AddDate(0, 0, -2).Format(time.DateOnly))},
		{ColumnID: cols[smartsim.ColCompleted], Value: smartsheet.BoolValue(true)},
		{ColumnID: cols[smartsim.ColQuantity], Value: smartsheet.IntValue(lateQty)},
		{ColumnID: cols[smartsim.ColTotalPrice], Value: smartsheet.NumberValue(latePrice.StringFixed(2))},
		{ColumnID: cols[smartsim.ColForeman], Value: smartsheet.StringValue(Jesse.Name)},
		{ColumnID: cols[smartsim.ColCU], Value: smartsheet.StringValue("TX-25")},
	}}})
	if err != nil {
		return err
	}
	sc.expect(Expected{Label: "row added late", Kind: "ROW_ADDED_LATE", SheetID: sc.a, RowID: added[0].ID,
		Impact: latePrice, Risk: risk(latePrice), Status: "UNAUTHORIZED", User: Kim.Email, Attribution: "writer-info"})
	return nil
}

// priceTypo: "$1,2O0" (a letter O) in a closed-week price.
func (sc *script) priceTypo() error {
	r, err := sc.pickUnused(sc.srv, sc.b, sc.ClosedWeek, sc.used)
	if err != nil {
		return err
	}
	if err := sc.set(sc.at(Raj), sc.b, r.ID, smartsim.ColTotalPrice, smartsheet.StringValue("$1,2O0")); err != nil {
		return err
	}
	sc.expect(Expected{Label: "price typo", Kind: "VALUE_CHANGED", SheetID: sc.b, RowID: r.ID, Column: smartsim.ColTotalPrice,
		Old: r.priceRaw, New: "$1,2O0", Unvalued: true, Risk: "UNKNOWN", Status: "UNAUTHORIZED", User: Raj.Email, Attribution: "writer-info"})
	return nil
}

// sameValueSave: a save of the value already there: a save, not a change,
// so nothing is expected.
func (sc *script) sameValueSave() error {
	r, err := sc.pickUnused(sc.srv, sc.c, sc.ClosedWeek, sc.used)
	if err != nil {
		return err
	}
	return sc.set(sc.at(Kim), sc.c, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(r.priceRaw))
}

// twoEdits: two edits to one closed-week row by different people: writer
// info cannot tell them apart, cell history can. The quantity change is
// carried by the price.
func (sc *script) twoEdits() error {
	r, err := sc.pickUnused(sc.srv, sc.a, sc.ClosedWeek, sc.used)
	if err != nil {
		return err
	}
	if err := sc.set(sc.at(Dana), sc.a, r.ID, smartsim.ColQuantity, smartsheet.IntValue(r.qty.IntPart()+1)); err != nil {
		return err
	}
	np := r.price.Add(decimal.NewFromInt(120))
	if err := sc.set(sc.at(Kim), sc.a, r.ID, smartsim.ColTotalPrice, smartsheet.NumberValue(np.StringFixed(2))); err != nil {
		return err
	}
	sc.expect(Expected{Label: "two edits, quantity", Kind: "VALUE_CHANGED", SheetID: sc.a, RowID: r.ID, Column: smartsim.ColQuantity,
		Old: r.qty.String(), New: r.qty.Add(decimal.NewFromInt(1)).String(), Impact: decimal.Zero, Risk: "LOW", Status: "UNAUTHORIZED", User: Dana.Email, Attribution: "cell-history"})
	sc.expect(Expected{Label: "two edits, price", Kind: "VALUE_CHANGED", SheetID: sc.a, RowID: r.ID, Column: smartsim.ColTotalPrice,
		Old: r.priceRaw, New: np.StringFixed(2), Impact: decimal.NewFromInt(120), Risk: "MEDIUM", Status: "UNAUTHORIZED", User: Kim.Email, Attribution: "cell-history"})
	return nil
}
