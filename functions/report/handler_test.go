package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp/lambdaapptest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// fakeRunner is a function-field fake of the attest and report stages.
type fakeRunner struct {
	attestOnce func(ctx context.Context, run pipeline.RunRecord) (pipeline.Attestation, error)
	report     func(ctx context.Context, run pipeline.RunRecord, ro pipeline.ReportOptions) (pipeline.ReportResult, error)
}

func (f fakeRunner) AttestOnce(ctx context.Context, run pipeline.RunRecord) (pipeline.Attestation, error) {
	return f.attestOnce(ctx, run)
}

func (f fakeRunner) Report(ctx context.Context, run pipeline.RunRecord, ro pipeline.ReportOptions) (pipeline.ReportResult, error) {
	return f.report(ctx, run, ro)
}

// fakeRuns is a function-field fake of the run store.
type fakeRuns struct {
	run  func(ctx context.Context, runID string) (pipeline.RunRecord, bool, error)
	runs func(ctx context.Context, limit int) ([]pipeline.RunRecord, error)
}

func (f fakeRuns) Run(ctx context.Context, runID string) (pipeline.RunRecord, bool, error) {
	return f.run(ctx, runID)
}

func (f fakeRuns) Runs(ctx context.Context, limit int) ([]pipeline.RunRecord, error) {
	return f.runs(ctx, limit)
}

// The ports the handler passes on; the fakes never call them.
type (
	fakeWorkbook struct{ pipeline.Workbook }
	fakeSink     struct{ pipeline.ReportSink }
)

const (
	completedRun = "20261123T160000Z-3fa9c1" // events/report/sqs-run-completed.json
	completedMsg = "c80e8021-a70a-42c7-a470-796e1186f753"
	forcedRun    = "20261123T170500Z-b71e02" // events/report/force.json
	forcedMsg    = "91b7a3de-4c2f-4e8b-a1d9-3f6c2b8e7a45"
)

var (
	findings    = []audit.Finding{{Kind: "MISSING_COLUMN", SheetName: "Crew 12 - Billing", Message: "no Quantity column"}}
	attestation = pipeline.Attestation{Digest: pipeline.DigestResult{Name: "0000000002-" + completedRun, Location: "s3://digests/0000000002.json"}}
	published   = pipeline.ReportResult{FileName: "billing-audit-we-2026-11-15-run.xlsx", Location: "s3://reports/x.xlsx", AttachmentID: 9, Status: "OK"}
	errKMS      = errors.New("kms: AccessDeniedException")
	errSheet    = errors.New("smartsheet: 503 after the retry budget")
	errTable    = errors.New("dynamodb: ProvisionedThroughputExceededException")
	errAny      = errors.New("any error")
)

// reported is what a test keeps of a Report call.
type reported struct {
	RunID     string
	Force     bool
	Findings  []audit.Finding
	Digest    string
	Anonymize string // what the pseudonymizer made of "dana"
}

