package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The serverless run splits Run into stages that the Lambdas call: the scan
// function checks every sheet's version and queues one work item per changed
// sheet (ScanToQueue); sheet workers (the analyze function) scan those
// sheets page by page from their checkpoints — detect, attribute, record,
// write — each within a time slice (ProcessSheet); and the invocation that
// completes the run flushes leftovers, gathers the sheets' results and
// announces AuditRunCompleted (exactly once).

// FanIn counts a run's batches so that exactly one caller learns that the
// run is complete. A batch counted twice (a redelivered message) counts once.
// claimed is true for exactly one call per run: the one that made it
// complete, whether that is the last BatchDone or the Seal after the last
// batch was already done.
type FanIn interface {
	// Seal records how many batches the run has.
	Seal(ctx context.Context, runID string, batches int) (claimed bool, err error)
	// BatchDone counts one batch.
	BatchDone(ctx context.Context, runID, batchID string) (claimed bool, err error)
	// Finish closes the claimed completion. A claim not finished within its
	// lease (DefaultClaimLease) may be claimed again by a later call, so a
	// completion that failed half-way is retried by a redelivered batch.
	Finish(ctx context.Context, runID string) error
}

// DefaultClaimLease reserves a claimed completion for its claimer: longer
// than a function's timeout, shorter than the queue's visibility timeout.
const DefaultClaimLease = 10 * time.Minute

// Publisher announces a completed run (EventBridge in the cloud).
type Publisher interface {
	RunCompleted(ctx context.Context, e RunCompleted) error
}

// RunCompleted is the detail of the AuditRunCompleted event.
type RunCompleted struct {
	RunID       string    `json:"runId"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt"`
	Batches     int       `json:"batches"`
	TestMode    bool      `json:"testMode,omitempty"`
	ForceReport bool      `json:"forceReport,omitempty"`
}

// ScanRequest is what starts a scan: the schedule, or an on-demand invoke.
type ScanRequest struct {
	// Mode "test" reads and computes but writes nothing.
	Mode string `json:"mode,omitempty"`
	// ForceReport produces the workbook even without changes.
	ForceReport bool `json:"forceReport,omitempty"`
	// SheetIDs limits the scan to these sheets (default: the configured sources).
	SheetIDs []int64 `json:"sheetIds,omitempty"`
}

// ScanToQueue is the scan function's stage: it lists the source sheets,
// records the run, and checks each sheet's version with one small call
// (probeWorkers at a time). An unchanged sheet gets its new watermark here;
// every other sheet becomes one work item on q, for a sheet worker
// (ProcessSheet), and the fan-in counts those. A sheet that cannot be
// checked is a finding on the run, never the end of the others. Its errors
// name the run and the step.
func (r *Runner) ScanToQueue(ctx context.Context, req ScanRequest, q SheetQueue, fan FanIn, pub Publisher) (run RunRecord, err error) {
	start := r.opts.Clock().UTC()
	before := r.stats()
	run = RunRecord{RunID: NewRunID(start), StartedAt: start, TestMode: r.opts.TestMode || req.Mode == "test", ForceReport: req.ForceReport}
	defer annotate(&err, "scan run %s", run.RunID)
	sheets, err := r.pickSheets(ctx, req)
	if err != nil {
		return run, err
	}
	for _, ref := range sheets {
		run.Sheets = append(run.Sheets, ref.ID)
	}
	// Recorded before any work is queued: a worker accepts only work of a
	// recorded run, for the sheets it names.
	if err := r.store.PutRun(ctx, run); err != nil {
		return run, fmt.Errorf("record the run: %w", err)
	}
	rr := r
	if run.TestMode && !r.opts.TestMode {
		if rr, err = r.testModeRunner(); err != nil {
			return run, err
		}
	}
	probes := rr.probeSheets(ctx, run, sheets)
	if err := ctx.Err(); err != nil {
		return run, err
	}
	var states []SheetState
	for _, p := range probes {
		switch {
		case p.err != nil:
			run.Findings = append(run.Findings, r.unreadableFinding(ctx, run.RunID, p.ref, p.err))
			continue
		case p.unchanged:
			run.SheetsSkipped++
		default:
			w := SheetWork{RunID: run.RunID, Sheet: p.ref, StartedAt: start, TestMode: run.TestMode}
			if err := q.SendSheetWork(ctx, w); err != nil {
				return run, fmt.Errorf("queue sheet %d: %w", p.ref.ID, err)
			}
			run.Batches++
		}
		run.SheetsScanned++
		states = append(states, p.state)
	}
	if !run.TestMode {
		r.registerWebhooks(ctx, sheets, states)
	}
	r.recordStats(&run, before)
	if err := r.store.PutRun(ctx, run); err != nil {
		return run, fmt.Errorf("record the run's %d sheets to scan: %w", run.Batches, err)
	}
	claimed, err := fan.Seal(ctx, run.RunID, run.Batches)
	if err != nil {
		return run, fmt.Errorf("seal the fan-in at %d sheets: %w", run.Batches, err)
	}
	if claimed {
		return run, r.CompleteRun(ctx, run.RunID, fan, pub)
	}
	return run, nil
}

