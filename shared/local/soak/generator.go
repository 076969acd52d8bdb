package soak

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The editors: the demo's people and Smartsheet automation.
var editors = []smartsheet.User{demo.Kim, demo.Raj, demo.Jesse, demo.Dana, demo.Automation}

// Tracked are the billing columns the audit compares by default (see
// audit.DefaultConfig), week are the columns a row's week comes from, and
// untracked the rest: edits to those change nothing the audit reports.
var (
	tracked   = []string{smartsim.ColWorkRequest, smartsim.ColCompleted, smartsim.ColQuantity, smartsim.ColTotalPrice, smartsim.ColCU}
	untracked = []string{smartsim.ColForeman, smartsim.ColWorkType, smartsim.ColPole}
)

// Op is a kind of edit the generator makes.
type Op string

// The generator's edits.
const (
	OpValue     Op = "value"      // a new quantity, price, CU or completion
	OpBoth      Op = "qty+price"  // quantity and price in one save
	OpRevert    Op = "revert"     // a cell back to its value before its last edit
	OpReapply   Op = "reapply"    // an edit made again after its revert
	OpSameValue Op = "same-value" // a save that writes the value the cell holds
	OpUntracked Op = "untracked"  // an edit of a column the audit does not track
	OpDelete    Op = "delete"     // a row deleted
	OpLateRow   Op = "late-row"   // a row added to a closed week
	OpOpenRow   Op = "open-row"   // a row added to the open week
	OpWeekMove  Op = "week-move"  // the week-ending cell moved to another week
	OpSnapshot  Op = "snapshot"   // Snapshot Date re-stamped (moves the week of a row without a week ending)
)

// weights of the ops, in the order they are drawn.
var opWeights = []struct {
	op Op
	w  int
}{
	{OpValue, 30}, {OpBoth, 8}, {OpRevert, 12}, {OpReapply, 6}, {OpSameValue, 8}, {OpUntracked, 8},
	{OpDelete, 3}, {OpLateRow, 4}, {OpOpenRow, 2}, {OpWeekMove, 5}, {OpSnapshot, 5},
}

// cellRef names a cell by sheet, row and column title.
type cellRef struct {
	sheet, row int64
	title      string
}

// rowState is the generator's record of a row: each cell's text by column
// title, as the simulator stored it.
type rowState struct {
	vals      map[string]string
	createdAt time.Time
	createdBy string
}

func (r *rowState) clone() *rowState {
	c := *r
	c.vals = make(map[string]string, len(r.vals))
	for k, v := range r.vals {
		c.vals[k] = v
	}
	return &c
}

// world is the generator's record of every billing row, and of who touched
// what since the last completed run.
type world struct {
	srv     *smartsim.Server
	rng     *rand.Rand
	cols    map[int64]map[string]int64 // sheet → title → column id
	names   map[int64]string           // sheet → name
	sheets  []int64
	rows    map[int64]map[int64]*rowState // sheet → row → state
	live    map[int64][]int64             // sheet → live row ids, for drawing
	current time.Time                     // the open week's Sunday
	weeks   int

	// Since the last completed run: the last user who saved each cell, the
	// last one who changed its value, who deleted each row.
	saved, changed map[cellRef]string
	deletedBy      map[[2]int64]string
	// hist is each touched cell's values, oldest first; touched lists them.
	hist    map[cellRef][]string
	touched []cellRef

	// window lists the edits since the last completed run, for reports.
	window []editRec

	edits int
	byOp  map[Op]int
	op    Op // the edit being made
}

// editRec is one saved cell, for reports.
type editRec struct {
	op         Op
	sheet, row int64
	title, by  string
	from, to   string
	at         time.Time
}