// reportCases are the handler's table: every events/report sample (event
// names it), some more than once, plus invokes no sample holds.
var reportCases = []struct {
	name     string
	event    string // file in events/report; empty: payload
	payload  string
	runs     []pipeline.RunRecord // recorded, newest first
	runsErr  error
	attest   error
	report   error
	want     any // the handler's answer
	wantErr  error
	wantSeen []reported
}{
	{name: "run completed", event: "sqs-run-completed.json",
		runs:     []pipeline.RunRecord{{RunID: completedRun, Findings: findings}},
		want:     events.SQSEventResponse{},
		wantSeen: []reported{{RunID: completedRun, Findings: findings, Digest: attestation.Digest.Name, Anonymize: "anon:dana"}}},
	{name: "run completed, forced", event: "force.json", runs: []pipeline.RunRecord{{RunID: forcedRun}},
		want:     events.SQSEventResponse{},
		wantSeen: []reported{{RunID: forcedRun, Force: true, Digest: attestation.Digest.Name, Anonymize: "anon:dana"}}},
	{name: "run completed but not recorded", event: "sqs-run-completed.json",
		want: events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: completedMsg}}}},
	{name: "table unreadable", event: "force.json", runsErr: errTable,
		want: events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: forcedMsg}}}},
	{name: "attestation fails: nothing published", event: "sqs-run-completed.json", runs: []pipeline.RunRecord{{RunID: completedRun}}, attest: errKMS,
		want: events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: completedMsg}}}},
	{name: "publication fails", event: "force.json", runs: []pipeline.RunRecord{{RunID: forcedRun}}, report: errSheet,
		want:     events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: forcedMsg}}},
		wantSeen: []reported{{RunID: forcedRun, Force: true, Digest: attestation.Digest.Name, Anonymize: "anon:dana"}}},
	{name: "event without runId", payload: `{"Records":[{"messageId":"m1","body":"{\"detail-type\":\"AuditRunCompleted\",\"detail\":{}}"}]}`,
		want: events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "m1"}}}},
	{name: "event not JSON", payload: `{"Records":[{"messageId":"m1","body":"{"}]}`,
		want: events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "m1"}}}},
	{name: "on demand: the latest run", payload: `{}`,
		runs: []pipeline.RunRecord{{RunID: "r2"}, {RunID: "r1"}}, want: published,
		wantSeen: []reported{{RunID: "r2", Digest: attestation.Digest.Name, Anonymize: "anon:dana"}}},
	{name: "on demand: a run recorded with forceReport", payload: `{"runId":"r1"}`,
		runs: []pipeline.RunRecord{{RunID: "r2"}, {RunID: "r1", ForceReport: true}}, want: published,
		wantSeen: []reported{{RunID: "r1", Force: true, Digest: attestation.Digest.Name, Anonymize: "anon:dana"}}},
	{name: "on demand: forced", payload: `{"forceReport":true}`, runs: []pipeline.RunRecord{{RunID: "r2"}}, want: published,
		wantSeen: []reported{{RunID: "r2", Force: true, Digest: attestation.Digest.Name, Anonymize: "anon:dana"}}},
	{name: "on demand: no run yet", payload: `{}`, wantErr: errAny},
	{name: "on demand: publication fails", payload: `{}`, runs: []pipeline.RunRecord{{RunID: "r2"}}, report: errSheet, wantErr: errSheet,
		wantSeen: []reported{{RunID: "r2", Digest: attestation.Digest.Name, Anonymize: "anon:dana"}}},
	{name: "not JSON", payload: `{"runId":`, wantErr: errAny},
}

func TestHandle(t *testing.T) {
	for _, tt := range reportCases {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.payload)
			if tt.event != "" {
				raw = lambdaapptest.MustEvent(t, "report", tt.event)
			}
			wb, sink := &fakeWorkbook{}, &fakeSink{}
			var seen []reported
			h := handler{
				runner: fakeRunner{
					attestOnce: func(_ context.Context, run pipeline.RunRecord) (pipeline.Attestation, error) {
						return attestation, tt.attest
					},
					report: func(_ context.Context, run pipeline.RunRecord, ro pipeline.ReportOptions) (pipeline.ReportResult, error) {
						if ro.Workbook != wb || ro.Sink != sink {
							t.Errorf("Report got workbook %p, sink %p; want the handler's %p, %p", ro.Workbook, ro.Sink, wb, sink)
						}
						r := reported{RunID: run.RunID, Force: ro.Force, Findings: ro.Findings}
						if ro.Integrity != nil {
							r.Digest = ro.Integrity.DigestName
						}
						if ro.Anonymize != nil {
							r.Anonymize = ro.Anonymize("dana")
						}
						seen = append(seen, r)
						return published, tt.report
					},
				},
				runs: fakeRuns{
					run: func(_ context.Context, id string) (pipeline.RunRecord, bool, error) {
						for _, r := range tt.runs {
							if r.RunID == id {
								return r, true, tt.runsErr
							}
						}
						return pipeline.RunRecord{}, false, tt.runsErr
					},
					runs: func(_ context.Context, limit int) ([]pipeline.RunRecord, error) {
						return tt.runs[:min(limit, len(tt.runs))], tt.runsErr
					},
				},
				workbook: wb, sink: sink, anonymize: func(s string) string { return "anon:" + s },
				log: slog.New(slog.DiscardHandler),
			}
			got, err := h.handle(context.Background(), json.RawMessage(raw))
			switch {
			case tt.wantErr == errAny:
				if err == nil {
					t.Errorf("handle(%s) = %+v, want an error", raw, got)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("handle(%s) error = %v, want %v", raw, err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("handle(%s) error = %v", raw, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("handle(%s) mismatch (-want +got):\n%s", raw, diff)
				}
			}
			if diff := cmp.Diff(tt.wantSeen, seen); diff != "" {
				t.Errorf("handle(%s) reports mismatch (-want +got):\n%s", raw, diff)
			}
		})
	}
}

// TestEverySample fails when events/report holds a sample no case reads.
func TestEverySample(t *testing.T) {
	var names []string
	for _, tt := range reportCases {
		names = append(names, tt.event)
	}
	lambdaapptest.RequireEverySample(t, "report", names)
}
