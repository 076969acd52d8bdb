package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// verifyPageSize is the rows of the audit sheet read per request when
// verifying: the memory verify needs beyond the ledger's index is one page
// and that page's ledger entries.
const verifyPageSize = 5000

// Verify checks the audit log and names every problem it finds (see
// audit.Verification): the ledger's hash chain, every signed digest against
// the public key and the ledger, and the audit sheet row by row against the
// ledger. It repairs nothing. It holds the audit-log lease, so no writer
// moves the ledger or the sheet while it compares them.
func (r *Runner) Verify(ctx context.Context) (audit.Verification, error) {
	_, release, err := r.lockAuditLog(ctx)
	if err != nil {
		return audit.Verification{}, fmt.Errorf("verify: %w", err)
	}
	defer release()
	return r.verify(ctx)
}

func (r *Runner) verify(ctx context.Context) (audit.Verification, error) {
	v := audit.Verification{At: r.opts.Clock().UTC()}
	digests, err := r.readDigests(ctx)
	if err != nil {
		return v, err
	}
	pinned := map[uint64]string{}
	for _, d := range digests {
		if dg, err := audit.ParseDigest(d.data); err == nil && dg.LastSeq > 0 {
			pinned[dg.LastSeq] = ""
		}
	}

	// The ledger, in one pass: its chain, an index of Change ID → entry, and
	// the hashes the digests pin.
	var chain audit.ChainCheck
	index := make(map[string]uint64)
	err = r.store.LedgerEntries(ctx, 1, func(e audit.LedgerEntry) error {
		v.Add(chain.Add(e)...)
		if e.Type == audit.EntryChange {
			if first, dup := index[e.Subject]; dup {
				v.Add(audit.Problem{Kind: audit.ProblemDuplicateEntry, ChangeID: e.Subject, Seq: e.Seq,
					WorkRequest: audit.FieldValue(e.Fields, audit.LogWorkRequest),
					Detail:      fmt.Sprintf("sealed again; first sealed as entry %d", first)})
			} else {
				index[e.Subject] = e.Seq
			}
		}
		if _, ok := pinned[e.Seq]; ok {
			pinned[e.Seq] = e.Hash
		}
		return nil
	})
	if err != nil {
		return v, fmt.Errorf("verify the ledger: %w", err)
	}
	head := chain.Head()
	v.Entries, v.HeadSeq, v.HeadHash = chain.Count(), head.Seq, head.Hash

	if err := r.verifyDigests(ctx, &v, digests, pinned); err != nil {
		return v, err
	}
	if r.opts.AuditSheetID == 0 {
		v.Skipped = append(v.Skipped, "the audit sheet (no AUDIT_SHEET_ID)")
		return v, nil
	}
	var seen []bool
	for attempt := 1; ; attempt++ {
		rowsV := v
		rowsV.Counts, rowsV.Problems = maps.Clone(v.Counts), slices.Clone(v.Problems)
		seen = make([]bool, head.Seq+1)
		err = r.verifySheet(ctx, &rowsV, index, seen)
		if errors.Is(err, smartsheet.ErrSheetChanged) && attempt < 3 {
			continue // someone edited the sheet while it was read: read it again
		}
		v = rowsV
		break
	}
	if err != nil {
		return v, fmt.Errorf("verify the audit sheet: %w", err)
	}
	return v, r.verifyUnseen(ctx, &v, index, seen)
}

// storedDigest is one digest as stored.
type storedDigest struct {
	name      string
	data, sig []byte
}

func (r *Runner) readDigests(ctx context.Context) ([]storedDigest, error) {
	if r.opts.Digests == nil {
		return nil, nil
	}
	names, err := r.opts.Digests.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list digests: %w", err)
	}
	out := make([]storedDigest, len(names))
	for i, name := range names {
		data, sig, err := r.opts.Digests.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read digest %s: %w", name, err)
		}
		out[i] = storedDigest{name: name, data: data, sig: sig}
	}
	return out, nil
}

func (r *Runner) verifyDigests(ctx context.Context, v *audit.Verification, digests []storedDigest, pinned map[uint64]string) error {
	if r.opts.Digests == nil || r.opts.Signer == nil {
		v.Skipped = append(v.Skipped, "signed digests (no signing key or digest store configured)")
		return nil
	}
	pub, err := r.opts.Signer.PublicKeyPEM(ctx)
	if err != nil {
		return fmt.Errorf("read the digest public key: %w", err)
	}
	check := audit.DigestCheck{PublicKey: pub, HashAt: func(seq uint64) (string, bool, error) {
		h := pinned[seq]
		return h, h != "", nil
	}}
	for _, d := range digests {
		ps, err := check.Add(d.name, d.data, d.sig)
		if err != nil {
			return err
		}
		v.Add(ps...)
	}
	v.Digests = check.Count()
	return nil
}

