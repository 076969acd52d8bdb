package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/google/go-cmp/cmp"
)

// memRecords is an in-memory RecordLookup.
type memRecords struct {
	recs  []Record
	calls int
	err   error
}

func (m *memRecords) Records(_ context.Context, sheet, row, col int64, from, to time.Time) ([]Record, error) {
	m.calls++
	if m.err != nil {
		return nil, m.err
	}
	var out []Record
	for _, r := range m.recs {
		if r.SheetID == sheet && r.RowID == row && r.ColumnID == col &&
			(from.IsZero() || r.Time.After(from)) && (to.IsZero() || !r.Time.After(to)) {
			out = append(out, r)
		}
	}
	return out, nil
}

func TestAttributor(t *testing.T) {
	t1, t2, t3 := now.Add(-3*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)
	lookup := &memRecords{recs: []Record{
		{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 7, User: "ann@example.com", Name: "Ann", Time: t1, EventType: "updated"},
		{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 8, User: "bob@example.com", Name: "Bob", Time: t2, EventType: "updated"},
		{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 7, User: "ann@example.com", Name: "Ann", Time: now.Add(time.Hour), EventType: "updated"},
		{SheetID: 1, RowID: 11, ColumnID: 0, UserID: 8, User: "bob@example.com", Name: "Bob", Time: t3, EventType: "deleted"},
		{SheetID: 1, RowID: 12, ColumnID: 0, UserID: 9, Time: t3, EventType: "created"},
		{SheetID: 1, RowID: 13, ColumnID: 0, UserID: 9, User: "cy@example.com", Time: t3, EventType: "created"},
	}}
	window := audit.Attribution{Source: audit.SourceUnknown, WindowStart: now.Add(-4 * time.Hour), WindowEnd: now}
	change := func(kind audit.Kind, row, col int64, w audit.Attribution) *audit.Change {
		return &audit.Change{Kind: kind, SheetID: 1, RowID: row, ColumnID: col, Attribution: w}
	}
	at := func(user, name string, tm time.Time) audit.Attribution {
		return audit.Attribution{User: user, Name: name, Time: &tm, Source: audit.SourceWebhook, WindowStart: window.WindowStart, WindowEnd: window.WindowEnd}
	}
	tests := []struct {
		name   string
		c      *audit.Change
		cols   []int64
		want   audit.Attribution
		ok     bool
		lookup bool
	}{
		{"newest in window", change(audit.KindValueChanged, 10, 100, window), nil, at("bob@example.com", "Bob", t2), true, true},
		{"window excludes the newest", change(audit.KindValueChanged, 10, 100,
			audit.Attribution{WindowStart: window.WindowStart, WindowEnd: t1.Add(time.Minute)}), nil,
			audit.Attribution{User: "ann@example.com", Name: "Ann", Time: &t1, Source: audit.SourceWebhook, WindowStart: window.WindowStart, WindowEnd: t1.Add(time.Minute)}, true, true},
		{"start is exclusive", change(audit.KindValueChanged, 10, 100, audit.Attribution{WindowStart: t2, WindowEnd: now}), nil, audit.Attribution{}, false, true},
		{"week moved uses its column", change(audit.KindWeekMoved, 10, 100, window), nil, at("bob@example.com", "Bob", t2), true, true},
		{"no record", change(audit.KindValueChanged, 10, 101, window), nil, audit.Attribution{}, false, true},
		{"row deleted", change(audit.KindRowDeleted, 11, 0, window), nil, at("bob@example.com", "Bob", t3), true, true},
		{"row deleted needs a deleted record", change(audit.KindRowDeleted, 12, 0, window), nil, audit.Attribution{}, false, true},
		{"row added late, user unresolved", change(audit.KindRowAddedLate, 12, 0, window), nil, at("", "Smartsheet user 9", t3), true, true},
		{"row added late", change(audit.KindRowAddedLate, 13, 0, window), nil, at("cy@example.com", "", t3), true, true},
		{"column outside the covered ones: no lookup", change(audit.KindValueChanged, 10, 100, window), []int64{200}, audit.Attribution{}, false, false},
		{"column covered", change(audit.KindValueChanged, 10, 100, window), []int64{100, 200}, at("bob@example.com", "Bob", t2), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup.calls = 0
			got, ok, err := NewAttributor(lookup, tt.cols...).Attribute(context.Background(), tt.c)
			if err != nil || ok != tt.ok {
				t.Fatalf("Attribute(%s) = %v, %v, want ok %v", tt.name, ok, err, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Attribute(%s) (-want +got):\n%s", tt.name, diff)
			}
			if (lookup.calls > 0) != tt.lookup {
				t.Errorf("Attribute(%s) looked up %d times, want lookup %v", tt.name, lookup.calls, tt.lookup)
			}
		})
	}
}

