package pipeline

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

// memHookRecords is an in-memory webhook record store: the lookup, with the
// newest record time of each sheet, as the bolt and DynamoDB stores.
type memHookRecords struct {
	mu   sync.Mutex
	recs []webhook.Record
}

var _ webhook.NewestRecordLookup = (*memHookRecords)(nil)

func (m *memHookRecords) add(recs ...webhook.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, recs...)
}

func (m *memHookRecords) Records(_ context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]webhook.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []webhook.Record
	for _, r := range m.recs {
		if r.SheetID == sheetID && r.RowID == rowID && r.ColumnID == columnID &&
			(from.IsZero() || r.Time.After(from)) && (to.IsZero() || !r.Time.After(to)) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memHookRecords) NewestRecord(_ context.Context, sheetID int64) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t time.Time
	ok := false
	for _, r := range m.recs {
		if r.SheetID == sheetID && (!ok || r.Time.After(t)) {
			t, ok = r.Time, true
		}
	}
	return t, ok, nil
}

// TestAttributionOrderOfArrival plays issue 12 in every order of arrival:
// Priya changes a closed-week price at t0-70m; in the two-editor cases Luis
// then saves an untracked column of the same row at t0-60m (the row's writer
// info becomes his, no webhook event: the subscope has tracked columns
// only). The webhook callback carrying Priya's event reaches the store
// before or after the targeted refresh and the scheduled scan. Whatever the
// order, the change is recorded once and never named after Luis: by the
// webhook event when it was stored before the change was analysed, else by
// cell history (within its budget), else unknown with its window.
func TestAttributionOrderOfArrival(t *testing.T) {
	const (
		row      = int64(501)
		colQty   = int64(13)
		colPrice = int64(14)
	)
	priya := smartsheet.User{Email: "priya.shah@fieldops.example.com", Name: "Priya Shah"}
	kim := smartsheet.User{Email: "kim@fieldops.example.com", Name: "Kim Lee"}
	luis := smartsheet.User{Email: "luis.ortega@crews.example.com", Name: "Luis Ortega"}
	priceAt, qtyAt, luisAt := t0.Add(-70*time.Minute), t0.Add(-65*time.Minute), t0.Add(-60*time.Minute)
	event := func(u smartsheet.User, col int64, at time.Time) webhook.Record {
		return webhook.Record{SheetID: sourceID, RowID: row, ColumnID: col, UserID: 7, User: u.Email, Name: u.Name, Time: at, EventType: "updated"}
	}

	type step string
	const (
		priceEdit step = "Priya edits the price"
		qtyEdit   step = "Kim edits the quantity"
		luisSave  step = "Luis saves an untracked column"
		callback  step = "the callback's records are stored"
		refresh   step = "the targeted refresh runs"
		scan      step = "the scheduled scan runs"
	)
	type want struct {
		Column string
		User   string
		Source audit.AttributionSource
		Timed  bool // the attribution has an exact time
	}
	byWebhook := want{Column: audit.ColPrice, User: priya.Email, Source: audit.SourceWebhook, Timed: true}
	byHistory := want{Column: audit.ColPrice, User: priya.Email, Source: audit.SourceCellHistory, Timed: true}
	unknown := want{Column: audit.ColPrice, Source: audit.SourceUnknown}
	tests := []struct {
		name        string
		steps       []step
		noHistory   bool // SkipCellHistory
		noWriter    bool // SkipWriterInfo
		noURL       bool // the runner keeps no webhooks itself (the analyze function)
		noWebhooks  bool // no webhook records at all
		earlierRecs bool // the sheet had records before (another row's edit)
		want        []want
	}{
		{name: "callback before the refresh, then the scan", steps: []step{priceEdit, callback, refresh, scan}, want: []want{byWebhook}},
		{name: "callback before the scan", steps: []step{priceEdit, callback, scan}, want: []want{byWebhook}},
		{name: "callback after the scan (delayed), then its refresh", steps: []step{priceEdit, scan, callback, refresh}, want: []want{byHistory}},
		{name: "callback after the scan, no cell history", steps: []step{priceEdit, scan, callback, refresh}, noHistory: true, want: []want{unknown}},
		{name: "two editors: callback before the refresh", steps: []step{priceEdit, luisSave, callback, refresh, scan}, want: []want{byWebhook}},
		{name: "two editors: callback before the scan, refresh still queued", steps: []step{priceEdit, luisSave, callback, scan, refresh}, want: []want{byWebhook}},
		{name: "two editors: callback after the scan (delayed)", steps: []step{priceEdit, luisSave, scan, callback, refresh}, want: []want{byHistory}},
		{name: "two editors: callback after the scan, no cell history", steps: []step{priceEdit, luisSave, scan, callback, refresh}, noHistory: true, want: []want{unknown}},
		{name: "two editors: delayed callback, analyze function on a sheet with records", steps: []step{priceEdit, luisSave, scan, callback, refresh},
			noURL: true, earlierRecs: true, want: []want{byHistory}},
		{name: "two editors: Luis's save seen by a refresh before Priya's callback", steps: []step{priceEdit, luisSave, refresh, callback, scan}, want: []want{byHistory}},
		{name: "delayed callbacks of two tracked edits by two editors, then the scan", steps: []step{priceEdit, qtyEdit, scan, callback, refresh},
			want: []want{{Column: audit.ColQuantity, User: kim.Email, Source: audit.SourceCellHistory, Timed: true}, byHistory}},
		{name: "two tracked edits by two editors, callbacks first", steps: []step{priceEdit, qtyEdit, callback, scan},
			want: []want{{Column: audit.ColQuantity, User: kim.Email, Source: audit.SourceWebhook, Timed: true}, byWebhook}},
		// Without webhooks nothing cheaper than cell history can see Luis's
		// save: writer info remains the best cheap guess there.
		{name: "no webhooks, no cell history: writer info guesses", steps: []step{priceEdit, scan}, noWebhooks: true, noHistory: true,
			want: []want{{Column: audit.ColPrice, User: priya.Email, Source: audit.SourceWriterInfo, Timed: true}}},
		// Luis's save changed no cell (a same-value save, as far as the scan
		// can see): the row's other cells are as before, so writer info
		// passes for proven and names him. That is the gap SkipWriterInfo
		// closes, at the cost of a cell-history call a change.
		{name: "no webhooks, a later save that changed no cell: writer info names its saver", steps: []step{priceEdit, luisSave, scan},
			noWebhooks: true, want: []want{{Column: audit.ColPrice, User: luis.Email, Source: audit.SourceWriterInfo, Timed: true}}},
		{name: "no webhooks, writer info skipped: cell history", steps: []step{priceEdit, luisSave, scan},
			noWebhooks: true, noWriter: true, want: []want{byHistory}},
		{name: "no webhooks, writer info and cell history skipped: unknown", steps: []step{priceEdit, scan},
			noWebhooks: true, noWriter: true, noHistory: true, want: []want{unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			recs := &memHookRecords{}
			if tt.earlierRecs {
				recs.add(webhook.Record{SheetID: sourceID, RowID: 502, ColumnID: colQty, UserID: 8, User: kim.Email, Time: t0.Add(-3 * time.Hour), EventType: "updated"})
			}
			if !tt.noWebhooks {
				f.opts.Webhooks = webhook.NewAttributor(recs)
				if !tt.noURL {
					f.opts.WebhookCallbackURL = callbackURL
				}
			}
			f.opts.SkipCellHistory = tt.noHistory
			f.opts.SkipWriterInfo = tt.noWriter
			history := map[int64][]smartsheet.CellHistory{} // by column, newest first
			f.sources.CellHistoryFunc = func(_ context.Context, sheetID, rowID, columnID int64) ([]smartsheet.CellHistory, error) {
				if sheetID != sourceID || rowID != row {
					return nil, nil
				}
				return history[columnID], nil
			}
			var pending []webhook.Record // events whose callback has not arrived
			edit := func(u smartsheet.User, at time.Time, col int64, v string) {
				r := &f.source.Rows[0]
				r.ModifiedAt, r.ModifiedBy = &at, &u
				f.source.Version++
				if col == 0 {
					return // an untracked column: no event, not read
				}
				for i := range r.Cells {
					if r.Cells[i].ColumnID == col {
						r.Cells[i].Value = smartsheet.StringValue(v)
					}
				}
				history[col] = append([]smartsheet.CellHistory{{ModifiedAt: &at, ModifiedBy: &u, Value: smartsheet.StringValue(v)}}, history[col]...)
				pending = append(pending, event(u, col, at))
			}
			r := f.runner(t)
			ref := SheetRef{ID: sourceID}
			if _, err := r.ScanSheet(ctx, "20261130T130000Z-000001", ref, t0.Add(-2*time.Hour)); err != nil {
				t.Fatalf("baseline scan: %v", err)
			}
			for i, s := range tt.steps {
				switch s {
				case priceEdit:
					edit(priya, priceAt, colPrice, "9999.00")
				case qtyEdit:
					edit(kim, qtyAt, colQty, "7")
				case luisSave:
					edit(luis, luisAt, 0, "")
				case callback:
					recs.add(pending...)
					pending = nil
				case refresh:
					if _, err := r.RefreshRows(ctx, sourceID, []int64{row}, nil); err != nil {
						t.Fatalf("step %d, %s: %v", i, s, err)
					}
				case scan:
					if _, err := r.ScanSheet(ctx, "20261130T150000Z-000002", ref, t0); err != nil {
						t.Fatalf("step %d, %s: %v", i, s, err)
					}
				}
			}
			recorded := f.mem.records(func(ChangeRecord) bool { return true }) // written by a refresh or not
			var got []want
			var ids []string
			for _, rec := range recorded {
				c := rec.Change
				got = append(got, want{Column: c.ColumnKey, User: c.Attribution.User, Source: c.Attribution.Source, Timed: c.Attribution.Time != nil})
				ids = append(ids, c.ChangeID)
				if c.Attribution.Time == nil && (c.Attribution.WindowStart.IsZero() || c.Attribution.WindowEnd.IsZero()) {
					t.Errorf("change %s: unknown without its window: %+v", c.ChangeID, c.Attribution)
				}
			}
			slices.SortFunc(got, func(a, b want) int { return strings.Compare(a.Column, b.Column) })
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("recorded attributions after %v (-want +got):\n%s", tt.steps, diff)
			}
			if n := len(slices.Compact(slices.Sorted(slices.Values(ids)))); n != len(ids) {
				t.Errorf("Change IDs %v: one change recorded twice", ids)
			}
		})
	}
}
