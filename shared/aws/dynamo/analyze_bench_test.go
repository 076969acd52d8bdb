package dynamo_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// opTimes adds up the calls and the wall time of each DynamoDB operation.
type opTimes struct {
	mu    sync.Mutex
	calls map[string]int
	total map[string]time.Duration
}

func (o *opTimes) add(op string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls == nil {
		o.calls, o.total = map[string]int{}, map[string]time.Duration{}
	}
	o.calls[op]++
	o.total[op] += d
}

func (o *opTimes) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls, o.total = nil, nil
}

func (o *opTimes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	for _, op := range slices.Sorted(maps.Keys(o.calls)) {
		fmt.Fprintf(&b, " %s=%d/%s", op, o.calls[op], o.total[op].Round(time.Millisecond))
	}
	return b.String()
}

// timedDB is a DynamoDB client that times every call.
type timedDB struct {
	c   *dynamodb.Client
	ops *opTimes
}

func timeOp[In, Out any](t *timedDB, op string, f func(context.Context, In, ...func(*dynamodb.Options)) (Out, error), ctx context.Context, in In, o []func(*dynamodb.Options)) (Out, error) {
	start := time.Now()
	out, err := f(ctx, in, o...)
	t.ops.add(op, time.Since(start))
	return out, err
}

func (t *timedDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return timeOp(t, "GetItem", t.c.GetItem, ctx, in, o)
}
func (t *timedDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return timeOp(t, "PutItem", t.c.PutItem, ctx, in, o)
}
func (t *timedDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return timeOp(t, "DeleteItem", t.c.DeleteItem, ctx, in, o)
}
func (t *timedDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return timeOp(t, "UpdateItem", t.c.UpdateItem, ctx, in, o)
}
func (t *timedDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return timeOp(t, "Query", t.c.Query, ctx, in, o)
}
func (t *timedDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return timeOp(t, "BatchGetItem", t.c.BatchGetItem, ctx, in, o)
}
func (t *timedDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return timeOp(t, "BatchWriteItem", t.c.BatchWriteItem, ctx, in, o)
}
func (t *timedDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return timeOp(t, "TransactWriteItems", t.c.TransactWriteItems, ctx, in, o)
}

// queue keeps the sheets a scan queues.
type queue struct{ sheets []pipeline.SheetWork }

func (q *queue) SendSheetWork(_ context.Context, w pipeline.SheetWork) error {
	q.sheets = append(q.sheets, w)
	return nil
}

type noPublisher struct{}

func (noPublisher) RunCompleted(context.Context, pipeline.RunCompleted) error { return nil }

// BenchmarkAnalyzeBatch500 is the sheet worker's work on a sheet of 500
// rows, every one changed (Quantity), in process: the simulator, the real
// Smartsheet client with its default rate budgets, and the Store and webhook
// store on each emulator, wired as shared/aws/lambdaapp wires the Lambda.
// ProcessSheet is timed whole (sheet-ms: read the page, analyse, write the
// audit rows, count the sheet, complete the run), and the DynamoDB calls
// are counted (ddb-calls/batch) and logged per operation with -v.
func BenchmarkAnalyzeBatch500(b *testing.B) {
	for _, e := range emulators {
		b.Run(e.name, func(b *testing.B) {
			e.ready(b)
			benchAnalyze(b, client(e.endpoint, e.noCRC))
		})
	}
}

func benchAnalyze(b *testing.B, api *dynamodb.Client) {
	ctx := context.Background()
	ops := &opTimes{}
	db := &timedDB{c: api, ops: ops}
	table := mustTable(b, api)
	store := dynamo.New(db, table, dynamo.Options{Retention: dynamo.DefaultRetention})
	hooks := dynamo.NewWebhookStore(db, table, dynamo.WebhookOptions{})
	srv := smartsimtest.Start(b, smartsim.Options{})
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: 1, Rows: 500, Weeks: 4, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	ss, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: "bench", RetryBudget: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	auditID, _, err := pipeline.EnsureAuditSheet(ctx, ss, store, 0, "Billing Audit Log")
	if err != nil {
		b.Fatal(err)
	}
	r, err := pipeline.New(ss, store, pipeline.Options{
		Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{gen.FolderID}, AuditSheetID: auditID, PageSize: 500,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: ss.Stats,
		Webhooks: pipeline.WebhookAttributor(hooks, ss),
	})
	if err != nil {
		b.Fatal(err)
	}
	scan := func() []pipeline.SheetWork {
		q := &queue{}
		if _, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q, store, noPublisher{}); err != nil {
			b.Fatal(err)
		}
		return q.sheets
	}
	process := func(w pipeline.SheetWork) pipeline.SheetResult {
		w.Attempt = 1
		res, err := r.ProcessSheet(ctx, w, &queue{}, store, noPublisher{})
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	for _, w := range scan() { // the first scan: baselines only
		process(w)
	}
	sh, err := srv.Sheet(gen.SheetIDs[0])
	if err != nil {
		b.Fatal(err)
	}
	var qty int64
	for _, col := range sh.Columns {
		if col.Title == smartsim.ColQuantity {
			qty = col.ID
		}
	}
	var total time.Duration
	changes, writerInfo, ddbCalls, history := 0, 0, 0, int64(0)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		rows := make([]smartsheet.Row, len(sh.Rows))
		for j, row := range sh.Rows {
			rows[j] = smartsheet.Row{ID: row.ID, Cells: []smartsheet.Cell{{ColumnID: qty, Value: smartsheet.IntValue(int64(1000 + i))}}}
		}
		if _, err := srv.UpdateRows(smartsim.Edit{User: smartsheet.User{Name: "Bench", Email: "bench@example.com"}}, gen.SheetIDs[0], rows); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second) // the edits' second is over before the scan starts
		work := scan()
		if len(work) != 1 || work[0].Sheet.ID != gen.SheetIDs[0] {
			b.Fatalf("scan queued %d sheets, want sheet %d alone", len(work), gen.SheetIDs[0])
		}
		ops.reset()
		hist := srv.Counter(smartsim.EndpointCellHistory).Calls
		b.StartTimer()
		start := time.Now()
		res := process(work[0])
		d := time.Since(start)
		b.StopTimer()
		total += d
		if res.Changes != len(rows) || res.FinishedAt.IsZero() {
			b.Fatalf("ProcessSheet() = %d changes, finished %v; want %d and finished", res.Changes, !res.FinishedAt.IsZero(), len(rows))
		}
		recs, err := store.Changes(ctx, start.Add(-time.Hour), time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range recs {
			if c.Change.RunID == work[0].RunID {
				changes++
				if c.Change.Attribution.Source == audit.SourceWriterInfo {
					writerInfo++
				}
			}
		}
		ddbCalls += sumCalls(ops)
		history += srv.Counter(smartsim.EndpointCellHistory).Calls - hist
		b.Logf("sheet %d: %s; DynamoDB:%s", i, d.Round(time.Millisecond), ops)
	}
	n := float64(b.N)
	b.ReportMetric(float64(changes)/total.Seconds(), "changes/s")
	b.ReportMetric(float64(total.Microseconds())/1000/n, "sheet-ms")
	b.ReportMetric(float64(ddbCalls)/n, "ddb-calls/batch")
	b.ReportMetric(float64(history)/n, "history-calls/batch")
	b.ReportMetric(float64(writerInfo)/float64(max(changes, 1))*100, "%writer-info")
	b.ReportMetric(0, "ns/op")
}

func sumCalls(o *opTimes) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.calls {
		n += c
	}
	return n
}
