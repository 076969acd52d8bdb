package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Options configure a Runner.
type Options struct {
	Audit           audit.Config
	SourceSheetIDs  []int64
	SourceFolderIDs []int64
	// AuditSheetID is the audit-log sheet (see EnsureAuditSheet).
	AuditSheetID int64
	// SkipCellHistory never calls cell history.
	SkipCellHistory bool
	// SkipWriterInfo never names a cell change's author from its row's
	// writer info, even where the row's other cells prove it the row's only
	// change: a later save that changed no cell (the same value typed again,
	// an edit put back before the scan) moves writer info to its saver, and
	// nothing but cell history can tell. Cell history (within its budget)
	// names them instead. A late row never saved since its creation still
	// goes to its creator: any later save moves its modified time.
	SkipWriterInfo bool
	// TestMode reads and computes but writes nothing to Smartsheet or the store.
	TestMode bool
	// PageSize is the rows per sheet page (default DefaultPageSize).
	PageSize int
	// Clock gives the scan time (default time.Now).
	Clock func() time.Time
	// Logger gets plain progress lines (default slog.Default()).
	Logger *slog.Logger
	// Progress shows sheets and rows done (default: none).
	Progress Progress
	// Webhooks attributes changes from stored webhook events (optional). It
	// is asked about several changes at once, so it must be safe for
	// concurrent use.
	Webhooks audit.Attributor
	// WebhookCallbackURL, when set with WebhookAPI and WebhookSecrets, makes
	// every run register the source sheets' webhooks (EnsureWebhooks).
	WebhookCallbackURL string
	WebhookAPI         WebhookAPI
	WebhookSecrets     WebhookSecretStore
	// Stats reports the Smartsheet client's figures so far; a run records the
	// difference between its end and its start.
	Stats func() smartsheet.Stats
	// RequestsPerMinute and HistoryPerMinute are the client's budgets, for the report.
	RequestsPerMinute, HistoryPerMinute int
	// AfterAuditWrite is a test hook called after rows reach the audit sheet and
	// before they are marked written; an error stops the run there, as a crash would.
	AfterAuditWrite func() error
	// AfterAdoptChunk is a test hook called after each chunk of adopted
	// entries is appended, before their records learn them; an error stops
	// the adoption there, as a crash would.
	AfterAdoptChunk func() error
	// AfterPage is a test hook called after a sheet's page is analysed and
	// its checkpoint saved; an error stops the scan there, as a crash would.
	AfterPage func(sheetID int64, page int) error
	// SheetSlice is how long a serverless sheet worker reads pages before it
	// hands the rest of its sheet to a new invocation (default
	// DefaultSheetSlice): well inside the function's timeout.
	SheetSlice time.Duration
	// BeforeCommit is a test hook called when an analysis holds its sheet's
	// commit lease, just before it checks its rows and commits them.
	BeforeCommit func(Batch)
	// LeaseWait is how long a writer of the audit log waits for another to
	// finish (default DefaultLeaseWait).
	LeaseWait time.Duration
	// ReadBackDelay is how long after an audit write whose answer was lost
	// the sheet is read back, doubled at each further try (default
	// DefaultReadBackDelay): a write still being applied then shows.
	ReadBackDelay time.Duration
	// Signer signs the digests and Digests keeps them (see WriteDigest);
	// without them no digest is written and verification skips digests.
	Signer  Signer
	Digests DigestStore
	// Alerts are the channels unauthorized changes are alerted on (none: no
	// alerts); see alert.go. AlertMinRisk (default HIGH) is the least risk
	// alerted, AlertDigestOver (default 10) the most alerts a send makes one
	// message each (more become one digest), AlertTimeout (default
	// DefaultAlertTimeout) bounds a send, AlertLookback (default
	// DefaultAlertLookback) is how long an undelivered alert stays owed.
	Alerts          []AlertChannel
	AlertMinRisk    audit.Risk
	AlertDigestOver int
	AlertTimeout    time.Duration
	AlertLookback   time.Duration
}

// Progress is told what a run has done; a terminal shows it as a live line.
type Progress interface {
	Sheet(done, total int, name string)
	Rows(n int)
	Done()
}

type noProgress struct{}

func (noProgress) Sheet(int, int, string) {}
func (noProgress) Rows(int)               {}
func (noProgress) Done()                  {}

// Runner runs the audit stages over the source sheets, the audit-log sheet
// and a store.
type Runner struct {
	sources    SourceSheets
	auditSheet AuditSheet
	store      Store
	opts       Options
	log        *slog.Logger
	progress   Progress
	webhooks   audit.Attributor
	columnsSig string

	mu       sync.Mutex
	findings []audit.Finding

	// adopted: the rows written before the ledger are adopted (adopt.go).
	adopted atomic.Bool
}

