package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

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
	ctx, release, err := r.lockAuditLog(ctx)
	if err != nil {
		return audit.Verification{}, fmt.Errorf("verify audit sheet %d: %w", r.opts.AuditSheetID, err)
	}
	defer release()
	return r.verify(ctx, true)
}

// verify checks the audit log. full checks every digest; otherwise the
// digests after the last one found sound (the digest checkpoint) and the
// newest, whose pin alone catches any rewrite of the ledger up to it (every
// entry before it is chained into its hash): a run's attestation stays fast
// however many digests the years add.
func (r *Runner) verify(ctx context.Context, full bool) (v audit.Verification, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("verify audit sheet %d: %w", r.opts.AuditSheetID, err)
		}
	}()
	v = audit.Verification{At: r.opts.Clock().UTC()}
	digests, from, err := r.readDigests(ctx, full)
	if err != nil {
		return v, err
	}
	pinned := map[uint64]string{}
	for _, d := range digests {
		if dg, err := audit.ParseDigest(d.data); err == nil && dg.LastSeq > 0 {
			pinned[dg.LastSeq] = ""
		}
	}
	skip, err := r.sealedColumnsMissing(ctx, &v)
	if err != nil {
		return v, err
	}
	// The Ledger Head the audit sheet's summary shows: the ledger may not
	// be shorter, nor hold another entry there.
	headSeq, headSeal := r.summaryHead(ctx)
	if headSeq > 0 {
		pinned[headSeq] = ""
	}
	lp, err := r.readLedger(ctx, &v, skip, pinned)
	if err != nil {
		return v, err
	}
	if err := r.verifyDigests(ctx, &v, digests, from, pinned); err != nil {
		return v, err
	}
	checkLedgerHead(&v, headSeq, headSeal, pinned[headSeq], lp.head)
	if err := r.verifyRecords(ctx, &v, &lp.ix, digests); err != nil {
		return v, err
	}
	if r.opts.AuditSheetID == 0 {
		v.Skipped = append(v.Skipped, "the audit sheet (no AUDIT_SHEET_ID)")
		return v, nil
	}
	if !lp.adopted && !lp.sealedBeforeAdoption {
		// The rows on the sheet before the ledger are adopted by the first
		// run that writes (verification writes nothing), which ends with
		// the adoption entry: until then comparing would call each of them
		// forged. Once a change is sealed the sheet is compared whatever
		// happened to the adoption entry.
		v.Skipped = append(v.Skipped, "the audit sheet (the ledger has not adopted its rows yet: the first run that writes does)")
		return v, nil
	}
	seen, err := r.compareSheet(ctx, &v, &lp.ix, skip)
	if err != nil {
		return v, err
	}
	return v, r.verifyUnseen(ctx, &v, &lp.ix, seen)
}

// sealedColumnsMissing reads the audit sheet's columns first, so a sealed
// column the sheet lacks is named once and left out of every row's
// comparison: it returns the columns no comparison looks at.
func (r *Runner) sealedColumnsMissing(ctx context.Context, v *audit.Verification) (map[string]bool, error) {
	skip := audit.EditableColumns()
	if r.opts.AuditSheetID == 0 {
		return skip, nil
	}
	s, _, err := r.auditSheet.GetSheet(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{PageSize: 1, Page: 1})
	if err != nil {
		return nil, fmt.Errorf("read its columns: %w", err)
	}
	for title := range missingColumns(v, s.Columns) {
		skip[title] = true
	}
	return skip, nil
}

// ledgerPass is what the one pass over the ledger learns: the index the
// sheet is compared with, the head, and whether (and in which order) the
// adoption entry and the first change entry came.
type ledgerPass struct {
	ix                            ledgerIndex
	head                          audit.LedgerEntry
	adopted, sealedBeforeAdoption bool
}

