package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The run's status lives in the audit sheet's summary fields, not in a row:
// the sheet holds change rows only, so every column means one thing and a
// SUM of Money Impact is the money of the changes.

// Titles of the audit sheet's summary fields.
const (
	SumStatus     = "Audit Status"
	SumPeriod     = "Audit Period"
	SumCounts     = "Changes This Period"
	SumNet        = "Net Impact This Period"
	SumLastRun    = "Last Run"
	SumLastRunAt  = "Last Run At"
	SumWorkbook   = "Workbook"
	SumIntegrity  = "Log Integrity"
	SumVerifiedAt = "Verified At"
	SumLedger     = "Ledger Head"
	SumDigest     = "Last Signed Digest"
)

// SummaryFields is the layout of the audit sheet's summary, in order. Net
// Impact is a number shown as dollars; the rest are text. Every field is
// locked (only the sheet's owner and admins may edit it): the product alone
// writes them, and verification reads the Ledger Head back.
var SummaryFields = lockSummary([]smartsheet.SummaryField{
	{Title: SumStatus, Type: smartsheet.TypeTextNumber},
	{Title: SumIntegrity, Type: smartsheet.TypeTextNumber},
	{Title: SumPeriod, Type: smartsheet.TypeTextNumber},
	{Title: SumCounts, Type: smartsheet.TypeTextNumber},
	{Title: SumNet, Type: smartsheet.TypeTextNumber, Format: smartsheet.FormatCurrencyUSD},
	{Title: SumLastRun, Type: smartsheet.TypeTextNumber},
	{Title: SumLastRunAt, Type: smartsheet.TypeTextNumber},
	{Title: SumWorkbook, Type: smartsheet.TypeTextNumber},
	{Title: SumVerifiedAt, Type: smartsheet.TypeTextNumber},
	{Title: SumLedger, Type: smartsheet.TypeTextNumber},
	{Title: SumDigest, Type: smartsheet.TypeTextNumber},
})

func lockSummary(fields []smartsheet.SummaryField) []smartsheet.SummaryField {
	locked := true
	for i := range fields {
		fields[i].Locked = &locked
	}
	return fields
}

func summaryKey(sheetID int64) string { return "audit-summary:" + strconv.FormatInt(sheetID, 10) }

// ensureSummaryFields adds the summary fields the audit sheet lacks and
// remembers every field's id by title.
func ensureSummaryFields(ctx context.Context, api AuditSummaryFields, store MetaStore, sheetID int64) (map[string]int64, error) {
	have, err := api.GetSummaryFields(ctx, sheetID)
	if err != nil {
		return nil, fmt.Errorf("read the summary of audit sheet %d: %w", sheetID, err)
	}
	ids := make(map[string]int64, len(SummaryFields))
	unlocked := map[string]bool{}
	for _, f := range have {
		ids[f.Title] = f.ID
		unlocked[f.Title] = f.Locked == nil || !*f.Locked
	}
	var missing, relock []smartsheet.SummaryField
	for _, f := range SummaryFields {
		if ids[f.Title] == 0 {
			missing = append(missing, f)
		} else if unlocked[f.Title] {
			// Added unlocked by an earlier version, or unlocked since.
			relock = append(relock, smartsheet.SummaryField{ID: ids[f.Title], Locked: f.Locked})
		}
	}
	if len(relock) > 0 {
		if _, err := api.UpdateSummaryFields(ctx, sheetID, relock); err != nil {
			return nil, fmt.Errorf("lock the summary fields of audit sheet %d: %w", sheetID, err)
		}
	}
	if len(missing) > 0 {
		added, err := api.AddSummaryFields(ctx, sheetID, missing)
		if err != nil {
			return nil, fmt.Errorf("add summary fields to audit sheet %d: %w", sheetID, err)
		}
		for _, f := range added {
			ids[f.Title] = f.ID
		}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("encode the summary field ids of audit sheet %d: %w", sheetID, err)
	}
	return ids, wrapErr(fmt.Sprintf("remember the summary field ids of audit sheet %d", sheetID), store.PutMeta(ctx, summaryKey(sheetID), string(b)))
}

// updateSummary sets summary fields by title ("" clears a field's value;
// numbers are given as number values). A field someone deleted is added
// again.
func (r *Runner) updateSummary(ctx context.Context, values map[string]smartsheet.Value) error {
	ids := map[string]int64{}
	if v, ok, err := r.store.Meta(ctx, summaryKey(r.opts.AuditSheetID)); err != nil {
		return fmt.Errorf("read the summary field ids of audit sheet %d: %w", r.opts.AuditSheetID, err)
	} else if ok {
		_ = json.Unmarshal([]byte(v), &ids)
	}
	for attempt := 0; ; attempt++ {
		fields := make([]smartsheet.SummaryField, 0, len(values))
		complete := true
		for _, f := range SummaryFields {
			v, ok := values[f.Title]
			if !ok {
				continue
			}
			if ids[f.Title] == 0 {
				complete = false
				break
			}
			fields = append(fields, smartsheet.SummaryField{ID: ids[f.Title], Type: f.Type, ObjectValue: v})
		}
		if complete {
			_, err := r.auditSheet.UpdateSummaryFields(ctx, r.opts.AuditSheetID, fields)
			if err == nil {
				return nil
			}
			if attempt > 0 || !smartsheet.IsNotFound(err) && !smartsheet.IsBadRequest(err) {
				return fmt.Errorf("update the summary of audit sheet %d: %w", r.opts.AuditSheetID, err)
			}
		} else if attempt > 0 {
			return fmt.Errorf("update the summary of audit sheet %d: fields missing after setting them up", r.opts.AuditSheetID)
		}
		var err error
		if ids, err = ensureSummaryFields(ctx, r.auditSheet, r.store, r.opts.AuditSheetID); err != nil {
			return err
		}
	}
}
