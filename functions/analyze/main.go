// Command analyze is the delta-analysis Lambda: for each queued batch it
// detects, attributes and records the changes, writes them to the audit-log
// sheet, and counts the batch; the last batch of a run announces
// AuditRunCompleted. From the webhook queue it takes refresh messages
// ({"kind":"refresh"}) and runs the targeted refresh of those rows. It
// reports partial batch failures, so one bad message is retried (and ends in
// the dead-letter queue) without failing the rest.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

type handler struct{ app *lambdaapp.App }

func (h handler) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		if err := h.one(ctx, m); err != nil {
			h.app.Log.ErrorContext(ctx, "batch failed", "messageId", m.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

func (h handler) one(ctx context.Context, m events.SQSMessage) error {
	if f, ok, err := pipeline.DecodeRefresh([]byte(m.Body)); ok {
		if err != nil {
			return err
		}
		changes, err := h.app.Runner.RefreshRows(ctx, f.SheetID, f.RowIDs, f.DeletedRowIDs)
		if err != nil {
			return err
		}
		h.app.Log.InfoContext(ctx, "rows refreshed", "sheet", f.SheetID, "rows", len(f.RowIDs), "deleted", len(f.DeletedRowIDs), "changes", len(changes))
		return nil
	}
	b, err := pipeline.DecodeBatch(ctx, []byte(m.Body), h.app.Blobs)
	if err != nil {
		return err
	}
	changes, err := h.app.Runner.AnalyzeBatch(ctx, b, h.app.FanIn, h.app.Publisher)
	if err != nil {
		return err
	}
	h.app.Log.InfoContext(ctx, "batch analysed", "batch", b.ID, "rows", len(b.Rows), "deleted", len(b.Deleted), "changes", len(changes))
	return nil
}

func main() {
	app := lambdaapp.Must(lambdaapp.New(context.Background(), true, config.EnvTable, config.EnvEventBus, config.EnvReportBucket))
	lambda.Start(handler{app}.handle)
}
