package smartsim

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Edit attributes a write: who made it, when, and with which change agent.
type Edit struct {
	User smartsheet.User
	// At is the time of the change (zero: the simulated now). It is stored in
	// UTC, truncated to seconds.
	At time.Time
	// ChangeAgent is the Smartsheet-Change-Agent of the write, echoed on events.
	ChangeAgent string
}

// Event object and event types, as in webhook callbacks.
const (
	ObjectSheet      = "sheet"
	ObjectRow        = "row"
	ObjectColumn     = "column"
	ObjectCell       = "cell"
	ObjectAttachment = "attachment"

	EventCreated = "created"
	EventUpdated = "updated"
	EventDeleted = "deleted"
)

// ChangeEvent is one recorded change. Every write of the simulator produces
// them through txn.record, in commit order; Seq increases by one per event.
type ChangeEvent struct {
	Seq         int64           `json:"seq"`
	SheetID     int64           `json:"sheetId"`
	ObjectType  string          `json:"objectType"`
	EventType   string          `json:"eventType"`
	ID          int64           `json:"id,omitempty"`
	RowID       int64           `json:"rowId,omitempty"`
	ColumnID    int64           `json:"columnId,omitempty"`
	User        smartsheet.User `json:"user"`
	UserID      int64           `json:"userId"`
	At          time.Time       `json:"timestamp"`
	ChangeAgent string          `json:"changeAgent,omitempty"`
}

// maxEvents bounds the event log kept in memory (oldest dropped first).
const maxEvents = 200_000

// OnChange registers fn to be called, outside the state lock and in order,
// with every event of each committed write.
func (s *Server) OnChange(fn func(ChangeEvent)) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.hooks = append(s.hooks, fn)
}

// Events returns the logged events with Seq greater than since.
func (s *Server) Events(since int64) []ChangeEvent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []ChangeEvent
	for _, e := range s.st.Events {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out
}

func (s *Server) dispatch(evs []ChangeEvent) {
	if len(evs) == 0 {
		return
	}
	s.hookMu.RLock()
	hooks := s.hooks
	s.hookMu.RUnlock()
	for _, h := range hooks {
		for _, e := range evs {
			h(e)
		}
	}
}

// txn is one write to one sheet. Callers hold s.mu; every mutation of sheet
// content goes through its methods, which record the events.
type txn struct {
	s      *Server
	sh     *sheetRec
	edit   Edit
	events []ChangeEvent
}

func (s *Server) begin(sh *sheetRec, e Edit) *txn {
	if e.At.IsZero() {
		e.At = s.clk.now()
	}
	e.At = e.At.UTC().Truncate(time.Second)
	if e.User.Email == "" {
		e.User = DefaultUser
	}
	return &txn{s: s, sh: sh, edit: e}
}

// record is the single place where a change event is created.
func (tx *txn) record(objectType, eventType string, id, rowID, columnID int64) {
	tx.events = append(tx.events, ChangeEvent{
		SheetID: tx.sh.ID, ObjectType: objectType, EventType: eventType,
		ID: id, RowID: rowID, ColumnID: columnID,
		User: tx.edit.User, UserID: userID(tx.edit.User.Email),
		At: tx.edit.At, ChangeAgent: tx.edit.ChangeAgent,
	})
}

// commit bumps the sheet version (a save is a save, even with no value change)
// and appends the events to the log. It returns the events to dispatch.
func (tx *txn) commit() []ChangeEvent {
	tx.sh.Version++
	if tx.edit.At.After(tx.sh.ModifiedAt) {
		tx.sh.ModifiedAt = tx.edit.At
	}
	tx.record(ObjectSheet, EventUpdated, tx.sh.ID, 0, 0)
	tx.s.appendEvents(tx.events)
	return tx.events
}

// commitCreated logs the events of a sheet creation (no version bump).
func (tx *txn) commitCreated() []ChangeEvent {
	tx.record(ObjectSheet, EventCreated, tx.sh.ID, 0, 0)
	tx.s.appendEvents(tx.events)
	return tx.events
}

// appendEvents numbers events and appends them to the log; callers hold s.mu.
func (s *Server) appendEvents(evs []ChangeEvent) {
	st := s.st
	next := int64(1)
	if n := len(st.Events); n > 0 {
		next = st.Events[n-1].Seq + 1
	}
	for i := range evs {
		evs[i].Seq = next + int64(i)
	}
	st.Events = append(st.Events, evs...)
	if over := len(st.Events) - maxEvents; over > 0 {
		st.Events = append([]ChangeEvent(nil), st.Events[over:]...)
	}
}

// touchRow marks a row saved by this edit.
func (tx *txn) touchRow(r *rowRec) {
	r.ModifiedAt = tx.edit.At
	r.ModifiedBy = tx.edit.User
}

// newRow creates an empty row attributed to the edit (not yet placed).
func (tx *txn) newRow() *rowRec {
	r := &rowRec{
		ID: tx.s.st.nextID(), CreatedAt: tx.edit.At, ModifiedAt: tx.edit.At,
		CreatedBy: tx.edit.User, ModifiedBy: tx.edit.User, Cells: map[int64]*cellRec{},
	}
	tx.record(ObjectRow, EventCreated, r.ID, r.ID, 0)
	return r
}

