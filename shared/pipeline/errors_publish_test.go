package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The error paths of the audit-log side: publishing (adopt, seal, append
// rows, the ambiguous write and its read-back), completing a serverless run.

// ambiguous is an AddRows error whose outcome is unknown (a lost answer).
var ambiguous = &smartsheet.AmbiguousError{Endpoint: "POST /sheets/{sheetId}/rows", Err: errBoom}

// errReadBack is the cause of a failed read-back, told apart from the write's.
var errReadBack = errors.New("read-back failed")

func TestPublishErrors(t *testing.T) {
	const w = "write audit sheet 77: "
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
		also  string // further down the message
		cause error
	}{
		{
			name:  "take the audit-log lease",
			setup: func(f *fixture) { f.failLease(AuditLogLease) },
			want:  w + "take the audit-log lease: ", cause: errBoom,
		},
		{
			name:  "adopt: where the adoption entry is",
			setup: func(f *fixture) { f.failMeta(adoptedKey) },
			want:  w + "read where the adoption entry is: ", cause: errBoom,
		},
		{
			name: "adopt: the ledger head",
			setup: func(f *fixture) {
				f.store.LedgerHeadFunc = func(context.Context) (audit.LedgerEntry, bool, error) { return audit.LedgerEntry{}, false, errBoom }
			},
			want: w + "adopt the audit rows written before the ledger: read the ledger head: ", cause: errBoom,
		},
		{
			name: "adopt: the change records",
			setup: func(f *fixture) {
				f.store.ChangesFunc = func(context.Context, time.Time, time.Time) ([]ChangeRecord, error) { return nil, errBoom }
			},
			want: w + "adopt the audit rows written before the ledger: read the change records: ", cause: errBoom,
		},
		{
			name: "adopt: the sheet's rows",
			setup: func(f *fixture) {
				f.sheet.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errBoom
				}
			},
			want: w + "adopt the audit rows written before the ledger: read audit sheet 77: ", cause: errBoom,
		},
		{
			name:  "adopt: the adoption entry",
			setup: func(f *fixture) { f.failAppend(audit.EntryAdoption) },
			want:  w + "adopt the audit rows written before the ledger: append the adoption entry 1: ", cause: errBoom,
		},
		{
			name: "seal: the pending changes",
			setup: func(f *fixture) {
				f.store.PendingFunc = func(context.Context) ([]ChangeRecord, error) { return nil, errBoom }
			},
			want: w + "seal changes into the ledger: read the pending changes: ", cause: errBoom,
		},
		{
			name: "seal: the change records",
			setup: func(f *fixture) {
				f.store.ChangeRecordsFunc = func(context.Context, []string) (map[string]ChangeRecord, error) { return nil, errBoom }
			},
			want: w + "seal changes into the ledger: read 2 change records ({first}…): ", cause: errBoom,
		},
		{
			name:  "seal: append the entries",
			setup: func(f *fixture) { f.failAppend(audit.EntryChange) },
			want:  w + "seal changes into the ledger: append entries 2-3: ", cause: errBoom,
		},
		{
			name: "append rows: the sheet's columns",
			setup: func(f *fixture) {
				f.sheet.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, false, errBoom
				}
			},
			want: w + "append rows: read audit sheet 77: ", cause: errBoom,
		},
		{
			name:  "append rows: the write in flight",
			setup: func(f *fixture) { f.failMeta(inFlightKey) },
			want:  w + "append rows: read the audit write in flight: ", cause: errBoom,
		},
		{
			name:  "append rows: record the write in flight",
			setup: func(f *fixture) { f.failPutMeta(inFlightKey, func(v string) bool { return v != "" }) },
			want:  w + "append rows: add the rows of changes {first} to {last}: record the audit write in flight: ", cause: errBoom,
		},
		{
			name: "append rows: refused",
			setup: func(f *fixture) {
				f.sheet.AddRowsFunc = func(context.Context, int64, []smartsheet.Row, smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error) {
					return nil, errBoom
				}
			},
			want: w + "append rows: add the rows of changes {first} to {last}: boom", cause: errBoom,
		},
		{
			name: "append rows: ambiguous write, read-back fails",
			setup: func(f *fixture) {
				f.sheet.AddRowsFunc = func(context.Context, int64, []smartsheet.Row, smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error) {
					return nil, ambiguous
				}
				f.sheet.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errReadBack
				}
				f.adopted() // the adoption reads the sheet first
			},
			want: w + "append rows: add the rows of changes {first} to {last}: smartsheet: POST",
			also: "read back after the unconfirmed write: read change ids of audit sheet 77: read-back failed", cause: errReadBack,
		},
		{
			name: "append rows: ambiguous write, never confirmed",
			setup: func(f *fixture) {
				f.sheet.AddRowsFunc = func(context.Context, int64, []smartsheet.Row, smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error) {
					return nil, ambiguous
				}
			},
			want: w + "append rows: add the rows of changes {first} to {last}: audit rows still unconfirmed after 3 read-backs: ", cause: errBoom,
		},
		{
			name: "append rows: mark them written",
			setup: func(f *fixture) {
				f.store.MarkWrittenFunc = func(context.Context, []WrittenRow) error { return errBoom }
			},
			want: w + "append rows: mark changes {first} to {last} written: ", cause: errBoom,
		},
		{
			name:  "move the ledger cursor",
			setup: func(f *fixture) { f.failPutMeta(ledgerCursorKey, func(v string) bool { return v == "3" }) },
			want:  w + "move the ledger cursor to 3: ", cause: errBoom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			changes := f.mustRecordChanges(t)
			if len(changes) != 2 {
				t.Fatalf("recorded %d changes, want 2 (one a row)", len(changes))
			}
			tt.setup(f)
			_, err := f.runner(t).WriteAudit(context.Background())
			checkErr(t, "WriteAudit()", err, withIDs(tt.want, "", changes), tt.cause)
			if err != nil && !strings.Contains(err.Error(), tt.also) {
				t.Errorf("WriteAudit() = %q, want it to say %q", err, tt.also)
			}
		})
	}
}