// readLedger reads the ledger in one pass: its chain, an index of Change ID
// → entry and the print of the row the entry must have, and the hashes the
// digests and the summary pin (filled in pinned).
func (r *Runner) readLedger(ctx context.Context, v *audit.Verification, skip map[string]bool, pinned map[uint64]string) (ledgerPass, error) {
	var chain audit.ChainCheck
	lp := ledgerPass{ix: ledgerIndex{entries: make(map[string]indexed), reviews: make(map[string]string)}}
	var rowEntries uint64
	err := r.store.LedgerEntries(ctx, 1, func(e audit.LedgerEntry) error {
		v.Add(chain.Add(e)...)
		switch {
		case e.Type == audit.EntryAdoption:
			lp.adopted = true
		case e.Type == audit.EntryChange && !lp.adopted && !lp.sealedBeforeAdoption:
			// Adoption comes before any change: its entry was cut out, or
			// never written because a forged store flag said it was.
			lp.sealedBeforeAdoption = true
			v.Add(audit.Problem{Kind: audit.ProblemEntryMissing, Seq: e.Seq, Detail: fmt.Sprintf(
				"entry %d seals a change, but no adoption entry comes before it: the ledger's adoption entry was removed, or never written", e.Seq)})
		}
		if e.Type == audit.EntryDisposition || (e.HasRow() && lp.ix.reviews[e.Subject] == "") {
			lp.ix.reviews[e.Subject] = audit.EntryReviewState(e)
		}
		if e.HasRow() {
			rowEntries++
			if first, dup := lp.ix.entries[e.Subject]; dup {
				v.Add(audit.Problem{Kind: audit.ProblemDuplicateEntry, ChangeID: e.Subject, Seq: e.Seq,
					WorkRequest: audit.FieldValue(e.Fields, audit.LogWorkRequest),
					Detail:      fmt.Sprintf("sealed again; first sealed as entry %d", first.seq)})
			} else {
				lp.ix.add(e, skip)
			}
		}
		if _, ok := pinned[e.Seq]; ok {
			pinned[e.Seq] = e.Hash
		}
		return nil
	})
	if err != nil {
		return lp, fmt.Errorf("read the ledger: %w", err)
	}
	lp.head = chain.Head()
	v.Entries, v.HeadSeq, v.HeadHash = rowEntries, lp.head.Seq, lp.head.Hash
	return lp, nil
}

// checkLedgerHead compares the Ledger Head the summary shows (entry headSeq,
// hash headSeal) with the ledger's entry there (hash at, "" when it has
// none; head is its last entry). A ledger shorter than the head the sheet
// witnessed lost entries: a ledger problem, and the field keeps its value
// until someone looks (see summaryValues). Another hash at a number the
// ledger has is named, without stopping the digests, which pin what counts.
func checkLedgerHead(v *audit.Verification, headSeq uint64, headSeal, at string, head audit.LedgerEntry) {
	if headSeq == 0 || audit.ShortSeal(at) == headSeal {
		return
	}
	kind := audit.ProblemSummaryMismatch
	if headSeq > head.Seq {
		kind = audit.ProblemEntryMissing
	}
	v.Add(audit.Problem{Kind: kind, Seq: headSeq, Column: SumLedger,
		Ledger: orNone(audit.ShortSeal(at)), Sheet: headSeal, Detail: fmt.Sprintf(
			"the audit sheet's %s field says the ledger reached entry %d with hash %s; the ledger has %s there (last entry %d)",
			SumLedger, headSeq, headSeal, orNone(audit.ShortSeal(at)), head.Seq)})
}

// compareSheet compares the audit sheet with the index (verifySheet), and
// reads it again, up to three times, when someone edits it meanwhile. It
// returns the sequence numbers of the entries whose row it saw: a map, not a
// slice by sequence number, as a tampered entry may name any number.
func (r *Runner) compareSheet(ctx context.Context, v *audit.Verification, ix *ledgerIndex, skip map[string]bool) (map[uint64]bool, error) {
	for attempt := 1; ; attempt++ {
		rowsV := *v
		rowsV.Counts, rowsV.Problems = maps.Clone(v.Counts), slices.Clone(v.Problems)
		seen := make(map[uint64]bool, len(ix.entries))
		err := r.verifySheet(ctx, &rowsV, ix, skip, seen)
		if errors.Is(err, smartsheet.ErrSheetChanged) && attempt < 3 {
			continue // someone edited the sheet while it was read: read it again
		}
		*v = rowsV
		if err != nil {
			return nil, fmt.Errorf("read its rows: %w", err)
		}
		return seen, nil
	}
}

