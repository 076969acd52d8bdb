package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Kind is what happened to a billed row.
type Kind string

// The kinds of change.
const (
	// KindValueChanged: a tracked cell differs from its baseline.
	KindValueChanged Kind = "VALUE_CHANGED"
	// KindRowDeleted: a row with a baseline disappeared.
	KindRowDeleted Kind = "ROW_DELETED"
	// KindRowAddedLate: a new billable row appeared in a week that had already
	// ended when it was first seen, on a sheet that already had a baseline.
	KindRowAddedLate Kind = "ROW_ADDED_LATE"
	// KindWeekMoved: a row's week ending moved to another week (often an
	// automation re-stamping Snapshot Date). Reported instead of a
	// VALUE_CHANGED on the week-ending or Snapshot Date column.
	KindWeekMoved Kind = "WEEK_MOVED"
)

// Status is the verdict on when a change was made.
type Status string

// The verdicts. The zero Status means "not classified yet".
const (
	// StatusUnauthorized: made after the week-ending day (plus grace) ended.
	StatusUnauthorized Status = "UNAUTHORIZED"
	// StatusAuthorized: made while the week was still open.
	StatusAuthorized Status = "AUTHORIZED"
	// StatusNeedsReview: the change time is only known to a window that
	// straddles the cutoff, or the week ending is unknown.
	StatusNeedsReview Status = "NEEDS_REVIEW"
)

// Risk grades a change by the size of its money impact.
type Risk string

// The risk levels.
const (
	RiskLow    Risk = "LOW"
	RiskMedium Risk = "MEDIUM"
	RiskHigh   Risk = "HIGH"
	// RiskUnknown: the impact could not be computed (a value did not parse),
	// which must not read as "no money moved".
	RiskUnknown Risk = "UNKNOWN"
)

// Change is one detected change to a billed row.
type Change struct {
	// ChangeID is the same whenever the same change is detected again, and
	// new when the same edit is made again (see [ChangeID]).
	ChangeID string `json:"changeId"`
	// Generation is the generation of the baseline the change was measured
	// against (see [Baseline.Generation]); part of the Change ID.
	Generation uint64 `json:"generation,omitempty"`
	// RunID is the run that detected it.
	RunID       string `json:"runId"`
	Kind        Kind   `json:"kind"`
	SheetID     int64  `json:"sheetId"`
	SheetName   string `json:"sheetName"`
	RowID       int64  `json:"rowId"`
	RowNumber   int    `json:"rowNumber"`
	Permalink   string `json:"permalink,omitempty"`
	WorkRequest string `json:"workRequest,omitempty"`
	// WeekEnding is the billed week of the row (before a move); zero if
	// unknown.
	WeekEnding time.Time `json:"weekEnding,omitzero"`
	// MovedTo is the new week ending of a WEEK_MOVED change.
	MovedTo time.Time `json:"movedTo,omitzero"`
	// Column is the title as displayed on the sheet; empty for row changes
	// (ROW_DELETED, ROW_ADDED_LATE).
	Column string `json:"column,omitempty"`
	// ColumnKey is the canonical key of Column (or its title for extra
	// tracked columns).
	ColumnKey string `json:"columnKey,omitempty"`
	ColumnID  int64  `json:"columnId,omitempty"`
	// OldValue and NewValue are the raw cell texts; for WEEK_MOVED, the week
	// endings as YYYY-MM-DD; for ROW_DELETED and ROW_ADDED_LATE, the row's
	// price.
	OldValue string `json:"oldValue"`
	NewValue string `json:"newValue"`
	// Delta is new − old when both parse as numbers (money or quantity).
	Delta *decimal.Decimal `json:"delta,omitempty"`
	// Impact is the change in billed money (see [Detector.Compare]).
	Impact decimal.Decimal `json:"impact"`
	// Estimated is set when Impact was derived (quantity × unit price).
	Estimated bool `json:"estimated,omitempty"`
	// Unvalued is set when Impact could not be computed; Impact is then zero
	// and Risk UNKNOWN.
	Unvalued bool `json:"unvalued,omitempty"`
	// ValuedElsewhere says the change's money is counted on another change
	// of the same row (a quantity changed together with the price: the
	// price change carries the impact), so its own impact is 0.
	ValuedElsewhere bool `json:"valuedElsewhere,omitempty"`
	// Note explains the valuation or the detection to a reader.
	Note        string      `json:"note,omitempty"`
	Risk        Risk        `json:"risk"`
	Status      Status      `json:"status"`
	Attribution Attribution `json:"attribution"`
	DetectedAt  time.Time   `json:"detectedAt"`
	// Reverses names the unauthorized changes this one undoes, oldest first,
	// joined by ", " (see [ReversedIDs]): the cell went back to the value it
	// had before them (650 → 5000, then back to 650; or 650 → 700 → 5000,
	// then back to 650, which undoes both). The pipeline keeps only those
	// that were unauthorized, and marks each Reversed.
	Reverses string `json:"reverses,omitempty"`
}

