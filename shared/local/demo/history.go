package demo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// History is the weeks played before the scenario's week, on the simulator's
// clock, so that the workbook's trends, top editors, weekday/hour grid and
// projection have real shapes to show: each person edits on their own days
// and hours (Kim retypes prices Monday and Tuesday mornings, Jesse bumps
// quantities late Thursday and Friday and fixes open weeks, Raj credits prices
// Friday afternoons, Dana edits on Saturday mornings, an automation syncs
// rates at 02:00), a few more edits each week, and the audit runs twice a
// week (Wednesday 12:00 and Sunday 20:00 UTC). Priya reviews the exceptions
// as they age. Everything is drawn from a fixed seed, so every demo plays the
// same history relative to its week.
type History struct {
	setup *Setup
	edits []plannedEdit // in time order
	next  int           // the first edit not yet made
	logs  []rowLog      // rows the crews log as the weeks pass, in time order
	nlog  int           // the first not yet logged
	runs  []time.Time   // the audits' times, in order
	used  map[int64]bool
	rng   *rand.Rand
}

// plannedEdit is one edit of the history, its row picked when it is made.
type plannedEdit struct {
	at    time.Time
	who   smartsheet.User
	kind  editKind
	week  time.Time // the billing week (a Sunday) whose row it edits
	delta decimal.Decimal
}

type editKind int

const (
	editPrice    editKind = iota // a price retyped or credited
	editQuantity                 // a quantity bumped
)

// rowLog is a day's rows of one sheet, logged by its crew that evening.
type rowLog struct {
	at    time.Time
	sheet int64
	rows  []smartsheet.Row
	old   []int64 // the generated rows' ids, for the blank-week row's
}

// HistoryRun is what one history audit must find: the edits made since the
// audit before it.
type HistoryRun struct {
	At           time.Time // when the audit runs (the simulator's clock is there)
	Edits        int       // changes the audit must find
	Unauthorized int       // of which to billed weeks
	People       []string  // who made them, by name
}

// historyWeeks is how many weeks History plays before the scenario's: with
// the scenario's, the twelve weeks the workbook's trend shows.
const historyWeeks = audit.TrendWeeks - 1

// History moves the simulator's clock back historyWeeks weeks, to the
// evening before the first week (where the product is installed and takes
// its baseline), holds back the rows logged after that, and plans the edits
// of those weeks. Prepare must have generated at least historyWeeks+3 weeks
// of rows. Its last run is at the scenario's time: when it is played, the
// clock is back there.
func (s *Setup) History(srv *smartsim.Server) (*History, error) {
	h := &History{setup: s, used: map[int64]bool{}, rng: rand.New(rand.NewPCG(12, 7))}
	firstMonday := s.CurrentWeek.AddDate(0, 0, -6-7*historyWeeks)
	baseline := firstMonday.Add(-4 * time.Hour) // the Sunday before, 20:00
	if err := h.unlog(srv, baseline); err != nil {
		return nil, err
	}
	h.used[s.blankWeekRow] = true
	moveClockTo(srv, baseline)
	for w := range historyWeeks {
		monday := firstMonday.AddDate(0, 0, 7*w)
		h.runs = append(h.runs, monday.AddDate(0, 0, 2).Add(12*time.Hour), monday.AddDate(0, 0, 6).Add(20*time.Hour))
		h.planWeek(w, monday)
	}
	// A last audit at the scenario's time, so that the rows logged this week
	// have been seen before the scenario edits them.
	h.runs = append(h.runs, s.start)
	slices.SortStableFunc(h.edits, func(a, b plannedEdit) int { return a.at.Compare(b.at) })
	return h, nil
}

// unlog takes off the sheets the generated rows not yet logged at the
// baseline (those of later days), to be logged again day by day, each
// evening from 17:00 (a sheet every 20 minutes) as the history plays.
func (h *History) unlog(srv *smartsim.Server, baseline time.Time) error {
	s := h.setup
	for i, id := range s.Gen.SheetIDs {
		sh, err := srv.Sheet(id)
		if err != nil {
			return err
		}
		snap := s.Columns[id][smartsim.ColSnapshotDate]
		byDay := map[string]*rowLog{}
		var ids []int64
		for _, r := range sh.Rows {
			day, err := time.Parse(time.DateOnly, cellText(r.Cell(snap)))
			if err != nil || !day.After(baseline) {
				continue
			}
			key := day.Format(time.DateOnly)
			l := byDay[key]
			if l == nil {
				l = &rowLog{at: day.Add(17*time.Hour + time.Duration(i)*20*time.Minute), sheet: id}
				byDay[key] = l
			}
			var cells []smartsheet.Cell
			for _, c := range r.Cells {
				if c.Value.Text() != "" {
					cells = append(cells, smartsheet.Cell{ColumnID: c.ColumnID, Value: c.Value})
				}
			}
			l.rows = append(l.rows, smartsheet.Row{ToBottom: true, Cells: cells})
			l.old = append(l.old, r.ID)
			ids = append(ids, r.ID)
		}
		if len(ids) == 0 {
			continue
		}
		if _, err := srv.DeleteRows(smartsim.Edit{User: Jesse, At: baseline.Add(-time.Hour)}, id, ids); err != nil {
			return fmt.Errorf("history: hold back the rows of later days on sheet %d: %w", id, err)
		}
		for _, l := range byDay {
			h.logs = append(h.logs, *l)
		}
	}
	slices.SortStableFunc(h.logs, func(a, b rowLog) int { return a.at.Compare(b.at) })
	return nil
}