// maskedSave reports whether by (an email or name) saved a cell of the row
// in the window and left it as it was (a same-value save, or an edit and
// its revert): a save the scan cannot see, which still makes by the row's
// last modifier.
func (w *world) maskedSave(sheet, row int64, by string, names map[string]string) bool {
	first, last := map[string]string{}, map[string]string{}
	savedBy := map[string]bool{}
	for _, e := range w.window {
		if e.sheet != sheet || e.row != row || e.title == "" {
			continue
		}
		if _, ok := first[e.title]; !ok {
			first[e.title] = e.from
		}
		last[e.title] = e.to
		if strings.EqualFold(e.by, by) || strings.EqualFold(names[e.by], by) {
			savedBy[e.title] = true
		}
	}
	for title := range savedBy {
		if first[title] == last[title] {
			return true
		}
	}
	return false
}

// rowEdits describes the edits of one row since the last completed run.
func (w *world) rowEdits(sheet, row int64) string {
	var b strings.Builder
	for _, e := range w.window {
		if e.sheet == sheet && e.row == row {
			fmt.Fprintf(&b, "\n\t%s %s %s: %q → %q by %s", e.at.Format(time.TimeOnly), e.op, e.title, e.from, e.to, e.by)
		}
	}
	return b.String()
}

func newWorld(srv *smartsim.Server, seed uint64, gen smartsim.Generated, current time.Time, weeks int) (*world, error) {
	w := &world{
		srv: srv, rng: rand.New(rand.NewPCG(seed, 0x50a6)), cols: map[int64]map[string]int64{}, names: map[int64]string{},
		sheets: gen.SheetIDs, rows: map[int64]map[int64]*rowState{}, live: map[int64][]int64{}, current: current, weeks: weeks,
		hist: map[cellRef][]string{}, byOp: map[Op]int{},
	}
	w.resetWindow()
	for _, id := range gen.SheetIDs {
		sh, err := srv.Sheet(id)
		if err != nil {
			return nil, err
		}
		w.names[id] = sh.Name
		cols := map[string]int64{}
		titles := map[int64]string{}
		for _, c := range sh.Columns {
			cols[c.Title] = c.ID
			titles[c.ID] = c.Title
		}
		w.cols[id] = cols
		w.rows[id] = map[int64]*rowState{}
		for i := range sh.Rows {
			r := &sh.Rows[i]
			st := &rowState{vals: map[string]string{}}
			if r.CreatedAt != nil {
				st.createdAt = r.CreatedAt.UTC()
			}
			for _, c := range r.Cells {
				st.vals[titles[c.ColumnID]] = c.Value.Text()
			}
			w.rows[id][r.ID] = st
			w.live[id] = append(w.live[id], r.ID)
		}
	}
	return w, nil
}

func (w *world) resetWindow() {
	w.saved, w.changed, w.deletedBy = map[cellRef]string{}, map[cellRef]string{}, map[[2]int64]string{}
	w.window = nil
}

// snapshot is a deep copy of every row: the state a completed run saw.
func (w *world) snapshot() map[int64]map[int64]*rowState {
	out := make(map[int64]map[int64]*rowState, len(w.rows))
	for s, rows := range w.rows {
		m := make(map[int64]*rowState, len(rows))
		for id, r := range rows {
			m[id] = r.clone()
		}
		out[s] = m
	}
	return out
}

func (w *world) user() smartsheet.User { return editors[w.rng.IntN(len(editors))] }

func (w *world) pickRow() (int64, int64, bool) {
	s := w.sheets[w.rng.IntN(len(w.sheets))]
	if len(w.live[s]) == 0 {
		return 0, 0, false
	}
	return s, w.live[s][w.rng.IntN(len(w.live[s]))], true
}

func (w *world) drawOp() Op {
	total := 0
	for _, o := range opWeights {
		total += o.w
	}
	n := w.rng.IntN(total)
	for _, o := range opWeights {
		if n < o.w {
			return o.op
		}
		n -= o.w
	}
	return OpValue
}

