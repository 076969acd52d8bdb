package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// SheetRef names a source sheet.
type SheetRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Batch is one page of changed rows of a sheet, as the fetch stage hands it to
// the analysis stage (in Lambda: one SQS message).
type Batch struct {
	// ID is unique within the run (run id / sequence), for exactly-once counting.
	ID        string              `json:"id,omitempty"`
	TestMode  bool                `json:"testMode,omitempty"`
	RunID     string              `json:"runId"`
	Sheet     SheetRef            `json:"sheet"`
	Columns   []audit.ColumnInfo  `json:"columns"`
	Window    audit.ScanWindow    `json:"window"`
	FirstScan bool                `json:"firstScan"`
	Rows      []audit.RowSnapshot `json:"rows,omitempty"`
	// Deleted lists baseline rows no longer on the sheet.
	Deleted []int64 `json:"deleted,omitempty"`
}

// ScanOutcome is what scanning one sheet found.
type ScanOutcome struct {
	Sheet     SheetRef
	Skipped   bool // unchanged since the stored version
	Rows      int  // rows read
	Pages     int
	Changes   []audit.Change // newly recorded (or, in test mode, detected)
	Findings  []audit.Finding
	FirstScan bool
	newRows   int // rows of the page in hand that may be new (see analyze)
}

// rowsOverlap re-reads rows modified shortly before the last scan, so a clock
// difference between us and Smartsheet cannot hide an edit. Detection is
// idempotent, so the overlap costs nothing but bytes.
const rowsOverlap = 5 * time.Minute