// log adds a day's rows to their sheet as its crew logs them.
func (h *History) log(srv *smartsim.Server, l rowLog, at time.Time) error {
	added, err := srv.AddRows(smartsim.Edit{User: Jesse, At: at}, l.sheet, l.rows)
	if err != nil {
		return fmt.Errorf("history: log %d rows on sheet %d: %w", len(l.rows), l.sheet, err)
	}
	for i, old := range l.old {
		if old == h.setup.blankWeekRow && i < len(added) {
			h.setup.blankWeekRow = added[i].ID
			h.used[added[i].ID] = true
		}
	}
	return nil
}

// planWeek plans week w's edits: about 3 + w/2 of them, each person's on
// their days and hours. Closed-week edits hit the week that ended the day
// before the Monday, one in five the week before that.
func (h *History) planWeek(w int, monday time.Time) {
	closed := monday.AddDate(0, 0, -1)
	open := monday.AddDate(0, 0, 6)
	n := 3 + w/2 + h.rng.IntN(3)
	for range n {
		week := closed
		if h.rng.IntN(5) == 0 {
			week = closed.AddDate(0, 0, -7)
		}
		at := func(days []int, fromHour, hours int) time.Time {
			return monday.AddDate(0, 0, days[h.rng.IntN(len(days))]).
				Add(time.Duration(fromHour+h.rng.IntN(hours))*time.Hour + time.Duration(h.rng.IntN(60))*time.Minute)
		}
		cents := func(lo, hi int) decimal.Decimal { return decimal.New(int64(lo+h.rng.IntN(hi-lo))*5, 0) }
		var e plannedEdit
		switch p := h.rng.IntN(100); {
		case p < 30: // Kim retypes a price, Monday or Tuesday morning
			e = plannedEdit{at: at([]int{0, 1}, 8, 4), who: Kim, kind: editPrice, week: week, delta: cents(5, 80)}
		case p < 50: // Jesse bumps a quantity at the end of a shift
			e = plannedEdit{at: at([]int{3, 4}, 16, 3), who: Jesse, kind: editQuantity, week: week, delta: decimal.NewFromInt(int64(1 + h.rng.IntN(2)))}
		case p < 62: // Jesse fixes a quantity in the open week: authorized. Thursday or
			// Friday, so the Monday row he fixes was seen by Wednesday's audit (an
			// edit to a row no audit has seen is part of its logging, not a change).
			e = plannedEdit{at: at([]int{3, 4}, 15, 4), who: Jesse, kind: editQuantity, week: open, delta: decimal.NewFromInt(1)}
		case p < 80: // Raj credits a price, Friday afternoon
			e = plannedEdit{at: at([]int{4}, 13, 4), who: Raj, kind: editPrice, week: week, delta: cents(4, 60).Neg()}
		case p < 90: // Dana, Saturday morning
			e = plannedEdit{at: at([]int{5}, 7, 3), who: Dana, kind: editQuantity, week: week, delta: decimal.NewFromInt(1)}
		default: // the rate sync at 02:00
			e = plannedEdit{at: at([]int{1, 2, 3, 4}, 2, 1), who: Automation, kind: editPrice, week: week, delta: cents(1, 6)}
		}
		h.edits = append(h.edits, e)
	}
}

// Runs are the times of the history's audits, in order.
func (h *History) Runs() []time.Time { return h.runs }

// PlayUntil makes the history's edits and logs the crews' rows before t,
// moves the clock to t and returns what the audit at t must find.
func (h *History) PlayUntil(srv *smartsim.Server, t time.Time) (HistoryRun, error) {
	run := HistoryRun{At: t}
	for ; h.next < len(h.edits) && h.edits[h.next].at.Before(t); h.next++ {
		e := h.edits[h.next]
		if err := h.logUntil(srv, e.at); err != nil {
			return run, err
		}
		moveClockTo(srv, e.at)
		if err := h.make(srv, e); err != nil {
			return run, fmt.Errorf("history edit by %s at %s: %w", e.who.Name, e.at.Format(time.RFC3339), err)
		}
		run.Edits++
		if e.week.Before(e.at.Truncate(24 * time.Hour)) {
			run.Unauthorized++
		}
		if !slices.Contains(run.People, e.who.Name) {
			run.People = append(run.People, e.who.Name)
		}
	}
	if err := h.logUntil(srv, t); err != nil {
		return run, err
	}
	moveClockTo(srv, t)
	if t.Equal(h.setup.start) {
		// The last run, at the scenario's time: the rows of today are logged
		// as of now if their evening is still to come; later days' are not,
		// as they would not be yet.
		today := t.Truncate(24 * time.Hour)
		for ; h.nlog < len(h.logs) && !h.logs[h.nlog].at.Truncate(24*time.Hour).After(today); h.nlog++ {
			if err := h.log(srv, h.logs[h.nlog], t.Add(-time.Minute)); err != nil {
				return run, err
			}
		}
	}
	return run, nil
}