// Edit makes one random edit at the simulator's now and records it.
func (w *world) Edit() error {
	op := w.drawOp()
	w.op = op
	var err error
	switch op {
	case OpRevert, OpReapply:
		var done bool
		done, err = w.back(op)
		if !done && err == nil {
			op, w.op = OpValue, OpValue
			err = w.value(false)
		}
	case OpValue:
		err = w.value(false)
	case OpBoth:
		err = w.value(true)
	case OpSameValue:
		err = w.sameValue()
	case OpUntracked:
		err = w.untracked()
	case OpDelete:
		err = w.delete()
	case OpLateRow:
		err = w.addRow(true)
	case OpOpenRow:
		err = w.addRow(false)
	case OpWeekMove:
		err = w.weekMove()
	case OpSnapshot:
		err = w.snapshotStamp()
	}
	if err != nil {
		return fmt.Errorf("edit %s: %w", op, err)
	}
	w.edits++
	w.byOp[op]++
	return nil
}

// write saves cells of one row as u and records what the simulator stored.
func (w *world) write(u smartsheet.User, sheet, row int64, cells map[string]smartsheet.Value) error {
	titles := slices.Sorted(maps.Keys(cells)) // in order: the run is reproducible from its seed
	var sc []smartsheet.Cell
	for _, title := range titles {
		sc = append(sc, smartsheet.Cell{ColumnID: w.cols[sheet][title], Value: cells[title]})
	}
	out, err := w.srv.UpdateRows(smartsim.Edit{User: u}, sheet, []smartsheet.Row{{ID: row, Cells: sc}})
	if err != nil {
		return err
	}
	st := w.rows[sheet][row]
	for _, title := range titles {
		text := ""
		if c := out[0].Cell(w.cols[sheet][title]); c != nil {
			text = c.Value.Text()
		}
		ref := cellRef{sheet, row, title}
		if _, ok := w.hist[ref]; !ok {
			w.hist[ref] = []string{st.vals[title]}
			w.touched = append(w.touched, ref)
		}
		w.saved[ref] = u.Email
		w.window = append(w.window, editRec{op: w.op, sheet: sheet, row: row, title: title, by: u.Email, from: st.vals[title], to: text, at: w.srv.Now()})
		if text != st.vals[title] {
			w.changed[ref] = u.Email
			w.hist[ref] = append(w.hist[ref], text)
		}
		st.vals[title] = text
	}
	return nil
}

func (w *world) newValue(sheet, row int64, title string) smartsheet.Value {
	cur := w.rows[sheet][row].vals[title]
	for {
		var v smartsheet.Value
		switch title {
		case smartsim.ColQuantity:
			v = smartsheet.IntValue(int64(1 + w.rng.IntN(30)))
		case smartsim.ColTotalPrice:
			c := 500 + w.rng.Int64N(500_000)
			v = smartsheet.NumberValue(fmt.Sprintf("%d.%02d", c/100, c%100))
		case smartsim.ColCU:
			v = smartsheet.StringValue([]string{"ANC-M", "XARM-8", "GUY-DN", "INS-PIN", "TX-25", "FUSE-CO", "GRD-ROD"}[w.rng.IntN(7)])
		case smartsim.ColCompleted:
			return smartsheet.BoolValue(cur != "true")
		case smartsim.ColWorkRequest:
			v = smartsheet.IntValue(int64(90_000_000 + w.rng.IntN(9_000_000)))
		case smartsim.ColForeman:
			v = smartsheet.StringValue(editors[w.rng.IntN(4)].Name)
		case smartsim.ColWorkType:
			v = smartsheet.StringValue([]string{"Maintenance", "New Construction", "Storm Restoration", "Pole Replacement", "Service Upgrade"}[w.rng.IntN(5)])
		default:
			v = smartsheet.StringValue("P-" + strconv.Itoa(100000+w.rng.IntN(900000)))
		}
		if v.Text() != cur {
			return v
		}
	}
}

func (w *world) value(both bool) error {
	s, r, ok := w.pickRow()
	if !ok {
		return nil
	}
	if both {
		return w.write(w.user(), s, r, map[string]smartsheet.Value{
			smartsim.ColQuantity: w.newValue(s, r, smartsim.ColQuantity), smartsim.ColTotalPrice: w.newValue(s, r, smartsim.ColTotalPrice),
		})
	}
	// Mostly money, sometimes the other tracked columns.
	title := []string{smartsim.ColQuantity, smartsim.ColQuantity, smartsim.ColTotalPrice, smartsim.ColTotalPrice, smartsim.ColTotalPrice,
		smartsim.ColCU, smartsim.ColCompleted, smartsim.ColWorkRequest}[w.rng.IntN(8)]
	return w.write(w.user(), s, r, map[string]smartsheet.Value{title: w.newValue(s, r, title)})
}

