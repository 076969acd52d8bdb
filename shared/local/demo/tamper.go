package demo

import (
	"errors"
	"fmt"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Tampering is what Tamper did to the audit log, for the checks to name.
type Tampering struct {
	// Deleted is the Change ID of the row deleted.
	Deleted string
	// Altered is the Change ID of the row whose Money Impact was
	// overwritten, with the value it held, the value written, and its row
	// number once the deleted row is gone.
	Altered          string
	AlteredFrom      string
	AlteredTo        string
	AlteredRowNumber int
	// Forged is the Change ID typed into a row that no run wrote.
	Forged string
}

// Tamper edits the audit-log sheet as a person with edit rights could, the
// three ways the issue names: Dana deletes the first change row, sets the
// Money Impact of the second to 0, and adds a forged row copied from the
// third with an invented Change ID. The audit sheet needs at least three
// change rows.
func Tamper(srv *smartsim.Server, auditSheetID int64) (Tampering, error) {
	var t Tampering
	sh, err := srv.Sheet(auditSheetID)
	if err != nil {
		return t, err
	}
	col := map[string]int64{}
	for _, c := range sh.Columns {
		col[c.Title] = c.ID
	}
	text := func(r *smartsheet.Row, title string) string {
		if c := r.Cell(col[title]); c != nil {
			return c.Value.Text()
		}
		return ""
	}
	var rows []*smartsheet.Row
	for i := range sh.Rows {
		if text(&sh.Rows[i], audit.LogChangeID) != "" {
			rows = append(rows, &sh.Rows[i])
		}
	}
	if len(rows) < 3 {
		return t, errors.New("tamper: the audit sheet has fewer than 3 change rows")
	}
	at := func(d time.Duration) smartsim.Edit { return smartsim.Edit{User: Dana, At: srv.Now().Add(d)} }

	// rows[0], above it, is deleted below: its number then drops by one.
	t.Altered, t.AlteredFrom, t.AlteredTo, t.AlteredRowNumber = text(rows[1], audit.LogChangeID), text(rows[1], audit.LogImpact), "0", rows[1].RowNumber-1
	if _, err := srv.SetCell(at(time.Second), auditSheetID, rows[1].ID, col[audit.LogImpact], smartsheet.NumberValue("0")); err != nil {
		return t, fmt.Errorf("tamper: overwrite Money Impact: %w", err)
	}

	t.Forged = "forged-" + text(rows[2], audit.LogChangeID)[:8]
	var cells []smartsheet.Cell
	for _, c := range rows[2].Cells {
		if c.Value.IsZero() {
			continue
		}
		v := c.Value
		if c.ColumnID == col[audit.LogChangeID] {
			v = smartsheet.StringValue(t.Forged)
		}
		cells = append(cells, smartsheet.Cell{ColumnID: c.ColumnID, Value: v})
	}
	if _, err := srv.AddRows(at(2*time.Second), auditSheetID, []smartsheet.Row{{ToBottom: true, Cells: cells}}); err != nil {
		return t, fmt.Errorf("tamper: add a forged row: %w", err)
	}

	t.Deleted = text(rows[0], audit.LogChangeID)
	if _, err := srv.DeleteRows(at(3*time.Second), auditSheetID, []int64{rows[0].ID}); err != nil {
		return t, fmt.Errorf("tamper: delete a row: %w", err)
	}
	return t, nil
}
