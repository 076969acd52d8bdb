package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// An audit sheet written by a version without the ledger holds rows no
// ledger entry records: every change row, and the status row that version
// kept at the top (Change ID AUDIT-STATUS). Before anything else is sealed, those rows are adopted:
// each row with a Change ID is sealed as an EntryAdopted entry holding the
// row as it stands, so verification names any later edit of it instead of
// calling every old row forged. A change the product wrote whose row is no
// longer there is sealed as the product wrote it, and verification names it
// deleted. Rows without a Change ID stay unknown: forged.
//
// Every row with a Change ID is adopted, not only those a change record
// confirms: records expire (the store's retention), and a row that outlived
// its record is no forgery. The adoption entry counts the rows no record
// confirmed, and the writer logs them: the ledger cannot vouch for what was
// on the sheet before it existed, only for everything since.
//
// Adoption is resumable. It appends adoptChunk entries at a time, renewing
// the lease before each, and stops short of the function's deadline; the
// next writer skips what the ledger already holds and carries on. It ends
// with the EntryAdoption entry, which verification reads to know the audit
// sheet can be compared (a store flag an intruder could clear decides
// nothing; adoptedKey only spares later writers a look at the ledger).

// adoptedKey (meta) caches the sequence number of the adoption entry, which
// the writer reads back (one read) before trusting it.
const adoptedKey = "ledger-adoption-entry"

// adoptChunk is how many adopted entries are appended at a time.
const adoptChunk = 500

// adoptMargin is the time before the function's deadline at which adoption
// stops, to be resumed by the next writer.
const adoptMargin = 30 * time.Second

// Fields of the adoption entry.
const (
	adoptionRows        = "Rows adopted"
	adoptionUnconfirmed = "Rows no change record confirmed"
)

// ErrAdoptionUnfinished says the rows written before the ledger were not all
// adopted before the function's deadline: nothing is sealed until they are,
// and the next writer resumes where this one stopped.
var ErrAdoptionUnfinished = errors.New("the adoption of the audit rows written before the ledger is unfinished; the next writer resumes it")

// adoptLegacy adopts the rows written before the ledger existed, once. The
// caller holds the audit-log lease. Test mode adopts nothing (it writes
// nothing).
func (r *Runner) adoptLegacy(ctx context.Context) error {
	if r.adopted.Load() || r.opts.TestMode || r.opts.AuditSheetID == 0 {
		return nil
	}
	if v, ok, err := r.store.Meta(ctx, adoptedKey); err != nil {
		return fmt.Errorf("read where the adoption entry is: %w", err)
	} else if seq, perr := strconv.ParseUint(v, 10, 64); ok && perr == nil {
		es, err := r.store.LedgerEntriesBySeq(ctx, []uint64{seq})
		if err != nil {
			return fmt.Errorf("read the adoption entry %d: %w", seq, err)
		}
		if e, ok := es[seq]; ok && e.Type == audit.EntryAdoption {
			r.adopted.Store(true)
			return nil
		}
		r.log.WarnContext(ctx, "the ledger has no adoption entry where the store says it is: looking for it", slog.Uint64("seq", seq))
	}
	seq, err := r.adopt(ctx)
	if err != nil {
		return fmt.Errorf("adopt the audit rows written before the ledger: %w", err)
	}
	if err := r.store.PutMeta(ctx, adoptedKey, strconv.FormatUint(seq, 10)); err != nil {
		return fmt.Errorf("remember the adoption entry %d: %w", seq, err)
	}
	r.adopted.Store(true)
	return nil
}

// adopt adopts what is left to adopt and returns the adoption entry's
// sequence number (0 when the ledger lacks one but already seals changes).
func (r *Runner) adopt(ctx context.Context) (uint64, error) {
	head, err := r.syncLedger(ctx)
	if err != nil {
		return 0, err
	}
	so, err := r.adoptedSoFar(ctx)
	switch {
	case err != nil:
		return 0, err
	case so.adoption > 0:
		return so.adoption, nil
	case so.change > 0:
		// The ledger seals changes but its adoption entry is gone: cut out,
		// or never written because a store flag said it was. Adopting now
		// would adopt whatever was added to the sheet since — forged rows
		// included. Nothing is adopted, and verification names the gap.
		r.log.ErrorContext(ctx, "the ledger seals changes but holds no adoption entry before them: not adopting; `billing-audit verify` names it",
			slog.Uint64("first change entry", so.change), slog.String("alert", TamperAlert))
		return 0, nil
	}
	done := so.subjects
	plan, err := r.planAdoption(ctx, done)
	if err != nil {
		return 0, err
	}
	now := r.opts.Clock().UTC()
	if head, err = r.appendAdopted(ctx, head, plan, now); err != nil {
		return 0, err
	}
	// Count over the whole adoption, resumed or not.
	for _, row := range plan.rows {
		done[row.id] = true
	}
	return r.sealAdoption(ctx, head, done, plan.known, now)
}