// memNewest is a memRecords that knows each sheet's newest record time
// (computed from its records) and counts how often it is asked.
type memNewest struct {
	*memRecords
	mu     sync.Mutex
	asked  int
	err    error
	absent bool // answer "none stored" whatever the records
}

func (m *memNewest) NewestRecord(_ context.Context, sheet int64) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked++
	if m.err != nil {
		return time.Time{}, false, m.err
	}
	var t time.Time
	ok := false
	for _, r := range m.recs {
		if r.SheetID == sheet && !m.absent && (!ok || r.Time.After(t)) {
			t, ok = r.Time, true
		}
	}
	return t, ok, nil
}

func TestAttributorForBatch(t *testing.T) {
	t1, t2 := now.Add(-3*time.Hour), now.Add(-2*time.Hour)
	recs := []Record{
		{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 7, User: "ann@example.com", Name: "Ann", Time: t1, EventType: "updated"},
		{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 8, User: "bob@example.com", Name: "Bob", Time: t2, EventType: "updated"},
	}
	change := func(sheet int64, ws time.Time) *audit.Change {
		return &audit.Change{Kind: audit.KindValueChanged, SheetID: sheet, RowID: 10, ColumnID: 100,
			Attribution: audit.Attribution{WindowStart: ws, WindowEnd: now}}
	}
	tests := []struct {
		name    string
		c       *audit.Change
		lookup  *memNewest
		want    string // the user found, "" for none
		queried bool
	}{
		{"newest after the window start", change(1, t1), &memNewest{memRecords: &memRecords{recs: recs}}, "bob@example.com", true},
		{"open window start", change(1, time.Time{}), &memNewest{memRecords: &memRecords{recs: recs}}, "bob@example.com", true},
		{"newest at the window start: skipped", change(1, t2), &memNewest{memRecords: &memRecords{recs: recs}}, "", false},
		{"newest before the window start: skipped", change(1, now.Add(-time.Hour)), &memNewest{memRecords: &memRecords{recs: recs}}, "", false},
		{"sheet without records: skipped", change(2, t1), &memNewest{memRecords: &memRecords{recs: recs}}, "", false},
		{"open window, sheet without records: skipped", change(2, time.Time{}), &memNewest{memRecords: &memRecords{recs: recs}}, "", false},
		{"none stored, whatever the lookup holds: skipped", change(1, t1), &memNewest{memRecords: &memRecords{recs: recs}, absent: true}, "", false},
		{"newest unreadable: looked up", change(1, t1), &memNewest{memRecords: &memRecords{recs: recs}, err: errors.New("throttled")}, "bob@example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := NewAttributor(ResolvingLookup(tt.lookup, fakeUsers{}), 100).(audit.BatchAttributor).ForBatch()
			got, ok, err := at.Attribute(context.Background(), tt.c)
			if err != nil || ok != (tt.want != "") || got.User != tt.want {
				t.Errorf("Attribute(%s) = %q, %v, %v, want %q", tt.name, got.User, ok, err, tt.want)
			}
			if (tt.lookup.calls > 0) != tt.queried {
				t.Errorf("Attribute(%s) looked up %d times, want lookup %v", tt.name, tt.lookup.calls, tt.queried)
			}
		})
	}
}

