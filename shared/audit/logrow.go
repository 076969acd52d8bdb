package audit

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Titles of the audit-log sheet's columns. The audit log is a record: each
// column means one thing, the same for every row.
const (
	LogWorkRequest  = "Work Request #"
	LogWeekEnding   = "Week Ending"
	LogSourceSheet  = "Source Sheet"
	LogSourceRow    = "Source Row"
	LogColumn       = "Column"
	LogOldValue     = "Old Value"
	LogNewValue     = "New Value"
	LogDelta        = "Delta"
	LogImpact       = "Money Impact"
	LogChangedBy    = "Changed By"
	LogChangedAt    = "Changed At"
	LogChangedOn    = "Changed On"
	LogDetectedOn   = "Detected On"
	LogAttribution  = "Attribution"
	LogUnauthorized = "Unauthorized"
	LogRisk         = "Risk"
	LogKind         = "Kind"
	LogRunID        = "Run ID"
	LogChangeID     = "Change ID"
	// LogSeal holds the first [SealLength] characters of the row's ledger
	// entry hash, so a person can match a row with its ledger entry. It is
	// written with the row but is not one of its sealed fields.
	LogSeal = "Seal"
)

// FieldKind says how a field's value is written and compared: text as it
// is, numbers by value ("4350" = "4350.00"), dates as YYYY-MM-DD.
type FieldKind string

// The field kinds.
const (
	FieldText   FieldKind = "text"
	FieldNumber FieldKind = "number"
	FieldDate   FieldKind = "date"
)

// Field is one cell of an audit-log row as the product writes it: the
// column's title, how the value is typed, the value ("" for an empty cell)
// and, for the Source Row, the hyperlink to the source row.
type Field struct {
	Title string    `json:"title"`
	Kind  FieldKind `json:"kind"`
	Value string    `json:"value"`
	Link  string    `json:"link,omitempty"`
}

// LogFields is the audit-log row of a change: every field the product writes,
// in column order, empty ones included (a cell filled in later is then a
// difference too). The ledger seals exactly these fields, and the audit sheet
// row is written from them, so what is sealed is what is written.
func LogFields(c Change, loc *time.Location) []Field {
	if loc == nil {
		loc = time.UTC
	}
	text := func(title, v string) Field { return Field{Title: title, Kind: FieldText, Value: v} }
	date := func(title string, t time.Time) Field {
		f := Field{Title: title, Kind: FieldDate}
		if !t.IsZero() {
			f.Value = FormatDate(t)
		}
		return f
	}
	number := func(title, v string) Field { return Field{Title: title, Kind: FieldNumber, Value: v} }

	delta, impact := "", ""
	if c.Delta != nil {
		delta = c.Delta.StringFixed(2)
	}
	if !c.Unvalued {
		impact = c.Impact.StringFixed(2)
	}
	who := c.Attribution.User
	if who == "" {
		who = c.Attribution.Name
	}
	var changedOn time.Time
	if c.Attribution.Time != nil {
		changedOn = civilDate(c.Attribution.Time.In(loc))
	}
	column := c.Column
	if column == "" {
		column = "(row)"
	}
	row := Field{Title: LogSourceRow, Kind: FieldText, Value: fmt.Sprintf("Row %d", c.RowNumber), Link: c.Permalink}
	return []Field{
		text(LogWorkRequest, c.WorkRequest),
		date(LogWeekEnding, c.WeekEnding),
		text(LogSourceSheet, c.SheetName),
		row,
		text(LogColumn, column),
		text(LogOldValue, c.OldValue),
		text(LogNewValue, c.NewValue),
		number(LogDelta, delta),
		number(LogImpact, impact),
		text(LogChangedBy, who),
		text(LogChangedAt, ChangedAtText(c.Attribution, loc)),
		date(LogChangedOn, changedOn),
		date(LogDetectedOn, civilDate(c.DetectedAt.In(loc))),
		text(LogAttribution, string(c.Attribution.Source)),
		text(LogUnauthorized, UnauthorizedLabel(c.Status)),
		text(LogRisk, string(c.Risk)),
		text(LogKind, string(c.Kind)),
		text(LogRunID, c.RunID),
		text(LogChangeID, c.ChangeID),
	}
}

// FieldValue returns the value of the field with that title, or "".
func FieldValue(fs []Field, title string) string {
	for _, f := range fs {
		if f.Title == title {
			return f.Value
		}
	}
	return ""
}

// UnauthorizedLabel is the audit log's Unauthorized cell for a status.
func UnauthorizedLabel(s Status) string {
	switch s {
	case StatusUnauthorized:
		return "YES"
	case StatusAuthorized:
		return "NO"
	default:
		return "REVIEW"
	}
}

// ChangedAtText is when a change was made, as the audit log shows it: the
// time in the audit timezone, or the window it happened in when only that is
// known.
func ChangedAtText(a Attribution, loc *time.Location) string {
	const layout = "2006-01-02T15:04:05Z07:00"
	if loc == nil {
		loc = time.UTC
	}
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

// sameValue reports whether a cell read back from the sheet holds what the
// ledger sealed for a field of that kind. Text must match exactly, except
// that plain numbers compare by value (Smartsheet keeps "91234567" in a text
// column as a number); numbers compare by value; dates as dates.
func sameValue(kind FieldKind, sealed, found string) bool {
	sealed, found = strings.TrimSpace(sealed), strings.TrimSpace(found)
	if sealed == found {
		return true
	}
	switch kind {
	case FieldDate:
		a, okA, errA := ParseDate(sealed, time.UTC)
		b, okB, errB := ParseDate(found, time.UTC)
		return okA && okB && errA == nil && errB == nil && a.Equal(b)
	default:
		a, errA := parsePlainNumber(sealed)
		b, errB := parsePlainNumber(found)
		return errA == nil && errB == nil && a.Equal(b)
	}
}

// parsePlainNumber parses a number written the way Smartsheet returns one:
// an optional sign, digits, an optional fraction and exponent — no currency
// symbol or separators, so "1,200" is not "1200".
func parsePlainNumber(s string) (decimal.Decimal, error) {
	if s == "" || len(s) > 64 {
		return decimal.Decimal{}, errors.New("not a plain number")
	}
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9', r == '.', r == 'e', r == 'E':
		case (r == '-' || r == '+') && (i == 0 || s[i-1] == 'e' || s[i-1] == 'E'):
		default:
			return decimal.Decimal{}, errors.New("not a plain number")
		}
	}
	return decimal.NewFromString(s)
}
