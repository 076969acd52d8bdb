package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// Record is one stored attribution: who changed a cell (or created or
// deleted a row: ColumnID 0) and when, as a webhook event told it.
type Record struct {
	SheetID  int64 `json:"sheetId"`
	RowID    int64 `json:"rowId"`
	ColumnID int64 `json:"columnId,omitempty"`
	UserID   int64 `json:"userId"`
	// User is the email and Name the display name, once resolved from
	// UserID (see [ResolveUsers]); empty before.
	User        string    `json:"user,omitempty"`
	Name        string    `json:"name,omitempty"`
	Time        time.Time `json:"time"`
	EventType   string    `json:"eventType,omitempty"`
	ChangeAgent string    `json:"changeAgent,omitempty"`
}

// Records turns a callback's events into attribution records (users not yet
// resolved).
func (cb Callback) Records() []Record {
	out := make([]Record, 0, len(cb.Events))
	for _, e := range cb.Events {
		out = append(out, Record{SheetID: cb.SheetID, RowID: e.RowID, ColumnID: e.ColumnID, UserID: e.UserID,
			Time: e.Time, EventType: e.EventType, ChangeAgent: e.ChangeAgent})
	}
	return out
}

// Users resolves Smartsheet user ids (GET /users/{id}).
type Users interface {
	User(ctx context.Context, userID int64) (email, name string, err error)
}

// ResolveUsers fills User and Name of the records from their UserID, asking
// users once per distinct id. Records of ids that fail keep UserID only and
// the errors are returned joined with the first one.
func ResolveUsers(ctx context.Context, users Users, recs []Record) error {
	type who struct{ email, name string }
	known := map[int64]who{}
	var firstErr error
	for i := range recs {
		id := recs[i].UserID
		if id == 0 || recs[i].User != "" {
			continue
		}
		w, ok := known[id]
		if !ok {
			email, name, err := users.User(ctx, id)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("resolve user %d: %w", id, err)
				}
				continue
			}
			w = who{email, name}
			known[id] = w
		}
		recs[i].User, recs[i].Name = w.email, w.name
	}
	return firstErr
}

// RecordLookup finds stored records of one cell (columnID 0: the row's
// created/deleted records) with from < Time ≤ to (a zero bound is open).
type RecordLookup interface {
	Records(ctx context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]Record, error)
}

// NewestRecordLookup is a RecordLookup that also knows, per sheet, the time
// of the newest record it stored (kept by its PutRecords). The Attributor of
// a batch (see [Attributor.ForBatch]) reads it once per sheet and does not
// look up the records of a change whose window starts at or after it: no
// record can match.
type NewestRecordLookup interface {
	RecordLookup
	// NewestRecord returns the time of the newest record stored for the
	// sheet; ok is false when none was stored.
	NewestRecord(ctx context.Context, sheetID int64) (t time.Time, ok bool, err error)
}

// Attributor attributes changes from webhook records: the newest record of
// the changed cell within the change's window. Row changes (ROW_DELETED,
// ROW_ADDED_LATE) use the row's records (ColumnID 0): for a deletion only a
// "deleted" record, for a late addition only a "created" one.
//
// The cell's event names its editor whatever else was saved on the row
// later: it is asked before writer info, which names the row's last saver.
// The window is compared at Smartsheet's precision (see inWindow): an
// event's time may carry milliseconds while the window ends at the row's
// modification time in whole seconds, and a window starting at our scan
// clock may fall inside the second Smartsheet stamped on a later edit.
type Attributor struct {
	lookup  RecordLookup
	columns map[int64]bool
	newest  *newestCache // the batch's, nil outside one
}

var (
	_ audit.BatchAttributor = (*Attributor)(nil)
	_ audit.EventCoverage   = (*Attributor)(nil)
)

// NewAttributor returns an Attributor reading lookup. columnIDs, if given,
// are the columns the webhook records cover (the webhook's subscope): a cell
// change in another column is left to the next attributor without a lookup.
func NewAttributor(lookup RecordLookup, columnIDs ...int64) audit.Attributor {
	a := &Attributor{lookup: lookup}
	if len(columnIDs) > 0 {
		a.columns = make(map[int64]bool, len(columnIDs))
		for _, id := range columnIDs {
			a.columns[id] = true
		}
	}
	return a
}

// ForBatch implements [audit.BatchAttributor]: when the lookup is a
// [NewestRecordLookup], the returned Attributor reads each sheet's newest
// record time once and skips the lookups that cannot match; otherwise it is
// a itself.
func (a *Attributor) ForBatch() audit.Attributor {
	nl, ok := a.lookup.(NewestRecordLookup)
	if !ok {
		return a
	}
	return &Attributor{lookup: a.lookup, columns: a.columns, newest: &newestCache{lookup: nl, sheets: map[int64]*newestEntry{}}}
}

