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
type Attributor struct {
	lookup  RecordLookup
	columns map[int64]bool
	newest  *newestCache // the batch's, nil outside one
}

var _ audit.BatchAttributor = (*Attributor)(nil)

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
	if a.newest != nil && a.newest.noneAfter(ctx, c.SheetID, ws) {
		return audit.Attribution{}, false, nil
	}
	recs, err := a.lookup.Records(ctx, c.SheetID, c.RowID, column, ws, we)
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
		if (!ws.IsZero() && !r.Time.After(ws)) || (!we.IsZero() && r.Time.After(we)) {
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

// noneAfter reports whether the sheet surely has no record after from (a
// zero from is open): none stored, or the newest at or before from. A
// failed read answers false, so the records are looked up as before.
func (n *newestCache) noneAfter(ctx context.Context, sheetID int64, from time.Time) bool {
	n.mu.Lock()
	e := n.sheets[sheetID]
	if e == nil {
		e = &newestEntry{}
		n.sheets[sheetID] = e
	}
	n.mu.Unlock()
	e.once.Do(func() { e.t, e.ok, e.err = n.lookup.NewestRecord(ctx, sheetID) })
	switch {
	case e.err != nil:
		return false
	case !e.ok:
		return true
	default:
		return !from.IsZero() && !e.t.After(from)
	}
}
