package pipeline

import (
	"context"
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

// A sheet is scanned page by page, and each page is analysed — compared,
// attributed, recorded, committed — before the next is read. After each page
// a checkpoint says where the scan stands, so a scan cut short (a function's
// time slice ends, a crash, a timeout) resumes at the next page: no work is
// repeated beyond one page. The local run and the serverless sheet worker
// (ProcessSheet) share this one loop.
//
// A first scan (no baselines yet) may take many pages; its checkpoint
// outlives its run, so the next run resumes it instead of starting over.
// The sheet's new watermark is then the start of the scan that began it:
// an edit to a page read before the interruption is found by the next scan.

// SheetWork is one source sheet of a run: the unit the serverless scan fans
// out, one queue message each.
type SheetWork struct {
	RunID string   `json:"runId"`
	Sheet SheetRef `json:"sheet"`
	// StartedAt is the run's start: the sheet's new watermark.
	StartedAt time.Time `json:"startedAt"`
	TestMode  bool      `json:"testMode,omitempty"`
	// Resume says a checkpoint may exist (a continuation, or a retry).
	Resume bool `json:"resume,omitempty"`
	// Attempt is the delivery's number (1 for the first), set by the
	// handler from the queue.
	Attempt int `json:"-"`
	// Usage is what the invocations before this one spent on the sheet
	// (a continuation carries it on), so the run's figures count every
	// worker's calls.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is Smartsheet calls spent: by endpoint, and the client's retries,
// rate-limit waits and cell-history calls.
type Usage struct {
	APICalls         map[string]int `json:"apiCalls,omitempty"`
	Retries          int            `json:"retries,omitempty"`
	RateLimitWaits   int            `json:"rateLimitWaits,omitempty"`
	RateLimitWait    time.Duration  `json:"rateLimitWait,omitempty"`
	CellHistoryCalls int            `json:"cellHistoryCalls,omitempty"`
}

// Add is u plus o.
func (u *Usage) Add(o *Usage) *Usage {
	if o == nil {
		return u
	}
	out := &Usage{APICalls: map[string]int{}}
	for _, x := range []*Usage{u, o} {
		if x == nil {
			continue
		}
		for k, v := range x.APICalls {
			out.APICalls[k] += v
		}
		out.Retries += x.Retries
		out.RateLimitWaits += x.RateLimitWaits
		out.RateLimitWait += x.RateLimitWait
		out.CellHistoryCalls += x.CellHistoryCalls
	}
	return out
}

// addTo adds the usage to a run's figures.
func (u *Usage) addTo(run *RunRecord) {
	if u == nil {
		return
	}
	if run.APICalls == nil && len(u.APICalls) > 0 {
		run.APICalls = map[string]int{}
	}
	for k, v := range u.APICalls {
		run.APICalls[k] += v
	}
	run.Retries += u.Retries
	run.RateLimitWaits += u.RateLimitWaits
	run.RateLimitWait += u.RateLimitWait
	run.CellHistoryCalls += u.CellHistoryCalls
}

// SheetQueue carries sheet work to the sheet workers.
type SheetQueue interface {
	SendSheetWork(ctx context.Context, w SheetWork) error
}

// SheetResult is what a worker reports of its sheet to the run's completion.
type SheetResult struct {
	RunID      string          `json:"runId"`
	Sheet      SheetRef        `json:"sheet"`
	Skipped    bool            `json:"skipped,omitempty"`
	Rows       int             `json:"rows"`
	Pages      int             `json:"pages"`
	Changes    int             `json:"changes"`
	Findings   []audit.Finding `json:"findings,omitempty"`
	Failed     string          `json:"failed,omitempty"` // why the sheet could not be read
	FinishedAt time.Time       `json:"finishedAt"`
	// Usage is what every invocation spent on the sheet.
	Usage *Usage `json:"usage,omitempty"`
}

// sheetCheckpoint is where a sheet's scan stands: the query it pages
// through (so a resumed scan reads the same pages), the next page, and what
// the pages read so far counted.
type sheetCheckpoint struct {
	RunID     string    `json:"runId"`
	StartedAt time.Time `json:"startedAt"` // the watermark the scan will leave
	FirstScan bool      `json:"firstScan"`
	Previous  time.Time `json:"previous,omitempty"` // the window's start (the last scan)
	// The query.
	PageSize          int        `json:"pageSize"`
	RowsModifiedSince *time.Time `json:"rowsModifiedSince,omitempty"`
	ColumnIDs         []int64    `json:"columnIds,omitempty"`
	// Progress.
	NextPage     int    `json:"nextPage"`
	Version      int64  `json:"version,omitempty"` // at the first page
	VersionMoved bool   `json:"versionMoved,omitempty"`
	LastFirstRow int64  `json:"lastFirstRow,omitempty"`
	Name         string `json:"name,omitempty"`
	Rows         int    `json:"rows"`
	SeenNew      int    `json:"seenNew"` // rows read that had no baseline
	Pages        int    `json:"pages"`
	// The state to save, learnt from the pages.
	Permalink        string  `json:"permalink,omitempty"`
	StateColumnIDs   []int64 `json:"stateColumnIds,omitempty"`
	ColumnsFor       string  `json:"columnsFor,omitempty"`
	WebhookColumnIDs []int64 `json:"webhookColumnIds,omitempty"`
}

func checkpointKey(sheetID int64) string { return "sheet-checkpoint:" + strconv.FormatInt(sheetID, 10) }

// newCheckpoint starts a scan of w's sheet from its stored state.
func (r *Runner) newCheckpoint(w SheetWork, prev SheetState, known bool) sheetCheckpoint {
	cp := sheetCheckpoint{RunID: w.RunID, StartedAt: w.StartedAt, FirstScan: !known, PageSize: r.opts.PageSize, NextPage: 1}
	if known {
		cp.Previous = prev.LastScan
		since := prev.LastScan.Add(-rowsOverlap)
		cp.RowsModifiedSince = &since
		if len(prev.ColumnIDs) > 0 && prev.ColumnsFor == r.columnsSig && r.trimColumns() {
			cp.ColumnIDs = prev.ColumnIDs
		}
	}
	return cp
}

// loadCheckpoint reads the sheet's checkpoint, if it may be resumed by w:
// one of w's own run, or a first scan that never finished.
func (r *Runner) loadCheckpoint(ctx context.Context, w SheetWork, known bool) (sheetCheckpoint, bool, error) {
	var cp sheetCheckpoint
	v, ok, err := r.store.Meta(ctx, checkpointKey(w.Sheet.ID))
	if err != nil || !ok || v == "" {
		return cp, false, err
	}
	if err := json.Unmarshal([]byte(v), &cp); err != nil {
		r.log.WarnContext(ctx, "unreadable sheet checkpoint: starting over", slog.Int64("sheet", w.Sheet.ID), slog.Any("error", err))
		return cp, false, nil
	}
	ok = cp.NextPage > 1 && (cp.RunID == w.RunID || (cp.FirstScan && !known))
	return cp, ok, nil
}

func (r *Runner) saveCheckpoint(ctx context.Context, sheetID int64, cp *sheetCheckpoint) error {
	if r.opts.TestMode {
		return nil
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return r.store.PutMeta(ctx, checkpointKey(sheetID), string(b))
}

// scanSheet scans one sheet from its checkpoint: each page is analysed and
// passed to each (the serverless worker writes its changes there); after the
// last page the deleted rows are analysed and the sheet's state is saved.
// Past stopAt (when not zero) it stops after the page in hand and returns
// done=false, the checkpoint saved. Its errors name the step; the caller
// names the sheet.
func (r *Runner) scanSheet(ctx context.Context, w SheetWork, stopAt time.Time, each func([]audit.Change) error) (out ScanOutcome, done bool, err error) {
	ref := w.Sheet
	out = ScanOutcome{Sheet: ref}
	prev, known, err := r.store.SheetState(ctx, ref.ID)
	if err != nil {
		return out, false, fmt.Errorf("read its state: %w", err)
	}
	cp := r.newCheckpoint(w, prev, known)
	resumed := false
	if w.Resume || !known {
		old, ok, err := r.loadCheckpoint(ctx, w, known)
		if err != nil {
			return out, false, fmt.Errorf("read its checkpoint: %w", err)
		}
		if ok {
			cp, resumed = old, true
			r.log.InfoContext(ctx, "sheet scan resumed", slog.Int64("sheet", ref.ID), slog.Int("page", cp.NextPage), slog.String("begun by", cp.RunID))
		}
	}
	out.FirstScan = cp.FirstScan
	var total int
	for {
		more, n, err := r.scanPage(ctx, ref, prev, known, resumed, &cp, &out, each)
		if err != nil {
			return out, false, err
		}
		if n >= 0 {
			total = n
		}
		if out.Skipped {
			prev.LastScan = w.StartedAt
			if !r.opts.TestMode {
				if err := r.store.SaveSheetState(ctx, prev); err != nil {
					return out, false, fmt.Errorf("save the state of the unchanged sheet: %w", err)
				}
			}
			return out, true, nil
		}
		if !more {
			break
		}
		if err := r.saveCheckpoint(ctx, ref.ID, &cp); err != nil {
			return out, false, fmt.Errorf("save its checkpoint at page %d: %w", cp.NextPage, err)
		}
		if r.opts.AfterPage != nil {
			if err := r.opts.AfterPage(ref.ID, cp.NextPage-1); err != nil {
				return out, false, err
			}
		}
		if !stopAt.IsZero() && time.Now().After(stopAt) {
			return out, false, nil
		}
	}
	if err := r.finishSheet(ctx, ref, prev, known, &cp, total, &out, each); err != nil {
		return out, false, err
	}
	return out, true, nil
}

// scanPage reads and analyses the checkpoint's next page and moves the
// checkpoint on. It reports whether more pages follow and the sheet's row
// count (-1 when unchanged); an unchanged sheet sets out.Skipped.
func (r *Runner) scanPage(ctx context.Context, ref SheetRef, prev SheetState, known, resumed bool, cp *sheetCheckpoint, out *ScanOutcome, each func([]audit.Change) error) (more bool, total int, err error) {
	page := cp.NextPage
	opts := smartsheet.GetSheetOptions{
		Include:  []string{smartsheet.IncludeWriterInfo, smartsheet.IncludeRowPermalink},
		PageSize: cp.PageSize, Page: page, RowsModifiedSince: cp.RowsModifiedSince, ColumnIDs: cp.ColumnIDs,
	}
	if page == 1 && known && !resumed {
		v := prev.Version
		opts.IfVersionAfter = &v
	}
	s, unchanged, err := r.sources.GetSheet(ctx, ref.ID, opts)
	if err != nil {
		return false, -1, fmt.Errorf("read page %d: %w", page, err)
	}
	if unchanged {
		out.Skipped = true
		return false, -1, nil
	}
	if cp.Version == 0 {
		cp.Version, cp.Name = s.Version, s.Name
	} else if s.Version != cp.Version {
		cp.VersionMoved = true // rows may have moved between pages: see finishSheet
	}
	// A page past the end answers the last page again.
	if page > 1 && len(s.Rows) > 0 && s.Rows[0].ID == cp.LastFirstRow {
		return false, s.TotalRowCount, nil
	}
	b, mapping, mf := r.PageBatch(cp.RunID, s, audit.ScanWindow{Previous: cp.Previous, Current: cp.StartedAt}, cp.FirstScan, len(opts.ColumnIDs) > 0)
	if cp.Pages == 0 {
		r.addFindings(mf) // the mapping's findings, once per scan
		out.Findings = append(out.Findings, mf...)
		cp.Permalink, cp.WebhookColumnIDs = s.Permalink, WebhookColumnIDs(mapping)
		if len(mapping.Tracked) > 0 && mappingComplete(mapping) {
			cp.StateColumnIDs, cp.ColumnsFor = mapping.NeededColumnIDs(), r.columnsSig
		}
	}
	if err := r.analyzePage(ctx, b, out, each); err != nil {
		return false, -1, fmt.Errorf("page %d: %w", page, err)
	}
	r.progress.Rows(len(b.Rows))
	r.log.DebugContext(ctx, "page analysed", slog.Int64("sheet", ref.ID), slog.Int("page", page), slog.Int("rows", len(b.Rows)))
	cp.Rows += len(b.Rows)
	cp.SeenNew += out.newRows
	out.newRows = 0
	cp.Pages++
	cp.NextPage = page + 1
	if len(s.Rows) > 0 {
		cp.LastFirstRow = s.Rows[0].ID
	}
	out.Sheet.Name, out.Rows, out.Pages = s.Name, cp.Rows, cp.Pages
	more = len(s.Rows) >= cp.PageSize && page*cp.PageSize < s.TotalRowCount
	return more, s.TotalRowCount, nil
}

// PageBatch is a page of a sheet as the scan analyses it: the rows'
// snapshots under the columns' mapping (returned with its findings).
// trimmed says the read carried only the mapped columns (columnIds), so the
// rows' other cells cannot be printed (see Snapshot).
func (r *Runner) PageBatch(runID string, s *smartsheet.Sheet, window audit.ScanWindow, firstScan, trimmed bool) (Batch, audit.Mapping, []audit.Finding) {
	cols := columnInfos(s.Columns)
	mapping, findings := r.opts.Audit.MapColumns(s.ID, s.Name, cols)
	b := Batch{RunID: runID, Sheet: SheetRef{ID: s.ID, Name: s.Name}, Columns: cols, Window: window, FirstScan: firstScan}
	b.Rows = make([]audit.RowSnapshot, 0, len(s.Rows))
	others := otherCells(s.Columns, trimmed)
	for i := range s.Rows {
		b.Rows = append(b.Rows, Snapshot(s.ID, mapping, &s.Rows[i], others))
	}
	return b, mapping, findings
}

// analyzePage analyses a batch and hands its fresh changes to each.
func (r *Runner) analyzePage(ctx context.Context, b Batch, out *ScanOutcome, each func([]audit.Change) error) error {
	changes, findings, newRows, err := r.analyze(ctx, b)
	if err != nil {
		return err
	}
	out.Changes = append(out.Changes, changes...)
	out.Findings = append(out.Findings, findings...)
	out.newRows += newRows
	r.addFindings(findings)
	if each != nil {
		return each(changes)
	}
	return nil
}

// finishSheet ends a scan whose pages are all read: rows deleted since the
// last scan are analysed, rows a first scan missed while the sheet moved
// under it are read by id, and the sheet's state is saved with the
// watermark of the scan's start. Only then is the checkpoint cleared.
func (r *Runner) finishSheet(ctx context.Context, ref SheetRef, prev SheetState, known bool, cp *sheetCheckpoint, total int, out *ScanOutcome, each func([]audit.Change) error) error {
	sheet := SheetRef{ID: ref.ID, Name: cp.Name}
	window := audit.ScanWindow{Previous: cp.Previous, Current: cp.StartedAt}
	// Rows gone: the sheet holds fewer rows than the baselines plus the new
	// rows just seen. Only then are the baseline ids read (one store query)
	// and the sheet's row ids listed (one narrow call).
	needIDs := known && total < prev.RowCount+cp.SeenNew
	missed := !known && cp.VersionMoved && cp.Rows < total
	if needIDs || missed {
		if err := r.reconcileRows(ctx, sheet, window, known, cp, out, each); err != nil {
			return err
		}
	}
	if r.opts.TestMode {
		return nil
	}
	st := SheetState{SheetID: ref.ID, Name: cp.Name, Version: cp.Version, LastScan: cp.StartedAt, Permalink: cp.Permalink,
		ColumnIDs: cp.StateColumnIDs, ColumnsFor: cp.ColumnsFor, WebhookColumnIDs: cp.WebhookColumnIDs}
	if _, err := r.store.Commit(ctx, Commit{SheetID: ref.ID, State: &st}); err != nil {
		return fmt.Errorf("save its state: %w", err)
	}
	return wrapErr("clear its checkpoint", r.store.PutMeta(ctx, checkpointKey(ref.ID), ""))
}

// reconcileRows lists the sheet's row ids and compares them with the
// baselines: baselines of rows no longer there are analysed as deleted, and
// rows without a baseline that the scan did not read (a first scan whose
// pages shifted) are read by id and analysed.
func (r *Runner) reconcileRows(ctx context.Context, sheet SheetRef, window audit.ScanWindow, known bool, cp *sheetCheckpoint, out *ScanOutcome, each func([]audit.Change) error) error {
	ids, err := r.store.BaselineRowIDs(ctx, sheet.ID)
	if err != nil {
		return fmt.Errorf("read its baseline rows: %w", err)
	}
	baseline := make(map[int64]bool, len(ids))
	for _, id := range ids {
		baseline[id] = true
	}
	present := make(map[int64]bool, len(ids))
	var cols []audit.ColumnInfo
	err = r.sources.ForEachSheetPage(ctx, sheet.ID, smartsheet.GetSheetOptions{PageSize: 5000}, func(s *smartsheet.Sheet) error {
		if cols == nil {
			cols = columnInfos(s.Columns)
		}
		for _, row := range s.Rows {
			present[row.ID] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list its row ids: %w", err)
	}
	var gone, unread []int64
	for id := range baseline {
		if !present[id] {
			gone = append(gone, id)
		}
	}
	for id := range present {
		if !baseline[id] {
			unread = append(unread, id)
		}
	}
	slices.Sort(gone)
	slices.Sort(unread)
	if len(gone) > 0 && known {
		b := Batch{RunID: cp.RunID, Sheet: sheet, Columns: cols, Window: window, Deleted: gone}
		if err := r.analyzePage(ctx, b, out, each); err != nil {
			return fmt.Errorf("deleted rows: %w", err)
		}
	}
	if !known {
		for chunk := range slices.Chunk(unread, 100) {
			if err := r.readRowsByID(ctx, sheet, window, cp, chunk, out, each); err != nil {
				return err
			}
		}
	}
	return nil
}

// readRowsByID reads rows by id and analyses them as part of a first scan.
func (r *Runner) readRowsByID(ctx context.Context, sheet SheetRef, window audit.ScanWindow, cp *sheetCheckpoint, ids []int64, out *ScanOutcome, each func([]audit.Change) error) error {
	s, _, err := r.sources.GetSheet(ctx, sheet.ID, smartsheet.GetSheetOptions{RowIDs: ids, Include: []string{smartsheet.IncludeWriterInfo, smartsheet.IncludeRowPermalink}})
	if err != nil {
		return fmt.Errorf("read %d rows the pages missed: %w", len(ids), err)
	}
	b, _, _ := r.PageBatch(cp.RunID, s, window, true, false)
	out.Rows += len(b.Rows)
	return r.analyzePage(ctx, b, out, each)
}

// ErrSheetUnreadable marks a sheet that could not be read this run.
var ErrSheetUnreadable = errors.New("sheet unreadable")

// SheetUnreadableAlert marks the log line of a sheet that could not be read
// (the alert attribute), which template.yaml's metric filter counts.
const SheetUnreadableAlert = "SHEET_UNREADABLE"

// unreadable reports whether err means the sheet cannot be read this run
// whatever the retries: gone, or no longer shared with the token's user.
func unreadable(err error) bool {
	return smartsheet.IsNotFound(err) || smartsheet.IsForbidden(err)
}

// unreadableFinding is the run's finding for a sheet that could not be read.
func (r *Runner) unreadableFinding(ctx context.Context, runID string, ref SheetRef, err error) audit.Finding {
	r.log.ErrorContext(ctx, "sheet unreadable", slog.String("alert", SheetUnreadableAlert), slog.String("run", runID),
		slog.Int64("sheet", ref.ID), slog.String("name", ref.Name), slog.Any("error", err))
	why := fmt.Sprintf("could not be read this run (%v)", err)
	if smartsheet.IsNotFound(err) || smartsheet.IsForbidden(err) {
		why = fmt.Sprintf("was not found or is not shared with the token's user (%v): check SOURCE_SHEET_IDS / SOURCE_FOLDER_IDS and the sheet's sharing", err)
	}
	f := audit.Finding{Kind: audit.FindingSheetUnreadable, SheetID: ref.ID, SheetName: ref.Name,
		Message: why + "; audited again by the next run from its last complete scan"}
	r.addFindings([]audit.Finding{f})
	return f
}