// adoptionPlan is what is left to adopt: the rows in ledger order (those on
// the sheet, then the changes written and gone from it), the Change IDs a
// record confirms, and the records no entry seals yet.
type adoptionPlan struct {
	rows   []legacyRow
	known  map[string]bool
	legacy map[string]ChangeRecord
}

// planAdoption reads the change records and the audit sheet's rows not
// adopted yet (done: adopted already), and logs what it is about to seal.
func (r *Runner) planAdoption(ctx context.Context, done map[string]bool) (adoptionPlan, error) {
	recs, err := r.store.Changes(ctx, time.Time{}, time.Time{})
	if err != nil {
		return adoptionPlan{}, fmt.Errorf("read the change records: %w", err)
	}
	p := adoptionPlan{known: make(map[string]bool, len(recs)), legacy: map[string]ChangeRecord{}}
	// legacy: the changes no entry seals yet. Those written are the earlier
	// version's rows; one not marked written may be on the sheet all the
	// same (that version stopped between writing and marking it), and is
	// adopted, not written again.
	for _, rec := range recs {
		p.known[rec.Change.ChangeID] = true
		if rec.Seq == 0 && !done[rec.Change.ChangeID] {
			p.legacy[rec.Change.ChangeID] = rec
		}
	}
	if p.rows, err = r.legacyRows(ctx, done); err != nil {
		return p, err
	}
	// Written, and gone from the sheet before the ledger existed.
	onSheet := make(map[string]bool, len(p.rows))
	for _, row := range p.rows {
		onSheet[row.id] = true
	}
	var gone []string
	for id, rec := range p.legacy {
		if rec.Written && !onSheet[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		p.rows = append(p.rows, legacyRow{id: id, fields: audit.LogFields(p.legacy[id].Change, r.opts.Audit.Location)})
	}
	var unconfirmed []string
	for _, row := range p.rows {
		if !p.known[row.id] {
			unconfirmed = append(unconfirmed, row.id)
		}
	}
	if len(p.rows) > 0 {
		r.log.InfoContext(ctx, "sealing the audit rows written before the ledger",
			slog.Int("rows", len(p.rows)-len(gone)), slog.Int("gone", len(gone)), slog.Int("already sealed", len(done)))
	}
	if len(unconfirmed) > 0 {
		r.log.WarnContext(ctx, "adopting audit rows no change record confirms (written before the ledger; their records expired or never existed)",
			slog.Int("rows", len(unconfirmed)), slog.Any("first", unconfirmed[:min(len(unconfirmed), 10)]))
	}
	return p, nil
}

// appendAdopted seals the plan's rows as EntryAdopted entries after head,
// adoptChunk at a time, each chunk's changes marked written with their
// entries; it stops with ErrAdoptionUnfinished near the function's deadline.
// It returns the new head.
func (r *Runner) appendAdopted(ctx context.Context, head audit.LedgerEntry, p adoptionPlan, now time.Time) (audit.LedgerEntry, error) {
	for chunk := range slices.Chunk(p.rows, adoptChunk) {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < adoptMargin {
			return head, ErrAdoptionUnfinished
		}
		if err := r.renewLease(ctx); err != nil {
			return head, err
		}
		chain := make([]audit.LedgerEntry, 0, len(chunk))
		var written []WrittenRow
		for _, row := range chunk {
			head = audit.NextEntry(head, audit.EntryAdopted, row.id, now, row.fields)
			chain = append(chain, head)
			if _, ok := p.legacy[row.id]; ok {
				written = append(written, WrittenRow{ChangeID: row.id, RowID: row.rowID, Seq: head.Seq, Hash: head.Hash})
			}
		}
		first := chain[0].Seq
		if err := r.store.AppendLedger(ctx, chain); err != nil {
			return head, fmt.Errorf("append adopted entries %d-%d: %w", first, head.Seq, err)
		}
		if r.opts.AfterAdoptChunk != nil {
			if err := r.opts.AfterAdoptChunk(); err != nil {
				return head, err
			}
		}
		if err := r.store.MarkWritten(ctx, written); err != nil {
			return head, fmt.Errorf("note adopted entries %d-%d on their changes: %w", first, head.Seq, err)
		}
	}
	return head, nil
}

// sealAdoption appends the EntryAdoption entry after head, counting the rows
// adopted (done) and those no record confirmed, and moves the ledger cursor
// past it (MarkWritten noted the adopted entries). It returns the entry's
// sequence number.
func (r *Runner) sealAdoption(ctx context.Context, head audit.LedgerEntry, done, known map[string]bool, now time.Time) (uint64, error) {
	unknown := 0
	for id := range done {
		if !known[id] {
			unknown++
		}
	}
	if err := r.renewLease(ctx); err != nil {
		return 0, err
	}
	head = audit.NextEntry(head, audit.EntryAdoption, audit.AdoptionSubject, now, []audit.Field{
		{Title: adoptionRows, Kind: audit.FieldNumber, Value: strconv.Itoa(len(done))},
		{Title: adoptionUnconfirmed, Kind: audit.FieldNumber, Value: strconv.Itoa(unknown)},
	})
	if err := r.store.AppendLedger(ctx, []audit.LedgerEntry{head}); err != nil {
		return 0, fmt.Errorf("append the adoption entry %d: %w", head.Seq, err)
	}
	return head.Seq, wrapErr(fmt.Sprintf("move the ledger cursor to %d", head.Seq), r.store.PutMeta(ctx, ledgerCursorKey, strconv.FormatUint(head.Seq, 10)))
}

// soFar is what the ledger holds of the adoption: the subjects of its row
// entries up to the adoption entry, and the sequence numbers of the
// adoption entry and of the first change entry (0: none).
type soFar struct {
	subjects         map[string]bool
	adoption, change uint64
}

// adoptedSoFar reads the ledger up to its adoption entry, or its first
// change entry. An entry it cannot read stops it: what the ledger holds is
// then unknown, and adopting again could adopt a row twice.
func (r *Runner) adoptedSoFar(ctx context.Context) (soFar, error) {
	so := soFar{subjects: map[string]bool{}}
	errStop := errors.New("stop")
	err := r.store.LedgerEntries(ctx, 1, func(e audit.LedgerEntry) error {
		switch e.Type {
		case audit.EntryAdoption:
			so.adoption = e.Seq
			return errStop
		case audit.EntryChange:
			so.change = e.Seq
			return errStop
		case audit.EntryUnreadable:
			return fmt.Errorf("entry %d cannot be read: run `billing-audit verify`", e.Seq)
		}
		if e.HasRow() {
			so.subjects[e.Subject] = true
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return so, fmt.Errorf("read the ledger: %w", err)
	}
	return so, nil
}

// legacyRow is a row of the audit sheet to adopt: its Change ID, its row id
// (0 for a row no longer there) and its cells as sealed fields.
type legacyRow struct {
	id     string
	rowID  int64
	fields []audit.Field
}

// legacyRows reads the audit sheet and returns, in sheet order, its rows
// with a Change ID the ledger does not hold yet (the first row of an ID
// seen twice: the second stays a duplicate).
func (r *Runner) legacyRows(ctx context.Context, done map[string]bool) ([]legacyRow, error) {
	layout := audit.LogLayout()
	var out []legacyRow
	var titles map[int64]string
	seen := map[string]bool{}
	err := r.auditSheet.ForEachSheetPage(ctx, r.opts.AuditSheetID, smartsheet.GetSheetOptions{PageSize: verifyPageSize}, func(s *smartsheet.Sheet) error {
		if titles == nil {
			titles = make(map[int64]string, len(s.Columns))
			for _, c := range s.Columns {
				titles[c.ID] = c.Title
			}
		}
		for i := range s.Rows {
			row := sheetRow(&s.Rows[i], titles)
			id := strings.TrimSpace(row.Cells[audit.LogChangeID].Value)
			if id == "" || done[id] || seen[id] {
				continue
			}
			seen[id] = true
			fields := make([]audit.Field, len(layout))
			for j, f := range layout {
				c := row.Cells[f.Title]
				fields[j] = audit.Field{Title: f.Title, Kind: f.Kind, Value: c.Value, Link: c.Link}
			}
			out = append(out, legacyRow{id: id, rowID: row.RowID, fields: fields})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit sheet %d: %w", r.opts.AuditSheetID, err)
	}
	return out, nil
}
