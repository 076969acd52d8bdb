package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// A reversal is a change that brings a cell back to its value before an
// earlier change (audit.Change.Reverses, found by the detector from the
// baseline it compared with). It is a change like any other — it has its
// own Change ID, audit row and ledger entry, naming who put the value back
// and when — and it names the change it undoes in the Reverses column. When
// that change was unauthorized, its Disposition is set to Reversed.

// confirmReversals keeps in a change's Reverses only the changes it names
// that were unauthorized: a cell put back after an authorized edit is an
// ordinary change (A → B authorized, B → C not, C → A reverses the second
// alone). An original with no record (expired) is not confirmed either.
func (r *Runner) confirmReversals(ctx context.Context, changes []audit.Change) error {
	var ids []string
	for _, c := range changes {
		ids = append(ids, audit.ReversedIDs(c.Reverses)...)
	}
	if len(ids) == 0 {
		return nil
	}
	recs, err := r.store.ChangeRecords(ctx, ids)
	if err != nil {
		return fmt.Errorf("read the %d changes put back: %w", len(ids), err)
	}
	for i := range changes {
		c := &changes[i]
		var kept []string
		for _, id := range audit.ReversedIDs(c.Reverses) {
			if rec, ok := recs[id]; ok && rec.Change.Unauthorized() {
				kept = append(kept, id)
			}
		}
		c.Reverses = audit.JoinReversed(kept)
	}
	return nil
}

// AuditReviewCells is the one update the product makes to a row it wrote:
// the Disposition cell — a review column, never sealed — of a change that
// was reversed. AuditSheet itself has no update; a Runner whose audit sheet
// also implements this (the Smartsheet client does) marks reversals.
type AuditReviewCells interface {
	UpdateRows(ctx context.Context, sheetID int64, rows []smartsheet.Row, opts smartsheet.UpdateRowsOptions) (*smartsheet.RowsResult, error)
}

// reversalsKey remembers the changes whose Disposition is still to be set to
// Reversed, so that a run that stops before doing it leaves it to the next.
const reversalsKey = "reversals-to-mark"

// rememberReversals adds the changes the records about to be written
// reverse to the ones still to be marked.
func (r *Runner) rememberReversals(ctx context.Context, recs []ChangeRecord) error {
	var add []string
	for _, rec := range recs {
		add = append(add, audit.ReversedIDs(rec.Change.Reverses)...)
	}
	if len(add) == 0 {
		return nil
	}
	todo, err := r.pendingReversals(ctx)
	if err != nil {
		return fmt.Errorf("read the reversals to mark: %w", err)
	}
	for _, id := range add {
		if !slices.Contains(todo, id) {
			todo = append(todo, id)
		}
	}
	return wrapErr("remember the reversals to mark", r.savePendingReversals(ctx, todo))
}

// markReversed sets Disposition = Reversed on the audit rows of the changes
// remembered as reversed whose reversal is written. It never fails the run:
// the reversal itself is on the sheet and in the ledger; a Disposition not
// yet set is retried by the next run.
func (r *Runner) markReversed(ctx context.Context, cols map[string]int64) {
	todo, err := r.pendingReversals(ctx)
	if err != nil {
		r.log.WarnContext(ctx, "reversals left to mark unreadable", slog.Any("error", err))
		return
	}
	if len(todo) == 0 {
		return
	}
	left, err := r.setReversed(ctx, cols, todo)
	if err != nil {
		r.log.WarnContext(ctx, "reversed changes not marked; the next run retries", slog.Int("changes", len(left)), slog.Any("error", err))
	} else {
		r.log.InfoContext(ctx, "reversed changes marked", slog.Int("changes", len(todo)-len(left)))
	}
	if err := r.savePendingReversals(ctx, left); err != nil {
		r.log.WarnContext(ctx, "reversals left to mark not remembered", slog.Any("error", err))
	}
}