// pickSheets lists the source sheets, or those of the request, which must
// be configured sources.
func (r *Runner) pickSheets(ctx context.Context, req ScanRequest) ([]SheetRef, error) {
	sheets, err := r.Discover(ctx)
	if err != nil || len(req.SheetIDs) == 0 {
		return sheets, err
	}
	// Only configured sources are audited: a sheet named on demand must be
	// one of them.
	var picked []SheetRef
	for _, id := range req.SheetIDs {
		i := slices.IndexFunc(sheets, func(s SheetRef) bool { return s.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("sheet %d is not a configured source (SOURCE_SHEET_IDS, SOURCE_FOLDER_IDS)", id)
		}
		picked = append(picked, sheets[i])
	}
	return picked, nil
}

// probeWorkers is how many sheets the scan checks at once; the client's
// rate limit paces them.
const probeWorkers = 8

// probe is what checking one sheet's version found.
type probe struct {
	ref       SheetRef
	state     SheetState // the stored state (with its new watermark when unchanged)
	unchanged bool
	err       error
}

// probeSheets checks each sheet: one store read and, for a sheet scanned
// before, one GET of a single row with ifVersionAfter, which an unchanged
// sheet answers with its version alone. An unchanged sheet's watermark is
// saved (not in test mode): it costs one write and no read.
func (r *Runner) probeSheets(ctx context.Context, run RunRecord, sheets []SheetRef) []probe {
	out := make([]probe, len(sheets))
	sem := make(chan struct{}, probeWorkers)
	var wg sync.WaitGroup
	for i, ref := range sheets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = r.probeSheet(ctx, run, ref)
		}()
	}
	wg.Wait()
	return out
}

func (r *Runner) probeSheet(ctx context.Context, run RunRecord, ref SheetRef) probe {
	p := probe{ref: ref}
	st, known, err := r.store.SheetState(ctx, ref.ID)
	if err != nil {
		p.err = fmt.Errorf("read its state: %w", err)
		return p
	}
	p.state = st
	if !known {
		return p // a first scan: the worker reads it all
	}
	v := st.Version
	opts := smartsheet.GetSheetOptions{PageSize: 1, Page: 1, IfVersionAfter: &v}
	if len(st.ColumnIDs) > 0 {
		opts.ColumnIDs = st.ColumnIDs[:1]
	}
	_, unchanged, err := r.sources.GetSheet(ctx, ref.ID, opts)
	if err != nil {
		p.err = fmt.Errorf("check its version: %w", err)
		return p
	}
	if !unchanged {
		return p
	}
	p.unchanged = true
	p.state.LastScan = run.StartedAt
	if !run.TestMode {
		if err := r.store.SaveSheetState(ctx, p.state); err != nil {
			p.err = fmt.Errorf("save its watermark: %w", err)
		}
	}
	return p
}

// testModeRunner is r in test mode: it reads and computes, writes nothing.
func (r *Runner) testModeRunner() (*Runner, error) {
	o := r.opts
	o.TestMode = true
	return newRunner(r.sources, r.auditSheet, r.store, o)
}

// DefaultSheetSlice is Options.SheetSlice's default.
const DefaultSheetSlice = 40 * time.Second

// maxSheetAttempts is how many deliveries of a sheet's work a failing read
// gets before the sheet is given up for this run (a finding): the queue's
// redrive (5 receives) must not end a run in the dead-letter queue.
const maxSheetAttempts = 3