// The batch's attributor reads a sheet's newest record time once, however
// many changes (concurrently) ask; the next batch reads it again.
func TestAttributorForBatchReadsNewestOnce(t *testing.T) {
	lookup := &memNewest{memRecords: &memRecords{recs: []Record{{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 7, Time: now.Add(-2 * time.Hour)}}}}
	a := NewAttributor(lookup).(audit.BatchAttributor)
	for batch := 1; batch <= 2; batch++ {
		at := a.ForBatch()
		var wg sync.WaitGroup
		for row := range int64(50) {
			wg.Go(func() {
				c := &audit.Change{Kind: audit.KindValueChanged, SheetID: 1, RowID: row, ColumnID: 100,
					Attribution: audit.Attribution{WindowStart: now.Add(-time.Hour), WindowEnd: now}}
				if _, ok, err := at.Attribute(context.Background(), c); ok || err != nil {
					t.Errorf("Attribute(row %d) = %v, %v, want nothing", row, ok, err)
				}
			})
		}
		wg.Wait()
		if lookup.asked != batch || lookup.calls != 0 {
			t.Errorf("after batch %d: NewestRecord asked %d times, Records %d; want %d and 0", batch, lookup.asked, lookup.calls, batch)
		}
	}
	// Outside a batch the attributor looks up every change, as before.
	c := &audit.Change{Kind: audit.KindValueChanged, SheetID: 1, RowID: 10, ColumnID: 100,
		Attribution: audit.Attribution{WindowStart: now.Add(-time.Hour), WindowEnd: now}}
	if _, _, err := a.Attribute(context.Background(), c); err != nil || lookup.calls != 1 || lookup.asked != 2 {
		t.Errorf("Attribute outside a batch: err %v, Records %d, NewestRecord %d; want 1 and 2", err, lookup.calls, lookup.asked)
	}
}

func TestAttributorInChain(t *testing.T) {
	boom := errors.New("table unavailable")
	c := &audit.Change{Kind: audit.KindValueChanged, SheetID: 1, RowID: 1, ColumnID: 1,
		Attribution: audit.Attribution{WindowStart: now.Add(-time.Hour), WindowEnd: now}}
	fallback := audit.AttributorFunc(func(context.Context, *audit.Change) (audit.Attribution, bool, error) {
		return audit.Attribution{User: "x@example.com", Source: audit.SourceWriterInfo}, true, nil
	})
	err := audit.AttributeChain(context.Background(), c, NewAttributor(&memRecords{err: boom}), fallback)
	if !errors.Is(err, boom) || c.Attribution.Source != audit.SourceWriterInfo {
		t.Errorf("AttributeChain(lookup fails) = %v, source %s; want %v and the next attributor's answer", err, c.Attribution.Source, boom)
	}
}

type fakeUsers map[int64][2]string

func (f fakeUsers) User(_ context.Context, id int64) (string, string, error) {
	u, ok := f[id]
	if !ok {
		return "", "", errors.New("404")
	}
	return u[0], u[1], nil
}

func TestRecordsAndResolveUsers(t *testing.T) {
	cb := Callback{WebhookID: hookID, SheetID: 5, Nonce: "n", Events: []Event{
		{ObjectType: "cell", EventType: "updated", RowID: 1, ColumnID: 2, UserID: 7, Time: now, ChangeAgent: "x"},
		{ObjectType: "row", EventType: "created", RowID: 3, UserID: 8, Time: now},
		{ObjectType: "cell", EventType: "updated", RowID: 1, ColumnID: 3, UserID: 7, Time: now},
	}}
	recs := cb.Records()
	err := ResolveUsers(context.Background(), fakeUsers{7: {"ann@example.com", "Ann"}}, recs)
	want := []Record{
		{SheetID: 5, RowID: 1, ColumnID: 2, UserID: 7, User: "ann@example.com", Name: "Ann", Time: now, EventType: "updated", ChangeAgent: "x"},
		{SheetID: 5, RowID: 3, UserID: 8, Time: now, EventType: "created"},
		{SheetID: 5, RowID: 1, ColumnID: 3, UserID: 7, User: "ann@example.com", Name: "Ann", Time: now, EventType: "updated"},
	}
	if err == nil {
		t.Errorf("ResolveUsers(unknown user 8) = nil error, want one")
	}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("Records+ResolveUsers (-want +got):\n%s", diff)
	}
}

