package xlsx

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// Injection is a Smartsheet value that would be a formula if written as one.
const Injection = `=HYPERLINK("http://x","y")`

func mustLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func at(t time.Time) *time.Time { return &t }

// scenarioInput is the fixed scenario: a week in Chicago with an
// unauthorized HIGH price edit, a MEDIUM quantity edit (estimated), an
// automation WEEK_MOVED, a deleted row, an authorized edit, an unvalued
// change that needs review, values that look like formulas, findings, and
// five earlier weeks of history.
func scenarioInput(tb testing.TB) audit.ReportInput {
	tb.Helper()
	loc := mustLocation(tb, "America/Chicago")
	cfg := audit.DefaultConfig()
	cfg.Location = loc
	start := time.Date(2026, 11, 16, 0, 0, 0, 0, loc)
	end := start.AddDate(0, 0, 7)
	week := func(d int) time.Time { return time.Date(2026, 11, 15+7*d, 0, 0, 0, 0, time.UTC) } // Sundays
	ch := func(id string, kind audit.Kind, impact string, status audit.Status, when time.Time) audit.Change {
		imp := dec(impact)
		return audit.Change{
			ChangeID: id, RunID: "run-1", Kind: kind, SheetID: 7, SheetName: "Crew North", RowID: 100,
			RowNumber: 12, Permalink: "https://app.smartsheet.com/sheets/abc?rowId=100", WorkRequest: "WR-" + id,
			WeekEnding: week(0), Column: audit.ColPrice, OldValue: "1000", NewValue: "2500", Impact: imp,
			Risk: cfg.RiskFor(imp), Status: status,
			Attribution: audit.Attribution{User: "kim@example.com", Name: "Kim Lee", Time: at(when), Source: audit.SourceWebhook},
			DetectedAt:  when.Add(time.Hour),
		}
	}
	tue := time.Date(2026, 11, 17, 9, 30, 0, 0, loc)
	changes := []audit.Change{
		ch("c1", audit.KindValueChanged, "1500", audit.StatusUnauthorized, tue),
		func() audit.Change {
			c := ch("c2", audit.KindValueChanged, "-250.50", audit.StatusUnauthorized, tue.Add(26*time.Hour))
			c.Column, c.OldValue, c.NewValue, c.Estimated = audit.ColQuantity, "10", "8", true
			d := dec("-2")
			c.Delta = &d
			c.Attribution = audit.Attribution{User: "raj@example.com", Name: "Raj Patel", Time: at(tue.Add(26 * time.Hour)), Source: audit.SourceCellHistory}
			return c
		}(),
		func() audit.Change {
			c := ch("c3", audit.KindWeekMoved, "0", audit.StatusUnauthorized, tue.Add(50*time.Hour))
			c.Column, c.OldValue, c.NewValue, c.MovedTo = audit.ColSnapshotDate, "2026-11-15", "2026-11-22", week(1)
			c.Attribution = audit.Attribution{User: audit.AutomationEmail, Name: "Automation", Time: at(tue.Add(50 * time.Hour)), Source: audit.SourceWriterInfo}
			return c
		}(),
		func() audit.Change {
			c := ch("c4", audit.KindRowDeleted, "-80", audit.StatusUnauthorized, tue)
			c.Column, c.RowNumber = "", 13
			c.Attribution = audit.Attribution{Source: audit.SourceUnknown, WindowStart: tue.Add(-time.Hour), WindowEnd: tue.Add(time.Hour)}
			return c
		}(),
		func() audit.Change {
			c := ch("c5", audit.KindValueChanged, "40", audit.StatusAuthorized, tue)
			c.WeekEnding = week(1)
			return c
		}(),
		func() audit.Change {
			c := ch("c6", audit.KindValueChanged, "0", audit.StatusNeedsReview, tue)
			c.Unvalued, c.Risk, c.NewValue = true, audit.RiskUnknown, "12O0"
			c.Attribution = audit.Attribution{Source: audit.SourceUnknown}
			return c
		}(),
		func() audit.Change { // values that look like formulas
			c := ch("c7", audit.KindValueChanged, "5", audit.StatusAuthorized, tue)
			c.WorkRequest, c.SheetName, c.OldValue, c.NewValue = Injection, "@SUM(A1)", "+1", "-2"
			c.Column, c.Note = "\tCU", "\rnote"
			c.Attribution.Name = "=cmd|' /C calc'!A0"
			c.Permalink = `javascript:alert(1)`
			return c
		}(),
	}
	var history []audit.Change
	for w := 1; w <= 5; w++ { // five earlier weeks, rising unauthorized impact
		t := tue.AddDate(0, 0, -7*w)
		c := ch(fmt.Sprintf("h%d", w), audit.KindValueChanged, fmt.Sprint(100*(6-w)), audit.StatusUnauthorized, t)
		history = append(history, c)
	}
	history = append(history, changes[0]) // history may include this period's changes
	findings := []audit.Finding{
		{Kind: audit.FindingMissingColumn, SheetID: 8, SheetName: "Crew South", Column: audit.ColQuantity, Message: "missing"},
		{Kind: audit.FindingBadMoney, SheetID: 7, SheetName: "Crew North", RowID: 101, RowNumber: 14, Column: audit.ColPrice, Raw: "=1+1", Message: "did not parse"},
	}
	return audit.ReportInput{
		Run: audit.RunFacts{
			RunID: "20261123T060000Z-ab12", StartedAt: end.Add(6 * time.Hour), FinishedAt: end.Add(6*time.Hour + 3*time.Minute),
			SheetsScanned: 4, SheetsSkipped: 2, RowsScanned: 1234,
			APICalls:               map[string]int{"GET /sheets/{id}": 40, "GET /sheets/{id}/rows/{id}/columns/{id}/history": 12, "GET /sheets": 2},
			RequestBudgetPerMinute: 250, HistoryBudgetPerMinute: 25, Retries: 1, RateLimitWaits: 2, RateLimitWait: 3 * time.Second,
			CellHistoryCalls: 12,
		},
		Changes: changes, History: history, Findings: findings, Config: cfg,
		PeriodStart: start, PeriodEnd: end, GeneratedAt: end.Add(6*time.Hour + 4*time.Minute),
	}
}

// MustWorkbook renders r and reopens it.
func MustWorkbook(tb testing.TB, r audit.Report) ([]byte, *excelize.File) {
	tb.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		tb.Fatalf("Write: %v", err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		tb.Fatalf("OpenReader: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return buf.Bytes(), f
}
