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

// DefaultSize is the demo's: 3 sheets × 2,000 rows over 16 weeks, enough
// for the twelve weeks History and the scenario play and the weeks they edit.
var DefaultSize = Size{Sheets: 3, Rows: 2000, Weeks: 16}

// Setup is the generated data plus what the scenario prepared before the
// baseline.
type Setup struct {
	Gen          smartsim.Generated
	Columns      map[int64]map[string]int64 // sheet → title → column id
	ClosedWeek   time.Time                  // the last week that has ended
	CurrentWeek  time.Time                  // the open week
	blankWeekRow int64                      // sheet C row whose week-ending cell is blank
	start        time.Time                  // the scenario's time: the simulator's clock when prepared
	// Pace, when set, makes Script's edits in real time, Pace apart, at the
	// simulator's now: for functions that run on the real clock (the local
	// chain), whose attribution window an edit dated minutes ahead would miss.
	Pace time.Duration
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
	s := &Setup{Gen: gen, Columns: map[int64]map[string]int64{}, ClosedWeek: current.AddDate(0, 0, -7), CurrentWeek: current, start: now}
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

// cellText is a cell's text now.
func (s *Setup) cellText(srv *smartsim.Server, sheetID, rowID, columnID int64) (string, error) {
	sh, err := srv.Sheet(sheetID)
	if err != nil {
		return "", err
	}
	for i := range sh.Rows {
		if sh.Rows[i].ID == rowID {
			if c := sh.Rows[i].Cell(columnID); c != nil {
				return c.Value.Text(), nil
			}
			return "", nil
		}
	}
	return "", fmt.Errorf("row %d not on sheet %d", rowID, sheetID)
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
