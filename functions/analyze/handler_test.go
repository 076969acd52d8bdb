package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp/lambdaapptest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// fakeRunner is a function-field fake of the analysis stages.
type fakeRunner struct {
	processSheet func(ctx context.Context, w pipeline.SheetWork, q pipeline.SheetQueue, fan pipeline.FanIn, pub pipeline.Publisher) (pipeline.SheetResult, error)
	refreshRows  func(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error)
}

func (f fakeRunner) ProcessSheet(ctx context.Context, w pipeline.SheetWork, q pipeline.SheetQueue, fan pipeline.FanIn, pub pipeline.Publisher) (pipeline.SheetResult, error) {
	return f.processSheet(ctx, w, q, fan, pub)
}

func (f fakeRunner) RefreshRows(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error) {
	return f.refreshRows(ctx, sheetID, rowIDs, deletedRowIDs)
}

// The ports the handler passes on; the fakes never call them.
type (
	fakeQueue     struct{ pipeline.SheetQueue }
	fakeFanIn     struct{ pipeline.FanIn }
	fakePublisher struct{ pipeline.Publisher }
)

const (
	sampleRun   = "20261123T160000Z-3fa9c1"
	sampleSheet = 4583173393803140
	firstMsg    = "5fea7756-0ea4-451a-a703-a558b933e274"
	resumeMsg   = "2e1424d4-f796-459a-8184-9c92662be6da"
	refreshMsg  = "7c1f3a52-2f0e-4c55-9b7e-5d1e0c3a9b11"
)

var (
	started    = time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)
	firstWork  = pipeline.SheetWork{RunID: sampleRun, Sheet: pipeline.SheetRef{ID: sampleSheet, Name: "Crew 12 - Billing"}, StartedAt: started, Attempt: 1}
	resumeWork = pipeline.SheetWork{RunID: sampleRun, Sheet: pipeline.SheetRef{ID: sampleSheet + 1, Name: "Crew 13 - Billing"}, StartedAt: started, Resume: true, Attempt: 2}
	errHistory = errors.New("smartsheet: 503 after the retry budget")
)

// sqsEvent is an event of messages m1, m2, … with these bodies.
func sqsEvent(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("m%d", i+1), Body: b,
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
	}
	return ev
}

// analyzeCases are the handler's table: every events/analyze sample (event
// names it), some more than once, plus messages no sample holds.
var analyzeCases = []struct {
	name     string
	event    string // file in events/analyze; empty: inline
	inline   events.SQSEvent
	recorded []string // runs a scan recorded; the fake refuses work of others, as the runner does
	process  error    // ProcessSheet's error for recorded runs
	refresh  error
	// want: the work and refreshes passed on, the failed message ids, and
	// each message's error (errors.Is; nil: none).
	wantWork      []pipeline.SheetWork
	wantRefreshes []pipeline.Refresh
	wantFailed    []string
	wantErrs      map[string]error
}{
	{name: "sample sheets: no scan recorded their run, both refused", event: "sqs-sheet-work.json",
		wantWork: []pipeline.SheetWork{firstWork, resumeWork}, wantFailed: []string{firstMsg, resumeMsg},
		wantErrs: map[string]error{firstMsg: pipeline.ErrBatchRefused, resumeMsg: pipeline.ErrBatchRefused}},
	{name: "sample sheets of a recorded run", event: "sqs-sheet-work.json", recorded: []string{sampleRun},
		wantWork: []pipeline.SheetWork{firstWork, resumeWork}},
	{name: "sample sheets, Smartsheet failing", event: "sqs-sheet-work.json", recorded: []string{sampleRun}, process: errHistory,
		wantWork: []pipeline.SheetWork{firstWork, resumeWork}, wantFailed: []string{firstMsg, resumeMsg},
		wantErrs: map[string]error{firstMsg: errHistory, resumeMsg: errHistory}},
	{name: "sample refresh", event: "sqs-refresh.json",
		wantRefreshes: []pipeline.Refresh{{Kind: pipeline.RefreshKind, SheetID: sampleSheet, RowIDs: []int64{6572427401553796}, DeletedRowIDs: []int64{1234567890123456}}}},
	{name: "sample refresh fails", event: "sqs-refresh.json", refresh: errHistory,
		wantRefreshes: []pipeline.Refresh{{Kind: pipeline.RefreshKind, SheetID: sampleSheet, RowIDs: []int64{6572427401553796}, DeletedRowIDs: []int64{1234567890123456}}},
		wantFailed:    []string{refreshMsg}, wantErrs: map[string]error{refreshMsg: errHistory}},
	{name: "one refused among good ones",
		inline: sqsEvent(`{"kind":"sheet","runId":"r1","sheet":{"id":7}}`, `{"kind":"sheet","runId":"x","sheet":{"id":7}}`,
			`{"kind":"refresh","sheetId":7,"rowIds":[8]}`),
		recorded:      []string{"r1"},
		wantWork:      []pipeline.SheetWork{{RunID: "r1", Sheet: pipeline.SheetRef{ID: 7}, Attempt: 1}, {RunID: "x", Sheet: pipeline.SheetRef{ID: 7}, Attempt: 1}},
		wantRefreshes: []pipeline.Refresh{{Kind: pipeline.RefreshKind, SheetID: 7, RowIDs: []int64{8}}},
		wantFailed:    []string{"m2"}, wantErrs: map[string]error{"m2": pipeline.ErrBatchRefused}},
	{name: "not JSON", inline: sqsEvent(`{"kind":`), wantFailed: []string{"m1"}, wantErrs: map[string]error{"m1": errAny}},
	{name: "neither a sheet nor a refresh", inline: sqsEvent(`{}`), wantFailed: []string{"m1"}, wantErrs: map[string]error{"m1": errAny}},
	{name: "sheet work without a run", inline: sqsEvent(`{"kind":"sheet","sheet":{"id":7}}`), wantFailed: []string{"m1"},
		wantErrs: map[string]error{"m1": errAny}},
	{name: "refresh without a sheet", inline: sqsEvent(`{"kind":"refresh","rowIds":[8]}`), wantFailed: []string{"m1"},
		wantErrs: map[string]error{"m1": errAny}},
	{name: "no messages", inline: events.SQSEvent{}},
}