// failAppend makes AppendLedger fail with errBoom for entries of type typ.
func (f *fixture) failAppend(typ audit.EntryType) {
	next := f.store.AppendLedgerFunc
	f.store.AppendLedgerFunc = func(ctx context.Context, es []audit.LedgerEntry) error {
		if len(es) > 0 && es[0].Type == typ {
			return errBoom
		}
		return next(ctx, es)
	}
}

// adopted seals the adoption entry of an empty audit sheet, as the first
// writer did.
func (f *fixture) adopted() {
	e := audit.NextEntry(audit.LedgerEntry{}, audit.EntryAdoption, audit.AdoptionSubject, t0, []audit.Field{
		{Title: adoptionRows, Kind: audit.FieldNumber, Value: "0"},
		{Title: adoptionUnconfirmed, Kind: audit.FieldNumber, Value: "0"},
	})
	f.mem.ledger = append(f.mem.ledger, e)
	f.mem.meta[adoptedKey] = fmt.Sprint(e.Seq)
	f.mem.meta[ledgerCursorKey] = fmt.Sprint(e.Seq)
}

// TestPublishReadsBackAnAmbiguousWrite: a write whose answer was lost but
// which landed is read back and marked written, never sent twice.
func TestPublishReadsBackAnAmbiguousWrite(t *testing.T) {
	f := newFixture(t)
	changes := f.mustRecordChanges(t)
	calls := 0
	f.sheet.AddRowsFunc = func(ctx context.Context, id int64, rows []smartsheet.Row, o smartsheet.AddRowsOptions) (*smartsheet.RowsResult, error) {
		calls++
		if _, err := f.sheetMem.AddRows(ctx, id, rows, o); err != nil {
			return nil, err
		}
		return nil, ambiguous
	}
	written, err := f.runner(t).WriteAudit(context.Background())
	if err != nil {
		t.Fatalf("WriteAudit() = %v", err)
	}
	if calls != 1 || len(f.sheetMem.rows) != len(changes) || len(written) != len(changes) {
		t.Errorf("WriteAudit() after a lost answer: %d AddRows calls, %d rows on the sheet, %d written; want 1, %d, %d",
			calls, len(f.sheetMem.rows), len(written), len(changes), len(changes))
	}
	for _, c := range changes {
		if rec := f.mem.changes[c.ChangeID]; !rec.Written || rec.AuditRowID == 0 || rec.Seq == 0 {
			t.Errorf("change %s after the read-back = written %v, row %d, entry %d; want written with its row and entry",
				c.ChangeID, rec.Written, rec.AuditRowID, rec.Seq)
		}
	}
}