// indexed is what verification keeps of a ledger entry between the ledger
// pass and the sheet pass: about 100 bytes, not the entry.
type indexed struct {
	seq    uint64
	layout int32
	sealed bool   // the row carries a Seal (not an adopted row)
	seal   string // the hash's first characters, as records keep it
	print  audit.RowPrint
}

// ledgerIndex maps Change IDs to their entries' prints, and keeps the few
// distinct field layouts the prints were made with.
type ledgerIndex struct {
	entries map[string]indexed
	layouts [][]audit.Field
	// reviews is each change's review state as the ledger last recorded it
	// (audit.EntryReviewState): the sheet's review columns are compared
	// with it, to find the dispositions changed since.
	reviews map[string]string
}

func (ix *ledgerIndex) add(e audit.LedgerEntry, skip map[string]bool) {
	layout := len(ix.layouts) - 1
	if layout < 0 || !audit.SameLayout(ix.layouts[layout], e.Fields) {
		layout = slices.IndexFunc(ix.layouts, func(l []audit.Field) bool { return audit.SameLayout(l, e.Fields) })
		if layout < 0 {
			spec := make([]audit.Field, len(e.Fields))
			for i, f := range e.Fields {
				spec[i] = audit.Field{Title: f.Title, Kind: f.Kind}
			}
			ix.layouts = append(ix.layouts, spec)
			layout = len(ix.layouts) - 1
		}
	}
	ix.entries[e.Subject] = indexed{seq: e.Seq, layout: int32(layout), sealed: e.HasSeal(), seal: audit.ShortSeal(e.Hash),
		print: audit.EntryPrint(e, skip)}
}

func orNone(s string) string {
	if s == "" {
		return "no entry"
	}
	return s
}

// summaryHead reads the Ledger Head the audit sheet's summary shows ("entry
// N, hash H"); 0 when there is none or it cannot be read (the comparison is
// then skipped: the summary is a second witness, not the first).
func (r *Runner) summaryHead(ctx context.Context) (uint64, string) {
	if r.opts.AuditSheetID == 0 {
		return 0, ""
	}
	fields, err := r.auditSheet.GetSummaryFields(ctx, r.opts.AuditSheetID)
	if err != nil {
		r.log.WarnContext(ctx, "read the audit sheet's summary", slog.Any("error", err))
		return 0, ""
	}
	for _, f := range fields {
		if f.Title != SumLedger {
			continue
		}
		var seq uint64
		var seal string
		if _, err := fmt.Sscanf(f.ObjectValue.Text(), "entry %d, hash %s", &seq, &seal); err == nil {
			return seq, seal
		}
	}
	return 0, ""
}

// recordsBeforeDigest is how long before the last digest verifyRecords
// starts: records are read by detection time, and a change detected during
// an outage of the audit sheet is sealed when the sheet is back, possibly
// days later, after the digest.
const recordsBeforeDigest = 7 * 24 * time.Hour

// verifyRecords checks the change records detected since a week before the
// last digest (all of them when there is none) against the ledger: each
// names the entry that sealed it, and the ledger must hold that entry.
// Entries after the last digest are pinned by nothing else, so this finds
// them cut or rewritten.
func (r *Runner) verifyRecords(ctx context.Context, v *audit.Verification, ix *ledgerIndex, digests []storedDigest) error {
	var since time.Time
	if len(digests) > 0 {
		if d, err := audit.ParseDigest(digests[len(digests)-1].data); err == nil {
			since = d.CreatedAt.Add(-recordsBeforeDigest)
		}
	}
	recs, err := r.store.Changes(ctx, since, time.Time{})
	if err != nil {
		return fmt.Errorf("read the change records: %w", err)
	}
	for _, rec := range recs {
		if rec.Seq == 0 {
			continue // not noted yet: nothing to compare
		}
		in, ok := ix.entries[rec.Change.ChangeID]
		if ok && in.seq == rec.Seq && in.seal == audit.ShortSeal(rec.Hash) {
			continue
		}
		v.Add(audit.Problem{Kind: audit.ProblemEntryMissing, ChangeID: rec.Change.ChangeID, WorkRequest: rec.Change.WorkRequest, Seq: rec.Seq,
			Detail: fmt.Sprintf("the change was sealed as entry %d (hash %s); the ledger no longer holds that entry", rec.Seq, audit.ShortSeal(rec.Hash))})
	}
	return nil
}