// New builds a Runner. api is both the source sheets' and the audit sheet's
// port (the Smartsheet client is both).
func New(api SheetAPI, store Store, opts Options) (*Runner, error) {
	if api == nil || store == nil {
		return nil, errors.New("pipeline: api and store are required")
	}
	return newRunner(api, api, store, opts)
}

// newRunner builds a Runner from its ports one by one: AnalyzeBatch's
// test-mode copy, and the unit tests' fakes.
// DefaultPageSize is the rows per sheet page of the CLI and the functions,
// chosen by measurement (BenchmarkFirstScanPageSize in shared/aws/dynamo,
// BENCHMARKS.md): against 500 it halves a first scan's calls (4 instead of 7
// for 3,000 rows) and its time by 15 %, for a slowest page of 2.5 s (a sheet
// worker's slice is 40 s) and 40 MB of heap; a whole 3,000-row page saves 11 %
// more but repeats three times the work after a crash and, on a 20,000-row
// sheet, would take most of a slice.
const DefaultPageSize = 1000

func newRunner(sources SourceSheets, auditSheet AuditSheet, store Store, opts Options) (*Runner, error) {
	if err := opts.Audit.Validate(); err != nil {
		return nil, err
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Progress == nil {
		opts.Progress = noProgress{}
	}
	if opts.LeaseWait <= 0 {
		opts.LeaseWait = DefaultLeaseWait
	}
	if opts.ReadBackDelay <= 0 {
		opts.ReadBackDelay = DefaultReadBackDelay
	}
	if opts.AlertMinRisk == "" {
		opts.AlertMinRisk = DefaultAlertMinRisk
	}
	if opts.AlertDigestOver <= 0 {
		opts.AlertDigestOver = DefaultAlertDigestOver
	}
	if opts.AlertTimeout <= 0 {
		opts.AlertTimeout = DefaultAlertTimeout
	}
	if opts.AlertLookback <= 0 {
		opts.AlertLookback = DefaultAlertLookback
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%v|%v|%v", opts.Audit.Columns, opts.Audit.Tracked, opts.Audit.TrackColumns))
	return &Runner{
		sources: sources, auditSheet: auditSheet, store: store, opts: opts, log: opts.Logger, progress: opts.Progress,
		webhooks: opts.Webhooks, columnsSig: hex.EncodeToString(sum[:8]),
	}, nil
}

func (r *Runner) addFindings(fs []audit.Finding) {
	if len(fs) == 0 {
		return
	}
	r.mu.Lock()
	r.findings = append(r.findings, fs...)
	r.mu.Unlock()
}

func (r *Runner) stats() smartsheet.Stats {
	if r.opts.Stats == nil {
		return smartsheet.Stats{}
	}
	return r.opts.Stats()
}

// recordStats puts the client's figures since before into the run record.
func (r *Runner) recordStats(run *RunRecord, before smartsheet.Stats) {
	u := r.usageSince(before)
	if u == nil {
		return
	}
	run.APICalls, run.Retries, run.RateLimitWaits, run.RateLimitWait, run.CellHistoryCalls = nil, 0, 0, 0, 0
	u.addTo(run)
	if run.APICalls == nil {
		run.APICalls = map[string]int{}
	}
}

// usageSince is the client's figures since before (nil without Stats).
func (r *Runner) usageSince(before smartsheet.Stats) *Usage {
	if r.opts.Stats == nil {
		return nil
	}
	now := r.opts.Stats()
	u := &Usage{APICalls: map[string]int{}}
	for k, v := range now.Calls {
		if d := v - before.Calls[k]; d > 0 {
			u.APICalls[k] = int(d)
		}
	}
	u.Retries = int(now.Retries - before.Retries)
	u.RateLimitWaits = int(now.RateLimitWaits - before.RateLimitWaits)
	u.RateLimitWait = now.RateLimitWaitTime - before.RateLimitWaitTime
	u.CellHistoryCalls = int(now.CellHistoryCalls - before.CellHistoryCalls)
	return u
}

// NewRunID returns a sortable, unique run id such as 20260126T101500Z-3fa9c1.
func NewRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Summary is the outcome of a run.
type Summary struct {
	Run      RunRecord
	Changes  []audit.Change // detected by this run (test mode: not recorded)
	Written  []audit.Change // audit rows written by this run (including leftovers of earlier runs)
	Findings []audit.Finding
	Sheets   []ScanOutcome
	// Alerts is what each alert channel did at the end of the run.
	Alerts []AlertResult
}

// Run scans every source sheet, records the changes and writes them to the
// audit-log sheet. It is the whole local run; the Lambdas call the same
// stages (FetchSheet, Analyze, WriteAudit) from separate functions.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	start := r.opts.Clock().UTC()
	sum := Summary{Run: RunRecord{RunID: NewRunID(start), StartedAt: start, TestMode: r.opts.TestMode}}
	r.findings = nil
	before := r.stats()
	err := r.run(ctx, &sum)
	r.progress.Done()
	sum.Run.FinishedAt = r.opts.Clock().UTC()
	sum.Findings = r.findings
	sum.Run.Findings = r.findings
	r.recordStats(&sum.Run, before)
	if err != nil {
		sum.Run.Error = err.Error()
		err = fmt.Errorf("run %s: %w", sum.Run.RunID, err)
	}
	if !r.opts.TestMode {
		if perr := r.store.PutRun(context.WithoutCancel(ctx), sum.Run); perr != nil {
			err = errors.Join(err, fmt.Errorf("record run %s: %w", sum.Run.RunID, perr))
		}
	}
	// Once the run is recorded: alerts never hold the audit up, and this
	// run's changes and any whose alert failed before are sent now.
	sum.Alerts = r.alertRecent(ctx)
	return sum, err
}

func (r *Runner) run(ctx context.Context, sum *Summary) error {
	sheets, err := r.Discover(ctx)
	if err != nil {
		return err
	}
	for i, ref := range sheets {
		r.progress.Sheet(i, len(sheets), ref.Name)
		out, err := r.ScanSheet(ctx, sum.Run.RunID, ref, sum.Run.StartedAt)
		if err != nil && unreadable(err) {
			// One sheet gone or unshared does not stop the others: a
			// finding, and the next run reads it again.
			r.unreadableFinding(ctx, sum.Run.RunID, ref, err)
			continue
		}
		if err != nil {
			return err // it names the sheet and the step
		}
		sum.Sheets = append(sum.Sheets, out)
		sum.Changes = append(sum.Changes, out.Changes...)
		sum.Run.RowsScanned += out.Rows
		if out.Skipped {
			sum.Run.SheetsSkipped++
		}
		sum.Run.SheetsScanned++
		r.log.InfoContext(ctx, "sheet scanned", slog.Int64("sheet", ref.ID), slog.String("name", out.Sheet.Name),
			slog.Bool("unchanged", out.Skipped), slog.Int("rows", out.Rows), slog.Int("changes", len(out.Changes)))
	}
	r.progress.Sheet(len(sheets), len(sheets), "")
	r.registerWebhooks(ctx, sheets, nil)
	for _, c := range sum.Changes {
		if c.Unauthorized() {
			sum.Run.Unauthorized++
		}
	}
	sum.Run.Changes = len(sum.Changes)
	if r.opts.TestMode {
		return nil
	}
	written, err := r.WriteAudit(ctx)
	sum.Written = written
	sum.Run.AuditRows = len(written)
	return err
}

// ScanSheet scans a sheet page by page from its checkpoint (see
// scanSheet), analysing each page, then saves the sheet's new state (not in
// test mode). Its errors name the sheet and the step that failed.
func (r *Runner) ScanSheet(ctx context.Context, runID string, ref SheetRef, now time.Time) (ScanOutcome, error) {
	out, _, err := r.scanSheet(ctx, SheetWork{RunID: runID, Sheet: ref, StartedAt: now, TestMode: r.opts.TestMode}, time.Time{}, nil)
	if err != nil {
		return out, fmt.Errorf("scan sheet %d: %w", ref.ID, err)
	}
	return out, nil
}

// WriteAudit seals every recorded change not yet in the ledger and appends
// those not yet on the audit-log sheet, at most 500 rows a request, one
// writer at a time (see publish). Changes left pending by an earlier,
// interrupted run are written too, after reconciling with the sheet, so no
// change is written twice and none is lost.
func (r *Runner) WriteAudit(ctx context.Context) ([]audit.Change, error) {
	return r.publish(ctx, nil)
}

// FlushAudit is WriteAudit at the end of a serverless run, where any pending
// change may come from an invocation that died before writing it.
func (r *Runner) FlushAudit(ctx context.Context) ([]audit.Change, error) {
	return r.publish(ctx, nil)
}

// WriteChanges seals and writes these freshly recorded changes (the analyze
// stage of a serverless run, a webhook refresh), with any other pending one.
// Nothing is written in test mode or when there is nothing fresh.
func (r *Runner) WriteChanges(ctx context.Context, changes []audit.Change) ([]audit.Change, error) {
	if len(changes) == 0 || r.opts.TestMode {
		return nil, nil
	}
	return r.publish(ctx, changes)
}

// maxRowsPerRequest is Smartsheet's limit of rows per add request.
const maxRowsPerRequest = 500
