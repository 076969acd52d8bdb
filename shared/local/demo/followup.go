package demo

import (
	"errors"
	"fmt"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Priya is the manager who works the exceptions on the audit sheet.
var Priya = smartsheet.User{Name: "Priya Shah", Email: "priya.shah@fieldops.example.com"}

// FollowUp is what happened after the audit: a price put back, and an
// exception a manager took up.
type FollowUp struct {
	// PutBack is the unauthorized change whose cell Raj put back: the next
	// audit logs that as a reversal of it.
	PutBack audit.Change
	// Reviewed is the exception Priya marked Investigating on the audit
	// sheet: the next audit seals her review in the ledger.
	Reviewed audit.Change
}

// FollowUps plays the day after the audit: Raj puts back the price of the
// largest unauthorized price change, and Priya, reviewing the audit sheet,
// takes up the next largest exception (Reviewer, Disposition Investigating,
// a note). changes are the audit's.
func FollowUps(srv *smartsim.Server, auditID int64, changes []audit.Change) (FollowUp, error) {
	var f FollowUp
	var priced []audit.Change
	for _, c := range changes {
		if c.Unauthorized() && c.Kind == audit.KindValueChanged && c.ColumnKey == audit.ColPrice {
			priced = append(priced, c)
		}
	}
	if len(priced) < 2 {
		return f, errors.New("follow-ups: the audit found fewer than two unauthorized price changes")
	}
	largest := func(cs []audit.Change) int {
		best := 0
		for i, c := range cs {
			if c.Impact.Abs().GreaterThan(cs[best].Impact.Abs()) {
				best = i
			}
		}
		return best
	}
	i := largest(priced)
	f.PutBack = priced[i]
	priced = append(priced[:i], priced[i+1:]...)
	f.Reviewed = priced[largest(priced)]

	back, ok, err := audit.ParseMoney(f.PutBack.OldValue)
	if err != nil || !ok {
		return f, fmt.Errorf("follow-ups: old price %q of change %s: %v", f.PutBack.OldValue, f.PutBack.ChangeID, err)
	}
	if _, err := srv.SetCell(smartsim.Edit{User: Raj}, f.PutBack.SheetID, f.PutBack.RowID, f.PutBack.ColumnID,
		smartsheet.NumberValue(back.StringFixed(2))); err != nil {
		return f, fmt.Errorf("follow-ups: put back the price of change %s: %w", f.PutBack.ChangeID, err)
	}

	sh, err := srv.Sheet(auditID)
	if err != nil {
		return f, fmt.Errorf("follow-ups: read the audit sheet: %w", err)
	}
	col := func(title string) int64 {
		if c := sh.Column(title); c != nil {
			return c.ID
		}
		return 0
	}
	idCol := col(audit.LogChangeID)
	for _, r := range sh.Rows {
		if c := r.Cell(idCol); c == nil || c.Value.Text() != f.Reviewed.ChangeID {
			continue
		}
		_, err := srv.UpdateRows(smartsim.Edit{User: Priya}, auditID, []smartsheet.Row{{ID: r.ID, Cells: []smartsheet.Cell{
			{ColumnID: col(audit.LogReviewer), Value: smartsheet.StringValue(Priya.Email)},
			{ColumnID: col(audit.LogDisposition), Value: smartsheet.StringValue(audit.DispositionInvestigating)},
			{ColumnID: col(audit.LogResolutionNote), Value: smartsheet.StringValue("Asked the crew lead for the signed ticket")},
		}}})
		if err != nil {
			return f, fmt.Errorf("follow-ups: review change %s on the audit sheet: %w", f.Reviewed.ChangeID, err)
		}
		return f, nil
	}
	return f, fmt.Errorf("follow-ups: change %s is not on the audit sheet", f.Reviewed.ChangeID)
}
