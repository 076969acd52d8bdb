package pipeline

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The audit log is append-only and one writer at a time extends it. Every
// path that writes audit rows — a run's write, the analyze function, a
// webhook refresh, a serverless run's flush — goes through publish, which
// under the audit-log lease:
//
//  1. seals each recorded change not yet in the ledger: one entry per change,
//     chained to the head, appended conditionally (AppendLedger);
//  2. appends the sealed changes not yet on the audit sheet as rows, in
//     ledger order, from the sealed fields (what is sealed is what is
//     written), each with its Seal;
//  3. marks them written, with their row ids and ledger entries, and moves
//     the ledger cursor: every entry up to it is noted on its change. A
//     writer that stops between 1 and 3 leaves entries after the cursor,
//     which the next writer notes on their changes first (syncLedger).
//
// A write whose answer is lost (a 5xx or a timeout after Smartsheet may have
// applied it) is never replayed blindly: the rows' Change IDs are read back
// from the sheet and only the missing ones are sent. A write cut short by a
// crash leaves an in-flight marker, and the next publish reconciles with the
// sheet first. Nothing the product wrote is ever deleted or rewritten.

// AuditLogLease is the lease every writer of the audit log holds.
const AuditLogLease = "audit-log"

const (
	// auditLogLeaseTTL outlasts a function's timeout, so a lease is only
	// taken over from a holder that is gone. A holder whose context has a
	// deadline (a Lambda invocation) holds it less: see leaseTTL.
	auditLogLeaseTTL = 10 * time.Minute
	// leaseAfterDeadline is how long a lease outlasts its holder's deadline:
	// the clocks of the functions and the store agree to well under it.
	leaseAfterDeadline = 30 * time.Second
	// DefaultLeaseWait is how long a writer waits for the lease by default.
	DefaultLeaseWait = 2 * time.Minute
	// ledgerCursorKey (meta) is the last ledger entry whose change record is
	// known to carry its seal: entries after it are noted on their records
	// by the next writer (a writer may stop between the append and marking
	// the rows written).
	ledgerCursorKey = "ledger-synced"
	// inFlightKey (meta) lists the Change IDs of an audit write that may
	// have reached the sheet without being marked written.
	inFlightKey = "audit-write-in-flight"
	// maxResends bounds the read-back-and-resend rounds after lost answers.
	maxResends = 3
	// DefaultReadBackDelay is Options.ReadBackDelay's default.
	DefaultReadBackDelay = 3 * time.Second
)

// ErrAuditLogBusy says another writer held the audit-log lease for longer
// than this one would wait. What was to be written stays pending and is
// written by the next writer.
var ErrAuditLogBusy = errors.New("the audit log is busy with another writer")

var errNoAuditSheet = errors.New("no audit sheet: set AUDIT_SHEET_ID or run `billing-audit setup`")

