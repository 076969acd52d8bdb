package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// RefreshKind is the "kind" of a refresh message on the webhook queue.
const RefreshKind = "refresh"

// Refresh asks for a targeted refresh of some rows of a sheet: the rows a
// webhook callback named, edited or created (RowIDs) and deleted
// (DeletedRowIDs). It is the message the webhook receiver queues.
type Refresh struct {
	Kind          string  `json:"kind"`
	SheetID       int64   `json:"sheetId"`
	RowIDs        []int64 `json:"rowIds,omitempty"`
	DeletedRowIDs []int64 `json:"deletedRowIds,omitempty"`
}

// Merge adds o's rows to f (same sheet): a row deleted in either is deleted.
func (f *Refresh) Merge(o Refresh) {
	f.DeletedRowIDs = sortedUnion(f.DeletedRowIDs, o.DeletedRowIDs)
	f.RowIDs = slices.DeleteFunc(sortedUnion(f.RowIDs, o.RowIDs), func(id int64) bool {
		_, gone := slices.BinarySearch(f.DeletedRowIDs, id)
		return gone
	})
}

func sortedUnion(a, b []int64) []int64 {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// RefreshRows is the targeted refresh of a webhook callback: it reads only
// rowIDs of the sheet (with the scan's columns, writer info and row links),
// builds a batch exactly as the scan does, adds the deleted rows that still
// have a baseline, analyses it (attribution first from the webhook records)
// and writes the fresh changes to the audit sheet. A change the scan also
// sees later has the same Change ID and is recorded once. A sheet never
// scanned has no baseline to compare with: nothing is done (its first scan
// takes the baseline). The sheet's scan watermark is left alone, so the next
// scan still reads every row changed since the last scan. Its errors name
// the sheet and the step.
func (r *Runner) RefreshRows(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) (_ []audit.Change, err error) {
	defer annotate(&err, "refresh rows of sheet %d", sheetID)
	prev, known, err := r.store.SheetState(ctx, sheetID)
	if err != nil {
		return nil, fmt.Errorf("read its state: %w", err)
	}
	if !known {
		r.log.InfoContext(ctx, "refresh skipped: sheet not scanned yet", slog.Int64("sheet", sheetID))
		return nil, nil
	}
	now := r.opts.Clock().UTC()
	tmpl := Batch{RunID: NewRunID(now), Window: audit.ScanWindow{Previous: prev.LastScan, Current: now}}
	var batches []Batch
	if rowIDs = slices.DeleteFunc(slices.Clone(rowIDs), func(id int64) bool { return slices.Contains(deletedRowIDs, id) }); len(rowIDs) > 0 {
		opts := smartsheet.GetSheetOptions{
			RowIDs:   rowIDs,
			Include:  []string{smartsheet.IncludeWriterInfo, smartsheet.IncludeRowPermalink},
			PageSize: r.opts.PageSize,
		}
		if len(prev.ColumnIDs) > 0 && prev.ColumnsFor == r.columnsSig && r.trimColumns() {
			opts.ColumnIDs = prev.ColumnIDs
		}
		rd, err := r.readBatches(ctx, sheetID, opts, tmpl, func(b Batch) error {
			batches = append(batches, b)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %d rows: %w", len(rowIDs), err)
		}
		tmpl.Sheet, tmpl.Columns = SheetRef{ID: sheetID, Name: rd.sheet.Name}, rd.cols
	}
	if len(deletedRowIDs) > 0 {
		if tmpl.Columns == nil {
			// No row read: the columns of the last scan's mapping are
			// those of the baselines.
			tmpl.Sheet = SheetRef{ID: sheetID, Name: prev.Name}
			if tmpl.Columns, err = r.sheetColumns(ctx, sheetID); err != nil {
				return nil, fmt.Errorf("read its columns: %w", err)
			}
		}
		bl, err := r.store.Baselines(ctx, sheetID, deletedRowIDs)
		if err != nil {
			return nil, fmt.Errorf("read the baselines of %d deleted rows: %w", len(deletedRowIDs), err)
		}
		b := tmpl
		for _, id := range deletedRowIDs {
			if _, ok := bl[id]; ok {
				b.Deleted = append(b.Deleted, id)
			}
		}
		if len(b.Deleted) > 0 {
			batches = append(batches, b)
		}
	}
	var fresh []audit.Change
	for _, b := range batches {
		cs, _, err := r.Analyze(ctx, b)
		if err != nil {
			return fresh, err
		}
		fresh = append(fresh, cs...)
	}
	if _, err := r.WriteChanges(ctx, fresh); err != nil {
		return fresh, fmt.Errorf("write its %d changes: %w", len(fresh), err)
	}
	// The real-time path: alerts within seconds of the edit (an alert
	// that fails here is sent again by the next run).
	r.alertChanges(ctx, fresh)
	return fresh, nil
}

// sheetColumns reads a sheet's columns only (one row at most); the caller
// names the sheet in an error.
func (r *Runner) sheetColumns(ctx context.Context, sheetID int64) ([]audit.ColumnInfo, error) {
	s, _, err := r.sources.GetSheet(ctx, sheetID, smartsheet.GetSheetOptions{PageSize: 1})
	if err != nil {
		return nil, err
	}
	return columnInfos(s.Columns), nil
}

// WebhookColumnIDs is the subscope of a sheet's webhook under a mapping: the
// tracked columns and the week-ending and snapshot-date columns (an edit of
// those moves a unit between weeks), sorted.
func WebhookColumnIDs(m audit.Mapping) []int64 {
	var ids []int64
	for _, k := range m.Tracked {
		if c, ok := m.ByKey[k]; ok {
			ids = append(ids, c.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	for _, k := range []string{audit.ColWeekEnding, audit.ColSnapshotDate} {
		if c, ok := m.ByKey[k]; ok {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// DecodeRefresh reads a queue message that is a refresh request
// ({"kind":"refresh",...}); ok=false for any other message (a batch).
func DecodeRefresh(body []byte) (f Refresh, ok bool, err error) {
	var probe struct {
		Kind string `json:"kind"`
	}
	if json.Unmarshal(body, &probe) != nil || probe.Kind != RefreshKind {
		return Refresh{}, false, nil
	}
	if err := json.Unmarshal(body, &f); err != nil {
		return Refresh{}, true, fmt.Errorf("decode refresh message: %w", err)
	}
	if f.SheetID == 0 {
		return Refresh{}, true, errors.New("refresh message without sheetId")
	}
	return f, true, nil
}
