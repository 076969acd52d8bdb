// Package pipeline holds the stage functions of an audit run — discover,
// scan, detect, attribute, record, write — shared by the operator CLI and the
// Lambdas, which differ only in the adapters they pass in.
package pipeline

import (
	"context"
	"errors"
	"io"
	"sort"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The Smartsheet ports. The pipeline talks to two kinds of sheet with
// different rights: the source sheets, which it only reads (scan, webhook
// refresh, attribution), and the audit-log sheet, to which it only appends
// rows and whose summary, attachments and columns it keeps. Each consumer
// names the part it uses, so a fake in a test implements a handful of
// methods, and no port of the audit sheet can delete or update a row: the
// audit log is append-only, and the pipeline cannot rewrite a row it wrote
// even by mistake. The Smartsheet client satisfies every one of them.

// SourceSheets is what scanning and attribution read from the source sheets:
// their pages of rows (a sheet's columns are one small page), the sheets of
// the configured folders, and a changed cell's history.
type SourceSheets interface {
	GetSheet(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error)
	ForEachSheetPage(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error
	DiscoverSheets(ctx context.Context, folderIDs, workspaceIDs []int64) ([]smartsheet.DiscoveredSheet, error)
	CellHistory(ctx context.Context, sheetID, rowID, columnID int64) ([]smartsheet.CellHistory, error)
}

// AuditSheetReader reads the audit sheet back: publishing reconciles a lost
// write with its rows, adoption and verification compare its rows and its
// summary's Ledger Head with the ledger.
type AuditSheetReader interface {
	GetSheet(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error)
	ForEachSheetPage(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error
	GetSummaryFields(ctx context.Context, sheetID int64) ([]smartsheet.SummaryField, error)
}

// AuditRowAppender appends rows to the audit sheet: the only row write the
// pipeline makes.
type AuditRowAppender interface {
	AddRows(ctx context.Context, sheetID int64, rows []smartsheet.Row, opts smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error)
}

// AuditSummaryFields keeps the audit sheet's summary fields (the run's
// status and the log's integrity): setup adds the missing ones and locks
// them, every run updates their values.
type AuditSummaryFields interface {
	GetSummaryFields(ctx context.Context, sheetID int64) ([]smartsheet.SummaryField, error)
	AddSummaryFields(ctx context.Context, sheetID int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error)
	UpdateSummaryFields(ctx context.Context, sheetID int64, fields []smartsheet.SummaryField) ([]smartsheet.SummaryField, error)
}

// AuditAttachments keeps the period's workbook on the audit sheet: one
// attachment per period, a new version per run.
type AuditAttachments interface {
	ListAttachments(ctx context.Context, sheetID int64) ([]smartsheet.Attachment, error)
	AttachFile(ctx context.Context, sheetID int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error)
	AttachNewVersion(ctx context.Context, sheetID, attachmentID int64, name, contentType string, content io.Reader) (*smartsheet.Attachment, error)
}

// AuditSheet is every call a Runner makes to the audit-log sheet: reading it
// back, appending rows, the summary and the workbook. It has no way to
// delete or update a row.
type AuditSheet interface {
	AuditSheetReader
	AuditRowAppender
	AuditSummaryFields
	AuditAttachments
}

// AuditSheetSetup is what EnsureAuditSheet needs: find or create the sheet,
// add and fix its columns, set up its summary. Columns change; rows do not.
type AuditSheetSetup interface {
	ListSheets(ctx context.Context, opts smartsheet.ListSheetsOptions) ([]smartsheet.SheetSummary, error)
	CreateSheet(ctx context.Context, name string, cols []smartsheet.Column) (*smartsheet.Sheet, error)
	GetSheet(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error)
	AddColumns(ctx context.Context, sheetID int64, cols []smartsheet.Column) ([]smartsheet.Column, error)
	UpdateColumn(ctx context.Context, sheetID, columnID int64, u smartsheet.ColumnUpdate) (*smartsheet.Column, error)
	AuditSummaryFields
}

// SheetAPI is the Smartsheet client as New takes it: one value for both
// kinds of sheet (the Runner keeps the two ports apart).
type SheetAPI interface {
	SourceSheets
	AuditSheet
}

var (
	_ SheetAPI        = (*smartsheet.Client)(nil)
	_ AuditSheetSetup = (*smartsheet.Client)(nil)
)

// SheetState is what the store keeps per source sheet between runs.
type SheetState struct {
	SheetID   int64     `json:"sheetId"`
	Name      string    `json:"name"`
	Version   int64     `json:"version"`
	LastScan  time.Time `json:"lastScan"`  // start of the last complete scan (our clock)
	RowCount  int       `json:"rowCount"`  // rows with a baseline
	Permalink string    `json:"permalink"` // the sheet's link
	// ColumnIDs are the columns a scan fetches, when the mapping was complete;
	// ColumnsFor is the column configuration they were mapped under.
	ColumnIDs  []int64 `json:"columnIds,omitempty"`
	ColumnsFor string  `json:"columnsFor,omitempty"`
	// WebhookColumnIDs is the subscope of the sheet's webhook: the tracked,
	// week-ending and snapshot-date columns (see WebhookColumnIDs).
	WebhookColumnIDs []int64 `json:"webhookColumnIds,omitempty"`
}

// ChangeRecord is a recorded change, its ledger entry once sealed, and
// whether (and as which row) it reached the audit sheet.
type ChangeRecord struct {
	Change     audit.Change `json:"change"`
	RecordedAt time.Time    `json:"recordedAt"`
	Written    bool         `json:"written"`
	// Seq and Hash are the change's ledger entry (0 and "" until sealed).
	Seq  uint64 `json:"seq,omitempty"`
	Hash string `json:"hash,omitempty"`
	// AuditRowID is the audit-sheet row it was written as (0 when it was
	// found there by reconciliation without a row id, or not written).
	AuditRowID int64 `json:"auditRowId,omitempty"`
}

// Sealed says which ledger entry records a change.
type Sealed struct {
	ChangeID string
	Seq      uint64
	Hash     string
}

// WrittenRow says which audit-sheet row holds a change (RowID 0: unknown),
// and which ledger entry sealed it (Seq 0: already noted).
type WrittenRow struct {
	ChangeID string
	RowID    int64
	Seq      uint64
	Hash     string
}

// RunRecord is the summary of one run.
type RunRecord struct {
	RunID         string          `json:"runId"`
	StartedAt     time.Time       `json:"startedAt"`
	FinishedAt    time.Time       `json:"finishedAt"`
	TestMode      bool            `json:"testMode"`
	SheetsScanned int             `json:"sheetsScanned"`
	SheetsSkipped int             `json:"sheetsSkipped"` // unchanged since the last version
	RowsScanned   int             `json:"rowsScanned"`
	Changes       int             `json:"changes"`
	Unauthorized  int             `json:"unauthorized"`
	AuditRows     int             `json:"auditRows"`
	Findings      []audit.Finding `json:"findings,omitempty"`
	APICalls      map[string]int  `json:"apiCalls,omitempty"`
	// Client figures of the run: retries, client-side rate-limit waits and
	// cell-history calls spent.
	Retries          int           `json:"retries,omitempty"`
	RateLimitWaits   int           `json:"rateLimitWaits,omitempty"`
	RateLimitWait    time.Duration `json:"rateLimitWait,omitempty"`
	CellHistoryCalls int           `json:"cellHistoryCalls,omitempty"`
	Error            string        `json:"error,omitempty"`
	// Serverless runs: how many batches the scan queued, whether a report is
	// forced, and the sheets' new watermarks, saved when the run completes.
	Batches int `json:"batches,omitempty"`
	// Sheets are the source sheets the run scans: analyze records batches
	// of these sheets only.
	Sheets        []int64      `json:"sheets,omitempty"`
	ForceReport   bool         `json:"forceReport,omitempty"`
	PendingStates []SheetState `json:"pendingStates,omitempty"`
}

// Store keeps baselines, change records, scan watermarks and run records.
// The embedded default is shared/bolt; the cloud one is DynamoDB.
type Store interface {
	SheetState(ctx context.Context, sheetID int64) (SheetState, bool, error)
	// BaselineRowIDs lists the rows of a sheet that have a baseline.
	BaselineRowIDs(ctx context.Context, sheetID int64) ([]int64, error)
	// Baselines returns the baselines of those rows that have one.
	Baselines(ctx context.Context, sheetID int64, rowIDs []int64) (map[int64]audit.Baseline, error)
	// Commit saves, atomically, the outcome of scanning (part of) a sheet: new
	// change records (a Change ID already recorded is left as it is), baselines
	// to put and to delete, and the sheet state when st is non-nil.
	Commit(ctx context.Context, c Commit) (newChanges []audit.Change, err error)
	// Pending returns recorded changes not yet written to the audit sheet,
	// oldest first. It may lag the latest writes (an index); ChangeRecords
	// does not.
	Pending(ctx context.Context) ([]ChangeRecord, error)
	// ChangeRecords reads these changes' records as they are now (strongly
	// consistent); unknown ids are absent from the map.
	ChangeRecords(ctx context.Context, changeIDs []string) (map[string]ChangeRecord, error)
	// MarkSealed records the ledger entry of each change.
	MarkSealed(ctx context.Context, seals []Sealed) error
	// MarkWritten flags changes as present on the audit sheet, noting their
	// rows and, when given, their ledger entries.
	MarkWritten(ctx context.Context, rows []WrittenRow) error
	// Changes returns recorded changes detected in [from, to).
	Changes(ctx context.Context, from, to time.Time) ([]ChangeRecord, error)
	PutRun(ctx context.Context, r RunRecord) error
	// Run returns one run record by id.
	Run(ctx context.Context, runID string) (RunRecord, bool, error)
	// Runs returns the newest runs first (run ids sort by start time).
	Runs(ctx context.Context, limit int) ([]RunRecord, error)
	// SaveSheetState saves a sheet's state as given, RowCount included:
	// the new watermark of a sheet found unchanged, which needs no count of
	// its baselines.
	SaveSheetState(ctx context.Context, st SheetState) error
	// PutSheetResult keeps what a sheet worker found of its sheet; the first
	// put for a run and sheet is kept (a duplicated delivery, which finds
	// the sheet unchanged, must not replace it). SheetResults returns a
	// run's, for its completion.
	PutSheetResult(ctx context.Context, r SheetResult) error
	SheetResults(ctx context.Context, runID string) ([]SheetResult, error)
	// Meta keeps small settings such as the audit sheet's id.
	Meta(ctx context.Context, key string) (string, bool, error)
	PutMeta(ctx context.Context, key, value string) error
	Ledger
	Leases
	AlertLog
}

// Ledger is the hash-chained ledger of the audit log (see audit.LedgerEntry):
// append-only, one writer extending the chain at a time.
type Ledger interface {
	// LedgerHead returns the last entry; ok=false for an empty ledger.
	LedgerHead(ctx context.Context) (e audit.LedgerEntry, ok bool, err error)
	// AppendLedger appends entries that continue the chain: entries[0].Seq
	// is the head's Seq+1 and each follows the one before. When another
	// writer took one of those sequence numbers first, it stops there and
	// returns an error matching ErrLedgerConflict; the entries before it are
	// appended (they were valid continuations).
	AppendLedger(ctx context.Context, entries []audit.LedgerEntry) error
	// LedgerEntries calls fn on each entry from sequence number from on, in
	// order, reading page by page.
	LedgerEntries(ctx context.Context, from uint64, fn func(audit.LedgerEntry) error) error
	// LedgerEntriesBySeq reads the entries with these sequence numbers;
	// missing ones are absent from the map.
	LedgerEntriesBySeq(ctx context.Context, seqs []uint64) (map[uint64]audit.LedgerEntry, error)
}

// ErrLedgerConflict says another writer appended to the ledger first.
var ErrLedgerConflict = errors.New("ledger: another writer appended first")

// Leases are named, expiring locks shared by every process and function that
// uses the store: one holder at a time, and a holder that dies frees the
// lease when it expires.
type Leases interface {
	// AcquireLease takes the lease for holder until ttl from now, when it is
	// free, expired or already the holder's; acquired=false otherwise.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (acquired bool, err error)
	// RenewLease extends holder's lease to ttl from now, only while holder
	// still has it unexpired: a holder whose lease lapsed — even if no one
	// took it — must not carry on as if it had held it throughout.
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (renewed bool, err error)
	// ReleaseLease frees the lease if holder still has it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Commit is one atomic write of scan results.
type Commit struct {
	Changes         []audit.Change
	PutBaselines    []audit.Baseline
	DeleteBaselines []int64 // row ids of SheetID
	SheetID         int64
	State           *SheetState
}

// SortChangeRecords orders records the way every store returns them: by
// recording time, then sheet, row number and change id.
func SortChangeRecords(rs []ChangeRecord) {
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].RecordedAt.Equal(rs[j].RecordedAt) {
			return rs[i].RecordedAt.Before(rs[j].RecordedAt)
		}
		a, b := rs[i].Change, rs[j].Change
		if a.SheetID != b.SheetID {
			return a.SheetID < b.SheetID
		}
		if a.RowNumber != b.RowNumber {
			return a.RowNumber < b.RowNumber
		}
		return a.ChangeID < b.ChangeID
	})
}

// WrittenIDs is changes written as rows whose ids are not known.
func WrittenIDs(ids ...string) []WrittenRow {
	out := make([]WrittenRow, len(ids))
	for i, id := range ids {
		out[i] = WrittenRow{ChangeID: id}
	}
	return out
}
