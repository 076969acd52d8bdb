package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ProblemKind names what verification found wrong with the audit log.
type ProblemKind string

// The problems. The first group compares the audit sheet with the ledger,
// the second checks the ledger's own chain, the third the signed digests.
const (
	// ProblemDeletedRow: a ledger entry whose row was written to the audit
	// sheet is no longer there.
	ProblemDeletedRow ProblemKind = "DELETED_ROW"
	// ProblemAlteredCell: a cell of an audit row differs from what the
	// ledger sealed.
	ProblemAlteredCell ProblemKind = "ALTERED_CELL"
	// ProblemForgedRow: a row on the audit sheet that no ledger entry
	// records (typed in, or copied with an invented Change ID).
	ProblemForgedRow ProblemKind = "FORGED_ROW"
	// ProblemDuplicateRow: a change is on the audit sheet more than once.
	ProblemDuplicateRow ProblemKind = "DUPLICATE_ROW"
	// ProblemSealMismatch: a row's Seal is not its ledger entry's hash (the
	// row was re-typed, or the entry re-sealed after the row was written).
	ProblemSealMismatch ProblemKind = "SEAL_MISMATCH"
	// ProblemMissingColumn: the audit sheet lacks a column the ledger
	// records (deleted or renamed).
	ProblemMissingColumn ProblemKind = "MISSING_COLUMN"
	// ProblemSummaryMismatch: the audit sheet's Ledger Head summary field
	// names an entry the ledger holds with another hash: the ledger was
	// re-sealed since the product last wrote the field — or someone with the
	// rights to edit the locked field changed it. It is not counted a ledger
	// problem (a sheet admin's edit must not stop digests; the digests pin
	// re-sealed entries). A Ledger Head beyond the ledger's end is
	// ENTRY_MISSING.
	ProblemSummaryMismatch ProblemKind = "SUMMARY_MISMATCH"

	// ProblemOutOfOrder: ledger sequence numbers skip, repeat or go back.
	ProblemOutOfOrder ProblemKind = "OUT_OF_ORDER"
	// ProblemBrokenChain: an entry's Prev is not the hash of the entry
	// before it.
	ProblemBrokenChain ProblemKind = "BROKEN_CHAIN"
	// ProblemAlteredEntry: an entry's content no longer hashes to its
	// recorded hash.
	ProblemAlteredEntry ProblemKind = "ALTERED_ENTRY"
	// ProblemDuplicateEntry: a change was sealed into the ledger twice.
	ProblemDuplicateEntry ProblemKind = "DUPLICATE_ENTRY"
	// ProblemEntryMissing: the ledger lacks an entry, or holds another one,
	// where a change record says one was sealed, or ends before the entry
	// the audit sheet's Ledger Head names: entries after the last digest
	// were cut or rewritten. Also a change sealed with no adoption entry
	// before it (the adoption entry was removed).
	ProblemEntryMissing ProblemKind = "ENTRY_MISSING"

	// ProblemDigestSignature: a digest's signature does not verify with
	// the public key.
	ProblemDigestSignature ProblemKind = "DIGEST_BAD_SIGNATURE"
	// ProblemDigestMismatch: the ledger disagrees with a signed digest (the
	// entry at its sequence number has another hash — the ledger was
	// re-sealed — or the ledger is shorter than it — truncated).
	ProblemDigestMismatch ProblemKind = "DIGEST_MISMATCH"
	// ProblemDigestChain: a digest does not name the hash of the digest
	// before it (one was removed, replaced or reordered).
	ProblemDigestChain ProblemKind = "DIGEST_CHAIN_BROKEN"
)

// LedgerProblem reports a problem with the ledger or the digests themselves
// (as opposed to the audit sheet): when the ledger cannot be trusted no new
// digest is signed over it.
func (k ProblemKind) LedgerProblem() bool {
	switch k {
	case ProblemOutOfOrder, ProblemBrokenChain, ProblemAlteredEntry, ProblemDuplicateEntry, ProblemEntryMissing,
		ProblemDigestSignature, ProblemDigestMismatch, ProblemDigestChain:
		return true
	}
	return false
}

