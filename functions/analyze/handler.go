package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// analyzer is the part of pipeline.Runner the handler uses, with its
// signatures, declared here so the handler is tested with a fake.
type analyzer interface {
	ProcessSheet(ctx context.Context, w pipeline.SheetWork, q pipeline.SheetQueue, fan pipeline.FanIn, pub pipeline.Publisher) (pipeline.SheetResult, error)
	RefreshRows(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error)
}

var _ analyzer = (*pipeline.Runner)(nil)

// handler takes the messages of both queues: sheets of a run from the scan
// (the sheet worker), and refreshes from the webhook function.
type handler struct {
	runner analyzer
	queue  pipeline.SheetQueue
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
			h.log.ErrorContext(ctx, "message failed", "messageId", m.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

// one is a single message. Work of a run no scan recorded comes back as
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
	w, ok, err := pipeline.DecodeSheetWork([]byte(m.Body))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("message %s is neither a sheet's work nor a refresh", m.MessageId)
	}
	// The delivery's number: a retry resumes from the sheet's checkpoint,
	// and a sheet failing delivery after delivery is given up as a finding
	// before the queue sends it to the dead-letter queue.
	w.Attempt, _ = strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
	res, err := h.runner.ProcessSheet(ctx, w, h.queue, h.fan, h.pub)
	if err != nil {
		return err // it names the sheet, the run and the step
	}
	h.log.InfoContext(ctx, "sheet processed", "run", w.RunID, "sheet", w.Sheet.ID, "rows", res.Rows, "pages", res.Pages,
		"changes", res.Changes, "finished", !res.FinishedAt.IsZero(), "failed", res.Failed != "")
	return nil
}