// logUntil logs the rows of the days whose evening is before t.
func (h *History) logUntil(srv *smartsim.Server, t time.Time) error {
	for ; h.nlog < len(h.logs) && h.logs[h.nlog].at.Before(t); h.nlog++ {
		l := h.logs[h.nlog]
		moveClockTo(srv, l.at)
		if err := h.log(srv, l, l.at); err != nil {
			return err
		}
	}
	return nil
}

// make picks a row of the edit's week on a sheet by turns, one no earlier
// edit took, and changes it.
func (h *History) make(srv *smartsim.Server, e plannedEdit) error {
	s := h.setup
	sheet := s.Gen.SheetIDs[h.next%len(s.Gen.SheetIDs)]
	r, err := s.pickUnused(srv, sheet, e.week, h.used)
	if err != nil {
		return err
	}
	edit := smartsim.Edit{User: e.who, At: e.at}
	col := s.Columns[sheet]
	switch e.kind {
	case editQuantity:
		_, err = srv.SetCell(edit, sheet, r.ID, col[smartsim.ColQuantity], smartsheet.IntValue(r.qty.Add(e.delta).IntPart()))
	default:
		np := r.price.Add(e.delta)
		if np.Sign() <= 0 {
			np = r.price.Add(e.delta.Abs())
		}
		if e.who == Automation {
			_, err = srv.AutomationSetCell(edit, sheet, r.ID, col[smartsim.ColTotalPrice], smartsheet.NumberValue(np.StringFixed(2)))
		} else {
			_, err = srv.SetCell(edit, sheet, r.ID, col[smartsim.ColTotalPrice], smartsheet.NumberValue(np.StringFixed(2)))
		}
	}
	return err
}

// Review plays Priya working the audit sheet after an audit: each exception
// still Open that was found more than a week before now gets her decision
// (most corrections approved, some invoices adjusted, a few investigated and
// left so). It returns how many rows she reviewed.
func (h *History) Review(srv *smartsim.Server, auditID int64) (int, error) {
	sh, err := srv.Sheet(auditID)
	if err != nil {
		return 0, fmt.Errorf("review: read the audit sheet: %w", err)
	}
	col := func(title string) int64 {
		if c := sh.Column(title); c != nil {
			return c.ID
		}
		return 0
	}
	unauthorized, disp, detected := col(audit.LogUnauthorized), col(audit.LogDisposition), col(audit.LogDetectedOn)
	cutoff := srv.Now().AddDate(0, 0, -7).Format(time.DateOnly)
	var rows []smartsheet.Row
	for _, r := range sh.Rows {
		if cellText(r.Cell(unauthorized)) != audit.UnauthorizedLabel(audit.StatusUnauthorized) {
			continue
		}
		if c := r.Cell(disp); c != nil && c.Value.Text() != "" && c.Value.Text() != audit.DispositionOpen {
			continue
		}
		if on := cellText(r.Cell(detected)); on == "" || on > cutoff { // ISO dates compare as text
			continue
		}
		decision, note := audit.DispositionApproved, "Crew lead confirmed; correction approved"
		switch p := h.rng.IntN(10); {
		case p < 2:
			decision, note = audit.DispositionInvoiced, "Customer invoice adjusted"
		case p < 3:
			decision, note = audit.DispositionInvestigating, "Waiting for the signed ticket"
		}
		rows = append(rows, smartsheet.Row{ID: r.ID, Cells: []smartsheet.Cell{
			{ColumnID: col(audit.LogReviewer), Value: smartsheet.StringValue(Priya.Email)},
			{ColumnID: disp, Value: smartsheet.StringValue(decision)},
			{ColumnID: col(audit.LogResolutionNote), Value: smartsheet.StringValue(note)},
		}})
	}
	if len(rows) == 0 {
		return 0, nil
	}
	if _, err := srv.UpdateRows(smartsim.Edit{User: Priya}, auditID, rows); err != nil {
		return 0, fmt.Errorf("review: update the audit sheet: %w", err)
	}
	return len(rows), nil
}

func cellText(c *smartsheet.Cell) string {
	if c == nil {
		return ""
	}
	return c.Value.Text()
}

// moveClockTo sets the simulator's running clock to t (it keeps running).
func moveClockTo(srv *smartsim.Server, t time.Time) { srv.AdvanceClock(t.Sub(srv.Now())) }