// verifySheet reads the audit sheet page by page and compares each row with
// the ledger entry of its Change ID.
func (r *Runner) verifySheet(ctx context.Context, v *audit.Verification, index map[string]uint64, seen []bool) error {
	var titles map[int64]string
	var missing map[string]bool
	return r.api.ForEachSheetPage(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{PageSize: verifyPageSize}, func(s *smartsheet.Sheet) error {
		if titles == nil {
			titles, missing = r.sheetLayout(v, s.Columns)
		}
		rows := make([]audit.SheetRow, 0, len(s.Rows))
		var seqs []uint64
		for i := range s.Rows {
			row := sheetRow(&s.Rows[i], titles)
			if row.Blank() {
				continue
			}
			rows = append(rows, row)
			if seq, ok := index[strings.TrimSpace(row.Cells[audit.LogChangeID].Value)]; ok {
				seqs = append(seqs, seq)
			}
		}
		entries, err := r.store.LedgerEntriesBySeq(ctx, seqs)
		if err != nil {
			return err
		}
		for _, row := range rows {
			v.Rows++
			id := strings.TrimSpace(row.Cells[audit.LogChangeID].Value)
			seq, ok := index[id]
			if !ok {
				v.Add(audit.Problem{Kind: audit.ProblemForgedRow, ChangeID: id, WorkRequest: row.Cells[audit.LogWorkRequest].Value,
					RowNumber: row.RowNumber, RowID: row.RowID, Detail: "no ledger entry records this row"})
				continue
			}
			if seen[seq] {
				v.Add(audit.Problem{Kind: audit.ProblemDuplicateRow, ChangeID: id, WorkRequest: row.Cells[audit.LogWorkRequest].Value,
					RowNumber: row.RowNumber, RowID: row.RowID, Seq: seq, Detail: "the change is on the audit sheet more than once"})
				continue
			}
			seen[seq] = true
			e, ok := entries[seq]
			if !ok {
				return fmt.Errorf("ledger entry %d vanished during verification", seq)
			}
			if ps := audit.CompareRow(e, row, audit.EditableColumns, missing); len(ps) > 0 {
				v.Add(ps...)
			} else {
				v.Matched++
			}
		}
		return nil
	})
}

// sheetLayout maps the sheet's column ids to titles and reports the sealed
// columns it lacks, once.
func (r *Runner) sheetLayout(v *audit.Verification, cols []smartsheet.Column) (map[int64]string, map[string]bool) {
	titles := make(map[int64]string, len(cols))
	have := map[string]bool{}
	for _, c := range cols {
		titles[c.ID] = c.Title
		have[c.Title] = true
	}
	missing := map[string]bool{}
	for _, c := range AuditColumns {
		if !have[c.Title] && !audit.EditableColumns[c.Title] {
			missing[c.Title] = true
			v.Add(audit.Problem{Kind: audit.ProblemMissingColumn, Column: c.Title,
				Detail: "the audit sheet has no such column (deleted or renamed): its cells cannot be compared"})
		}
	}
	return titles, missing
}

func sheetRow(row *smartsheet.Row, titles map[int64]string) audit.SheetRow {
	out := audit.SheetRow{RowID: row.ID, RowNumber: row.RowNumber, Cells: make(map[string]audit.SheetCell, len(row.Cells))}
	for _, c := range row.Cells {
		title, ok := titles[c.ColumnID]
		if !ok {
			continue
		}
		cell := audit.SheetCell{Value: c.Value.Text()}
		if c.Hyperlink != nil {
			cell.Link = c.Hyperlink.URL
		}
		out.Cells[title] = cell
	}
	return out
}

// verifyUnseen names the ledger entries whose row is not on the sheet: a row
// written and then deleted is a problem; one not written yet is pending.
func (r *Runner) verifyUnseen(ctx context.Context, v *audit.Verification, index map[string]uint64, seen []bool) error {
	var unseen []uint64
	for _, seq := range index {
		if !seen[seq] {
			unseen = append(unseen, seq)
		}
	}
	slices.Sort(unseen)
	for chunk := range slices.Chunk(unseen, 500) {
		entries, err := r.store.LedgerEntriesBySeq(ctx, chunk)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(chunk))
		for _, seq := range chunk {
			ids = append(ids, entries[seq].Subject)
		}
		recs, err := r.store.ChangeRecords(ctx, ids)
		if err != nil {
			return err
		}
		for _, seq := range chunk {
			e := entries[seq]
			rec, ok := recs[e.Subject]
			if ok && !rec.Written {
				v.Pending++
				continue
			}
			// Written (or its record expired long after it was written).
			p := audit.Problem{Kind: audit.ProblemDeletedRow, ChangeID: e.Subject, Seq: seq,
				WorkRequest: audit.FieldValue(e.Fields, audit.LogWorkRequest), RowID: rec.AuditRowID,
				Detail: "the row was written to the audit sheet and is no longer there"}
			v.Add(p)
		}
	}
	return nil
}