// storedDigest is one digest as stored.
type storedDigest struct {
	name      string
	data, sig []byte
}

// digestCheckpoint (meta) is the newest digest found sound: its name,
// number and the hash of its bytes.
const digestCheckpointKey = "digest-checkpoint"

type digestCheckpoint struct {
	Name   string `json:"name"`
	Number uint64 `json:"number"`
	Hash   string `json:"hash"`
}

// readDigests reads the digests to check, in order, and where their chain
// starts from (zero: the first digest). Eight are read at a time.
func (r *Runner) readDigests(ctx context.Context, full bool) ([]storedDigest, digestCheckpoint, error) {
	var from digestCheckpoint
	if r.opts.Digests == nil {
		return nil, from, nil
	}
	names, err := r.opts.Digests.List(ctx)
	if err != nil {
		return nil, from, fmt.Errorf("list digests: %w", err)
	}
	start := 0
	if !full && len(names) > 0 {
		if v, ok, err := r.store.Meta(ctx, digestCheckpointKey); err != nil {
			return nil, from, fmt.Errorf("read the digest checkpoint: %w", err)
		} else if ok {
			var cp digestCheckpoint
			if json.Unmarshal([]byte(v), &cp) == nil {
				if i := slices.Index(names, cp.Name); i >= 0 {
					start, from = i+1, cp
				}
			}
		}
		if start == len(names) {
			// Nothing new: the newest digest alone, trusting its link.
			start, from = len(names)-1, digestCheckpoint{}
		}
	}
	names = names[start:]
	out := make([]storedDigest, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			data, sig, err := r.opts.Digests.Get(ctx, name)
			if err != nil {
				errs[i] = fmt.Errorf("read digest %s: %w", name, err)
				return
			}
			out[i] = storedDigest{name: name, data: data, sig: sig}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, from, err
	}
	if from.Name == "" && start > 0 {
		// The newest alone: its chain starts at the digest it names.
		if d, err := audit.ParseDigest(out[0].data); err == nil && d.Number > 0 {
			from = digestCheckpoint{Number: d.Number - 1, Hash: d.PreviousDigest}
		}
	}
	return out, from, nil
}

func (r *Runner) verifyDigests(ctx context.Context, v *audit.Verification, digests []storedDigest, from digestCheckpoint, pinned map[uint64]string) error {
	if r.opts.Digests == nil {
		v.Skipped = append(v.Skipped, "signed digests (no digest store configured)")
		return nil
	}
	// The key beside the digests verifies them, as it does for a third
	// party; the signing key, when there is one, must be that key.
	pub, ok, err := r.opts.Digests.PublicKey(ctx)
	if err != nil {
		return fmt.Errorf("read the digests' public key: %w", err)
	}
	if r.opts.Signer != nil {
		own, err := r.opts.Signer.PublicKeyPEM(ctx)
		if err != nil {
			return fmt.Errorf("read the signing key's public key: %w", err)
		}
		switch {
		case !ok:
			pub = own
		case !bytes.Equal(bytes.TrimSpace(pub), bytes.TrimSpace(own)):
			v.Add(audit.Problem{Kind: audit.ProblemDigestSignature,
				Detail: "the public key beside the digests is not the signing key's: one of them was replaced"})
		}
	}
	if len(pub) == 0 {
		if len(digests) > 0 {
			v.Add(audit.Problem{Kind: audit.ProblemDigestSignature, Detail: "no public key beside the digests: none can be checked"})
		}
		return nil
	}
	check := audit.DigestCheck{PublicKey: pub, HashAt: func(seq uint64) (string, bool, error) {
		h := pinned[seq]
		return h, h != "", nil
	}}
	if from.Number > 0 || from.Hash != "" {
		check.StartAfter(from.Number, from.Hash)
	}
	found := 0
	for _, d := range digests {
		ps, err := check.Add(d.name, d.data, d.sig)
		if err != nil {
			return fmt.Errorf("check digest %s: %w", d.name, err)
		}
		v.Add(ps...)
		found += len(ps)
	}
	v.Digests = check.Count()
	if found > 0 || len(digests) == 0 || r.opts.TestMode {
		return nil
	}
	last, hash := check.Last()
	cp := digestCheckpoint{Name: digests[len(digests)-1].name, Number: last.Number, Hash: hash}
	b, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode the digest checkpoint %s: %w", cp.Name, err)
	}
	return wrapErr("save the digest checkpoint "+cp.Name, r.store.PutMeta(ctx, digestCheckpointKey, string(b)))
}

