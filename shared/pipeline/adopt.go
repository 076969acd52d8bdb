package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// An audit sheet written by a version without the ledger holds rows no
// ledger entry records: every change row, and the status row that version
// kept at the top. Once per store, before anything else is sealed or
// verified, those rows are adopted: each is sealed as an EntryAdopted entry
// holding the row as it stands, so verification names any later edit of
// them instead of calling every old row forged. A change the product wrote
// whose row is no longer there is sealed as the product wrote it, and
// verification names it deleted. Rows the product never wrote stay unknown:
// forged.

// adoptedKey (meta) is set once the rows written before the ledger are
// adopted.
const adoptedKey = "ledger-adopted"

// legacyStatusID is the Change ID under which the earlier versions kept
// their status row.
const legacyStatusID = "AUDIT-STATUS"

// adoptLegacy adopts the rows written before the ledger existed, once. The
// caller holds the audit-log lease. Test mode adopts nothing (it writes
// nothing).
func (r *Runner) adoptLegacy(ctx context.Context) error {
	if r.adopted.Load() || r.opts.TestMode || r.opts.AuditSheetID == 0 {
		return nil
	}
	if _, ok, err := r.store.Meta(ctx, adoptedKey); err != nil {
		return err
	} else if ok {
		r.adopted.Store(true)
		return nil
	}
	recs, err := r.store.Changes(ctx, time.Time{}, time.Time{})
	if err != nil {
		return fmt.Errorf("adopt earlier audit rows: %w", err)
	}
	legacy := map[string]ChangeRecord{}
	for _, rec := range recs {
		if rec.Written && rec.Seq == 0 {
			legacy[rec.Change.ChangeID] = rec
		}
	}
	rows, err := r.legacyRows(ctx, legacy)
	if err != nil {
		return fmt.Errorf("adopt earlier audit rows: %w", err)
	}
	head, err := r.syncLedger(ctx)
	if err != nil {
		return err
	}
	now := r.opts.Clock().UTC()
	var chain []audit.LedgerEntry
	var written []WrittenRow
	add := func(subject string, fields []audit.Field, rowID int64) {
		head = audit.NextEntry(head, audit.EntryAdopted, subject, now, fields)
		chain = append(chain, head)
		if _, ok := legacy[subject]; ok {
			written = append(written, WrittenRow{ChangeID: subject, RowID: rowID, Seq: head.Seq, Hash: head.Hash})
		}
	}
	for _, row := range rows {
		add(row.id, row.fields, row.rowID)
	}
	// Written, and gone from the sheet before the ledger existed.
	ids := make([]string, 0, len(legacy))
	for id := range legacy {
		if !slices.ContainsFunc(rows, func(r legacyRow) bool { return r.id == id }) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		add(id, audit.LogFields(legacy[id].Change, r.opts.Audit.Location), 0)
	}
	if len(chain) > 0 {
		r.log.InfoContext(ctx, "sealing the audit rows written before the ledger", slog.Int("rows", len(rows)), slog.Int("gone", len(ids)))
		if err := r.store.AppendLedger(ctx, chain); err != nil {
			return fmt.Errorf("adopt earlier audit rows: %w", err)
		}
		if err := r.store.MarkWritten(ctx, written); err != nil {
			return fmt.Errorf("adopt earlier audit rows: %w", err)
		}
	}
	if err := r.store.PutMeta(ctx, adoptedKey, fmt.Sprint(len(chain))); err != nil {
		return err
	}
	r.adopted.Store(true)
	return nil
}

// legacyRow is a row of the audit sheet to adopt: its Change ID, its row id
// and its cells as sealed fields.
type legacyRow struct {
	id     string
	rowID  int64
	fields []audit.Field
}

// legacyRows reads the audit sheet and returns, in sheet order, the rows of
// the legacy changes and the status rows of earlier versions.
func (r *Runner) legacyRows(ctx context.Context, legacy map[string]ChangeRecord) ([]legacyRow, error) {
	layout := audit.LogLayout()
	var out []legacyRow
	var titles map[int64]string
	seen := map[string]bool{}
	err := r.api.ForEachSheetPage(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{PageSize: verifyPageSize}, func(s *smartsheet.Sheet) error {
		if titles == nil {
			titles = make(map[int64]string, len(s.Columns))
			for _, c := range s.Columns {
				titles[c.ID] = c.Title
			}
		}
		for i := range s.Rows {
			row := sheetRow(&s.Rows[i], titles)
			id := strings.TrimSpace(row.Cells[audit.LogChangeID].Value)
			if _, ok := legacy[id]; (!ok && id != legacyStatusID) || seen[id] {
				continue
			}
			seen[id] = true
			fields := make([]audit.Field, len(layout))
			for j, f := range layout {
				c := row.Cells[f.Title]
				fields[j] = audit.Field{Title: f.Title, Kind: f.Kind, Value: c.Value, Link: c.Link}
			}
			out = append(out, legacyRow{id: id, rowID: row.RowID, fields: fields})
		}
		return nil
	})
	return out, err
}
