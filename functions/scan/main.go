// Command scan is the scheduled scan Lambda: it fetches the rows changed
// since the last scan and queues them for analysis. Invoked by the schedule
// or on demand with {"mode":"test"}, {"forceReport":true} or {"sheetIds":[…]}.
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// response is what an on-demand invoke returns.
type response struct {
	RunID         string `json:"runId"`
	Batches       int    `json:"batches"`
	SheetsScanned int    `json:"sheetsScanned"`
	SheetsSkipped int    `json:"sheetsSkipped"`
	RowsRead      int    `json:"rowsRead"`
	TestMode      bool   `json:"testMode,omitempty"`
}

type handler struct{ app *lambdaapp.App }

func (h handler) handle(ctx context.Context, raw json.RawMessage) (response, error) {
	var req pipeline.ScanRequest
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &req); err != nil {
			return response{}, fmt.Errorf("scan request: %w", err)
		}
	}
	run, err := h.app.Runner.ScanToQueue(ctx, req, h.app.Queue, h.app.FanIn, h.app.Publisher)
	if err != nil {
		h.app.Log.ErrorContext(ctx, "scan failed", "run", run.RunID, "error", err)
		return response{}, err
	}
	h.app.Log.InfoContext(ctx, "scan queued", "run", run.RunID, "batches", run.Batches, "sheets", run.SheetsScanned, "rows", run.RowsScanned)
	return response{RunID: run.RunID, Batches: run.Batches, SheetsScanned: run.SheetsScanned, SheetsSkipped: run.SheetsSkipped,
		RowsRead: run.RowsScanned, TestMode: run.TestMode}, nil
}

func main() {
	app := lambdaapp.Must(lambdaapp.New(context.Background(), true, config.EnvTable, config.EnvAnalysisQueueURL, config.EnvEventBus, config.EnvReportBucket))
	lambda.Start(handler{app}.handle)
}