// valueOf is the value to write for a recorded text of a column.
func valueOf(title, text string) smartsheet.Value {
	switch title {
	case smartsim.ColCompleted:
		return smartsheet.BoolValue(text == "true")
	case smartsim.ColQuantity, smartsim.ColTotalPrice, smartsim.ColWorkRequest:
		if text != "" {
			return smartsheet.NumberValue(text)
		}
	}
	return smartsheet.StringValue(text)
}

// back reverts a touched cell (to its value before its last edit) or
// re-applies the edit a revert undid. It reports false when no cell fits.
func (w *world) back(op Op) (bool, error) {
	if len(w.touched) == 0 {
		return false, nil
	}
	start := w.rng.IntN(len(w.touched))
	for i := range w.touched {
		ref := w.touched[(start+i)%len(w.touched)]
		st := w.rows[ref.sheet][ref.row]
		h := w.hist[ref]
		if st == nil || len(h) < 2 || h[len(h)-1] != st.vals[ref.title] {
			continue
		}
		var to string
		switch {
		case op == OpRevert:
			to = h[len(h)-2]
		case len(h) >= 3 && h[len(h)-1] == h[len(h)-3]:
			to = h[len(h)-2]
		default:
			continue
		}
		return true, w.write(w.user(), ref.sheet, ref.row, map[string]smartsheet.Value{ref.title: valueOf(ref.title, to)})
	}
	return false, nil
}

func (w *world) sameValue() error {
	s, r, ok := w.pickRow()
	if !ok {
		return nil
	}
	title := []string{smartsim.ColQuantity, smartsim.ColTotalPrice, smartsim.ColCU}[w.rng.IntN(3)]
	return w.write(w.user(), s, r, map[string]smartsheet.Value{title: valueOf(title, w.rows[s][r].vals[title])})
}

func (w *world) untracked() error {
	s, r, ok := w.pickRow()
	if !ok {
		return nil
	}
	title := untracked[w.rng.IntN(len(untracked))]
	return w.write(w.user(), s, r, map[string]smartsheet.Value{title: w.newValue(s, r, title)})
}

func (w *world) delete() error {
	s, r, ok := w.pickRow()
	if !ok {
		return nil
	}
	u := w.user()
	if _, err := w.srv.DeleteRows(smartsim.Edit{User: u}, s, []int64{r}); err != nil {
		return err
	}
	delete(w.rows[s], r)
	live := w.live[s]
	for i, id := range live {
		if id == r {
			w.live[s] = append(live[:i], live[i+1:]...)
			break
		}
	}
	w.deletedBy[[2]int64{s, r}] = u.Email
	w.window = append(w.window, editRec{op: OpDelete, sheet: s, row: r, by: u.Email, at: w.srv.Now()})
	return nil
}

