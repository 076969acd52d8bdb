package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp/lambdaapptest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// fakeScanner is a function-field fake of the scan stage.
type fakeScanner struct {
	scanToQueue func(ctx context.Context, req pipeline.ScanRequest, q pipeline.SheetQueue, fan pipeline.FanIn, pub pipeline.Publisher) (pipeline.RunRecord, error)
}

func (f fakeScanner) ScanToQueue(ctx context.Context, req pipeline.ScanRequest, q pipeline.SheetQueue, fan pipeline.FanIn, pub pipeline.Publisher) (pipeline.RunRecord, error) {
	return f.scanToQueue(ctx, req, q, fan, pub)
}

// The ports the handler passes on; the fakes never call them.
type (
	fakeQueue     struct{ pipeline.SheetQueue }
	fakeFanIn     struct{ pipeline.FanIn }
	fakePublisher struct{ pipeline.Publisher }
)

var errSmartsheetDown = errors.New("smartsheet: 503 after the retry budget")

var scanned = pipeline.RunRecord{RunID: "20261123T160000Z-3fa9c1", Batches: 2, SheetsScanned: 3, SheetsSkipped: 1, RowsScanned: 412}

// scanCases are the handler's table: every events/scan sample (event names
// it), plus payloads no sample holds.
var scanCases = []struct {
	name    string
	event   string // file in events/scan; empty: payload
	payload string
	run     pipeline.RunRecord
	err     error
	wantReq pipeline.ScanRequest
	want    response
	wantErr error // errors.Is; errAny: any error
}{
	{name: "schedule", event: "schedule.json", run: scanned, wantReq: pipeline.ScanRequest{},
		want: response{RunID: scanned.RunID, Batches: 2, SheetsScanned: 3, SheetsSkipped: 1, RowsRead: 412}},
	{name: "test mode", event: "test-mode.json", run: pipeline.RunRecord{RunID: "r-test", TestMode: true, SheetsScanned: 3},
		wantReq: pipeline.ScanRequest{Mode: "test"}, want: response{RunID: "r-test", SheetsScanned: 3, TestMode: true}},
	{name: "force report", event: "force-report.json", run: pipeline.RunRecord{RunID: "r-force"},
		wantReq: pipeline.ScanRequest{ForceReport: true}, want: response{RunID: "r-force"}},
	{name: "some sheets", event: "sheets.json", run: pipeline.RunRecord{RunID: "r-sheets", SheetsScanned: 2, Batches: 1},
		wantReq: pipeline.ScanRequest{SheetIDs: []int64{4583173393803140, 2331373580117892}},
		want:    response{RunID: "r-sheets", SheetsScanned: 2, Batches: 1}},
	{name: "null payload", payload: "null", run: pipeline.RunRecord{RunID: "r-null"}, want: response{RunID: "r-null"}},
	{name: "empty payload", payload: "", run: pipeline.RunRecord{RunID: "r-empty"}, want: response{RunID: "r-empty"}},
	{name: "not a request", payload: `{"sheetIds":"all"}`, wantErr: errAny},
	{name: "scan fails", payload: `{}`, run: pipeline.RunRecord{RunID: "r-fail"}, err: errSmartsheetDown, wantErr: errSmartsheetDown},
}

var errAny = errors.New("any error")

func TestHandle(t *testing.T) {
	for _, tt := range scanCases {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.payload)
			if tt.event != "" {
				raw = lambdaapptest.MustEvent(t, "scan", tt.event)
			}
			q, fan, pub := &fakeQueue{}, &fakeFanIn{}, &fakePublisher{}
			var logs bytes.Buffer
			calls := 0
			h := handler{
				runner: fakeScanner{scanToQueue: func(_ context.Context, req pipeline.ScanRequest, gq pipeline.SheetQueue, gfan pipeline.FanIn, gpub pipeline.Publisher) (pipeline.RunRecord, error) {
					calls++
					if diff := cmp.Diff(tt.wantReq, req); diff != "" {
						t.Errorf("ScanToQueue request mismatch (-want +got):\n%s", diff)
					}
					if gq != q || gfan != fan || gpub != pub {
						t.Errorf("ScanToQueue got queue %p, fan-in %p, publisher %p; want the handler's %p, %p, %p", gq, gfan, gpub, q, fan, pub)
					}
					return tt.run, tt.err
				}},
				queue: q, fan: fan, pub: pub, log: slog.New(slog.NewJSONHandler(&logs, nil)),
			}
			got, err := h.handle(context.Background(), json.RawMessage(raw))
			switch {
			case tt.wantErr == errAny:
				if err == nil || calls != 0 {
					t.Errorf("handle(%s) = %+v, %v after %d scans; want an error and no scan", raw, got, err, calls)
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || !bytes.Contains(logs.Bytes(), []byte(`"scan failed"`)) {
					t.Errorf("handle(%s) error = %v, logs %s; want %v, logged once as scan failed", raw, err, logs.String(), tt.wantErr)
				}
				if got != (response{}) {
					t.Errorf("handle(%s) = %+v, want no response", raw, got)
				}
				return
			}
			if err != nil || calls != 1 {
				t.Fatalf("handle(%s) error = %v after %d scans, want nil after 1", raw, err, calls)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("handle(%s) mismatch (-want +got):\n%s", raw, diff)
			}
		})
	}
}

// TestEverySample fails when events/scan holds a sample no case reads.
func TestEverySample(t *testing.T) {
	var names []string
	for _, tt := range scanCases {
		names = append(names, tt.event)
	}
	lambdaapptest.RequireEverySample(t, "scan", names)
}