// ProcessSheet is the sheet worker's stage for one queued sheet: it scans
// the sheet from its checkpoint, analysing and writing each page, for at
// most its time slice; a sheet not finished in the slice is queued again
// (q) and resumes at its checkpoint. A finished sheet reports its result and
// counts in the run's fan-in; the last completes the run. A sheet that
// cannot be read (gone, unshared, or failing past maxSheetAttempts
// deliveries) is a finding on the run, and counts too. Work of a run no scan
// recorded, or for a sheet it did not scan, is refused (ErrBatchRefused).
func (r *Runner) ProcessSheet(ctx context.Context, w SheetWork, q SheetQueue, fan FanIn, pub Publisher) (res SheetResult, err error) {
	defer annotate(&err, "process sheet %d of run %s", w.Sheet.ID, w.RunID)
	b := Batch{ID: "sheet/" + strconv.FormatInt(w.Sheet.ID, 10), RunID: w.RunID, Sheet: w.Sheet}
	if w.RunID == "" {
		return res, r.refuse(ctx, b, "it has no run id")
	}
	run, ok, err := r.store.Run(ctx, w.RunID)
	if err != nil {
		return res, fmt.Errorf("read the run: %w", err)
	}
	if !ok {
		return res, r.refuse(ctx, b, "its run is not recorded: no scan queued it")
	}
	if !slices.Contains(run.Sheets, w.Sheet.ID) {
		return res, r.refuse(ctx, b, fmt.Sprintf("its run did not scan sheet %d: it is not a configured source", w.Sheet.ID))
	}
	// The recorded run decides test mode, not the message.
	w.TestMode = run.TestMode
	rr := r
	if w.TestMode && !r.opts.TestMode {
		if rr, err = r.testModeRunner(); err != nil {
			return res, err
		}
	}
	if w.Attempt > 1 {
		w.Resume = true // an earlier delivery may have left a checkpoint
	}
	before := r.stats()
	out, done, err := rr.scanSheet(ctx, w, r.sliceEnd(ctx), func(cs []audit.Change) error {
		_, err := rr.WriteChanges(ctx, cs)
		return wrapErr(fmt.Sprintf("write its %d changes", len(cs)), err)
	})
	res = SheetResult{RunID: w.RunID, Sheet: out.Sheet, Skipped: out.Skipped, Rows: out.Rows, Pages: out.Pages,
		Changes: len(out.Changes), Findings: out.Findings}
	// This invocation's calls, with those of the invocations before it: a
	// continuation carries them on, the result hands them to the run.
	w.Usage = r.usageSince(before).Add(w.Usage)
	res.Usage = w.Usage
	switch {
	case err != nil && (unreadable(err) || w.Attempt >= maxSheetAttempts) && ctx.Err() == nil:
		res.Failed = err.Error()
		res.Findings = append(res.Findings, r.unreadableFinding(ctx, w.RunID, w.Sheet, err))
	case err != nil:
		return res, err // the delivery fails, and is retried from the checkpoint
	case !done:
		w.Resume = true
		if err := q.SendSheetWork(ctx, w); err != nil {
			return res, fmt.Errorf("queue the rest of the sheet: %w", err)
		}
		r.log.InfoContext(ctx, "sheet continues in a new invocation", slog.Int64("sheet", w.Sheet.ID), slog.Int("pages", out.Pages))
		return res, nil
	}
	res.FinishedAt = r.opts.Clock().UTC()
	if err := r.store.PutSheetResult(ctx, res); err != nil {
		return res, fmt.Errorf("record its result: %w", err)
	}
	claimed, err := fan.BatchDone(ctx, w.RunID, b.ID)
	if err != nil {
		return res, fmt.Errorf("count it done: %w", err)
	}
	if claimed {
		return res, r.CompleteRun(ctx, w.RunID, fan, pub)
	}
	return res, nil
}

// sliceEnd is when a sheet worker stops reading pages: after its slice, and
// at the latest at a third of the time its invocation has left, so that one
// more page still ends well inside half of the function's timeout.
func (r *Runner) sliceEnd(ctx context.Context) time.Time {
	slice := r.opts.SheetSlice
	if slice <= 0 {
		slice = DefaultSheetSlice
	}
	if dl, ok := ctx.Deadline(); ok {
		slice = min(slice, time.Until(dl)/3)
	}
	return time.Now().Add(slice)
}

