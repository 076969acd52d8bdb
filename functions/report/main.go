// Command report is the report Lambda: on AuditRunCompleted (EventBridge rule
// → SQS) or on demand ({"forceReport":true}, {"runId":"…"}) it verifies the
// audit log (ledger chain, signed digests, every audit row), signs the run's
// digest with the KMS key into the Object Lock bucket, then builds the
// period's workbook from the stored changes, keeps it in S3 and publishes it
// to the audit-log sheet.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
	"github.com/fieldaudit/billing-audit/shared/aws/s3store"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/xlsx"
)

// request is an on-demand invoke.
type request struct {
	RunID       string `json:"runId,omitempty"`
	ForceReport bool   `json:"forceReport,omitempty"`
}

type handler struct{ app *lambdaapp.App }

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

// fromQueue handles AuditRunCompleted events delivered by the rule's queue.
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
			h.app.Log.ErrorContext(ctx, "report failed", "messageId", m.MessageId, "error", err)
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
	att, err := h.app.Runner.AttestOnce(ctx, run)
	if err != nil {
		return pipeline.ReportResult{}, err
	}
	h.app.Log.InfoContext(ctx, "attested", "run", run.RunID, "verification", att.Verification.Summary(),
		"digest", att.Digest.Location, "withheld", att.Digest.Withheld)
	ro := pipeline.ReportOptions{
		Workbook: xlsx.Workbook{}, Sink: s3store.Reports{Blobs: h.app.Blobs, Prefix: "reports/"},
		Force: force || run.ForceReport, Findings: run.Findings, Integrity: att.Integrity(),
	}
	if h.app.Config.AnonymizeUsers {
		ro.Anonymize = audit.Pseudonymizer([]byte(h.app.Config.AnonymizeKey.Reveal()))
	}
	res, err := h.app.Runner.Report(ctx, run, ro)
	if err != nil {
		return res, err
	}
	h.app.Log.InfoContext(ctx, "report", "run", run.RunID, "skipped", res.Skipped, "workbook", res.Location,
		"attachment", res.AttachmentID, "versioned", res.Versioned, "status", res.Status)
	return res, nil
}

func (h handler) findRun(ctx context.Context, runID string) (pipeline.RunRecord, error) {
	if runID != "" {
		run, ok, err := h.app.Store.Run(ctx, runID)
		if err == nil && !ok {
			err = fmt.Errorf("run %s not recorded", runID)
		}
		return run, err
	}
	runs, err := h.app.Store.Runs(ctx, 1)
	if err != nil {
		return pipeline.RunRecord{}, err
	}
	if len(runs) == 0 {
		return pipeline.RunRecord{}, errors.New("no run recorded yet: invoke the scan first")
	}
	return runs[0], nil
}

func main() {
	app := lambdaapp.Must(lambdaapp.New(context.Background(), true, config.EnvTable, config.EnvReportBucket, config.EnvDigestKeyID, config.EnvDigestBucket))
	lambda.Start(handler{app}.handle)
}