// Problem is one thing verification found wrong, named so a person can find
// it: by Change ID, Work Request # and audit-sheet row number, and for a cell
// by its column with the ledger's value and the sheet's.
type Problem struct {
	Kind        ProblemKind `json:"kind"`
	ChangeID    string      `json:"changeId,omitempty"`
	WorkRequest string      `json:"workRequest,omitempty"`
	// RowNumber is the audit sheet's row number (0 when the row is gone).
	RowNumber int `json:"rowNumber,omitempty"`
	// RowID is the audit sheet's row id, when known.
	RowID int64 `json:"rowId,omitempty"`
	// Seq is the ledger entry's sequence number, when there is one.
	Seq    uint64 `json:"seq,omitempty"`
	Column string `json:"column,omitempty"`
	// Ledger and Sheet are the sealed value and the value found.
	Ledger string `json:"ledger,omitempty"`
	Sheet  string `json:"sheet,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// String is the problem in one line for a person.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(string(p.Kind))
	if p.ChangeID != "" {
		fmt.Fprintf(&b, " change %s", p.ChangeID)
	}
	if p.WorkRequest != "" {
		fmt.Fprintf(&b, " (Work Request # %s)", p.WorkRequest)
	}
	if p.RowNumber > 0 {
		fmt.Fprintf(&b, " at audit row %d", p.RowNumber)
	}
	if p.Seq > 0 {
		fmt.Fprintf(&b, " [ledger entry %d]", p.Seq)
	}
	if p.Column != "" {
		fmt.Fprintf(&b, ": %s is %q on the sheet, %q in the ledger", p.Column, p.Sheet, p.Ledger)
	}
	if p.Detail != "" {
		b.WriteString(": ")
		b.WriteString(p.Detail)
	}
	return b.String()
}

// SheetCell is a cell of an audit-sheet row as read back: its value as text
// and its hyperlink, if any.
type SheetCell struct {
	Value string
	Link  string
}

// SheetRow is an audit-sheet row as read back: cells by column title.
type SheetRow struct {
	RowID     int64
	RowNumber int
	Cells     map[string]SheetCell
}

// Blank reports a row with no value and no link in any cell.
func (r SheetRow) Blank() bool {
	for _, c := range r.Cells {
		if strings.TrimSpace(c.Value) != "" || c.Link != "" {
			return false
		}
	}
	return true
}

// CompareRow compares an audit-sheet row with the ledger entry of its Change
// ID: every sealed field, the hyperlink of the Source Row, and the Seal.
// Columns in editable (people's own columns, such as a disposition) are not
// compared; columns the sheet lacks are reported once by the caller, so a
// field whose column is in missing is skipped.
func CompareRow(e LedgerEntry, row SheetRow, editable, missing map[string]bool) []Problem {
	var ps []Problem
	base := Problem{ChangeID: e.Subject, WorkRequest: FieldValue(e.Fields, LogWorkRequest), RowNumber: row.RowNumber, RowID: row.RowID, Seq: e.Seq}
	for _, f := range e.Fields {
		if editable[f.Title] || missing[f.Title] {
			continue
		}
		got := row.Cells[f.Title]
		if !sameValue(f.Kind, f.Value, got.Value) {
			p := base
			p.Kind, p.Column, p.Ledger, p.Sheet = ProblemAlteredCell, f.Title, f.Value, got.Value
			ps = append(ps, p)
		}
		if f.Link != got.Link {
			p := base
			p.Kind, p.Column, p.Ledger, p.Sheet = ProblemAlteredCell, f.Title+" (link)", f.Link, got.Link
			ps = append(ps, p)
		}
	}
	if !missing[LogSeal] && e.HasSeal() {
		if got := strings.TrimSpace(row.Cells[LogSeal].Value); got != e.Seal() {
			p := base
			p.Kind, p.Column, p.Ledger, p.Sheet = ProblemSealMismatch, LogSeal, e.Seal(), got
			ps = append(ps, p)
		}
	}
	return ps
}

// RowPrint is a short fingerprint of what verification compares in an audit
// row: every sealed field (normalised as CompareRow compares it), its link,
// and the Seal. Verification keeps one per ledger entry, so it reads the
// ledger once and compares a page of sheet rows without the entries; only a
// row whose print differs has its entry read again, for CompareRow to name
// what differs.
type RowPrint [16]byte

// EntryPrint is the print of the row an entry must have; skip lists columns
// left out (editable or missing ones).
func EntryPrint(e LedgerEntry, skip map[string]bool) RowPrint {
	var scratch [2048]byte
	b := scratch[:0]
	for _, f := range e.Fields {
		if !skip[f.Title] {
			b = appendPart(b, f.Title, normalizeField(f.Kind, f.Value), f.Link)
		}
	}
	if !skip[LogSeal] && e.HasSeal() {
		b = appendPart(b, LogSeal, e.Seal(), "")
	}
	return printOf(b)
}

// SheetRowPrint is the print of a sheet row read back, laid out as the
// fields of its entry (their titles and kinds; values are ignored); sealed
// says whether the entry's row carries a Seal (LedgerEntry.HasSeal).
func SheetRowPrint(layout []Field, sealed bool, row SheetRow, skip map[string]bool) RowPrint {
	return CellsPrint(layout, sealed, func(title string) SheetCell { return row.Cells[title] }, skip)
}

// CellsPrint is SheetRowPrint over a row given as a lookup of its cells by
// column title (verification reads a page into one reused buffer).
func CellsPrint(layout []Field, sealed bool, cell func(title string) SheetCell, skip map[string]bool) RowPrint {
	var scratch [2048]byte
	b := scratch[:0]
	for _, f := range layout {
		if !skip[f.Title] {
			c := cell(f.Title)
			b = appendPart(b, f.Title, normalizeField(f.Kind, c.Value), c.Link)
		}
	}
	if !skip[LogSeal] && sealed {
		b = appendPart(b, LogSeal, strings.TrimSpace(cell(LogSeal).Value), "")
	}
	return printOf(b)
}

func printOf(b []byte) RowPrint {
	sum := sha256.Sum256(b)
	var p RowPrint
	copy(p[:], sum[:])
	return p
}

// appendPart appends length-prefixed parts, so no two rows print alike by
// accident of where one value ends and the next begins.
func appendPart(b []byte, parts ...string) []byte {
	for _, s := range parts {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// SameLayout reports whether two entries' fields have the same titles and
// kinds in the same order.
func SameLayout(a, b []Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Title != b[i].Title || a[i].Kind != b[i].Kind {
			return false
		}
	}
	return true
}

// editableColumns are the audit-log columns people are meant to edit: the
// review columns. The product never seals them and verification ignores
// them.
var editableColumns = map[string]bool{LogReviewer: true, LogDisposition: true, LogResolutionNote: true}

// EditableColumns returns the titles of the audit-log columns people are
// meant to edit (a copy: the set is fixed).
func EditableColumns() map[string]bool { return maps.Clone(editableColumns) }

// MaxProblemsListed bounds the problems a verification keeps one by one; the
// counts by kind stay exact beyond it.
const MaxProblemsListed = 1000

// Verification is the outcome of checking the audit log: the ledger's chain,
// the signed digests, and the audit sheet row by row against the ledger.
type Verification struct {
	At time.Time `json:"at"`
	// Entries is the number of ledger entries that stand for audit rows
	// (the adoption entry has none); HeadSeq and HeadHash are the last
	// entry's.
	Entries  uint64 `json:"entries"`
	HeadSeq  uint64 `json:"headSeq"`
	HeadHash string `json:"headHash,omitempty"`
	// Rows is the number of audit-sheet rows read; Matched of them match
	// their ledger entry exactly.
	Rows    int `json:"rows"`
	Matched int `json:"matched"`
	// Pending counts entries whose row is not written yet (not expected on
	// the sheet).
	Pending int `json:"pending"`
	// Digests is the number of signed digests checked.
	Digests int `json:"digests"`
	// Problems lists at most MaxProblemsListed problems; Counts counts all.
	Problems []Problem           `json:"problems,omitempty"`
	Counts   map[ProblemKind]int `json:"counts,omitempty"`
	// Skipped says why part of the check could not run (no audit sheet, no
	// public key), empty when everything was checked.
	Skipped []string `json:"skipped,omitempty"`
	// Reviews are the review columns of every exception's row as the sheet
	// shows them (not a problem: people edit them), and ReviewChanges those
	// that differ from what the ledger last recorded for the change: a run
	// seals them as disposition entries. Neither is kept with a stored
	// attestation.
	Reviews       []Review `json:"-"`
	ReviewChanges []Review `json:"-"`
}

// Add records problems.
func (v *Verification) Add(ps ...Problem) {
	for _, p := range ps {
		if v.Counts == nil {
			v.Counts = map[ProblemKind]int{}
		}
		v.Counts[p.Kind]++
		if len(v.Problems) < MaxProblemsListed {
			v.Problems = append(v.Problems, p)
		}
	}
}

// Total is the number of problems found.
func (v Verification) Total() int {
	n := 0
	for _, c := range v.Counts {
		n += c
	}
	return n
}

// OK reports a log that verified with no problem.
func (v Verification) OK() bool { return v.Total() == 0 }

// LedgerOK reports a ledger whose chain and digests hold (the audit sheet may
// still differ from it).
func (v Verification) LedgerOK() bool {
	for k, n := range v.Counts {
		if n > 0 && k.LedgerProblem() {
			return false
		}
	}
	return true
}

// Summary is the verification in one line: "verified: …" or the problems
// by kind.
func (v Verification) Summary() string {
	if v.OK() {
		var s string
		if v.Entries == 0 && v.Rows == 0 {
			s = "verified: the ledger seals no audit row yet and the audit sheet holds none"
		} else {
			verb := "match"
			if v.Matched == 1 {
				verb = "matches"
			}
			s = fmt.Sprintf("verified: %s %s %s (head entry %d, %s)", plural(v.Matched, "audit row"), verb, plural(int(v.Entries), "ledger entry"), v.HeadSeq, ShortSeal(v.HeadHash))
		}
		s += fmt.Sprintf("; %s valid", plural(v.Digests, "signed digest"))
		if v.Pending > 0 {
			s += fmt.Sprintf(", %s not written yet", plural(v.Pending, "row"))
		}
		if len(v.Skipped) > 0 {
			s += "; not checked: " + strings.Join(v.Skipped, "; ")
		}
		return s
	}
	kinds := make([]ProblemKind, 0, len(v.Counts))
	for k := range v.Counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", v.Counts[k], k))
	}
	return fmt.Sprintf("TAMPERING DETECTED: %s (%s)", plural(v.Total(), "problem"), strings.Join(parts, ", "))
}
