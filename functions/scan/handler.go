package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// scanner is the stage the handler runs (pipeline.Runner's, with its
// signature), declared here so the handler is tested with a fake.
type scanner interface {
	ScanToQueue(ctx context.Context, req pipeline.ScanRequest, q pipeline.SheetQueue, fan pipeline.FanIn, pub pipeline.Publisher) (pipeline.RunRecord, error)
}

var _ scanner = (*pipeline.Runner)(nil)

// response is what an on-demand invoke returns.
type response struct {
	RunID         string `json:"runId"`
	Batches       int    `json:"batches"`
	SheetsScanned int    `json:"sheetsScanned"`
	SheetsSkipped int    `json:"sheetsSkipped"`
	RowsRead      int    `json:"rowsRead"`
	TestMode      bool   `json:"testMode,omitempty"`
}

// handler turns the schedule's or an operator's invoke into one scan: the
// batches go to queue, the fan-in counts them, pub announces a run with none.
type handler struct {
	runner scanner
	queue  pipeline.SheetQueue
	fan    pipeline.FanIn
	pub    pipeline.Publisher
	log    *slog.Logger
}

// handle takes the raw payload: the schedule's input carries fields of its
// own (source, scheduledTime…), which a ScanRequest ignores.
func (h handler) handle(ctx context.Context, raw json.RawMessage) (response, error) {
	var req pipeline.ScanRequest
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &req); err != nil {
			return response{}, fmt.Errorf("scan request: %w", err)
		}
	}
	run, err := h.runner.ScanToQueue(ctx, req, h.queue, h.fan, h.pub)
	if err != nil {
		h.log.ErrorContext(ctx, "scan failed", "run", run.RunID, "error", err)
		if run.RunID == "" {
			return response{}, fmt.Errorf("scan: %w", err)
		}
		return response{}, fmt.Errorf("scan run %s: %w", run.RunID, err)
	}
	h.log.InfoContext(ctx, "scan queued", "run", run.RunID, "batches", run.Batches, "sheets", run.SheetsScanned, "rows", run.RowsScanned)
	return response{RunID: run.RunID, Batches: run.Batches, SheetsScanned: run.SheetsScanned, SheetsSkipped: run.SheetsSkipped,
		RowsRead: run.RowsScanned, TestMode: run.TestMode}, nil
}
