package demo_test

import (
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

var (
	priya = demo.Priya
	luis  = smartsheet.User{Name: "Luis Ortega", Email: "luis.ortega@crews.example.com"}
)

// waitRefreshes waits until the listener has run n refreshes.
func (h *hookStack) waitRefreshes(tb testing.TB, n int64, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for h.listener.Refreshes() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("refreshes = %d after %v, want %d", h.listener.Refreshes(), within, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// modifiedBy is the email of a row's writer info in the simulator.
func (h *hookStack) modifiedBy(tb testing.TB, sheetID, rowID int64) string {
	tb.Helper()
	sh, err := h.srv.Sheet(sheetID)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range sh.Rows {
		if r.ID == rowID && r.ModifiedBy != nil {
			return r.ModifiedBy.Email
		}
	}
	return ""
}

// TestWebhookAttributionOrderOfArrival is issue 12 through the real
// simulator delivering signed callbacks to `listen`: Priya changes a
// closed-week price; in the two-editor cases Luis then saves Pole #
// (untracked, outside the webhook's subscope) on the same row, so the row's
// writer info is his. The callback reaches the listener before the scan
// (its refresh writes the audit row), after it (held by the simulator's
// delivery delay, as Smartsheet's arrive up to a minute late), or in between
// with its refresh held. Whatever the order there is one audit row, never
// naming Luis: the webhook event when it was stored before the change was
// analysed, else cell history.
func TestWebhookAttributionOrderOfArrival(t *testing.T) {
	h := newHookStack(t, demo.Size{Sheets: 3, Rows: 60, Weeks: 3})
	if sum := h.scan(t); len(sum.Changes) != 0 {
		t.Fatalf("baseline found %d changes", len(sum.Changes))
	}
	h.srv.AdvanceClock(time.Second)
	sheet := h.setup.Gen.SheetIDs[0]
	const (
		callbackFirst = "callback, then its refresh"
		scanFirst     = "scan, then the late callback and its refresh"
		refreshHeld   = "callback in, refresh held, scan, then the refresh"
	)
	tests := []struct {
		name       string
		order      string
		twoEditors bool
		wantSource audit.AttributionSource
	}{
		{name: "one editor, callback before the scan", order: callbackFirst, wantSource: audit.SourceWebhook},
		{name: "two editors, callback before the scan", order: callbackFirst, twoEditors: true, wantSource: audit.SourceWebhook},
		{name: "one editor, callback after the scan", order: scanFirst, wantSource: audit.SourceCellHistory},
		{name: "two editors, callback after the scan", order: scanFirst, twoEditors: true, wantSource: audit.SourceCellHistory},
		{name: "two editors, refresh held while the scan runs", order: refreshHeld, twoEditors: true, wantSource: audit.SourceWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.auditRows(t))
			refreshes := h.listener.Refreshes()
			row := h.closedWeekRow(t, sheet)
			// Hold the callback until both saves are made (and, for
			// scanFirst, until the scan has run).
			h.srv.SetWebhookDelay(time.Hour)
			h.srv.AdvanceClock(time.Second)
			h.editPrice(t, priya, sheet, row, "8765.43")
			if tt.twoEditors {
				h.srv.AdvanceClock(2 * time.Second)
				if _, err := h.srv.SetCell(smartsim.Edit{User: luis}, sheet, row, h.setup.Columns[sheet][smartsim.ColPole], smartsheet.StringValue("P-4471")); err != nil {
					t.Fatal(err)
				}
				if by := h.modifiedBy(t, sheet, row); by != luis.Email {
					t.Fatalf("row modified by %q, want Luis's later save", by)
				}
			}
			var scanned []audit.Change
			switch tt.order {
			case callbackFirst:
				h.srv.SetWebhookDelay(0)
				h.waitAuditRows(t, before+1, 5*time.Second)
				h.waitRefreshes(t, refreshes+1, 5*time.Second)
				scanned = h.scan(t).Changes
			case scanFirst:
				scanned = h.scan(t).Changes
				if len(scanned) != 1 {
					t.Fatalf("scan before the callback recorded %d changes, want 1", len(scanned))
				}
				h.srv.SetWebhookDelay(0)
				h.flush(t)
				h.waitRefreshes(t, refreshes+1, 5*time.Second)
				scanned = nil
			case refreshHeld:
				h.gate.closed.Store(true)
				h.srv.SetWebhookDelay(0)
				<-h.gate.arrived // records stored, refresh held
				scanned = h.scan(t).Changes
				h.gate.closed.Store(false)
				h.gate.release <- struct{}{}
				h.waitRefreshes(t, refreshes+1, 5*time.Second)
			}
			rows := h.auditRows(t)
			if len(rows) != before+1 {
				t.Fatalf("audit rows = %d, want %d: one row for the change whatever the order", len(rows), before+1)
			}
			r := rows[before]
			got := [3]string{r[audit.LogChangedBy], r[audit.LogAttribution], r[audit.LogNewValue]}
			want := [3]string{priya.Email, string(tt.wantSource), "8765.43"}
			if got != want {
				t.Errorf("audit row (Changed By, Attribution, New Value) = %q, want %q", got, want)
			}
			if tt.order == refreshHeld && (len(scanned) != 1 || scanned[0].ChangeID != r[audit.LogChangeID]) {
				t.Errorf("scan recorded %+v, the audit row has Change ID %s; want that one change", scanned, r[audit.LogChangeID])
			}
			if tt.order == callbackFirst && len(scanned) != 0 {
				t.Errorf("scan after the refresh recorded %d changes, want 0", len(scanned))
			}
			// The next scan sees nothing new.
			h.srv.AdvanceClock(time.Second)
			if sum := h.scan(t); len(sum.Changes) != 0 || len(h.auditRows(t)) != before+1 {
				t.Errorf("next scan: %d changes, %d audit rows; want 0, %d", len(sum.Changes), len(h.auditRows(t)), before+1)
			}
		})
	}
}

// TestWriterInfoOnlyWhenProven is the same two editors on a sheet without
// webhooks, through the real client and simulator: the scan reads every
// column, so it sees Luis's later save of Pole # (untracked) and does not
// take the row's writer info (his) for Priya's price change; cell history
// names her. With no second save, writer info is proven and names her at no
// cell-history cost.
func TestWriterInfoOnlyWhenProven(t *testing.T) {
	tests := []struct {
		name        string
		luisToo     bool
		wantSource  audit.AttributionSource
		wantHistory int64
	}{
		{name: "Priya alone: writer info", wantSource: audit.SourceWriterInfo, wantHistory: 0},
		{name: "Luis saves Pole # after her: cell history", luisToo: true, wantSource: audit.SourceCellHistory, wantHistory: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, demo.Size{Sheets: 3, Rows: 60, Weeks: 3})
			s.run(t, nil)
			sheet := s.setup.Gen.SheetIDs[0]
			row, _ := s.closedWeekRow(t, sheet, 0)
			s.srv.AdvanceClock(time.Hour)
			if _, err := s.srv.SetCell(smartsim.Edit{User: priya}, sheet, row, s.setup.Columns[sheet][smartsim.ColTotalPrice], smartsheet.NumberValue("8765.43")); err != nil {
				t.Fatal(err)
			}
			if tt.luisToo {
				s.srv.AdvanceClock(time.Minute)
				if _, err := s.srv.SetCell(smartsim.Edit{User: luis}, sheet, row, s.setup.Columns[sheet][smartsim.ColPole], smartsheet.StringValue("P-4471")); err != nil {
					t.Fatal(err)
				}
			}
			s.srv.AdvanceClock(time.Minute)
			history := s.srv.Counter(smartsim.EndpointCellHistory).Calls
			sum := s.run(t, nil)
			if len(sum.Changes) != 1 {
				t.Fatalf("run found %d changes, want Priya's one", len(sum.Changes))
			}
			c := sum.Changes[0]
			if c.Attribution.User != priya.Email || c.Attribution.Source != tt.wantSource {
				t.Errorf("change attributed to %s by %s, want %s by %s", c.Attribution.User, c.Attribution.Source, priya.Email, tt.wantSource)
			}
			if got := s.srv.Counter(smartsim.EndpointCellHistory).Calls - history; got != tt.wantHistory {
				t.Errorf("cell-history calls = %d, want %d", got, tt.wantHistory)
			}
		})
	}
}