// Discover lists the source sheets: the configured sheet ids plus every sheet
// in the configured folders, recursively, without duplicates.
func (r *Runner) Discover(ctx context.Context) ([]SheetRef, error) {
	var out []SheetRef
	seen := map[int64]bool{}
	for _, id := range r.opts.SourceSheetIDs {
		if !seen[id] && id != r.opts.AuditSheetID {
			seen[id] = true
			out = append(out, SheetRef{ID: id})
		}
	}
	if len(r.opts.SourceFolderIDs) > 0 {
		found, err := r.sources.DiscoverSheets(ctx, r.opts.SourceFolderIDs, nil)
		if err != nil {
			return nil, fmt.Errorf("discover the sheets of folders %v: %w", r.opts.SourceFolderIDs, err)
		}
		for _, s := range found {
			if !seen[s.ID] && s.ID != r.opts.AuditSheetID {
				seen[s.ID] = true
				out = append(out, SheetRef{ID: s.ID, Name: s.Name})
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no source sheets: SOURCE_SHEET_IDS and SOURCE_FOLDER_IDS name none")
	}
	return out, nil
}

// sheetRead is what reading a sheet's pages learned besides the rows.
type sheetRead struct {
	sheet    smartsheet.Sheet // id, name, version, row count, link (no rows)
	cols     []audit.ColumnInfo
	mapping  audit.Mapping
	findings []audit.Finding // of the column mapping
	pages    int
}

// readBatches reads the sheet pages opts selects and hands each to fn as a
// batch of row snapshots (tmpl gives run, window and first-scan flag): the
// one read path of the scan (FetchSheet) and of the webhook refresh
// (RefreshRows). No page (an unchanged sheet) leaves pages at 0.
func (r *Runner) readBatches(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions, tmpl Batch, fn func(Batch) error) (sheetRead, error) {
	var rd sheetRead
	err := r.sources.ForEachSheetPage(ctx, sheetID, opts, func(s *smartsheet.Sheet) error {
		rd.pages++
		if rd.pages == 1 {
			rd.sheet = smartsheet.Sheet{ID: s.ID, Name: s.Name, Version: s.Version, TotalRowCount: s.TotalRowCount, Permalink: s.Permalink}
			rd.cols = columnInfos(s.Columns)
			rd.mapping, rd.findings = r.opts.Audit.MapColumns(s.ID, s.Name, rd.cols)
		}
		b := tmpl
		b.Sheet, b.Columns = SheetRef{ID: s.ID, Name: s.Name}, rd.cols
		b.Rows = make([]audit.RowSnapshot, 0, len(s.Rows))
		others := otherCells(s.Columns, len(opts.ColumnIDs) > 0)
		for i := range s.Rows {
			b.Rows = append(b.Rows, Snapshot(s.ID, rd.mapping, &s.Rows[i], others))
		}
		return fn(b)
	})
	return rd, err
}

func mappingComplete(m audit.Mapping) bool {
	_, we := m.ByKey[audit.ColWeekEnding]
	_, sd := m.ByKey[audit.ColSnapshotDate]
	return we || sd
}

func columnInfos(cols []smartsheet.Column) []audit.ColumnInfo {
	out := make([]audit.ColumnInfo, len(cols))
	for i, c := range cols {
		out[i] = audit.ColumnInfo{ID: c.ID, Title: c.Title, Type: c.Type}
	}
	return out
}

// Snapshot turns a Smartsheet row into the audit's view of it: the mapped
// cells' raw text by key, and the row's writer info. allColumns says the read
// carried every column: the row's other cells (all but the tracked and the
// week's) are then printed into Untracked, which proves whether a tracked
// change is the row's only save (see audit.WriterInfo).
func Snapshot(sheetID int64, m audit.Mapping, row *smartsheet.Row, others *OtherCells) audit.RowSnapshot {
	s := audit.RowSnapshot{
		SheetID: sheetID, RowID: row.ID, RowNumber: row.RowNumber, Permalink: row.Permalink,
		Values: make(map[string]string, len(m.ByKey)),
	}
	if row.ModifiedAt != nil {
		s.ModifiedAt = row.ModifiedAt.UTC()
	}
	if row.CreatedAt != nil {
		s.CreatedAt = row.CreatedAt.UTC()
	}
	if row.ModifiedBy != nil {
		s.ModifiedBy, s.ModifiedByName = row.ModifiedBy.Email, row.ModifiedBy.Name
	}
	if row.CreatedBy != nil {
		s.CreatedBy = row.CreatedBy.Email
	}
	for i := range row.Cells {
		c := &row.Cells[i]
		if key, ok := m.ByID[c.ColumnID]; ok {
			s.Values[key] = c.Value.Text()
		}
	}
	if others != nil {
		s.Untracked = untrackedPrint(m, row.Cells, others.skip)
	}
	return s
}

// OtherCells says a read carried every column, so a row's other cells can be
// printed (RowSnapshot.Untracked), and which columns the print leaves out:
// the system columns (Modified, Modified By, Auto-Number…), which every
// save changes. A nil *OtherCells: the read carried only the mapped columns.
type OtherCells struct{ skip map[int64]bool }

// otherCells is the OtherCells of a read of cols, nil when it was trimmed to
// the mapped columns (trimmed).
func otherCells(cols []smartsheet.Column, trimmed bool) *OtherCells {
	if trimmed {
		return nil
	}
	o := &OtherCells{skip: map[int64]bool{}}
	for _, c := range cols {
		if c.SystemColumnType != "" {
			o.skip[c.ID] = true
		}
	}
	return o
}

// untrackedPrint is a print of the cells the detector does not compare and
// a person saves (not the system columns in skip, not formula cells, which
// follow other cells): SHA-256 over each non-blank one's column id and
// text, in column order.
func untrackedPrint(m audit.Mapping, cells []smartsheet.Cell, skip map[int64]bool) string {
	type cell struct {
		id   int64
		text string
	}
	var other []cell
	for i := range cells {
		c := &cells[i]
		if m.Watched(c.ColumnID) || skip[c.ColumnID] || c.Formula != "" {
			continue
		}
		if t := c.Value.Text(); t != "" {
			other = append(other, cell{c.ColumnID, t})
		}
	}
	slices.SortFunc(other, func(a, b cell) int { return cmp.Compare(a.id, b.id) })
	h := sha256.New()
	for _, c := range other {
		fmt.Fprintf(h, "%d:%d:%s;", c.id, len(c.text), c.text)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// trimColumns reports whether scans may read only the mapped columns: the
// other cells are read only for their print, which lets writer info name a
// cell change's author. When this runner keeps a webhook on every source
// sheet a cell change is attributed by its event, and with SkipWriterInfo by
// cell history: neither needs the print. Otherwise every column is read.
func (r *Runner) trimColumns() bool { return r.opts.WebhookCallbackURL != "" || r.opts.SkipWriterInfo }

// Analyze detects, attributes and records the changes of one batch: it loads
// the rows' baselines, compares, attributes each change (webhook record →
// writer info where safe → cell history → unknown; see attributors),
// classifies it, and commits the changes with the new baselines in one store
// transaction (nothing in test mode). Its errors name the batch, its sheet
// and the step.
func (r *Runner) Analyze(ctx context.Context, b Batch) (changes []audit.Change, findings []audit.Finding, err error) {
	changes, findings, _, err = r.analyze(ctx, b)
	return changes, findings, err
}

// analyze is Analyze, and counts the batch's rows that may be new since the
// sheet's last complete scan (the scan's test for deleted rows needs it):
// those without a baseline, and those whose baseline was put after that
// scan — by an attempt of this scan that died before it finished, or by a
// webhook refresh — which the sheet's row count, saved by that scan, does
// not hold either. Counting a changed row among them only costs the test a
// listing of the row ids; missing a new row would hide a deletion.
func (r *Runner) analyze(ctx context.Context, b Batch) (changes []audit.Change, findings []audit.Finding, newRows int, err error) {
	defer annotate(&err, "analyze %s", batchLabel(b))
	mapping, mf := r.opts.Audit.MapColumns(b.Sheet.ID, b.Sheet.Name, b.Columns)
	_ = mf // reported once by the fetch stage
	det := audit.NewDetector(r.opts.Audit, mapping, b.RunID)
	ids := make([]int64, 0, len(b.Rows)+len(b.Deleted))
	for _, s := range b.Rows {
		ids = append(ids, s.RowID)
	}
	ids = append(ids, b.Deleted...)
	prev, err := r.store.Baselines(ctx, b.Sheet.ID, ids)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read the baselines: %w", err)
	}
	for _, snap := range b.Rows {
		if bl, ok := prev[snap.RowID]; !ok || bl.SeenAt.After(b.Window.Previous) {
			newRows++
		}
	}
	changes, findings, put := compareBatch(det, b, prev, nil)
	if err := r.attribute(ctx, b, det, changes); err != nil {
		return nil, nil, 0, fmt.Errorf("attribute %d changes: %w", len(changes), err)
	}
	if r.opts.TestMode {
		return changes, findings, newRows, r.confirmReversals(ctx, changes)
	}
	// Two analyses of one row may run at once (a webhook refresh and a scan
	// batch): commits to a sheet go one at a time, and a row whose baseline
	// another analysis moved meanwhile is compared again with it.
	holder, release, err := r.lockSheet(ctx, b.Sheet.ID)
	if err != nil {
		return nil, nil, 0, err
	}
	defer release()
	if r.opts.BeforeCommit != nil {
		r.opts.BeforeCommit(b)
	}
	now, err := r.store.Baselines(ctx, b.Sheet.ID, ids)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read the baselines again under the commit lease: %w", err)
	}
	if moved := movedRows(ids, prev, now); len(moved) > 0 {
		r.log.InfoContext(ctx, "rows committed by another analysis meanwhile: compared again", slog.Int64("sheet", b.Sheet.ID), slog.Int("rows", len(moved)))
		changes = slices.DeleteFunc(changes, func(c audit.Change) bool { return moved[c.RowID] })
		put = slices.DeleteFunc(put, func(bl audit.Baseline) bool { return moved[bl.RowID] })
		again, _, againPut := compareBatch(det, b, now, moved)
		if err := r.attribute(ctx, b, det, again); err != nil {
			return nil, nil, 0, fmt.Errorf("attribute %d changes again: %w", len(again), err)
		}
		changes, put = append(changes, again...), append(put, againPut...)
		// Attribution may have waited on Smartsheet: commit only if the
		// lease is still this analysis's (another may have taken a lapsed
		// one and committed these rows).
		if ok, err := r.store.RenewLease(ctx, sheetLeaseName(b.Sheet.ID), holder, sheetCommitLeaseTTL); err != nil {
			return nil, nil, 0, fmt.Errorf("renew the commit lease: %w", err)
		} else if !ok {
			return nil, nil, 0, errors.New("the commit lease lapsed while attributing; the batch is retried")
		}
	}
	if err := r.confirmReversals(ctx, changes); err != nil {
		return nil, nil, 0, err
	}
	fresh, err := r.store.Commit(ctx, Commit{SheetID: b.Sheet.ID, Changes: changes, PutBaselines: put, DeleteBaselines: b.Deleted})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("commit %d changes and %d baselines: %w", len(changes), len(put), err)
	}
	return fresh, findings, newRows, nil
}

// batchLabel names a batch in errors: its id when it has one (a queued
// batch), else its sheet and run.
func batchLabel(b Batch) string {
	if b.ID != "" {
		return fmt.Sprintf("batch %s of sheet %d", b.ID, b.Sheet.ID)
	}
	return fmt.Sprintf("sheet %d (run %s)", b.Sheet.ID, b.RunID)
}

// compareBatch compares the batch's rows (those in only, when it is not nil)
// with their baselines: the changes, the findings and the baselines to put.
// A row read before its stored baseline was written is skipped (a webhook
// refresh ran while the batch waited in the queue): comparing it would
// report the edit backwards.
func compareBatch(det *audit.Detector, b Batch, base map[int64]audit.Baseline, only map[int64]bool) (changes []audit.Change, findings []audit.Finding, put []audit.Baseline) {
	for i := range b.Rows {
		cur := &b.Rows[i]
		if only != nil && !only[cur.RowID] {
			continue
		}
		var p *audit.Baseline
		if bl, ok := base[cur.RowID]; ok {
			p = &bl
		}
		if p != nil && !cur.ModifiedAt.IsZero() && cur.ModifiedAt.Before(p.ModifiedAt) {
			continue
		}
		cs, fs := det.Compare(p, cur, b.FirstScan, b.Window)
		cur.UntrackedSame = untrackedSame(p, cur, cs)
		changes = append(changes, cs...)
		findings = append(findings, fs...)
		if p == nil || len(cs) > 0 || baselineStale(p, cur) {
			put = append(put, det.NextBaseline(p, *cur, cs, b.Window.Current))
		}
	}
	for _, id := range b.Deleted {
		if only != nil && !only[id] {
			continue
		}
		if bl, ok := base[id]; ok {
			cs, _ := det.Compare(&bl, nil, false, b.Window)
			changes = append(changes, cs...)
		}
	}
	return changes, findings, put
}

// movedRows are the rows whose baseline changed between before and now.
func movedRows(ids []int64, before, now map[int64]audit.Baseline) map[int64]bool {
	moved := map[int64]bool{}
	for _, id := range ids {
		was, had := before[id]
		is, has := now[id]
		if had != has || (had && (was.Generation != is.Generation || !was.SeenAt.Equal(is.SeenAt))) {
			moved[id] = true
		}
	}
	return moved
}

// sheetCommitLeaseTTL bounds a sheet's commit lease: it is held while one
// analysis checks and commits its rows (seconds), so a holder that died
// blocks the sheet's commits for two minutes at most.
const sheetCommitLeaseTTL = 2 * time.Minute

func sheetLeaseName(sheetID int64) string { return "sheet-commit:" + strconv.FormatInt(sheetID, 10) }

// lockSheet takes the sheet's commit lease and returns its holder id, waiting up to opts.LeaseWait
// (less when ctx's deadline is nearer: see leaseDeadline).
func (r *Runner) lockSheet(ctx context.Context, sheetID int64) (string, func(), error) {
	name := sheetLeaseName(sheetID)
	holder := newHolder()
	deadline := leaseDeadline(ctx, r.opts.LeaseWait)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		ok, err := r.store.AcquireLease(ctx, name, holder, sheetCommitLeaseTTL)
		if err != nil {
			return "", nil, fmt.Errorf("take the commit lease: %w", err)
		}
		if ok {
			return holder, func() {
				if err := r.store.ReleaseLease(context.WithoutCancel(ctx), name, holder); err != nil {
					r.log.WarnContext(ctx, "release a sheet's commit lease", slog.Int64("sheet", sheetID), slog.Any("error", err))
				}
			}, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return "", nil, errors.New("another analysis held the commit lease for as long as this one could wait")
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return "", nil, fmt.Errorf("wait for the commit lease: %w", err)
		}
	}
}

