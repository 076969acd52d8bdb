package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// reporter is the part of pipeline.Runner the handler uses, with its
// signatures, declared here so the handler is tested with a fake.
type reporter interface {
	AttestOnce(ctx context.Context, run pipeline.RunRecord) (pipeline.Attestation, error)
	Report(ctx context.Context, run pipeline.RunRecord, ro pipeline.ReportOptions) (pipeline.ReportResult, error)
}

var _ reporter = (*pipeline.Runner)(nil)

// runStore finds the run to report (the audit table).
type runStore interface {
	Run(ctx context.Context, runID string) (pipeline.RunRecord, bool, error)
	Runs(ctx context.Context, limit int) ([]pipeline.RunRecord, error)
}

// request is an on-demand invoke.
type request struct {
	RunID       string `json:"runId,omitempty"`
	ForceReport bool   `json:"forceReport,omitempty"`
}

// handler attests and reports a run: the one an AuditRunCompleted event
// names, or on demand the one asked for (default: the latest).
type handler struct {
	runner   reporter
	runs     runStore
	workbook pipeline.Workbook
	sink     pipeline.ReportSink
	// anonymize pseudonymises people in the workbook (nil: names as they are).
	anonymize func(string) string
	log       *slog.Logger
}

// handle takes both shapes the function is invoked with: an SQS event from
// the ReportQueue (it has Records), or an on-demand request.
func (h handler) handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("report request: %w", err)
	}
	if len(probe.Records) > 0 {
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("report request: %w", err)
		}
		return h.fromQueue(ctx, ev), nil
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("report request: %w", err)
	}
	return h.report(ctx, req.RunID, req.ForceReport)
}

// fromQueue handles AuditRunCompleted events delivered by the rule's queue,
// reporting each failed message on its own.
func (h handler) fromQueue(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		var eb events.EventBridgeEvent
		var done pipeline.RunCompleted
		err := json.Unmarshal([]byte(m.Body), &eb)
		if err == nil {
			err = json.Unmarshal(eb.Detail, &done)
		}
		if err == nil && done.RunID == "" {
			err = errors.New("event without runId")
		}
		if err == nil {
			_, err = h.report(ctx, done.RunID, done.ForceReport)
		}
		if err != nil {
			h.log.ErrorContext(ctx, "report failed", "messageId", m.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp
}

func (h handler) report(ctx context.Context, runID string, force bool) (pipeline.ReportResult, error) {
	run, err := h.findRun(ctx, runID)
	if err != nil {
		return pipeline.ReportResult{}, err
	}
	// Every completed run verifies the audit log and signs its digest first.
	att, err := h.runner.AttestOnce(ctx, run)
	if err != nil {
		return pipeline.ReportResult{}, fmt.Errorf("attest run %s: %w", run.RunID, err)
	}
	h.log.InfoContext(ctx, "attested", "run", run.RunID, "verification", att.Verification.Summary(),
		"digest", att.Digest.Location, "withheld", att.Digest.Withheld)
	ro := pipeline.ReportOptions{
		Workbook: h.workbook, Sink: h.sink, Anonymize: h.anonymize,
		Force: force || run.ForceReport, Findings: run.Findings, Integrity: att.Integrity(), Usage: att.Usage,
	}
	res, err := h.runner.Report(ctx, run, ro)
	if err != nil {
		return res, fmt.Errorf("report run %s: %w", run.RunID, err)
	}
	h.log.InfoContext(ctx, "report", "run", run.RunID, "skipped", res.Skipped, "workbook", res.Location,
		"attachment", res.AttachmentID, "versioned", res.Versioned, "status", res.Status)
	return res, nil
}

func (h handler) findRun(ctx context.Context, runID string) (pipeline.RunRecord, error) {
	if runID != "" {
		run, ok, err := h.runs.Run(ctx, runID)
		if err != nil {
			return run, fmt.Errorf("read run %s: %w", runID, err)
		}
		if !ok {
			return run, fmt.Errorf("run %s not recorded", runID)
		}
		return run, nil
	}
	runs, err := h.runs.Runs(ctx, 1)
	if err != nil {
		return pipeline.RunRecord{}, fmt.Errorf("read the latest run: %w", err)
	}
	if len(runs) == 0 {
		return pipeline.RunRecord{}, errors.New("no run recorded yet: invoke the scan first")
	}
	return runs[0], nil
}