var errAny = errors.New("any error")

func TestHandle(t *testing.T) {
	for _, tt := range analyzeCases {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.inline
			if tt.event != "" {
				if err := json.Unmarshal(lambdaapptest.MustEvent(t, "analyze", tt.event), &ev); err != nil {
					t.Fatal(err)
				}
			}
			q, fan, pub := &fakeQueue{}, &fakeFanIn{}, &fakePublisher{}
			var work []pipeline.SheetWork
			var refreshes []pipeline.Refresh
			h := handler{
				runner: fakeRunner{
					processSheet: func(_ context.Context, w pipeline.SheetWork, gq pipeline.SheetQueue, gfan pipeline.FanIn, gpub pipeline.Publisher) (pipeline.SheetResult, error) {
						work = append(work, w)
						if gq != q || gfan != fan || gpub != pub {
							t.Errorf("ProcessSheet got queue %p, fan-in %p, publisher %p; want the handler's %p, %p, %p", gq, gfan, gpub, q, fan, pub)
						}
						if !slices.Contains(tt.recorded, w.RunID) {
							return pipeline.SheetResult{}, fmt.Errorf("%w: sheet %d of run %q: its run is not recorded", pipeline.ErrBatchRefused, w.Sheet.ID, w.RunID)
						}
						return pipeline.SheetResult{RunID: w.RunID, Sheet: w.Sheet}, tt.process
					},
					refreshRows: func(_ context.Context, sheetID int64, rowIDs, deleted []int64) ([]audit.Change, error) {
						refreshes = append(refreshes, pipeline.Refresh{Kind: pipeline.RefreshKind, SheetID: sheetID, RowIDs: rowIDs, DeletedRowIDs: deleted})
						return nil, tt.refresh
					},
				},
				queue: q, fan: fan, pub: pub, log: slog.New(slog.DiscardHandler),
			}
			resp, err := h.handle(context.Background(), ev)
			if err != nil {
				t.Fatalf("handle() error = %v; want nil: failures are reported per message", err)
			}
			var failed []string
			for _, f := range resp.BatchItemFailures {
				failed = append(failed, f.ItemIdentifier)
			}
			if diff := cmp.Diff(tt.wantFailed, failed); diff != "" {
				t.Errorf("handle() failed messages mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWork, work); diff != "" {
				t.Errorf("handle() sheets passed on mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRefreshes, refreshes); diff != "" {
				t.Errorf("handle() refreshes mismatch (-want +got):\n%s", diff)
			}
			// Each message's error is the runner's, as the log line shows it.
			for _, m := range ev.Records {
				err := h.one(context.Background(), m)
				want := tt.wantErrs[m.MessageId]
				switch {
				case want == nil && err != nil, want == errAny && err == nil, want != nil && want != errAny && !errors.Is(err, want):
					t.Errorf("one(%s) error = %v, want %v", m.MessageId, err, want)
				}
			}
		})
	}
}

// TestEverySample fails when events/analyze holds a sample no case reads.
func TestEverySample(t *testing.T) {
	var names []string
	for _, tt := range analyzeCases {
		names = append(names, tt.event)
	}
	lambdaapptest.RequireEverySample(t, "analyze", names)
}