// verifySheet reads the audit sheet page by page and compares each row with
// the print of its Change ID's entry; the entries of rows that differ are
// read to name what differs.
func (r *Runner) verifySheet(ctx context.Context, v *audit.Verification, ix *ledgerIndex, skip map[string]bool, seen map[uint64]bool) error {
	var titles map[int64]string
	var pos map[int64]int       // column id → position in buf
	var titlePos map[string]int // column title → position in buf
	var buf []audit.SheetCell
	v.Reviews = []audit.Review{} // read, even if no row has any
	opts := smartsheet.GetSheetOptions{PageSize: verifyPageSize, Include: []string{smartsheet.IncludeWriterInfo}}
	return r.auditSheet.ForEachSheetPage(ctx, r.opts.AuditSheetID, opts, func(s *smartsheet.Sheet) error {
		if err := r.renewLease(ctx); err != nil {
			return err
		}
		if titles == nil {
			titles, pos, titlePos = make(map[int64]string, len(s.Columns)), make(map[int64]int, len(s.Columns)), make(map[string]int, len(s.Columns))
			for i, c := range s.Columns {
				titles[c.ID], pos[c.ID], titlePos[c.Title] = c.Title, i, i
			}
			buf = make([]audit.SheetCell, len(s.Columns))
		}
		cell := func(title string) audit.SheetCell {
			if i, ok := titlePos[title]; ok {
				return buf[i]
			}
			return audit.SheetCell{}
		}
		var differ []audit.SheetRow
		var seqs []uint64
		first := len(v.Problems)
		// The page's problems are named in sheet order.
		defer func() {
			slices.SortStableFunc(v.Problems[first:], func(a, b audit.Problem) int { return a.RowNumber - b.RowNumber })
		}()
		for i := range s.Rows {
			row := &s.Rows[i]
			if blank := readCells(buf, pos, row); blank {
				continue
			}
			v.Rows++
			id := strings.TrimSpace(cell(audit.LogChangeID).Value)
			in, ok := ix.entries[id]
			switch {
			case !ok:
				v.Add(audit.Problem{Kind: audit.ProblemForgedRow, ChangeID: id, WorkRequest: cell(audit.LogWorkRequest).Value,
					RowNumber: row.RowNumber, RowID: row.ID, Detail: "no ledger entry records this row"})
			case seen[in.seq]:
				v.Add(audit.Problem{Kind: audit.ProblemDuplicateRow, ChangeID: id, WorkRequest: cell(audit.LogWorkRequest).Value,
					RowNumber: row.RowNumber, RowID: row.ID, Seq: in.seq, Detail: "the change is on the audit sheet more than once"})
			default:
				seen[in.seq] = true
				noteReview(v, ix, id, row, cell)
				if audit.CellsPrint(ix.layouts[in.layout], in.sealed, cell, skip) == in.print {
					v.Matched++
				} else {
					differ, seqs = append(differ, sheetRow(row, titles)), append(seqs, in.seq)
				}
			}
		}
		if len(differ) == 0 {
			return nil
		}
		entries, err := r.store.LedgerEntriesBySeq(ctx, seqs)
		if err != nil {
			return fmt.Errorf("read the ledger entries of %d rows that differ (entries %d…): %w", len(seqs), seqs[0], err)
		}
		for i, row := range differ {
			e, ok := entries[seqs[i]]
			if !ok {
				return fmt.Errorf("ledger entry %d vanished during verification", seqs[i])
			}
			if ps := audit.CompareRow(e, row, skip, skip); len(ps) > 0 {
				v.Add(ps...)
			} else {
				v.Matched++
			}
		}
		return nil
	})
}

