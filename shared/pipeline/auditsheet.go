package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// AuditColumns is the audit-log sheet's layout: one column per sealed field
// (audit.LogFields) plus the Seal, typed so Smartsheet can sum, filter and
// sort them — Money Impact and Delta are numbers (Money Impact shown as
// dollars), Week Ending, Changed On and Detected On are dates (DATETIME
// columns cannot be written through the API, so the exact time is the text
// of Changed At), and Unauthorized, Risk, Kind and Attribution are
// picklists. The product's columns are locked: only the sheet's owner and
// admins can edit them, and verification names any edit they make. The
// review columns after the Seal (Reviewer, a contact; Disposition, a
// picklist; Resolution Note) are left open for the people who work the
// exceptions.
var AuditColumns = lockProduct([]smartsheet.Column{
	{Title: audit.LogWorkRequest, Type: smartsheet.TypeTextNumber, Primary: true},
	{Title: audit.LogWeekEnding, Type: smartsheet.TypeDate},
	{Title: audit.LogSourceSheet, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogSourceRow, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogColumn, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogOldValue, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogNewValue, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogDelta, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogImpact, Type: smartsheet.TypeTextNumber, Format: smartsheet.FormatCurrencyUSD},
	{Title: audit.LogChangedBy, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogChangedAt, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogChangedOn, Type: smartsheet.TypeDate},
	{Title: audit.LogDetectedOn, Type: smartsheet.TypeDate},
	{Title: audit.LogAttribution, Type: smartsheet.TypePicklist, Options: []string{"webhook", "writer-info", "cell-history", "unknown"}},
	{Title: audit.LogUnauthorized, Type: smartsheet.TypePicklist, Options: []string{"YES", "NO", "REVIEW"}},
	{Title: audit.LogRisk, Type: smartsheet.TypePicklist, Options: []string{"HIGH", "MEDIUM", "LOW", "UNKNOWN"}},
	{Title: audit.LogKind, Type: smartsheet.TypePicklist, Options: []string{"VALUE_CHANGED", "ROW_DELETED", "ROW_ADDED_LATE", "WEEK_MOVED"}},
	{Title: audit.LogRunID, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogChangeID, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogReverses, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogSeal, Type: smartsheet.TypeTextNumber},
	{Title: audit.LogReviewer, Type: smartsheet.TypeContact},
	{Title: audit.LogDisposition, Type: smartsheet.TypePicklist, Options: audit.Dispositions()},
	{Title: audit.LogResolutionNote, Type: smartsheet.TypeTextNumber},
})

// lockProduct locks every column but those people are meant to edit.
func lockProduct(cols []smartsheet.Column) []smartsheet.Column {
	locked, editable := true, audit.EditableColumns()
	for i := range cols {
		if !editable[cols[i].Title] {
			cols[i].Locked = &locked
		}
	}
	return cols
}

func auditColumnsKey(sheetID int64) string { return "audit-columns:" + strconv.FormatInt(sheetID, 10) }

// EnsureAuditSheet finds the audit-log sheet (by id, else by name), creates it
// when absent and adds any missing column. It is idempotent. The column ids
// are remembered in the store.
func EnsureAuditSheet(ctx context.Context, api AuditSheetSetup, store MetaStore, id int64, name string) (int64, bool, error) {
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
		s, _, err := api.GetSheet(ctx, id, smartsheet.GetSheetOptions{PageSize: 1, Page: 1, Include: []string{smartsheet.IncludeFormat}})
		if err != nil {
			return 0, false, fmt.Errorf("read audit sheet %d: %w", id, err)
		}
		cols = s.Columns
		var missing []smartsheet.Column
		for _, want := range AuditColumns {
			have := s.Column(want.Title)
			if have == nil {
				c := want
				c.Primary = false
				c.Index = len(cols) + len(missing)
				missing = append(missing, c)
				continue
			}
			if err := fixColumn(ctx, api, id, *have, want); err != nil {
				return 0, false, err
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
	if _, err := ensureSummaryFields(ctx, api, store, id); err != nil {
		return 0, false, err
	}
	return id, created, wrapErr(fmt.Sprintf("remember audit sheet %d", id), store.PutMeta(ctx, "audit-sheet-id", strconv.FormatInt(id, 10)))
}

// fixColumn gives an existing audit-log column the type, options, format
// and lock of the layout (a sheet made by an earlier version, or edited by a
// person). The primary column's type is Smartsheet's to keep.
func fixColumn(ctx context.Context, api AuditSheetSetup, sheetID int64, have, want smartsheet.Column) error {
	var u smartsheet.ColumnUpdate
	changed := false
	if !have.Primary && have.Type != want.Type {
		u.Type, u.Options, changed = want.Type, want.Options, true
	}
	if want.Type == smartsheet.TypePicklist && !slices.Equal(have.Options, want.Options) {
		u.Type, u.Options, changed = want.Type, want.Options, true
	}
	if want.Format != "" && have.Format != want.Format {
		u.Format, changed = want.Format, true
	}
	if want.Locked != nil && (have.Locked == nil || *have.Locked != *want.Locked) {
		u.Locked, changed = want.Locked, true
	}
	if !changed {
		return nil
	}
	if _, err := api.UpdateColumn(ctx, sheetID, have.ID, u); err != nil {
		return fmt.Errorf("set up column %q of audit sheet %d: %w", have.Title, sheetID, err)
	}
	return nil
}

func saveAuditColumns(ctx context.Context, store MetaStore, sheetID int64, cols []smartsheet.Column) error {
	m := make(map[string]int64, len(cols))
	for _, c := range cols {
		m[c.Title] = c.ID
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode the column ids of audit sheet %d: %w", sheetID, err)
	}
	return wrapErr(fmt.Sprintf("remember the column ids of audit sheet %d", sheetID), store.PutMeta(ctx, auditColumnsKey(sheetID), string(v)))
}

// auditColumns returns the audit sheet's column ids by title, from the store
// or, failing that, from one small read of the sheet.
func (r *Runner) auditColumns(ctx context.Context) (map[string]int64, error) {
	if v, ok, err := r.store.Meta(ctx, auditColumnsKey(r.opts.AuditSheetID)); err != nil {
		return nil, fmt.Errorf("read the column ids of audit sheet %d: %w", r.opts.AuditSheetID, err)
	} else if ok {
		var m map[string]int64
		if err := json.Unmarshal([]byte(v), &m); err == nil && hasAuditColumns(m) {
			return m, nil
		}
	}
	s, _, err := r.auditSheet.GetSheet(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{PageSize: 1, Page: 1})
	if err != nil {
		return nil, fmt.Errorf("read audit sheet %d: %w", r.opts.AuditSheetID, err)
	}
	for _, c := range AuditColumns {
		if s.Column(c.Title) == nil {
			return nil, fmt.Errorf("audit sheet %d has no %q column (made by an earlier version): run `billing-audit setup`", r.opts.AuditSheetID, c.Title)
		}
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

// hasAuditColumns reports whether remembered column ids cover the layout.
func hasAuditColumns(m map[string]int64) bool {
	for _, c := range AuditColumns {
		if m[c.Title] == 0 {
			return false
		}
	}
	return true
}

// auditRowsByChangeID maps each Change ID on the audit sheet to its rows, in
// sheet order.
func (r *Runner) auditRowsByChangeID(ctx context.Context, cols map[string]int64) (map[string][]int64, error) {
	colID := cols[audit.LogChangeID]
	ids := map[string][]int64{}
	err := r.auditSheet.ForEachSheetPage(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{ColumnIDs: []int64{colID}, PageSize: 5000}, func(s *smartsheet.Sheet) error {
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
