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
	// LogReverses names the unauthorized change a change undoes (the cell
	// went back to its value before it): see [Change.Reverses].
	LogReverses = "Reverses"
	// LogSeal holds the row's [LedgerEntry.Seal] (the first characters of
	// its ledger entry's hash), so a person can match a row with its entry.
	// It is written with the row but is not one of its sealed fields.
	LogSeal = "Seal"

	// The review columns: the only ones people are meant to edit. The
	// product never seals them and verification lets them differ; each run
	// reads them back and records every change of them in the ledger.
	LogReviewer       = "Reviewer"
	LogDisposition    = "Disposition"
	LogResolutionNote = "Resolution Note"
)

// Dispositions are the values of the Disposition column. A blank one counts
// as Open.
const (
	DispositionOpen          = "Open"
	DispositionInvestigating = "Investigating"
	DispositionApproved      = "Approved correction"
	DispositionReversed      = "Reversed"
	DispositionInvoiced      = "Invoice adjusted"
)

// Dispositions lists the Disposition picklist, in order.
func Dispositions() []string {
	return []string{DispositionOpen, DispositionInvestigating, DispositionApproved, DispositionReversed, DispositionInvoiced}
}

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
		text(LogReverses, c.Reverses),
	}
}

// LogLayout is the titles and kinds of the audit-log row's fields, in column
// order, without values.
func LogLayout() []Field {
	fs := LogFields(Change{}, time.UTC)
	for i := range fs {
		fs[i].Value, fs[i].Link = "", ""
	}
	return fs
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
// ledger sealed for a field of that kind (see normalizeField).
func sameValue(kind FieldKind, sealed, found string) bool {
	return normalizeField(kind, sealed) == normalizeField(kind, found)
}

// normalizeField is the form in which a field's value is compared: text
// exactly (trimmed), except that a plain number compares by value, since
// Smartsheet keeps "91234567" in a text column as a number and returns
// "4350" for 4350.00; numbers by value; dates as YYYY-MM-DD.
func normalizeField(kind FieldKind, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if kind == FieldDate {
		if t, ok, err := ParseDate(s, time.UTC); ok && err == nil {
			return FormatDate(t)
		}
		return s
	}
	if n, ok := canonicalDecimal(s); ok {
		return n
	}
	if d, err := parsePlainNumber(s); err == nil {
		return d.String()
	}
	return s
}

// canonicalDecimal is the fast path of normalizeField for the usual plain
// number ("0123", "4350.00", "-40.50"): the value written without a plus
// sign, leading or trailing zeros, as decimal.Decimal.String writes it. ok
// is false for anything else (text, exponents), which takes the slow path.
func canonicalDecimal(s string) (string, bool) {
	neg := false
	body := s
	switch {
	case body == "":
		return "", false
	case body[0] == '-':
		neg, body = true, body[1:]
	case body[0] == '+':
		body = body[1:]
	}
	intPart, frac, hasDot := strings.Cut(body, ".")
	if intPart == "" && frac == "" {
		return "", false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return "", false
			}
		}
	}
	if hasDot && frac == "" && intPart == "" {
		return "", false
	}
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" {
		intPart = "0"
	}
	if intPart == "0" && frac == "" {
		return "0", true
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	if !neg && !hasDot && out == s {
		return s, true // already canonical: no allocation
	}
	return out, true
}

// maxPlainExponent bounds the exponent of a number compared by value. Every
// number Smartsheet returns is a float64 (at most 1.8e308, at least
// 4.9e-324, and 17 significant digits), so a larger exponent is text someone
// typed ("1e999999999"): comparing it by value would write out its
// canonical form, a billion digits, each time verification reads the row.
const maxPlainExponent = 400

// parsePlainNumber parses a number written the way Smartsheet returns one:
// an optional sign, digits, an optional fraction and exponent — no currency
// symbol or separators, so "1,200" is not "1200" — within ±maxPlainExponent.
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
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, err
	}
	if e := d.Exponent(); e > maxPlainExponent || e < -maxPlainExponent {
		return decimal.Decimal{}, fmt.Errorf("exponent %d beyond ±%d", e, maxPlainExponent)
	}
	return d, nil
}
