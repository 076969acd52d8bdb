package pipeline

import (
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// TestAuditRowNumberFields: a number field is written as a number when its
// sealed value is one, and as the sealed text otherwise — never a panic
// (FuzzAuditRowCells found auditRow panicking on "+7.").
func TestAuditRowNumberFields(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		wantKind smartsheet.ValueKind
	}{
		{name: "two decimals", value: "4350.00", wantKind: smartsheet.KindNumber},
		{name: "negative", value: "-40.50", wantKind: smartsheet.KindNumber},
		{name: "plus sign and trailing dot", value: "+7.", wantKind: smartsheet.KindString},
		{name: "text", value: "n/a", wantKind: smartsheet.KindString},
		{name: "leading zero", value: "0123", wantKind: smartsheet.KindString},
	}
	_, ids := auditColumnsWithIDs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := audit.LogLayout()
			for i := range fields {
				if fields[i].Title == audit.LogImpact {
					fields[i].Value = tt.value
				}
			}
			e := audit.NextEntry(audit.LedgerEntry{}, audit.EntryChange, "c0ffee", time.Unix(1764547200, 0), fields)
			row := auditRow(ids, e)
			c := row.Cell(ids[audit.LogImpact])
			if c == nil {
				t.Fatalf("auditRow(Money Impact %q) has no Money Impact cell", tt.value)
			}
			if got := c.Value.Kind(); got != tt.wantKind || c.Value.Text() != tt.value {
				t.Errorf("auditRow(Money Impact %q) = %s %q, want %s %q", tt.value, got, c.Value.Text(), tt.wantKind, tt.value)
			}
		})
	}
}

// auditColumnsWithIDs returns AuditColumns with ids 101, 102, … in order,
// and the map by title the product writes rows with (Runner.auditColumns).
func auditColumnsWithIDs() ([]smartsheet.Column, map[string]int64) {
	cols := make([]smartsheet.Column, len(AuditColumns))
	ids := make(map[string]int64, len(AuditColumns))
	for i, c := range AuditColumns {
		c.ID, c.Index = int64(101+i), i
		cols[i], ids[c.Title] = c, c.ID
	}
	return cols, ids
}
