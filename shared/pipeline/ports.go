// Package pipeline holds the stage functions of an audit run — discover,
// scan, detect, attribute, record, write — shared by the operator CLI and the
// Lambdas, which differ only in the adapters they pass in.
package pipeline

import (
	"context"
	"sort"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
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

// ChangeRecord is a recorded change and whether it reached the audit sheet.
type ChangeRecord struct {
	Change     audit.Change `json:"change"`
	RecordedAt time.Time    `json:"recordedAt"`
	Written    bool         `json:"written"`
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
	Batches       int          `json:"batches,omitempty"`
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
	// Pending returns recorded changes not yet written to the audit sheet, oldest first.
	Pending(ctx context.Context) ([]ChangeRecord, error)
	// MarkWritten flags changes as present on the audit sheet.
	MarkWritten(ctx context.Context, changeIDs []string) error
	// Changes returns recorded changes detected in [from, to).
	Changes(ctx context.Context, from, to time.Time) ([]ChangeRecord, error)
	PutRun(ctx context.Context, r RunRecord) error
	// Run returns one run record by id.
	Run(ctx context.Context, runID string) (RunRecord, bool, error)
	// Runs returns the newest runs first (run ids sort by start time).
	Runs(ctx context.Context, limit int) ([]RunRecord, error)
	// Meta keeps small settings such as the audit sheet's id.
	Meta(ctx context.Context, key string) (string, bool, error)
	PutMeta(ctx context.Context, key, value string) error
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
