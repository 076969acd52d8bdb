package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp/lambdaapptest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// fakeRunner is a function-field fake of the analysis stages.
type fakeRunner struct {
	analyzeBatch func(ctx context.Context, b pipeline.Batch, fan pipeline.FanIn, pub pipeline.Publisher) ([]audit.Change, error)
	refreshRows  func(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error)
}

func (f fakeRunner) AnalyzeBatch(ctx context.Context, b pipeline.Batch, fan pipeline.FanIn, pub pipeline.Publisher) ([]audit.Change, error) {
	return f.analyzeBatch(ctx, b, fan, pub)
}

func (f fakeRunner) RefreshRows(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error) {
	return f.refreshRows(ctx, sheetID, rowIDs, deletedRowIDs)
}

// fakeBlobs is a function-field fake of the bucket large batches are in.
type fakeBlobs struct {
	get func(ctx context.Context, key string) ([]byte, error)
}

func (f fakeBlobs) Put(context.Context, string, string, []byte) (string, error) {
	return "", errors.New("analyze puts no blob")
}

func (f fakeBlobs) Get(ctx context.Context, key string) ([]byte, error) { return f.get(ctx, key) }

// The ports the handler passes on; the fakes never call them.
type (
	fakeFanIn     struct{ pipeline.FanIn }
	fakePublisher struct{ pipeline.Publisher }
)

const (
	sampleRun     = "20261123T160000Z-3fa9c1"
	sampleSheet   = 4583173393803140
	inlineMessage = "5fea7756-0ea4-451a-a703-a558b933e274"
	blobMessage   = "2e1424d4-f796-459a-8184-9c92662be6da"
	refreshMsg    = "7c1f3a52-2f0e-4c55-9b7e-5d1e0c3a9b11"
	blobKey       = "batches/" + sampleRun + "/0002.json"
)

// blobBatch is what events/analyze/sqs-batch.json's second message points to.
var blobBatch = pipeline.Batch{ID: sampleRun + "/0002", RunID: sampleRun, Sheet: pipeline.SheetRef{ID: sampleSheet, Name: "Crew 12 - Billing"},
	Deleted: []int64{1, 2}}

// batchSeen is what a test keeps of a batch handed to AnalyzeBatch.
type batchSeen struct {
	ID, RunID string
	Sheet     int64
	Rows      []int64
	Deleted   []int64
}

func seen(b pipeline.Batch) batchSeen {
	s := batchSeen{ID: b.ID, RunID: b.RunID, Sheet: b.Sheet.ID, Deleted: b.Deleted}
	for _, r := range b.Rows {
		s.Rows = append(s.Rows, r.RowID)
	}
	return s
}

var (
	inlineSeen = batchSeen{ID: sampleRun + "/0001", RunID: sampleRun, Sheet: sampleSheet, Rows: []int64{6572427401553796}, Deleted: []int64{2257825963206532}}
	blobSeen   = batchSeen{ID: sampleRun + "/0002", RunID: sampleRun, Sheet: sampleSheet, Deleted: []int64{1, 2}}
	errHistory = errors.New("smartsheet: 503 after the retry budget")
	errNoBlob  = errors.New("s3: NoSuchKey")
)

// sqsEvent is an event of messages m1, m2, … with these bodies.
func sqsEvent(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("m%d", i+1), Body: b})
	}
	return ev
}

