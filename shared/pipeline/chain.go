package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// The serverless run splits Run into stages that the Lambdas call: the scan
// function fetches changed rows and queues them (ScanToQueue), the analyze
// function detects, records and writes each batch (AnalyzeBatch), and the
// invocation that completes the run flushes leftovers, saves the sheets'
// watermarks and announces AuditRunCompleted (exactly once).

// BatchQueue carries batches from the scan to the analysis stage.
type BatchQueue interface {
	SendBatch(ctx context.Context, b Batch) error
}

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

// ScanToQueue is the scan function's stage: it fetches the changed rows of
// every source sheet and queues them in batches, records the run with the
// sheets' new watermarks (saved only when the run completes, so a batch that
// never completes is read again by the next scan), and seals the fan-in.
// Its errors name the run and the step.
func (r *Runner) ScanToQueue(ctx context.Context, req ScanRequest, q BatchQueue, fan FanIn, pub Publisher) (run RunRecord, err error) {
	start := r.opts.Clock().UTC()
	before := r.stats()
	run = RunRecord{RunID: NewRunID(start), StartedAt: start, TestMode: r.opts.TestMode || req.Mode == "test", ForceReport: req.ForceReport}
	defer annotate(&err, "scan run %s", run.RunID)
	sheets, err := r.Discover(ctx)
	if err != nil {
		return run, err
	}
	if len(req.SheetIDs) > 0 {
		// Only configured sources are audited: a sheet named on demand must
		// be one of them.
		var picked []SheetRef
		for _, id := range req.SheetIDs {
			i := slices.IndexFunc(sheets, func(s SheetRef) bool { return s.ID == id })
			if i < 0 {
				return run, fmt.Errorf("sheet %d is not a configured source (SOURCE_SHEET_IDS, SOURCE_FOLDER_IDS)", id)
			}
			picked = append(picked, sheets[i])
		}
		sheets = picked
	}
	for _, ref := range sheets {
		run.Sheets = append(run.Sheets, ref.ID)
	}
	// Recorded before any batch is queued: analyze accepts only batches of
	// a recorded run, for the sheets it names.
	if err := r.store.PutRun(ctx, run); err != nil {
		return run, fmt.Errorf("record the run: %w", err)
	}
	seq := 0
	for _, ref := range sheets {
		st, skipped, err := r.FetchSheet(ctx, run.RunID, ref, start, func(b Batch) error {
			seq++
			b.ID = run.RunID + "/" + strconv.Itoa(seq)
			b.TestMode = run.TestMode
			run.RowsScanned += len(b.Rows)
			return wrapErr("queue batch "+b.ID, q.SendBatch(ctx, b))
		})
		if err != nil {
			return run, err // it names the sheet or the batch, and the step
		}
		run.SheetsScanned++
		if skipped {
			run.SheetsSkipped++
		}
		run.PendingStates = append(run.PendingStates, st)
	}
	run.Batches = seq
	if !run.TestMode {
		r.registerWebhooks(ctx, sheets, run.PendingStates)
	}
	run.Findings = r.findings
	r.recordStats(&run, before)
	if err := r.store.PutRun(ctx, run); err != nil {
		return run, fmt.Errorf("record the run's %d batches: %w", seq, err)
	}
	claimed, err := fan.Seal(ctx, run.RunID, seq)
	if err != nil {
		return run, fmt.Errorf("seal the fan-in at %d batches: %w", seq, err)
	}
	if claimed {
		return run, r.CompleteRun(ctx, run.RunID, fan, pub)
	}
	return run, nil
}

// AnalyzeBatch is the analyze function's stage for one queued batch: detect,
// attribute and record its changes (idempotently), write the fresh ones to
// the audit sheet, count the batch, and complete the run when it is the last.
// Its errors name the batch and the step; those of Analyze and CompleteRun
// name their own stage.
func (r *Runner) AnalyzeBatch(ctx context.Context, b Batch, fan FanIn, pub Publisher) ([]audit.Change, error) {
	if b.ID == "" || b.RunID == "" {
		return nil, r.refuse(ctx, b, "it has no batch id or no run id")
	}
	run, ok, err := r.store.Run(ctx, b.RunID)
	if err != nil {
		return nil, fmt.Errorf("analyze batch %s: read run %s: %w", b.ID, b.RunID, err)
	}
	if !ok {
		return nil, r.refuse(ctx, b, "its run is not recorded: no scan queued it")
	}
	if !slices.Contains(run.Sheets, b.Sheet.ID) {
		return nil, r.refuse(ctx, b, fmt.Sprintf("its run did not scan sheet %d: it is not a configured source", b.Sheet.ID))
	}
	// The recorded run decides test mode, not the message.
	b.TestMode = run.TestMode
	rr := r
	if b.TestMode && !r.opts.TestMode {
		o := r.opts
		o.TestMode = true
		var err error
		if rr, err = newRunner(r.sources, r.auditSheet, r.store, o); err != nil {
			return nil, fmt.Errorf("analyze batch %s: %w", b.ID, err)
		}
	}
	fresh, findings, err := rr.Analyze(ctx, b)
	if err != nil {
		return nil, err
	}
	if len(findings) > 0 {
		r.log.InfoContext(ctx, "findings", slog.String("batch", b.ID), slog.Int("count", len(findings)))
	}
	if _, err := rr.WriteChanges(ctx, fresh); err != nil {
		return fresh, fmt.Errorf("analyze batch %s: write its %d changes: %w", b.ID, len(fresh), err)
	}
	claimed, err := fan.BatchDone(ctx, b.RunID, b.ID)
	if err != nil {
		return fresh, fmt.Errorf("analyze batch %s: count it done: %w", b.ID, err)
	}
	if claimed {
		return fresh, r.CompleteRun(ctx, b.RunID, fan, pub)
	}
	return fresh, nil
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
	recs, err := r.store.Changes(ctx, run.StartedAt, time.Time{})
	if err != nil {
		return fmt.Errorf("count the run's changes: %w", err)
	}
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
	return wrapErr("finish the fan-in", fan.Finish(ctx, runID))
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
