package pipeline

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The error paths of verification, attestation (the digest) and the report:
// a store or sheet read that fails is an error naming the audit sheet (or
// the run) and the step, never a verification problem.

// tamperNewValue edits the New Value cell of the audit sheet's first row.
func (f *fixture) tamperNewValue() {
	for i, c := range f.sheetMem.columns {
		if c.Title == audit.LogNewValue {
			row := &f.sheetMem.rows[0]
			for j := range row.Cells {
				if row.Cells[j].ColumnID == f.sheetMem.columns[i].ID {
					row.Cells[j].Value = smartsheet.StringValue("999")
				}
			}
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	const v = "verify audit sheet 77: "
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
		cause error
		calls int // of the audit sheet's ForEachSheetPage, when it matters
	}{
		{
			name:  "store: take the audit-log lease",
			setup: func(f *fixture) { f.failLease(AuditLogLease) },
			want:  v + "take the audit-log lease: ", cause: errBoom,
		},
		{
			name: "store: the ledger",
			setup: func(f *fixture) {
				f.store.LedgerEntriesFunc = func(context.Context, uint64, func(audit.LedgerEntry) error) error { return errBoom }
			},
			want: v + "read the ledger: ", cause: errBoom,
		},
		{
			name: "store: the change records",
			setup: func(f *fixture) {
				f.store.ChangesFunc = func(context.Context, time.Time, time.Time) ([]ChangeRecord, error) { return nil, errBoom }
			},
			want: v + "read the change records: ", cause: errBoom,
		},
		{
			name: "store: the entries of rows that differ",
			setup: func(f *fixture) {
				f.tamperNewValue()
				f.store.LedgerEntriesBySeqFunc = func(context.Context, []uint64) (map[uint64]audit.LedgerEntry, error) { return nil, errBoom }
			},
			want: v + "read its rows: read the ledger entries of 1 rows that differ (entries 2…): ", cause: errBoom,
		},
		{
			name: "store: the entries of rows not on the sheet",
			setup: func(f *fixture) {
				f.sheetMem.rows = f.sheetMem.rows[1:]
				f.store.LedgerEntriesBySeqFunc = func(context.Context, []uint64) (map[uint64]audit.LedgerEntry, error) { return nil, errBoom }
			},
			want: v + "read the ledger entries of rows not on the sheet: ", cause: errBoom,
		},
		{
			name: "store: the changes of rows not on the sheet",
			setup: func(f *fixture) {
				f.sheetMem.rows = f.sheetMem.rows[1:]
				f.store.ChangeRecordsFunc = func(context.Context, []string) (map[string]ChangeRecord, error) { return nil, errBoom }
			},
			want: v + "read the changes of rows not on the sheet: ", cause: errBoom,
		},
		{
			name: "store: the digests",
			setup: func(f *fixture) {
				f.opts.Digests = newFakeDigests()
				f.opts.Digests.(*fakeDigests).ListFunc = func(context.Context) ([]string, error) { return nil, errBoom }
			},
			want: v + "list digests: ", cause: errBoom,
		},
		{
			name: "store: the digests' public key",
			setup: func(f *fixture) {
				f.opts.Digests = newFakeDigests()
				f.opts.Digests.(*fakeDigests).PublicKeyFunc = func(context.Context) ([]byte, bool, error) { return nil, false, errBoom }
			},
			want: v + "read the digests' public key: ", cause: errBoom,
		},
		{
			name: "sheet: its columns",
			setup: func(f *fixture) {
				f.sheet.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, false, errBoom
				}
			},
			want: v + "read its columns: ", cause: errBoom,
		},
		{
			name: "sheet: its rows",
			setup: func(f *fixture) {
				f.sheet.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errBoom
				}
			},
			want: v + "read its rows: ", cause: errBoom, calls: 1,
		},
		{
			name: "sheet: edited while read, three times",
			setup: func(f *fixture) {
				f.sheet.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return fmt.Errorf("get sheet 77 page 2: %w", smartsheet.ErrSheetChanged)
				}
			},
			want: v + "read its rows: get sheet 77 page 2: ", cause: smartsheet.ErrSheetChanged, calls: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.mustPublish(t)
			tt.setup(f)
			calls := 0
			next := f.sheet.ForEachSheetPageFunc
			f.sheet.ForEachSheetPageFunc = func(ctx context.Context, id int64, o smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
				calls++
				return next(ctx, id, o, fn)
			}
			_, err := f.runner(t).Verify(context.Background())
			checkErr(t, "Verify()", err, tt.want, tt.cause)
			if tt.calls > 0 && calls != tt.calls {
				t.Errorf("Verify() read the audit sheet %d times, want %d", calls, tt.calls)
			}
		})
	}
}