// untrackedSame reports whether a row's cells other than its detected
// changes are as the baseline saw them: its other cells' print is known and
// unchanged, and its week cells too unless the change is the week's move (a
// Snapshot Date re-stamped within its week is no change, yet is a save).
func untrackedSame(p *audit.Baseline, cur *audit.RowSnapshot, cs []audit.Change) bool {
	if p == nil || cur.Untracked == "" || cur.Untracked != p.Untracked {
		return false
	}
	// The week's columns are outside Untracked: each must be as the baseline
	// saw it, but the one a week move names. A Snapshot Date re-stamped by
	// someone else beside a moved week ending reports no change of its own,
	// yet makes them the row's writer (found by the issue 14 soak through
	// the chain, seed 1, round 13).
	moved := ""
	if i := slices.IndexFunc(cs, func(c audit.Change) bool { return c.Kind == audit.KindWeekMoved }); i >= 0 {
		moved = cs[i].ColumnKey
	}
	for _, k := range []string{audit.ColWeekEnding, audit.ColSnapshotDate} {
		if k != moved && p.Values[k] != cur.Values[k] {
			return false
		}
	}
	return true
}

// baselineStale reports a row whose untracked context (row number, link)
// moved, or whose cells' text changed without a change to report (a
// Snapshot Date re-stamped within its week, "5" saved as "5.0"), so its
// baseline is refreshed without a change being reported: a later change
// then names the text the cell held, not an older one.
func baselineStale(p *audit.Baseline, cur *audit.RowSnapshot) bool {
	return p.RowNumber != cur.RowNumber || (cur.Permalink != "" && p.Permalink != cur.Permalink) ||
		(cur.Untracked != "" && cur.Untracked != p.Untracked) || !maps.Equal(p.Values, cur.Values)
}

