package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Titles of the audit-log sheet's columns.
const (
	AColWorkRequest  = "Work Request #"
	AColWeekEnding   = "Week Ending"
	AColSourceSheet  = "Source Sheet"
	AColSourceRow    = "Source Row"
	AColColumn       = "Column"
	AColOldValue     = "Old Value"
	AColNewValue     = "New Value"
	AColDelta        = "Delta"
	AColImpact       = "Money Impact"
	AColChangedBy    = "Changed By"
	AColChangedAt    = "Changed At"
	AColAttribution  = "Attribution"
	AColUnauthorized = "Unauthorized"
	AColRisk         = "Risk"
	AColKind         = "Kind"
	AColRunID        = "Run ID"
	AColChangeID     = "Change ID"
)

// AuditColumns is the audit-log sheet's layout. DATETIME columns cannot be
// written through the API, so Changed At is text (ISO-8601 in the audit
// timezone); Week Ending is a DATE.
var AuditColumns = []smartsheet.Column{
	{Title: AColWorkRequest, Type: smartsheet.TypeTextNumber, Primary: true},
	{Title: AColWeekEnding, Type: smartsheet.TypeDate},
	{Title: AColSourceSheet, Type: smartsheet.TypeTextNumber},
	{Title: AColSourceRow, Type: smartsheet.TypeTextNumber},
	{Title: AColColumn, Type: smartsheet.TypeTextNumber},
	{Title: AColOldValue, Type: smartsheet.TypeTextNumber},
	{Title: AColNewValue, Type: smartsheet.TypeTextNumber},
	{Title: AColDelta, Type: smartsheet.TypeTextNumber},
	{Title: AColImpact, Type: smartsheet.TypeTextNumber},
	{Title: AColChangedBy, Type: smartsheet.TypeTextNumber},
	{Title: AColChangedAt, Type: smartsheet.TypeTextNumber},
	{Title: AColAttribution, Type: smartsheet.TypeTextNumber},
	{Title: AColUnauthorized, Type: smartsheet.TypePicklist, Options: []string{"YES", "NO", "REVIEW"}},
	{Title: AColRisk, Type: smartsheet.TypePicklist, Options: []string{"HIGH", "MEDIUM", "LOW", "UNKNOWN"}},
	{Title: AColKind, Type: smartsheet.TypePicklist, Options: []string{"VALUE_CHANGED", "ROW_DELETED", "ROW_ADDED_LATE", "WEEK_MOVED"}},
	{Title: AColRunID, Type: smartsheet.TypeTextNumber},
	{Title: AColChangeID, Type: smartsheet.TypeTextNumber},
}

var addToBottom = smartsheet.AddRowsOptions{ToBottom: true}

func auditColumnsKey(sheetID int64) string { return "audit-columns:" + strconv.FormatInt(sheetID, 10) }

// EnsureAuditSheet finds the audit-log sheet (by id, else by name), creates it
// when absent and adds any missing column. It is idempotent. The column ids
// are remembered in the store.
func EnsureAuditSheet(ctx context.Context, api SheetAPI, store Store, id int64, name string) (int64, bool, error) {
	created := false
	var cols []smartsheet.Column
	if id == 0 {
		sheets, err := api.ListSheets(ctx, smartsheet.ListSheetsOptions{})
		if err != nil {
			return 0, false, fmt.Errorf("find audit sheet %q: %w", name, err)
		}
		for _, s := range sheets {
			if s.Name == name {
				id = s.ID
				break
			}
		}
	}
	if id == 0 {
		s, err := api.CreateSheet(ctx, name, AuditColumns)
		if err != nil {
			return 0, false, fmt.Errorf("create audit sheet %q: %w", name, err)
		}
		id, cols, created = s.ID, s.Columns, true
	} else {
		s, _, err := api.GetSheet(ctx, id, smartsheet.GetSheetOptions{PageSize: 1, Page: 1})
		if err != nil {
			return 0, false, fmt.Errorf("read audit sheet %d: %w", id, err)
		}
		cols = s.Columns
		var missing []smartsheet.Column
		for _, want := range AuditColumns {
			if s.Column(want.Title) == nil {
				c := want
				c.Primary = false
				c.Index = len(cols) + len(missing)
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			added, err := api.AddColumns(ctx, id, missing)
			if err != nil {
				return 0, false, fmt.Errorf("add columns to audit sheet %d: %w", id, err)
			}
			cols = append(cols, added...)
		}
	}
	if err := saveAuditColumns(ctx, store, id, cols); err != nil {
		return 0, false, err
	}
	return id, created, store.PutMeta(ctx, "audit-sheet-id", strconv.FormatInt(id, 10))
}

func saveAuditColumns(ctx context.Context, store Store, sheetID int64, cols []smartsheet.Column) error {
	m := make(map[string]int64, len(cols))
	for _, c := range cols {
		m[c.Title] = c.ID
	}
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return store.PutMeta(ctx, auditColumnsKey(sheetID), string(v))
}

// auditColumns returns the audit sheet's column ids by title, from the store
// or, failing that, from one small read of the sheet.
func (r *Runner) auditColumns(ctx context.Context) (map[string]int64, error) {
	if v, ok, err := r.store.Meta(ctx, auditColumnsKey(r.opts.AuditSheetID)); err != nil {
		return nil, err
	} else if ok {
		var m map[string]int64
		if err := json.Unmarshal([]byte(v), &m); err == nil && m[AColChangeID] != 0 {
			return m, nil
		}
	}
	s, _, err := r.api.GetSheet(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{PageSize: 1, Page: 1})
	if err != nil {
		return nil, fmt.Errorf("read audit sheet %d: %w", r.opts.AuditSheetID, err)
	}
	if s.Column(AColChangeID) == nil {
		return nil, fmt.Errorf("audit sheet %d has no %q column: run `billing-audit setup`", r.opts.AuditSheetID, AColChangeID)
	}
	if err := saveAuditColumns(ctx, r.store, r.opts.AuditSheetID, s.Columns); err != nil {
		return nil, err
	}
	m := make(map[string]int64, len(s.Columns))
	for _, c := range s.Columns {
		m[c.Title] = c.ID
	}
	return m, nil
}

// auditChangeIDs reads the Change ID column of the audit sheet.
func (r *Runner) auditChangeIDs(ctx context.Context, cols map[string]int64) (map[string]bool, error) {
	rows, err := r.auditRowsByChangeID(ctx, cols)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(rows))
	for id := range rows {
		ids[id] = true
	}
	return ids, nil
}