// setReversed updates the rows and returns the changes it could not mark.
func (r *Runner) setReversed(ctx context.Context, cols map[string]int64, ids []string) ([]string, error) {
	upd, ok := r.auditSheet.(AuditReviewCells)
	if !ok || cols[audit.LogDisposition] == 0 {
		return nil, nil // nothing to set it on: not an error, and nothing to retry
	}
	recs, err := r.store.ChangeRecords(ctx, ids)
	if err != nil {
		return ids, fmt.Errorf("read the reversed changes: %w", err)
	}
	rowOf := map[string]int64{}
	var unknown []string
	for _, id := range ids {
		if rec, ok := recs[id]; ok && rec.AuditRowID != 0 {
			rowOf[id] = rec.AuditRowID
		} else if ok && rec.Written {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 { // written, but found by reconciliation without a row id
		onSheet, err := r.auditRowsByChangeID(ctx, cols)
		if err != nil {
			return ids, fmt.Errorf("find the rows of %d reversed changes: %w", len(unknown), err)
		}
		for _, id := range unknown {
			if rows := onSheet[id]; len(rows) > 0 {
				rowOf[id] = rows[0]
			}
		}
	}
	// Only an exception still open (Open, Investigating or blank) is set: a
	// decision a reviewer made (Approved correction, Invoice adjusted)
	// stays theirs, and is recorded as theirs by the next verification.
	open, err := r.openDispositions(ctx, cols[audit.LogDisposition], rowOf)
	if err != nil {
		return ids, err
	}
	var rows []smartsheet.Row
	var left []string
	for _, id := range ids {
		row, ok := rowOf[id]
		if !ok || !open[row] {
			continue // no record, no row, or already reviewed: nothing to mark
		}
		rows = append(rows, smartsheet.Row{ID: row, Cells: []smartsheet.Cell{{ColumnID: cols[audit.LogDisposition], Value: smartsheet.StringValue(audit.DispositionReversed)}}})
	}
	if len(rows) == 0 {
		return nil, nil
	}
	if err := r.renewLease(ctx); err != nil {
		return ids, err
	}
	// Setting a cell to the same value again is harmless: a retried request
	// may be replayed.
	if _, err := upd.UpdateRows(ctx, r.opts.AuditSheetID, rows, smartsheet.UpdateRowsOptions{}); err != nil {
		for id := range rowOf {
			left = append(left, id)
		}
		slices.Sort(left)
		return left, fmt.Errorf("set Disposition %s on %d audit rows: %w", audit.DispositionReversed, len(rows), err)
	}
	return nil, nil
}

// openDispositions reads the Disposition of the rows (one request) and
// reports which are still open: Open, Investigating or blank.
func (r *Runner) openDispositions(ctx context.Context, col int64, rowOf map[string]int64) (map[int64]bool, error) {
	ids := make([]int64, 0, len(rowOf))
	for _, row := range rowOf {
		ids = append(ids, row)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.Sort(ids)
	s, _, err := r.auditSheet.GetSheet(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{RowIDs: ids, ColumnIDs: []int64{col}})
	if err != nil {
		return nil, fmt.Errorf("read the Disposition of %d reversed changes: %w", len(ids), err)
	}
	open := map[int64]bool{}
	for _, row := range s.Rows {
		d := ""
		if c := row.Cell(col); c != nil {
			d = strings.TrimSpace(c.Value.Text())
		}
		open[row.ID] = d == "" || d == audit.DispositionOpen || d == audit.DispositionInvestigating
	}
	return open, nil
}

func (r *Runner) pendingReversals(ctx context.Context) ([]string, error) {
	v, ok, err := r.store.Meta(ctx, reversalsKey)
	if err != nil || !ok || v == "" {
		return nil, err
	}
	var ids []string
	if err := json.Unmarshal([]byte(v), &ids); err != nil {
		return nil, fmt.Errorf("decode %s: %w", reversalsKey, err)
	}
	return ids, nil
}

func (r *Runner) savePendingReversals(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		v, ok, err := r.store.Meta(ctx, reversalsKey)
		if err != nil || !ok || v == "" {
			return err
		}
		return r.store.PutMeta(ctx, reversalsKey, "")
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	return r.store.PutMeta(ctx, reversalsKey, string(b))
}