// setCell writes a cell. History is appended only when the value changes.
func (tx *txn) setCell(r *rowRec, columnID int64, c cellContent, created bool) {
	old := r.Cells[columnID]
	if old == nil {
		old = &cellRec{}
		if c.isEmpty() && c.Value.IsZero() {
			// An empty write to an empty cell: nothing to store.
			tx.touchRow(r)
			return
		}
		r.Cells[columnID] = old
	}
	own := c.Format
	if own == "" {
		own = old.Format
	}
	if dv, ok := formatNumber(c.Value, own, c.ColumnFormat); ok {
		// Rendered when written, like Smartsheet's history shows it.
		c.DisplayValue = dv
	}
	changed := !old.Value.Equal(c.Value)
	old.Value, old.DisplayValue, old.Formula = c.Value, c.DisplayValue, c.Formula
	old.Hyperlink, old.LinkInFromCell = c.Hyperlink, c.LinkInFromCell
	if c.Format != "" {
		old.Format = c.Format
	}
	if changed {
		old.History = append(old.History, histRec{
			Value: c.Value, DisplayValue: c.DisplayValue, At: tx.edit.At,
			By: tx.edit.User, ChangeAgent: tx.edit.ChangeAgent,
		})
		ev := EventUpdated
		if created {
			ev = EventCreated
		}
		tx.record(ObjectCell, ev, 0, r.ID, columnID)
	}
	tx.touchRow(r)
}

// cellContent is a validated cell write.
type cellContent struct {
	Value          smartsheet.Value
	DisplayValue   string
	Formula        string
	Hyperlink      *smartsheet.Hyperlink
	LinkInFromCell []byte
	Format         string // cell format descriptor; kept when empty
	ColumnFormat   string // the column's format: the baseline of the display value
}

func (c cellContent) isEmpty() bool {
	return c.Formula == "" && c.Hyperlink == nil && len(c.LinkInFromCell) == 0
}

const maxCellChars = 4000

// normalizeCell validates a cell write against its column, applying
// Smartsheet's strict typing, and computes the display value.
func (s *Server) normalizeCell(col *smartsheet.Column, in smartsheet.Cell) (cellContent, *apiError) {
	linked := len(in.LinkInFromCell) > 0 && string(in.LinkInFromCell) != "null"
	objVal := len(in.ObjectValue) > 0 && string(in.ObjectValue) != "null"
	if in.Formula != "" && (!in.Value.IsZero() || in.Hyperlink != nil || linked || objVal) {
		return cellContent{}, &apiError{status: 400, code: 1163, msg: "If cell.formula is specified, then value, objectValue, image, hyperlink, and linkInFromCell must not be specified."}
	}
	if h := in.Hyperlink; h != nil && h.URL != "" && (h.SheetID != 0 || h.ReportID != 0 || h.SightID != 0) {
		return cellContent{}, &apiError{status: 400, code: 1112, msg: "hyperlink.url must be null for sheet, report, or Sight hyperlinks."}
	}
	if in.Hyperlink != nil && linked {
		return cellContent{}, &apiError{status: 400, code: 1109, msg: "Only one of cell.hyperlink or cell.linkInFromCell may be non-null."}
	}
	if objVal {
		return cellContent{}, &apiError{status: 400, code: 1018, msg: "The simulator does not support cell.objectValue (predecessors, multi-contact)."}
	}
	out := cellContent{Formula: in.Formula, Hyperlink: in.Hyperlink, Format: in.Format, ColumnFormat: col.Format}
	if linked {
		out.LinkInFromCell = in.LinkInFromCell
	}
	v := in.Value
	if v.Kind() == smartsheet.KindString {
		t := v.Text()
		if t == "" {
			v = smartsheet.Value{}
		} else if utf8.RuneCountInString(t) > maxCellChars {
			v = smartsheet.StringValue(string([]rune(t)[:maxCellChars]))
		}
	}
	strict := in.Strict == nil || *in.Strict
	bad := func() (cellContent, *apiError) {
		return cellContent{}, &apiError{status: 400, code: 1042, msg: fmt.Sprintf(
			"The cell value in column %d did not conform to the strict requirements for type %s.", col.ID, col.Type)}
	}
	switch col.Type {
	case smartsheet.TypeCheckbox:
		switch {
		case v.IsZero():
			v = smartsheet.BoolValue(false)
		case v.Kind() == smartsheet.KindBool:
		case !strict && (strings.EqualFold(v.Text(), "true") || strings.EqualFold(v.Text(), "false")):
			v = smartsheet.BoolValue(strings.EqualFold(v.Text(), "true"))
		case strict:
			return bad()
		}
		out.Value = v
		if v.Kind() != smartsheet.KindBool {
			out.DisplayValue = v.Text()
		}
		return out, nil
	case smartsheet.TypeDate:
		if !v.IsZero() {
			d, err := time.Parse(time.DateOnly, v.Text())
			switch {
			case err == nil && v.Kind() == smartsheet.KindString:
				out.Value, out.DisplayValue = v, d.Format("01/02/06")
				return out, nil
			case strict:
				return bad()
			}
		}
	case smartsheet.TypeContact:
		if !v.IsZero() {
			addr, err := mail.ParseAddress(v.Text())
			switch {
			case err == nil && v.Kind() == smartsheet.KindString && addr.Address == v.Text():
				out.Value, out.DisplayValue = v, s.knownUser(v.Text()).Name
				return out, nil
			case strict:
				return bad()
			}
		}
	}
	out.Value = v
	if !v.IsZero() {
		out.DisplayValue = v.Text()
	}
	return out, nil
}

// userID is a stable numeric id for a user email.
func userID(email string) int64 {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(strings.ToLower(email)) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return int64(h & (1<<53 - 1))
}