// ErrBatchRefused is the error of a batch analyze will not record: only what
// the system itself scanned enters the audit log.
var ErrBatchRefused = errors.New("batch refused")

// BatchRefusedAlert marks the log line of a refused batch (the alert
// attribute), which template.yaml's metric filter counts.
const BatchRefusedAlert = "BATCH_REFUSED"

func (r *Runner) refuse(ctx context.Context, b Batch, why string) error {
	r.log.ErrorContext(ctx, "batch refused", slog.String("alert", BatchRefusedAlert), slog.String("batch", b.ID),
		slog.String("run", b.RunID), slog.Int64("sheet", b.Sheet.ID), slog.String("reason", why))
	return fmt.Errorf("%w: batch %q of run %q for sheet %d: %s", ErrBatchRefused, b.ID, b.RunID, b.Sheet.ID, why)
}

// CompleteRun runs once per run, in the invocation that claimed completion:
// it writes any change still pending (reconciled with the audit sheet),
// saves the sheets' watermarks, finishes the run record and announces it.
// Its errors name the run and the step: flush, save a watermark, count,
// record, publish or finish.
func (r *Runner) CompleteRun(ctx context.Context, runID string, fan FanIn, pub Publisher) (err error) {
	defer annotate(&err, "complete run %s", runID)
	run, err := r.findRun(ctx, runID)
	if err != nil {
		return err
	}
	if !run.TestMode {
		if _, err := r.FlushAudit(ctx); err != nil {
			return fmt.Errorf("flush audit rows: %w", err)
		}
		for i := range run.PendingStates {
			st := &run.PendingStates[i]
			if _, err := r.store.Commit(ctx, Commit{SheetID: st.SheetID, State: st}); err != nil {
				return fmt.Errorf("save the watermark of sheet %d: %w", st.SheetID, err)
			}
		}
	}
	results, err := r.store.SheetResults(ctx, runID)
	if err != nil {
		return fmt.Errorf("gather the sheets' results: %w", err)
	}
	if run.FinishedAt.IsZero() { // not gathered by an earlier, interrupted completion
		for _, res := range results {
			run.RowsScanned += res.Rows
			run.Findings = append(run.Findings, res.Findings...)
			res.Usage.addTo(&run) // the sheet workers' calls, besides the scan's own
		}
	}
	recs, err := r.store.Changes(ctx, run.StartedAt, time.Time{})
	if err != nil {
		return fmt.Errorf("count the run's changes: %w", err)
	}
	// Counted afresh: a completion retried after its record was saved
	// (its announcement failed) must not count them twice.
	run.Changes, run.Unauthorized, run.AuditRows = 0, 0, 0
	for _, c := range recs {
		if c.Change.RunID != runID {
			continue
		}
		run.Changes++
		if c.Change.Unauthorized() {
			run.Unauthorized++
		}
		if c.Written {
			run.AuditRows++
		}
	}
	run.FinishedAt = r.opts.Clock().UTC()
	run.PendingStates = nil
	if err := r.store.PutRun(ctx, run); err != nil {
		return fmt.Errorf("record the run: %w", err)
	}
	if err := pub.RunCompleted(ctx, RunCompleted{RunID: runID, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt,
		Batches: run.Batches, TestMode: run.TestMode, ForceReport: run.ForceReport}); err != nil {
		return fmt.Errorf("publish run completed: %w", err)
	}
	if err := fan.Finish(ctx, runID); err != nil {
		return fmt.Errorf("finish the fan-in: %w", err)
	}
	// Last, once the run is announced: the alerts of the run's changes
	// and of any whose alert failed before (errors only logged).
	r.alertRecent(ctx)
	return nil
}

// findRun reads a run's record; its errors leave the run id to the caller.
func (r *Runner) findRun(ctx context.Context, runID string) (RunRecord, error) {
	run, ok, err := r.store.Run(ctx, runID)
	if err != nil {
		return run, fmt.Errorf("read the run record: %w", err)
	}
	if !ok {
		return run, errors.New("the run is not recorded")
	}
	return run, nil
}