// attributeWorkers is how many changes of a batch are attributed at once:
// each may wait on a lookup (webhook records in the store, cell history).
const attributeWorkers = 8

// attribute attributes and classifies every change, attributeWorkers at a
// time. Only a cancelled ctx is an error: an attribution that fails is
// logged and leaves the change with what the chain could tell.
func (r *Runner) attribute(ctx context.Context, b Batch, det *audit.Detector, changes []audit.Change) error {
	chain := r.attributors(b, changes)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(attributeWorkers, len(changes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := &changes[i]
				if err := audit.AttributeChain(ctx, c, chain...); err != nil && ctx.Err() == nil {
					r.log.WarnContext(ctx, "attribution incomplete", slog.String("change", c.ChangeID), slog.Any("error", err))
				}
				det.Classify(c, b.Window)
			}
		}()
	}
	for i := range changes {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return ctx.Err()
}

// attributors is the attribution chain of a batch: the changed cell's
// webhook event first, whatever else was saved on the row later; writer
// info only where it is safe (audit.WriterInfo: never for a cell change on a
// sheet whose edits come as events, as a save of an untracked column after
// the edit would be named, nor anywhere with Options.SkipWriterInfo); then
// cell history, within its budget; else the change stays unknown with its
// window.
func (r *Runner) attributors(b Batch, changes []audit.Change) []audit.Attributor {
	var chain []audit.Attributor
	var events audit.EventCoverage
	if r.webhooks != nil {
		w := r.webhooks
		if ba, ok := w.(audit.BatchAttributor); ok {
			w = ba.ForBatch()
		}
		chain = append(chain, w)
		// A sheet whose edits come as webhook events: its cells' events, not
		// the row's last save, name the editors (see audit.WriterInfo).
		records, _ := w.(audit.EventCoverage)
		events = webhookCoverage{all: r.opts.WebhookCallbackURL != "", records: records}
	}
	if r.opts.SkipWriterInfo {
		// Every sheet as if its edits came as events: writer info then
		// proves late rows only (see audit.WriterInfo).
		events = webhookCoverage{all: true}
	}
	chain = append(chain, audit.NewWriterInfoAttributor(b.Rows, changes, events))
	if !r.opts.SkipCellHistory {
		chain = append(chain, &historyAttributor{api: r.sources})
	}
	return chain
}