// noteReview notes the review columns of an exception's row, and whether
// they changed since the ledger last recorded them. Who changed them is the
// row's last writer: the product never saves a row it wrote except to mark
// it Reversed, so the last save of an exception's row is a review.
func noteReview(v *audit.Verification, ix *ledgerIndex, id string, row *smartsheet.Row, cell func(string) audit.SheetCell) {
	rv := audit.Review{ChangeID: id, Reviewer: cell(audit.LogReviewer).Value, Disposition: cell(audit.LogDisposition).Value,
		Note: cell(audit.LogResolutionNote).Value}
	if row.ModifiedBy != nil {
		rv.By = row.ModifiedBy.Email
		if rv.By == "" {
			rv.By = row.ModifiedBy.Name
		}
	}
	if row.ModifiedAt != nil {
		rv.At = row.ModifiedAt.UTC()
	}
	v.Reviews = append(v.Reviews, rv)
	if was, ok := ix.reviews[id]; ok && was != rv.State() {
		v.ReviewChanges = append(v.ReviewChanges, rv)
	}
}

// missingColumns reports, once each, the sealed columns the sheet lacks.
func missingColumns(v *audit.Verification, cols []smartsheet.Column) map[string]bool {
	have := map[string]bool{}
	for _, c := range cols {
		have[c.Title] = true
	}
	missing := map[string]bool{}
	editable := audit.EditableColumns()
	for _, c := range AuditColumns {
		if !have[c.Title] && !editable[c.Title] {
			missing[c.Title] = true
			v.Add(audit.Problem{Kind: audit.ProblemMissingColumn, Column: c.Title,
				Detail: "the audit sheet has no such column (deleted or renamed): its cells cannot be compared"})
		}
	}
	return missing
}

// readCells reads a row's cells into buf, by the position of their column
// (pos), and reports a blank row (no value, no link). It reuses buf, so a
// page of rows is compared without a map per row; sheetRow reads the few
// rows that differ the same way, into a map that outlives the page.
func readCells(buf []audit.SheetCell, pos map[int64]int, row *smartsheet.Row) (blank bool) {
	clear(buf)
	blank = true
	for _, c := range row.Cells {
		p, ok := pos[c.ColumnID]
		if !ok {
			continue
		}
		buf[p].Value = c.Value.Text()
		if c.Hyperlink != nil {
			buf[p].Link = c.Hyperlink.URL
		}
		blank = blank && strings.TrimSpace(buf[p].Value) == "" && buf[p].Link == ""
	}
	return blank
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
func (r *Runner) verifyUnseen(ctx context.Context, v *audit.Verification, ix *ledgerIndex, seen map[uint64]bool) error {
	var unseen []uint64
	for _, in := range ix.entries {
		if !seen[in.seq] {
			unseen = append(unseen, in.seq)
		}
	}
	slices.Sort(unseen)
	for chunk := range slices.Chunk(unseen, 500) {
		entries, err := r.store.LedgerEntriesBySeq(ctx, chunk)
		if err != nil {
			return fmt.Errorf("read the ledger entries of rows not on the sheet: %w", err)
		}
		ids := make([]string, 0, len(chunk))
		for _, seq := range chunk {
			ids = append(ids, entries[seq].Subject)
		}
		recs, err := r.store.ChangeRecords(ctx, ids)
		if err != nil {
			return fmt.Errorf("read the changes of rows not on the sheet: %w", err)
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