func TestCompleteRunErrors(t *testing.T) {
	const c = "complete run " + runR1 + ": "
	tests := []struct {
		name     string
		setup    func(f *fixture)
		want     string
		cause    error
		noRecord bool
	}{
		{
			name: "read the run",
			setup: func(f *fixture) {
				f.store.RunFunc = func(context.Context, string) (RunRecord, bool, error) { return RunRecord{}, false, errBoom }
			},
			want: c + "read the run record: ", cause: errBoom,
		},
		{
			name: "no such run", noRecord: true,
			want: c + "the run is not recorded",
		},
		{
			name: "flush",
			setup: func(f *fixture) {
				f.store.PendingFunc = func(context.Context) ([]ChangeRecord, error) { return nil, errBoom }
			},
			want: c + "flush audit rows: write audit sheet 77: seal changes into the ledger: read the pending changes: ", cause: errBoom,
		},
		{
			name: "commit a watermark",
			setup: func(f *fixture) {
				f.store.CommitFunc = func(context.Context, Commit) ([]audit.Change, error) { return nil, errBoom }
			},
			want: c + "save the watermark of sheet 5: ", cause: errBoom,
		},
		{
			name: "count the run's changes",
			setup: func(f *fixture) {
				f.store.ChangesFunc = func(context.Context, time.Time, time.Time) ([]ChangeRecord, error) { return nil, errBoom }
			},
			want: c + "count the run's changes: ", cause: errBoom,
		},
		{
			name:  "record the run",
			setup: func(f *fixture) { f.store.PutRunFunc = func(context.Context, RunRecord) error { return errBoom } },
			want:  c + "record the run: ", cause: errBoom,
		},
		{
			name: "publish",
			setup: func(f *fixture) {
				f.pub.RunCompletedFunc = func(context.Context, RunCompleted) error { return errBoom }
			},
			want: c + "publish run completed: ", cause: errBoom,
		},
		{
			name:  "finish the fan-in",
			setup: func(f *fixture) { f.fan.FinishFunc = func(context.Context, string) error { return errBoom } },
			want:  c + "finish the fan-in: ", cause: errBoom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.mustRecordChanges(t)
			f.adopted()
			if !tt.noRecord {
				f.mem.runs[runR1] = RunRecord{RunID: runR1, StartedAt: t0, Batches: 1, Sheets: []int64{sourceID},
					PendingStates: []SheetState{{SheetID: sourceID, Name: "Crew A", Version: 4, LastScan: t0}}}
			}
			if tt.setup != nil {
				tt.setup(f)
			}
			err := f.runner(t).CompleteRun(context.Background(), runR1, f.fan, f.pub)
			checkErr(t, "CompleteRun("+runR1+")", err, tt.want, tt.cause)
		})
	}
}

// TestCompleteRunDoesEveryStep: with nothing broken the run is flushed,
// recorded and announced once.
func TestCompleteRunDoesEveryStep(t *testing.T) {
	f := newFixture(t)
	changes := f.mustRecordChanges(t)
	f.mem.runs[runR1] = RunRecord{RunID: runR1, StartedAt: t0.Add(-time.Minute), Batches: 1, Sheets: []int64{sourceID}}
	var got []RunCompleted
	f.pub.RunCompletedFunc = func(_ context.Context, e RunCompleted) error { got = append(got, e); return nil }
	if err := f.runner(t).CompleteRun(context.Background(), runR1, f.fan, f.pub); err != nil {
		t.Fatalf("CompleteRun(%s) = %v", runR1, err)
	}
	if len(got) != 1 || got[0].RunID != runR1 || len(f.sheetMem.rows) != len(changes) {
		t.Errorf("CompleteRun(%s): announced %v, %d audit rows; want one announcement and %d rows", runR1, got, len(f.sheetMem.rows), len(changes))
	}
	if !strings.HasPrefix(f.mem.runs[runR1].FinishedAt.String(), "2026-11-30") {
		t.Errorf("run %s FinishedAt = %v, want the clock's", runR1, f.mem.runs[runR1].FinishedAt)
	}
}