func newHolder() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lockAuditLog takes the audit-log lease, waiting up to opts.LeaseWait, and
// returns a context that carries it (see renewLease) and the function that
// releases it.
func (r *Runner) lockAuditLog(ctx context.Context) (context.Context, func(), error) {
	holder := newHolder()
	deadline := leaseDeadline(ctx, r.opts.LeaseWait)
	wait := 50 * time.Millisecond
	for {
		ok, err := r.store.AcquireLease(ctx, AuditLogLease, holder, leaseTTL(ctx))
		if err != nil {
			return ctx, nil, fmt.Errorf("take the audit-log lease: %w", err)
		}
		if ok {
			return context.WithValue(ctx, leaseKey{}, holder), func() {
				if err := r.store.ReleaseLease(context.WithoutCancel(ctx), AuditLogLease, holder); err != nil {
					r.log.WarnContext(ctx, "release the audit-log lease", slog.Any("error", err))
				}
			}, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return ctx, nil, ErrAuditLogBusy
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx, nil, fmt.Errorf("wait for the audit-log lease: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// leaseTTL is how long the audit-log lease taken or renewed now stands:
// auditLogLeaseTTL, or until leaseAfterDeadline past ctx's deadline when
// that is sooner. Lambda stops an invocation at its deadline, so the lease
// still passes only from a holder that is gone; but one killed mid-write
// (a crash, an out-of-memory) keeps every writer out for about its own
// timeout, not ten minutes.
func leaseTTL(ctx context.Context) time.Duration {
	ttl := auditLogLeaseTTL
	if dl, ok := ctx.Deadline(); ok {
		ttl = min(ttl, time.Until(dl)+leaseAfterDeadline)
	}
	return max(ttl, leaseAfterDeadline)
}

// leaseMargin is the time a waiter keeps, before its context's deadline,
// to report that it gave up (a Lambda function that waits out its own
// timeout is killed without a word).
const leaseMargin = 15 * time.Second

// leaseDeadline is when a waiter for a lease gives up: after wait, or
// leaseMargin before ctx's deadline, whichever is first.
func leaseDeadline(ctx context.Context, wait time.Duration) time.Time {
	d := time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-leaseMargin).Before(d) {
		d = dl.Add(-leaseMargin)
	}
	return d
}

type leaseKey struct{}

// ErrLeaseLost says a writer's audit-log lease expired (another writer may
// have taken it since): the writer stops where it is (what it left is
// finished by the next one) rather than write beside another.
var ErrLeaseLost = errors.New("the audit-log lease expired; another writer may hold it")

// renewLease extends the lease ctx carries before a step that writes or reads
// the audit log, and fails when it was lost.
func (r *Runner) renewLease(ctx context.Context) error {
	holder, ok := ctx.Value(leaseKey{}).(string)
	if !ok {
		return errors.New("renew the audit-log lease: not held")
	}
	held, err := r.store.RenewLease(ctx, AuditLogLease, holder, leaseTTL(ctx))
	if err != nil {
		return fmt.Errorf("renew the audit-log lease: %w", err)
	}
	if !held {
		return ErrLeaseLost
	}
	return nil
}

// publish seals and writes every recorded change that is not on the audit
// sheet yet (fresh: changes just recorded, which the pending index may not
// show yet), and returns those it wrote. Its errors name the audit sheet
// and the step: the lease, adoption, sealing, appending rows or the cursor.
func (r *Runner) publish(ctx context.Context, fresh []audit.Change) (written []audit.Change, err error) {
	if r.opts.TestMode {
		return nil, nil
	}
	if r.opts.AuditSheetID == 0 {
		return nil, errNoAuditSheet
	}
	defer annotate(&err, "write audit sheet %d", r.opts.AuditSheetID)
	ctx, release, err := r.lockAuditLog(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := r.adoptLegacy(ctx); err != nil {
		return nil, err
	}
	recs, entries, err := r.seal(ctx, fresh)
	if err != nil {
		return nil, fmt.Errorf("seal changes into the ledger: %w", err)
	}
	// The changes these rows reverse are remembered before the rows go out:
	// a write cut short, or found applied by a read-back, still has them
	// marked by this run or the next.
	if err := r.rememberReversals(ctx, recs); err != nil {
		return nil, err
	}
	written, err = r.appendRows(ctx, recs, entries)
	if err != nil {
		return written, fmt.Errorf("append rows: %w", err)
	}
	if cols, err := r.auditColumns(ctx); err == nil {
		r.markReversed(ctx, cols)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	// Every entry is now noted on its change record.
	if head, ok, err := r.store.LedgerHead(ctx); err != nil || !ok {
		return written, wrapErr("read the ledger head to move the cursor", err)
	} else if err := r.store.PutMeta(ctx, ledgerCursorKey, strconv.FormatUint(head.Seq, 10)); err != nil {
		return written, fmt.Errorf("move the ledger cursor to %d: %w", head.Seq, err)
	}
	return written, nil
}

// seal brings the ledger up to date with the recorded changes and returns
// the records still to be written, in ledger order, with the entries sealed
// now (older ones are read when needed).
func (r *Runner) seal(ctx context.Context, fresh []audit.Change) ([]ChangeRecord, map[uint64]audit.LedgerEntry, error) {
	head, err := r.syncLedger(ctx)
	if err != nil {
		return nil, nil, err
	}
	pending, err := r.store.Pending(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the pending changes: %w", err)
	}
	ids := make([]string, 0, len(pending)+len(fresh))
	for _, p := range pending {
		ids = append(ids, p.Change.ChangeID)
	}
	for _, c := range fresh {
		ids = append(ids, c.ChangeID)
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	// The pending index may lag: decide from the records as they are now.
	byID, err := r.store.ChangeRecords(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read %d change records (%s…): %w", len(ids), ids[0], err)
	}
	var todo []ChangeRecord
	for _, rec := range byID {
		if !rec.Written {
			todo = append(todo, rec)
		}
	}
	SortChangeRecords(todo)
	now := r.opts.Clock().UTC()
	entries := map[uint64]audit.LedgerEntry{}
	var chain []audit.LedgerEntry
	for i := range todo {
		if todo[i].Seq != 0 {
			continue
		}
		c := todo[i].Change
		head = audit.NextEntry(head, audit.EntryChange, c.ChangeID, now, audit.LogFields(c, r.opts.Audit.Location))
		chain = append(chain, head)
		todo[i].Seq, todo[i].Hash = head.Seq, head.Hash
		entries[head.Seq] = head
	}
	// The records learn their entries when they are marked written (or,
	// if this writer stops first, from the next writer's syncLedger).
	if err := r.store.AppendLedger(ctx, chain); err != nil {
		return nil, nil, fmt.Errorf("append entries %d-%d: %w", head.Seq+1-uint64(len(chain)), head.Seq, err)
	}
	slices.SortFunc(todo, func(a, b ChangeRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return todo, entries, nil
}

// syncLedger notes on their change records the entries a writer appended but
// did not get to record (it stopped in between), and returns the head.
func (r *Runner) syncLedger(ctx context.Context) (audit.LedgerEntry, error) {
	head, _, err := r.store.LedgerHead(ctx)
	if err != nil {
		return head, fmt.Errorf("read the ledger head: %w", err)
	}
	cursor := uint64(0)
	if v, ok, err := r.store.Meta(ctx, ledgerCursorKey); err != nil {
		return head, fmt.Errorf("read the ledger cursor: %w", err)
	} else if ok {
		cursor, _ = strconv.ParseUint(v, 10, 64)
	}
	if head.Seq <= cursor {
		return head, nil
	}
	var entries []audit.LedgerEntry
	var ids []string
	err = r.store.LedgerEntries(ctx, cursor+1, func(e audit.LedgerEntry) error {
		if e.HasRow() {
			entries = append(entries, audit.LedgerEntry{Seq: e.Seq, Type: e.Type, Subject: e.Subject, Hash: e.Hash})
			ids = append(ids, e.Subject)
		}
		return nil
	})
	if err != nil {
		return head, fmt.Errorf("read ledger entries after %d: %w", cursor, err)
	}
	var seals []Sealed
	var adopted []WrittenRow
	if len(entries) > 0 {
		recs, err := r.store.ChangeRecords(ctx, ids)
		if err != nil {
			return head, fmt.Errorf("read the changes of ledger entries after %d: %w", cursor, err)
		}
		for _, e := range entries {
			rec, ok := recs[e.Subject]
			switch {
			case !ok: // an adopted row may have no change record (see adopt.go)
			case rec.Seq == e.Seq && rec.Hash == e.Hash: // already noted
			case e.Type == audit.EntryAdopted:
				// An adopted row is on the sheet: its change is written,
				// even one the earlier version never marked so.
				adopted = append(adopted, WrittenRow{ChangeID: e.Subject, RowID: rec.AuditRowID, Seq: e.Seq, Hash: e.Hash})
			default:
				seals = append(seals, Sealed{ChangeID: e.Subject, Seq: e.Seq, Hash: e.Hash})
			}
		}
	}
	if len(seals)+len(adopted) > 0 {
		r.log.InfoContext(ctx, "ledger entries noted on their changes after an interrupted write", slog.Int("entries", len(seals)+len(adopted)))
		if err := r.store.MarkSealed(ctx, seals); err != nil {
			return head, fmt.Errorf("note ledger entries %d-%d on their changes: %w", cursor+1, head.Seq, err)
		}
		if err := r.store.MarkWritten(ctx, adopted); err != nil {
			return head, fmt.Errorf("note adopted entries %d-%d on their changes: %w", cursor+1, head.Seq, err)
		}
	}
	if err := r.store.PutMeta(ctx, ledgerCursorKey, strconv.FormatUint(head.Seq, 10)); err != nil {
		return head, fmt.Errorf("move the ledger cursor to %d: %w", head.Seq, err)
	}
	return head, nil
}

// wrapErr wraps a non-nil error with the step.
func wrapErr(step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", step, err)
}

// annotate wraps *err, when it is not nil, with the stage and its id (format
// and args): deferred by a stage, it makes every error the stage returns
// say which stage failed on what, above the step that failed.
func annotate(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf(format+": %w", append(args, *err)...)
	}
}

// appendRows writes sealed records to the audit sheet, 500 rows a request,
// in ledger order, and marks them written.
func (r *Runner) appendRows(ctx context.Context, recs []ChangeRecord, entries map[uint64]audit.LedgerEntry) ([]audit.Change, error) {
	cols, err := r.auditColumns(ctx)
	if err != nil {
		return nil, err
	}
	if recs, err = r.reconcileInFlight(ctx, cols, recs); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, nil
	}
	var missing []uint64
	for _, rec := range recs {
		if _, ok := entries[rec.Seq]; !ok {
			missing = append(missing, rec.Seq)
		}
	}
	if len(missing) > 0 {
		old, err := r.store.LedgerEntriesBySeq(ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("read %d ledger entries (%d…): %w", len(missing), missing[0], err)
		}
		for seq, e := range old {
			entries[seq] = e
		}
	}
	var written []audit.Change
	for chunk := range slices.Chunk(recs, maxRowsPerRequest) {
		rows := make([]smartsheet.Row, len(chunk))
		ids := make([]string, len(chunk))
		for i, rec := range chunk {
			e, ok := entries[rec.Seq]
			if !ok || e.Subject != rec.Change.ChangeID {
				return written, fmt.Errorf("change %s: ledger entry %d not found", rec.Change.ChangeID, rec.Seq)
			}
			rows[i] = auditRow(cols, e)
			ids[i] = rec.Change.ChangeID
		}
		done, err := r.addAuditRows(ctx, cols, ids, rows)
		if err != nil {
			return written, fmt.Errorf("add the rows of changes %s to %s: %w", ids[0], ids[len(ids)-1], err)
		}
		if r.opts.AfterAuditWrite != nil {
			if err := r.opts.AfterAuditWrite(); err != nil {
				return written, err
			}
		}
		bySeq := make(map[string]ChangeRecord, len(chunk))
		for _, rec := range chunk {
			bySeq[rec.Change.ChangeID] = rec
		}
		for i := range done {
			rec := bySeq[done[i].ChangeID]
			done[i].Seq, done[i].Hash = rec.Seq, rec.Hash
		}
		if err := r.store.MarkWritten(ctx, done); err != nil {
			return written, fmt.Errorf("mark changes %s to %s written: %w", ids[0], ids[len(ids)-1], err)
		}
		if err := r.setInFlight(ctx, nil); err != nil {
			return written, err
		}
		for _, rec := range chunk {
			written = append(written, rec.Change)
		}
	}
	return written, nil
}

// addAuditRows appends one request's rows (ids[i] is rows[i]'s Change ID)
// and returns the rows now on the sheet. It is never replayed blindly: after
// an answer that may hide an applied write, the sheet's Change IDs are read
// back and only the missing rows are sent again.
func (r *Runner) addAuditRows(ctx context.Context, cols map[string]int64, ids []string, rows []smartsheet.Row) ([]WrittenRow, error) {
	if err := r.setInFlight(ctx, ids); err != nil {
		return nil, err
	}
	var done []WrittenRow
	sendIDs, send := ids, rows
	ambiguous := false
	for attempt := 0; ; attempt++ {
		// A long write keeps its lease, or stops.
		if err := r.renewLease(ctx); err != nil {
			return nil, err
		}
		res, err := r.auditSheet.AddRows(ctx, r.opts.AuditSheetID, send, smartsheet.AddRowsOptions{ToBottom: true, NoReplay: true})
		if err == nil {
			if len(res.Rows) != len(send) {
				return nil, fmt.Errorf("audit sheet %d: %d rows sent, %d added", r.opts.AuditSheetID, len(send), len(res.Rows))
			}
			for i, row := range res.Rows {
				done = append(done, WrittenRow{ChangeID: sendIDs[i], RowID: row.ID})
			}
			return done, nil
		}
		if !smartsheet.IsAmbiguous(err) {
			if ambiguous {
				// An earlier attempt may still land: the marker stays for
				// the next writer to reconcile.
				return nil, err
			}
			// Nothing was applied: the rows stay pending, no marker needed.
			if cerr := r.setInFlight(ctx, nil); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return nil, err
		}
		ambiguous = true
		if attempt >= maxResends {
			// The marker stays: the next writer reconciles first.
			return nil, fmt.Errorf("audit rows still unconfirmed after %d read-backs: %w", attempt, err)
		}
		// A write whose answer was lost may still be being applied: give it
		// time before reading the sheet back.
		wait := r.opts.ReadBackDelay << attempt
		r.log.WarnContext(ctx, "audit write unconfirmed: reading the sheet back before sending again",
			slog.Int("rows", len(send)), slog.Duration("after", wait), slog.Any("error", err))
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, fmt.Errorf("wait to read the sheet back: %w", err)
		}
		if err := r.renewLease(ctx); err != nil {
			return nil, err
		}
		onSheet, rerr := r.auditRowsByChangeID(ctx, cols)
		if rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("read back after the unconfirmed write: %w", rerr))
		}
		var nextIDs []string
		var next []smartsheet.Row
		for i, id := range sendIDs {
			if rowIDs := onSheet[id]; len(rowIDs) > 0 {
				done = append(done, WrittenRow{ChangeID: id, RowID: rowIDs[0]})
			} else {
				nextIDs, next = append(nextIDs, id), append(next, send[i])
			}
		}
		if len(next) == 0 {
			return done, nil
		}
		sendIDs, send = nextIDs, next
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// setInFlight records (ids non-empty) or clears the in-flight marker.
func (r *Runner) setInFlight(ctx context.Context, ids []string) error {
	v := ""
	if len(ids) > 0 {
		b, err := json.Marshal(ids)
		if err != nil {
			return fmt.Errorf("encode the audit write in flight: %w", err)
		}
		v = string(b)
	}
	if err := r.store.PutMeta(ctx, inFlightKey, v); err != nil {
		if v == "" {
			return fmt.Errorf("clear the audit write in flight: %w", err)
		}
		return fmt.Errorf("record the audit write in flight: %w", err)
	}
	return nil
}

// reconcileInFlight finishes a write that stopped after it may have reached
// the sheet: the changes the marker names (read as they are now: the pending
// index may lag) that are on the sheet are marked written and dropped from
// recs.
func (r *Runner) reconcileInFlight(ctx context.Context, cols map[string]int64, recs []ChangeRecord) ([]ChangeRecord, error) {
	v, ok, err := r.store.Meta(ctx, inFlightKey)
	if err != nil {
		return nil, fmt.Errorf("read the audit write in flight: %w", err)
	}
	if !ok || v == "" {
		return recs, nil
	}
	var ids []string
	if err := json.Unmarshal([]byte(v), &ids); err != nil {
		return nil, fmt.Errorf("read the audit write in flight: %w", err)
	}
	marked, err := r.store.ChangeRecords(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read the changes of the audit write in flight: %w", err)
	}
	onSheet, err := r.auditRowsByChangeID(ctx, cols)
	if err != nil {
		return nil, err
	}
	var found []WrittenRow
	landed := map[string]bool{}
	for _, id := range ids {
		rec, ok := marked[id]
		if rowIDs := onSheet[id]; ok && !rec.Written && len(rowIDs) > 0 {
			found = append(found, WrittenRow{ChangeID: id, RowID: rowIDs[0], Seq: rec.Seq, Hash: rec.Hash})
			landed[id] = true
		}
	}
	if len(found) > 0 {
		r.log.InfoContext(ctx, "reconciled changes already on the audit sheet", slog.Int("count", len(found)))
		if err := r.store.MarkWritten(ctx, found); err != nil {
			return nil, fmt.Errorf("mark %d changes found on the sheet written: %w", len(found), err)
		}
	}
	kept := slices.DeleteFunc(slices.Clone(recs), func(rec ChangeRecord) bool { return landed[rec.Change.ChangeID] })
	return kept, r.setInFlight(ctx, nil)
}

// auditRow lays a ledger entry out as its audit-log row: each sealed field
// in its column (text always as a string value, never a formula; numbers as
// numbers; dates as DATE values), the Source Row's link, and the Seal. A
// number field whose value is not a number (an entry altered in the store,
// which the product never seals) is written as the text sealed: the entry
// may be read back from the store to finish a write, and a panic there
// would stop every later run, where verification names the altered entry.
func auditRow(cols map[string]int64, e audit.LedgerEntry) smartsheet.Row {
	cells := make([]smartsheet.Cell, 0, len(e.Fields)+1)
	for _, f := range e.Fields {
		id := cols[f.Title]
		if id == 0 || (f.Value == "" && f.Link == "") {
			continue
		}
		cell := smartsheet.Cell{ColumnID: id, Value: smartsheet.StringValue(f.Value)}
		if n, err := smartsheet.ParseNumberValue(f.Value); err == nil && f.Kind == audit.FieldNumber {
			cell.Value = n
		}
		if f.Link != "" {
			cell.Hyperlink = &smartsheet.Hyperlink{URL: f.Link}
		}
		cells = append(cells, cell)
	}
	if id := cols[audit.LogSeal]; id != 0 {
		cells = append(cells, smartsheet.Cell{ColumnID: id, Value: smartsheet.StringValue(e.Seal())})
	}
	// An exception starts Open, so that a manager filtering the sheet by
	// Disposition finds it; a reversal starts Reversed, as the change it
	// undoes becomes (markReversed): the pair nets out and nothing is left
	// to act on. The review columns are not sealed.
	if id := cols[audit.LogDisposition]; id != 0 && e.Type == audit.EntryChange {
		if d := audit.InitialDisposition(e.Fields); d != "" {
			cells = append(cells, smartsheet.Cell{ColumnID: id, Value: smartsheet.StringValue(d)})
		}
	}
	return smartsheet.Row{Cells: cells}
}