// webhookCoverage tells the sheets whose edits come as webhook events: all
// of them when this runner keeps a webhook on every source sheet
// (Options.WebhookCallbackURL: the CLI, the scan function), else those
// whose records the store holds (the analyze function, which only reads
// them). The records alone miss a sheet's first edit after its webhook was
// registered, whose callback may come after the scan.
type webhookCoverage struct {
	all     bool
	records audit.EventCoverage // nil: none
}

func (w webhookCoverage) CoversSheet(ctx context.Context, sheetID int64) bool {
	return w.all || (w.records != nil && w.records.CoversSheet(ctx, sheetID))
}

// cellHistories is the one source-sheet call historyAttributor makes.
type cellHistories interface {
	CellHistory(ctx context.Context, sheetID, rowID, columnID int64) ([]smartsheet.CellHistory, error)
}

// historyAttributor asks cell history, within its own rate budget, who wrote
// a changed cell. It is only asked about changed cells nobody else attributed.
type historyAttributor struct{ api cellHistories }

func (h *historyAttributor) Attribute(ctx context.Context, c *audit.Change) (audit.Attribution, bool, error) {
	if c.ColumnID == 0 || (c.Kind != audit.KindValueChanged && c.Kind != audit.KindWeekMoved) {
		return audit.Attribution{}, false, nil
	}
	entries, err := h.api.CellHistory(ctx, c.SheetID, c.RowID, c.ColumnID)
	if err != nil {
		return audit.Attribution{}, false, fmt.Errorf("read the cell history of sheet %d row %d column %d: %w", c.SheetID, c.RowID, c.ColumnID, err)
	}
	ws, we := c.Attribution.WindowStart, c.Attribution.WindowEnd
	inWindow := func(e smartsheet.CellHistory) bool {
		if e.ModifiedAt == nil {
			return false
		}
		t := e.ModifiedAt.UTC()
		return (ws.IsZero() || t.After(ws.Add(-rowsOverlap))) && (we.IsZero() || !t.After(we))
	}
	var pick *smartsheet.CellHistory
	for i := range entries { // newest first
		e := &entries[i]
		if !inWindow(*e) {
			continue
		}
		if c.Kind == audit.KindWeekMoved || e.Value.Text() == c.NewValue {
			pick = e
			break
		}
		if pick == nil {
			pick = e
		}
	}
	if pick == nil {
		return audit.Attribution{}, false, nil
	}
	t := pick.ModifiedAt.UTC()
	a := audit.Attribution{Time: &t, Source: audit.SourceCellHistory}
	if pick.ModifiedBy != nil {
		a.User, a.Name = pick.ModifiedBy.Email, pick.ModifiedBy.Name
	}
	return a, true, nil
}