// TestVerifyToleratesAnUnreadableSummary: the summary is a second witness;
// failing to read it is logged, not an error.
func TestVerifyToleratesAnUnreadableSummary(t *testing.T) {
	f := newFixture(t)
	f.mustPublish(t)
	f.sheet.GetSummaryFieldsFunc = func(context.Context, int64) ([]smartsheet.SummaryField, error) { return nil, errBoom }
	if v, err := f.runner(t).Verify(context.Background()); err != nil || !v.OK() {
		t.Errorf("Verify() with an unreadable summary = %s, %v; want OK, nil", v.Summary(), err)
	}
}

func TestAttestErrors(t *testing.T) {
	const r1 = "attest run " + runR1 + ": "
	digest1 := audit.DigestName(1, runR1)
	tests := []struct {
		name   string
		before bool // attest an earlier run first (one digest stored)
		setup  func(f *fixture, s *fakeSigner, d *fakeDigests)
		want   string
	}{
		{
			name: "signer: sign",
			setup: func(_ *fixture, s *fakeSigner, _ *fakeDigests) {
				s.SignFunc = func(context.Context, []byte) ([]byte, error) { return nil, errBoom }
			},
			want: r1 + "sign digest " + digest1 + " with key test-key: ",
		},
		{
			name: "signer: its public key, checking the digests",
			setup: func(_ *fixture, s *fakeSigner, _ *fakeDigests) {
				s.PublicKeyPEMFunc = func(context.Context) ([]byte, error) { return nil, errBoom }
			},
			want: r1 + "verify audit sheet 77: read the signing key's public key: ",
		},
		{
			name: "digest store: list",
			setup: func(_ *fixture, _ *fakeSigner, d *fakeDigests) {
				d.ListFunc = func(context.Context) ([]string, error) { return nil, errBoom }
			},
			want: r1 + "verify audit sheet 77: list digests: ",
		},
		{
			name: "digest store: put the public key",
			setup: func(_ *fixture, _ *fakeSigner, d *fakeDigests) {
				d.PutPublicKeyFunc = func(context.Context, []byte) error { return errBoom }
			},
			want: r1 + "store the digest public key of key test-key: ",
		},
		{
			name: "digest store: put the digest",
			setup: func(_ *fixture, _ *fakeSigner, d *fakeDigests) {
				d.PutFunc = func(context.Context, string, []byte, []byte) (string, error) { return "", errBoom }
			},
			want: r1 + "store digest " + digest1 + ": ",
		},
		{
			name: "digest store: read the previous digest", before: true,
			setup: func(_ *fixture, _ *fakeSigner, d *fakeDigests) {
				d.GetFunc = func(context.Context, string) ([]byte, []byte, error) { return nil, nil, errBoom }
			},
			want: r1 + "verify audit sheet 77: read digest " + audit.DigestName(1, "20261129T150000Z-0ld000") + ": ",
		},
		{
			name: "store: the digest checkpoint", before: true,
			setup: func(f *fixture, _ *fakeSigner, _ *fakeDigests) { f.failMeta(digestCheckpointKey) },
			want:  r1 + "verify audit sheet 77: read the digest checkpoint: ",
		},
		{
			name: "sheet: the summary",
			setup: func(f *fixture, _ *fakeSigner, _ *fakeDigests) {
				f.sheet.UpdateSummaryFieldsFunc = func(context.Context, int64, []smartsheet.SummaryField) ([]smartsheet.SummaryField, error) {
					return nil, errBoom
				}
			},
			want: r1 + "update the summary of audit sheet 77: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s, d := mustFakeSigner(t), newFakeDigests()
			f.opts.Signer, f.opts.Digests = s, d
			f.mustPublish(t)
			if tt.before {
				if _, err := f.runner(t).Attest(context.Background(), RunRecord{RunID: "20261129T150000Z-0ld000"}); err != nil {
					t.Fatalf("Attest(the earlier run) = %v", err)
				}
			}
			tt.setup(f, s, d)
			_, err := f.runner(t).Attest(context.Background(), RunRecord{RunID: runR1, StartedAt: t0, Changes: 2})
			checkErr(t, "Attest("+runR1+")", err, tt.want, errBoom)
		})
	}
}

func TestAttestOnceErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{
			name:  "read the kept attestation",
			setup: func(f *fixture) { f.failMeta("attestation:" + runR1) },
			want:  "read the attestation of run " + runR1 + ": ",
		},
		{
			name:  "attest",
			setup: func(f *fixture) { f.failLease(AuditLogLease) },
			want:  "attest run " + runR1 + ": take the audit-log lease: ",
		},
		{
			name:  "keep the attestation",
			setup: func(f *fixture) { f.failPutMeta("attestation:"+runR1, nil) },
			want:  "keep the attestation of run " + runR1 + ": ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.opts.Signer, f.opts.Digests = mustFakeSigner(t), newFakeDigests()
			f.mustPublish(t)
			tt.setup(f)
			_, err := f.runner(t).AttestOnce(context.Background(), RunRecord{RunID: runR1, StartedAt: t0})
			checkErr(t, "AttestOnce("+runR1+")", err, tt.want, errBoom)
		})
	}
}

func TestReportErrors(t *testing.T) {
	const rp = "report run " + runR1 + ": "
	file := newFakeWorkbook().FileNameFunc(audit.Report{})
	tests := []struct {
		name  string
		setup func(f *fixture, wb *fakeWorkbook, sink *fakeReportSink)
		want  string
	}{
		{
			name: "store: the change history",
			setup: func(f *fixture, _ *fakeWorkbook, _ *fakeReportSink) {
				f.store.ChangesFunc = func(context.Context, time.Time, time.Time) ([]ChangeRecord, error) { return nil, errBoom }
			},
			want: rp + "read the change history: ",
		},
		{
			name: "workbook",
			setup: func(_ *fixture, wb *fakeWorkbook, _ *fakeReportSink) {
				wb.WriteFunc = func(_ io.Writer, _ audit.Report) error { return errBoom }
			},
			want: rp + "write workbook: ",
		},
		{
			name: "sink",
			setup: func(_ *fixture, _ *fakeWorkbook, sink *fakeReportSink) {
				sink.PutFunc = func(context.Context, string, []byte) (string, error) { return "", errBoom }
			},
			want: rp + "keep workbook " + file + ": ",
		},
		{
			name:  "store: the last publication",
			setup: func(f *fixture, _ *fakeWorkbook, _ *fakeReportSink) { f.failMeta(publicationKey) },
			want:  rp + "read the last publication: ",
		},
		{
			name:  "store: record the publication",
			setup: func(f *fixture, _ *fakeWorkbook, _ *fakeReportSink) { f.failPutMeta(publicationKey, nil) },
			want:  rp + "record the publication of run " + runR1 + ": ",
		},
		{
			name: "sheet: list the attachments",
			setup: func(f *fixture, _ *fakeWorkbook, _ *fakeReportSink) {
				f.sheet.ListAttachmentsFunc = func(context.Context, int64) ([]smartsheet.Attachment, error) { return nil, errBoom }
			},
			want: rp + "list attachments of audit sheet 77: ",
		},
		{
			name: "sheet: attach the workbook",
			setup: func(f *fixture, _ *fakeWorkbook, _ *fakeReportSink) {
				f.sheet.AttachFileFunc = func(context.Context, int64, string, string, io.Reader) (*smartsheet.Attachment, error) {
					return nil, errBoom
				}
			},
			want: rp + "attach " + file + ": ",
		},
		{
			name: "sheet: the summary",
			setup: func(f *fixture, _ *fakeWorkbook, _ *fakeReportSink) {
				f.sheet.AddSummaryFieldsFunc = func(context.Context, int64, []smartsheet.SummaryField) ([]smartsheet.SummaryField, error) {
					return nil, errBoom
				}
			},
			want: rp + "add summary fields to audit sheet 77: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			wb := newFakeWorkbook()
			sink := &fakeReportSink{PutFunc: func(_ context.Context, name string, _ []byte) (string, error) { return "mem://" + name, nil }}
			tt.setup(f, wb, sink)
			_, err := f.runner(t).Report(context.Background(), RunRecord{RunID: runR1, StartedAt: t0}, ReportOptions{Workbook: wb, Sink: sink, Force: true})
			checkErr(t, "Report("+runR1+")", err, tt.want, errBoom)
		})
	}
}