// analyzeCases are the handler's table: every events/analyze sample (event
// names it), some more than once, plus messages no sample holds.
var analyzeCases = []struct {
	name     string
	event    string // file in events/analyze; empty: inline
	inline   events.SQSEvent
	recorded []string // runs a scan recorded; the fake refuses batches of others, as the runner does
	blobErr  error
	refresh  error
	// want: the batches and refreshes passed on, the failed message ids,
	// and each message's error (errors.Is; nil: none).
	wantBatches   []batchSeen
	wantRefreshes []pipeline.Refresh
	wantFailed    []string
	wantErrs      map[string]error
}{
	{name: "sample batches: no scan recorded their run, both refused", event: "sqs-batch.json",
		wantBatches: []batchSeen{inlineSeen, blobSeen}, wantFailed: []string{inlineMessage, blobMessage},
		wantErrs: map[string]error{inlineMessage: pipeline.ErrBatchRefused, blobMessage: pipeline.ErrBatchRefused}},
	{name: "sample batches of a recorded run", event: "sqs-batch.json", recorded: []string{sampleRun},
		wantBatches: []batchSeen{inlineSeen, blobSeen}},
	{name: "sample batches, the blob gone", event: "sqs-batch.json", recorded: []string{sampleRun}, blobErr: errNoBlob,
		wantBatches: []batchSeen{inlineSeen}, wantFailed: []string{blobMessage}, wantErrs: map[string]error{blobMessage: errNoBlob}},
	{name: "sample refresh", event: "sqs-refresh.json",
		wantRefreshes: []pipeline.Refresh{{Kind: pipeline.RefreshKind, SheetID: sampleSheet, RowIDs: []int64{6572427401553796}, DeletedRowIDs: []int64{1234567890123456}}}},
	{name: "sample refresh fails", event: "sqs-refresh.json", refresh: errHistory,
		wantRefreshes: []pipeline.Refresh{{Kind: pipeline.RefreshKind, SheetID: sampleSheet, RowIDs: []int64{6572427401553796}, DeletedRowIDs: []int64{1234567890123456}}},
		wantFailed:    []string{refreshMsg}, wantErrs: map[string]error{refreshMsg: errHistory}},
	{name: "one refused among good ones",
		inline: sqsEvent(`{"batch":{"id":"r1/0001","runId":"r1","sheet":{"id":7}}}`, `{"batch":{"id":"x/0001","runId":"x","sheet":{"id":7}}}`,
			`{"kind":"refresh","sheetId":7,"rowIds":[8]}`),
		recorded:      []string{"r1"},
		wantBatches:   []batchSeen{{ID: "r1/0001", RunID: "r1", Sheet: 7}, {ID: "x/0001", RunID: "x", Sheet: 7}},
		wantRefreshes: []pipeline.Refresh{{Kind: pipeline.RefreshKind, SheetID: 7, RowIDs: []int64{8}}},
		wantFailed:    []string{"m2"}, wantErrs: map[string]error{"m2": pipeline.ErrBatchRefused}},
	{name: "not JSON", inline: sqsEvent(`{"batch":`), wantFailed: []string{"m1"}, wantErrs: map[string]error{"m1": errAny}},
	{name: "neither batch nor blob", inline: sqsEvent(`{}`), wantFailed: []string{"m1"}, wantErrs: map[string]error{"m1": errAny}},
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
			fan, pub := &fakeFanIn{}, &fakePublisher{}
			var batches []batchSeen
			var refreshes []pipeline.Refresh
			h := handler{
				runner: fakeRunner{
					analyzeBatch: func(_ context.Context, b pipeline.Batch, gfan pipeline.FanIn, gpub pipeline.Publisher) ([]audit.Change, error) {
						batches = append(batches, seen(b))
						if gfan != fan || gpub != pub {
							t.Errorf("AnalyzeBatch got fan-in %p, publisher %p; want the handler's %p, %p", gfan, gpub, fan, pub)
						}
						if !slices.Contains(tt.recorded, b.RunID) {
							return nil, fmt.Errorf("%w: batch %q of run %q: its run is not recorded", pipeline.ErrBatchRefused, b.ID, b.RunID)
						}
						return []audit.Change{{}}, nil
					},
					refreshRows: func(_ context.Context, sheetID int64, rowIDs, deleted []int64) ([]audit.Change, error) {
						refreshes = append(refreshes, pipeline.Refresh{Kind: pipeline.RefreshKind, SheetID: sheetID, RowIDs: rowIDs, DeletedRowIDs: deleted})
						return nil, tt.refresh
					},
				},
				blobs: fakeBlobs{get: func(_ context.Context, key string) ([]byte, error) {
					if key != blobKey {
						t.Errorf("Blobs.Get(%q), want %q", key, blobKey)
					}
					if tt.blobErr != nil {
						return nil, tt.blobErr
					}
					return json.Marshal(blobBatch)
				}},
				fan: fan, pub: pub, log: slog.New(slog.DiscardHandler),
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
			if diff := cmp.Diff(tt.wantBatches, batches); diff != "" {
				t.Errorf("handle() batches passed on mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRefreshes, refreshes); diff != "" {
				t.Errorf("handle() refreshes mismatch (-want +got):\n%s", diff)
			}
			// Each message's error is the runner's, wrapped, as the log line shows it.
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