// Unauthorized reports whether the change was made after its week closed.
func (c Change) Unauthorized() bool { return c.Status == StatusUnauthorized }

// ChangeID derives a change's id from what changed — sheet, row, column key,
// kind, old and new value — and from the generation of the row's baseline it
// was measured against, and from nothing about when or by which run it was
// seen. So one change keeps one id however often it is seen (a redelivered
// batch, the scan's overlap re-read, the same edit seen by a webhook refresh
// and by the scan: each compares against the same stored baseline), while an
// edit made again after being reverted gets a new id: a row that goes A→B,
// back to A, then to B again is compared against baselines of generations g,
// g+1 and g+2, so the two A→B changes differ. Values should be normalised
// (Detector does so) so "1200" and "1200.00" agree.
func ChangeID(sheetID, rowID int64, generation uint64, columnKey string, kind Kind, oldValue, newValue string) string {
	h := sha256.New()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(sheetID))
	h.Write(buf[:])
	binary.BigEndian.PutUint64(buf[:], uint64(rowID))
	h.Write(buf[:])
	// Always part of the id, 0 included: an id made before generations
	// existed hashes differently, so a baseline stored then (read as
	// generation 0) cannot give a re-applied edit the id of its first
	// occurrence.
	h.Write([]byte("g"))
	binary.BigEndian.PutUint64(buf[:], generation)
	h.Write(buf[:])
	for _, s := range []string{columnKey, string(kind), oldValue, newValue} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

// FindingKind classifies a data-quality or configuration finding.
type FindingKind string

// The kinds of finding.
const (
	// FindingMissingColumn: a tracked column is missing from a sheet.
	FindingMissingColumn FindingKind = "MISSING_COLUMN"
	// FindingNoWeekEnding: a sheet has neither the week-ending nor the
	// Snapshot Date column, or a row has neither filled.
	FindingNoWeekEnding FindingKind = "NO_WEEK_ENDING"
	// FindingBadMoney, FindingBadQuantity, FindingBadDate: a value did not
	// parse; Raw keeps it.
	FindingBadMoney    FindingKind = "UNPARSEABLE_MONEY"
	FindingBadQuantity FindingKind = "UNPARSEABLE_QUANTITY"
	FindingBadDate     FindingKind = "UNPARSEABLE_DATE"
	// FindingDateFarFuture: a date more than 2 years after the scan (the
	// "2035" typo).
	FindingDateFarFuture FindingKind = "DATE_FAR_FUTURE"
	// FindingDateFarPast: a date more than 10 years before the scan.
	FindingDateFarPast FindingKind = "DATE_FAR_PAST"
	// FindingSnapshotFuture: a Snapshot Date after the scan date.
	FindingSnapshotFuture FindingKind = "SNAPSHOT_IN_FUTURE"
	// FindingSheetUnreadable: a source sheet could not be read this run
	// (deleted, no longer shared with the integration user, or failing past
	// every retry). The other sheets are audited; this one is read again by
	// the next run, from where its last complete scan left it.
	FindingSheetUnreadable FindingKind = "SHEET_UNREADABLE"
)

// Finding is a problem with a sheet's data or shape that the audit reports
// rather than skips. RowID is zero for sheet-level findings.
type Finding struct {
	Kind      FindingKind `json:"kind"`
	SheetID   int64       `json:"sheetId"`
	SheetName string      `json:"sheetName,omitempty"`
	RowID     int64       `json:"rowId,omitempty"`
	RowNumber int         `json:"rowNumber,omitempty"`
	Column    string      `json:"column,omitempty"`
	Raw       string      `json:"raw,omitempty"`
	Message   string      `json:"message"`
}

// ReversedIDs are the Change IDs a Reverses value names.
func ReversedIDs(reverses string) []string {
	return strings.FieldsFunc(reverses, func(r rune) bool { return r == ',' || r == ' ' })
}

// JoinReversed is the Reverses value naming ids.
func JoinReversed(ids []string) string { return strings.Join(ids, ", ") }