// addRow adds a billable row to a closed week (late) or to the open one.
func (w *world) addRow(late bool) error {
	s := w.sheets[w.rng.IntN(len(w.sheets))]
	week := w.current
	if late {
		week = w.current.AddDate(0, 0, -7*(1+w.rng.IntN(w.weeks-1)))
	}
	snap := week.AddDate(0, 0, -w.rng.IntN(7))
	if now := w.srv.Now(); snap.After(now) {
		snap = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	}
	u := []smartsheet.User{demo.Jesse, demo.Dana}[w.rng.IntN(2)]
	qty := int64(1 + w.rng.IntN(20))
	cents := 1000 + w.rng.Int64N(300_000)
	cells := map[string]smartsheet.Value{
		smartsim.ColWorkRequest:  smartsheet.IntValue(int64(90_000_000 + w.rng.IntN(9_000_000))),
		smartsim.ColWeekEnding:   smartsheet.StringValue(week.Format(time.DateOnly)),
		smartsim.ColSnapshotDate: smartsheet.StringValue(snap.Format(time.DateOnly)),
		smartsim.ColCompleted:    smartsheet.BoolValue(true),
		smartsim.ColQuantity:     smartsheet.IntValue(qty),
		smartsim.ColTotalPrice:   smartsheet.NumberValue(fmt.Sprintf("%d.%02d", cents/100, cents%100)),
		smartsim.ColForeman:      smartsheet.StringValue(u.Name),
		smartsim.ColCU:           smartsheet.StringValue("ANC-M"),
		smartsim.ColWorkType:     smartsheet.StringValue("Maintenance"),
		smartsim.ColPole:         smartsheet.StringValue("P-" + strconv.Itoa(100000+w.rng.IntN(900000))),
	}
	var sc []smartsheet.Cell
	for _, title := range slices.Sorted(maps.Keys(cells)) {
		sc = append(sc, smartsheet.Cell{ColumnID: w.cols[s][title], Value: cells[title]})
	}
	out, err := w.srv.AddRows(smartsim.Edit{User: u}, s, []smartsheet.Row{{Cells: sc}})
	if err != nil {
		return err
	}
	st := &rowState{vals: map[string]string{}, createdAt: w.srv.Now().UTC(), createdBy: u.Email}
	if out[0].CreatedAt != nil {
		st.createdAt = out[0].CreatedAt.UTC()
	}
	for title, id := range w.cols[s] {
		if c := out[0].Cell(id); c != nil {
			st.vals[title] = c.Value.Text()
		}
	}
	w.rows[s][out[0].ID] = st
	w.live[s] = append(w.live[s], out[0].ID)
	return nil
}

// weekMove moves a row's week-ending cell to another of the sheets' weeks.
func (w *world) weekMove() error {
	s, r, ok := w.pickRow()
	if !ok {
		return nil
	}
	st := w.rows[s][r]
	if st.vals[smartsim.ColWeekEnding] == "" {
		return w.snapshotStampRow(s, r)
	}
	for {
		to := w.current.AddDate(0, 0, -7*w.rng.IntN(w.weeks)).Format(time.DateOnly)
		if to != st.vals[smartsim.ColWeekEnding] {
			return w.write(w.user(), s, r, map[string]smartsheet.Value{smartsim.ColWeekEnding: smartsheet.StringValue(to)})
		}
	}
}

// snapshotStamp re-stamps a Snapshot Date, preferring rows without a week
// ending (whose week it moves).
func (w *world) snapshotStamp() error {
	for range 20 {
		s, r, ok := w.pickRow()
		if !ok {
			return nil
		}
		if w.rows[s][r].vals[smartsim.ColWeekEnding] == "" {
			return w.snapshotStampRow(s, r)
		}
	}
	s, r, ok := w.pickRow()
	if !ok {
		return nil
	}
	return w.snapshotStampRow(s, r)
}

func (w *world) snapshotStampRow(s, r int64) error {
	now := w.srv.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	cur := w.rows[s][r].vals[smartsim.ColSnapshotDate]
	for {
		d := today.AddDate(0, 0, -w.rng.IntN(7*w.weeks-6)).Format(time.DateOnly)
		if d != cur {
			return w.write(w.user(), s, r, map[string]smartsheet.Value{smartsim.ColSnapshotDate: smartsheet.StringValue(d)})
		}
	}
}

// blankWeekEndings clears the week-ending cell of about one row in every
// n, so their week comes from the Snapshot Date (before the baseline).
func (w *world) blankWeekEndings(n int) error {
	for _, s := range w.sheets {
		for i, r := range w.live[s] {
			if i%n != n/2 {
				continue
			}
			if err := w.write(demo.Jesse, s, r, map[string]smartsheet.Value{smartsim.ColWeekEnding: smartsheet.StringValue("")}); err != nil {
				return err
			}
		}
	}
	w.resetWindow()
	w.hist, w.touched = map[cellRef][]string{}, nil
	return nil
}
