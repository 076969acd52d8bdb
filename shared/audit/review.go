package audit

import (
	"strings"
	"time"
)

// Titles of a disposition entry's fields besides the review columns: who
// saved the audit row with these values, and when (the row's writer info).
const (
	LogReviewedBy = "Reviewed By"
	LogReviewedAt = "Reviewed At"
)

// Review is an exception's review as the audit sheet shows it: the three
// review columns of its row, and who last saved the row and when.
type Review struct {
	ChangeID    string    `json:"changeId"`
	Reviewer    string    `json:"reviewer,omitempty"`
	Disposition string    `json:"disposition,omitempty"`
	Note        string    `json:"note,omitempty"`
	By          string    `json:"by,omitempty"`
	At          time.Time `json:"at,omitzero"`
}

// State is the review's columns in one comparable string.
func (r Review) State() string { return ReviewState(r.Reviewer, r.Disposition, r.Note) }

// Open reports whether the exception still needs acting on: not reversed,
// approved or invoiced (a blank disposition counts as Open).
func (r Review) Open() bool {
	switch strings.TrimSpace(r.Disposition) {
	case DispositionReversed, DispositionApproved, DispositionInvoiced:
		return false
	}
	return true
}

// ReviewState joins the review columns' values, trimmed, into one string
// that two reviews compare by.
func ReviewState(reviewer, disposition, note string) string {
	return strings.TrimSpace(reviewer) + "\x00" + strings.TrimSpace(disposition) + "\x00" + strings.TrimSpace(note)
}

// InitialDisposition is the Disposition the product writes with a change's
// audit row (its sealed fields): Reversed for a reversal (it and the change
// it undoes net out), Open for an exception (unauthorized or to review),
// blank for an authorized change.
func InitialDisposition(fields []Field) string {
	switch {
	case FieldValue(fields, LogReverses) != "":
		return DispositionReversed
	case FieldValue(fields, LogUnauthorized) != "" && FieldValue(fields, LogUnauthorized) != UnauthorizedLabel(StatusAuthorized):
		return DispositionOpen
	}
	return ""
}

// ChangeDisposition is InitialDisposition(LogFields(*c, loc)) without
// building the fields: the Exceptions of a large report ask it of every
// change.
func ChangeDisposition(c *Change) string {
	switch {
	case c.Reverses != "":
		return DispositionReversed
	case c.Status != StatusAuthorized:
		return DispositionOpen
	}
	return ""
}

// EntryReviewState is the review state an entry leaves its change in: a
// disposition entry's values, a change entry's initial disposition, and
// blank review columns for an adopted row (earlier versions had none).
func EntryReviewState(e LedgerEntry) string {
	switch e.Type {
	case EntryDisposition:
		return ReviewState(FieldValue(e.Fields, LogReviewer), FieldValue(e.Fields, LogDisposition), FieldValue(e.Fields, LogResolutionNote))
	case EntryChange:
		return ReviewState("", InitialDisposition(e.Fields), "")
	}
	return ReviewState("", "", "")
}

// ReviewFields are the fields a disposition entry seals.
func ReviewFields(r Review) []Field {
	at := ""
	if !r.At.IsZero() {
		at = r.At.UTC().Format(time.RFC3339)
	}
	return []Field{
		{Title: LogReviewer, Kind: FieldText, Value: strings.TrimSpace(r.Reviewer)},
		{Title: LogDisposition, Kind: FieldText, Value: strings.TrimSpace(r.Disposition)},
		{Title: LogResolutionNote, Kind: FieldText, Value: strings.TrimSpace(r.Note)},
		{Title: LogReviewedBy, Kind: FieldText, Value: r.By},
		{Title: LogReviewedAt, Kind: FieldText, Value: at},
	}
}

// ReviewOf reads a disposition entry back as a Review.
func ReviewOf(e LedgerEntry) Review {
	r := Review{ChangeID: e.Subject, Reviewer: FieldValue(e.Fields, LogReviewer), Disposition: FieldValue(e.Fields, LogDisposition),
		Note: FieldValue(e.Fields, LogResolutionNote), By: FieldValue(e.Fields, LogReviewedBy)}
	if t, err := time.Parse(time.RFC3339, FieldValue(e.Fields, LogReviewedAt)); err == nil {
		r.At = t
	}
	return r
}