// TestAttributorPrecision: the window is compared at Smartsheet's precision,
// with and without the batch's newest-record shortcut. A scan's window
// starts at our clock (sub-second) or at a baseline's modification
// (Smartsheet's whole seconds) and ends at the row's modification (whole
// seconds, the last save of any column) or at the scan.
func TestAttributorPrecision(t *testing.T) {
	sec := time.Date(2026, 11, 30, 10, 0, 5, 0, time.UTC) // 10:00:05
	priya := func(tm time.Time) Record {
		return Record{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 7, User: "priya@example.com", Name: "Priya", Time: tm, EventType: "updated"}
	}
	tests := []struct {
		name   string
		rec    Record
		ws, we time.Time
		want   bool
	}{
		{name: "event in the second the scan started, after it", rec: priya(sec), ws: sec.Add(300 * time.Millisecond), we: sec.Add(time.Minute), want: true},
		{name: "event a second before the scan", rec: priya(sec.Add(-time.Second)), ws: sec.Add(300 * time.Millisecond), we: sec.Add(time.Minute)},
		{name: "event stamped with milliseconds, the row's modification in whole seconds", rec: priya(sec.Add(800 * time.Millisecond)), ws: sec.Add(-time.Hour), we: sec, want: true},
		{name: "event the second after the row's modification", rec: priya(sec.Add(time.Second + 100*time.Millisecond)), ws: sec.Add(-time.Hour), we: sec},
		{name: "two editors: the cell's event before the row's later untracked save", rec: priya(sec), ws: sec.Add(-time.Hour), we: sec.Add(4 * time.Second), want: true},
		{name: "event at the baseline's own modification: the edit already seen", rec: priya(sec), ws: sec, we: sec.Add(time.Minute)},
		{name: "event a second after the baseline's modification", rec: priya(sec.Add(time.Second)), ws: sec, we: sec.Add(time.Minute), want: true},
	}
	for _, tt := range tests {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batch=%v", tt.name, batch), func(t *testing.T) {
				lookup := &memNewest{memRecords: &memRecords{recs: []Record{tt.rec}}}
				var at audit.Attributor = NewAttributor(lookup)
				if batch {
					at = at.(audit.BatchAttributor).ForBatch()
				}
				c := &audit.Change{Kind: audit.KindValueChanged, SheetID: 1, RowID: 10, ColumnID: 100,
					Attribution: audit.Attribution{Source: audit.SourceUnknown, WindowStart: tt.ws, WindowEnd: tt.we}}
				got, ok, err := at.Attribute(context.Background(), c)
				if err != nil || ok != tt.want {
					t.Fatalf("Attribute(%s) ok = %v, %v; want %v", tt.name, ok, err, tt.want)
				}
				if ok && (got.User != "priya@example.com" || got.Source != audit.SourceWebhook || !got.Time.Equal(tt.rec.Time)) {
					t.Errorf("Attribute(%s) = %+v, want Priya by webhook at %v", tt.name, got, tt.rec.Time)
				}
			})
		}
	}
}

func TestAttributorCoversSheet(t *testing.T) {
	recs := &memRecords{recs: []Record{{SheetID: 1, RowID: 10, ColumnID: 100, UserID: 7, Time: now}}}
	tests := []struct {
		name   string
		lookup RecordLookup
		batch  bool
		sheet  int64
		want   bool
	}{
		{name: "sheet with records", lookup: &memNewest{memRecords: recs}, sheet: 1, want: true},
		{name: "sheet with records, batch", lookup: &memNewest{memRecords: recs}, batch: true, sheet: 1, want: true},
		{name: "sheet without records", lookup: &memNewest{memRecords: recs}, sheet: 2},
		{name: "sheet without records, batch", lookup: &memNewest{memRecords: recs}, batch: true, sheet: 2},
		{name: "unreadable: cannot tell, so covered", lookup: &memNewest{memRecords: recs, err: errors.New("boom")}, sheet: 2, want: true},
		{name: "unreadable, batch", lookup: &memNewest{memRecords: recs, err: errors.New("boom")}, batch: true, sheet: 2, want: true},
		{name: "lookup without newest times", lookup: recs, sheet: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAttributor(tt.lookup).(*Attributor)
			if tt.batch {
				a = a.ForBatch().(*Attributor)
			}
			if got := a.CoversSheet(context.Background(), tt.sheet); got != tt.want {
				t.Errorf("CoversSheet(%d) = %v, want %v", tt.sheet, got, tt.want)
			}
		})
	}
}