// auditRowsByChangeID maps each Change ID on the audit sheet to its rows, in
// sheet order.
func (r *Runner) auditRowsByChangeID(ctx context.Context, cols map[string]int64) (map[string][]int64, error) {
	colID := cols[AColChangeID]
	ids := map[string][]int64{}
	err := r.api.ForEachSheetPage(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{ColumnIDs: []int64{colID}, PageSize: 5000}, func(s *smartsheet.Sheet) error {
		for _, row := range s.Rows {
			if c := row.Cell(colID); c != nil && c.Value.Text() != "" {
				ids[c.Value.Text()] = append(ids[c.Value.Text()], row.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read change ids of audit sheet %d: %w", r.opts.AuditSheetID, err)
	}
	return ids, nil
}

// dedupeAudit deletes all but the first row of any Change ID that is on the
// audit sheet more than once.
func (r *Runner) dedupeAudit(ctx context.Context, cols map[string]int64) error {
	rows, err := r.auditRowsByChangeID(ctx, cols)
	if err != nil {
		return err
	}
	var extra []int64
	for _, ids := range rows {
		if len(ids) > 1 {
			extra = append(extra, ids[1:]...)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	r.log.WarnContext(ctx, "removing audit rows written twice by a retried request", slog.Int("rows", len(extra)))
	if _, err := r.api.DeleteRows(ctx, r.opts.AuditSheetID, extra, smartsheet.DeleteRowsOptions{IgnoreRowsNotFound: true}); err != nil {
		return fmt.Errorf("delete duplicate audit rows: %w", err)
	}
	return nil
}

// AuditRows lays changes out as audit-log rows. Text from source cells is
// written as a string value (never a formula); amounts as numbers.
func AuditRows(cols map[string]int64, changes []audit.Change, loc *time.Location) []smartsheet.Row {
	if loc == nil {
		loc = time.UTC
	}
	rows := make([]smartsheet.Row, 0, len(changes))
	for _, c := range changes {
		var cells []smartsheet.Cell
		set := func(title string, v smartsheet.Value) {
			if id := cols[title]; id != 0 && !v.IsZero() {
				cells = append(cells, smartsheet.Cell{ColumnID: id, Value: v})
			}
		}
		text := func(title, s string) {
			if s != "" {
				set(title, smartsheet.StringValue(s))
			}
		}
		text(AColWorkRequest, c.WorkRequest)
		if !c.WeekEnding.IsZero() {
			text(AColWeekEnding, c.WeekEnding.Format(time.DateOnly))
		}
		text(AColSourceSheet, c.SheetName)
		if id := cols[AColSourceRow]; id != 0 {
			cell := smartsheet.Cell{ColumnID: id, Value: smartsheet.StringValue(fmt.Sprintf("Row %d", c.RowNumber))}
			if c.Permalink != "" {
				cell.Hyperlink = &smartsheet.Hyperlink{URL: c.Permalink}
			}
			cells = append(cells, cell)
		}
		text(AColColumn, columnLabel(c))
		text(AColOldValue, c.OldValue)
		text(AColNewValue, c.NewValue)
		if c.Delta != nil {
			set(AColDelta, smartsheet.NumberValue(c.Delta.StringFixed(2)))
		}
		if !c.Unvalued {
			set(AColImpact, smartsheet.NumberValue(c.Impact.StringFixed(2)))
		}
		who := c.Attribution.User
		if who == "" {
			who = c.Attribution.Name
		}
		text(AColChangedBy, who)
		text(AColChangedAt, changedAt(c.Attribution, loc))
		text(AColAttribution, string(c.Attribution.Source))
		text(AColUnauthorized, unauthorizedLabel(c.Status))
		text(AColRisk, string(c.Risk))
		text(AColKind, string(c.Kind))
		text(AColRunID, c.RunID)
		text(AColChangeID, c.ChangeID)
		rows = append(rows, smartsheet.Row{Cells: cells})
	}
	return rows
}

func columnLabel(c audit.Change) string {
	if c.Column != "" {
		return c.Column
	}
	return "(row)"
}

func unauthorizedLabel(s audit.Status) string {
	switch s {
	case audit.StatusUnauthorized:
		return "YES"
	case audit.StatusAuthorized:
		return "NO"
	default:
		return "REVIEW"
	}
}

func changedAt(a audit.Attribution, loc *time.Location) string {
	const layout = "2006-01-02T15:04:05Z07:00"
	if a.Time != nil {
		return a.Time.In(loc).Format(layout)
	}
	if !a.WindowEnd.IsZero() {
		start := "first scan"
		if !a.WindowStart.IsZero() {
			start = a.WindowStart.In(loc).Format(layout)
		}
		return "between " + start + " and " + a.WindowEnd.In(loc).Format(layout)
	}
	return ""
}