// Attribute implements [audit.Attributor].
func (a *Attributor) Attribute(ctx context.Context, c *audit.Change) (audit.Attribution, bool, error) {
	column, want := c.ColumnID, ""
	switch c.Kind {
	case audit.KindRowDeleted:
		column, want = 0, "deleted"
	case audit.KindRowAddedLate:
		column, want = 0, "created"
	default:
		if column == 0 || (a.columns != nil && !a.columns[column]) {
			return audit.Attribution{}, false, nil
		}
	}
	ws, we := c.Attribution.WindowStart, c.Attribution.WindowEnd
	// The lookup's bounds are exact: ask a second wider on each side and
	// let inWindow decide.
	from, to := ws, we
	if !from.IsZero() {
		from = from.Add(-time.Second)
	}
	if !to.IsZero() {
		to = to.Add(time.Second)
	}
	if a.newest != nil && a.newest.noneIn(ctx, c.SheetID, ws) {
		return audit.Attribution{}, false, nil
	}
	recs, err := a.lookup.Records(ctx, c.SheetID, c.RowID, column, from, to)
	if err != nil {
		return audit.Attribution{}, false, fmt.Errorf("webhook records of sheet %d row %d column %d: %w", c.SheetID, c.RowID, column, err)
	}
	var best *Record
	for i := range recs {
		r := &recs[i]
		if r.SheetID != c.SheetID || r.RowID != c.RowID || r.ColumnID != column {
			continue
		}
		if want != "" && r.EventType != "" && r.EventType != want {
			continue
		}
		if !inWindow(r.Time, ws, we) {
			continue
		}
		if best == nil || !r.Time.Before(best.Time) {
			best = r
		}
	}
	if best == nil {
		return audit.Attribution{}, false, nil
	}
	t := best.Time.UTC()
	name := best.Name
	if best.User == "" && name == "" {
		name = fmt.Sprintf("Smartsheet user %d", best.UserID)
	}
	return audit.Attribution{User: best.User, Name: name, Time: &t, Source: audit.SourceWebhook,
		WindowStart: ws, WindowEnd: we}, true, nil
}

// CoversSheet implements [audit.EventCoverage]: a sheet with stored records
// has a webhook delivering its edits, so a changed cell's event names its
// editor (now or when its callback arrives) and writer info, blind to later
// saves of untracked columns, is not used for it. It needs a
// [NewestRecordLookup] (without one: false); a failed read answers true, as
// "cannot tell" must not fall back on writer info.
func (a *Attributor) CoversSheet(ctx context.Context, sheetID int64) bool {
	if a.newest != nil {
		e := a.newest.entry(ctx, sheetID)
		return e.err != nil || e.ok
	}
	nl, ok := a.lookup.(NewestRecordLookup)
	if !ok {
		return false
	}
	_, ok, err := nl.NewestRecord(ctx, sheetID)
	return err != nil || ok
}

// inWindow reports whether an event Smartsheet stamped t may have happened
// in the window (ws, we] (a zero bound is open), at the precision of
// Smartsheet's stamps: whole seconds, so t is taken to its second. It may
// have happened after ws when that second ends after ws and is not ws itself
// (audit.StampedAfter), and no later than we when its second is not after
// we: an event at 10:00:05.300 is the save the row stamps 10:00:05.
func inWindow(t, ws, we time.Time) bool {
	t = t.Truncate(time.Second)
	return (ws.IsZero() || audit.StampedAfter(t, ws)) && (we.IsZero() || !t.After(we))
}

// newestCache holds the newest record time of each sheet asked about during
// one batch, read once per sheet even by concurrent changes.
type newestCache struct {
	lookup NewestRecordLookup
	mu     sync.Mutex
	sheets map[int64]*newestEntry
}

type newestEntry struct {
	once sync.Once
	t    time.Time
	ok   bool
	err  error
}

// entry reads the sheet's newest record time once per batch.
func (n *newestCache) entry(ctx context.Context, sheetID int64) *newestEntry {
	n.mu.Lock()
	e := n.sheets[sheetID]
	if e == nil {
		e = &newestEntry{}
		n.sheets[sheetID] = e
	}
	n.mu.Unlock()
	e.once.Do(func() { e.t, e.ok, e.err = n.lookup.NewestRecord(ctx, sheetID) })
	return e
}

// noneIn reports whether the sheet surely has no record in a window that
// starts at ws (a zero ws is open; see inWindow): none stored, or the newest
// too old. A failed read answers false, so the records are looked up as
// before.
func (n *newestCache) noneIn(ctx context.Context, sheetID int64, ws time.Time) bool {
	e := n.entry(ctx, sheetID)
	switch {
	case e.err != nil:
		return false
	case !e.ok:
		return true
	case ws.IsZero():
		return false
	default:
		// Records are no newer than e.t, and inWindow takes their second: a
		// record's second must end after ws and not be ws itself.
		sec := e.t.Truncate(time.Second)
		return !ws.Before(sec.Add(time.Second)) || (!e.t.After(ws) && ws.Equal(ws.Truncate(time.Second)))
	}
}
