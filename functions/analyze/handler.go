package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// analyzer is the part of pipeline.Runner the handler uses, with its
// signatures, declared here so the handler is tested with a fake.
type analyzer interface {
	AnalyzeBatch(ctx context.Context, b pipeline.Batch, fan pipeline.FanIn, pub pipeline.Publisher) ([]audit.Change, error)
	RefreshRows(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error)
}

var _ analyzer = (*pipeline.Runner)(nil)

// handler takes the messages of both queues: batches from the scan (inline,
// or in blobs when large) and refreshes from the webhook function.
type handler struct {
	runner analyzer
	blobs  pipeline.Blobs
	fan    pipeline.FanIn
	pub    pipeline.Publisher
	log    *slog.Logger
}

// handle reports each failed message on its own (ReportBatchItemFailures):
// the rest of the batch is done and deleted, the failed ones come back and
// end in the dead-letter queue. It never fails the whole batch.
func (h handler) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		if err := h.one(ctx, m); err != nil {
			h.log.ErrorContext(ctx, "batch failed", "messageId", m.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

// one is a single message. A batch whose run no scan recorded comes back as
// pipeline.ErrBatchRefused, like any other failure.
func (h handler) one(ctx context.Context, m events.SQSMessage) error {
	if f, ok, err := pipeline.DecodeRefresh([]byte(m.Body)); ok {
		if err != nil {
			return err
		}
		changes, err := h.runner.RefreshRows(ctx, f.SheetID, f.RowIDs, f.DeletedRowIDs)
		if err != nil {
			return fmt.Errorf("refresh rows of sheet %d: %w", f.SheetID, err)
		}
		h.log.InfoContext(ctx, "rows refreshed", "sheet", f.SheetID, "rows", len(f.RowIDs), "deleted", len(f.DeletedRowIDs), "changes", len(changes))
		return nil
	}
	b, err := pipeline.DecodeBatch(ctx, []byte(m.Body), h.blobs)
	if err != nil {
		return err
	}
	changes, err := h.runner.AnalyzeBatch(ctx, b, h.fan, h.pub)
	if err != nil {
		return fmt.Errorf("analyze batch %s: %w", b.ID, err)
	}
	h.log.InfoContext(ctx, "batch analysed", "batch", b.ID, "rows", len(b.Rows), "deleted", len(b.Deleted), "changes", len(changes))
	return nil
}
