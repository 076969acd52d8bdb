package localchain_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
	"github.com/fieldaudit/billing-audit/shared/local/rie"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// benchChain is the stack, a simulator with one 500-row billing sheet and its audit sheet, and the chain.
type benchChain struct {
	chain *localchain.Chain
	srv   *smartsim.Server
	sheet int64
	vars  map[string]string
}

func mustBenchChain(b *testing.B) benchChain {
	b.Helper()
	stack := MustStack(b)
	ctx := context.Background()
	cfg, err := localchain.AWSConfig(ctx, stack.vars)
	if err != nil {
		b.Fatal(err)
	}
	srv := smartsimtest.Start(b, smartsim.Options{})
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: 1, Rows: 500, Weeks: 4, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	ddb := dynamo.New(dynamodb.NewFromConfig(cfg), stack.vars["AUDIT_TABLE"], dynamo.Options{})
	auditID, _, err := pipeline.EnsureAuditSheet(ctx, mustClient(b, srv), ddb, 0, auditName)
	if err != nil {
		b.Fatal(err)
	}
	if err := localchain.PutToken(ctx, secretsmanager.NewFromConfig(cfg), stack.vars["SMARTSHEET_TOKEN_SECRET_ARN"], token); err != nil {
		b.Fatal(err)
	}
	vars := map[string]string{}
	for k, v := range stack.vars {
		vars[k] = v
	}
	vars["SMARTSHEET_BASE_URL"] = srv.URL()
	vars["AUDIT_SHEET_ID"] = strconv.FormatInt(auditID, 10)
	vars["SOURCE_FOLDER_IDS"] = strconv.FormatInt(gen.FolderID, 10)
	vars["SOURCE_SHEET_IDS"] = ""
	chain, err := localchain.Start(ctx, localchain.Options{Env: vars, Bootstraps: stack.bootstrap, Emulator: stack.emulator})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(chain.Stop)
	return benchChain{chain: chain, srv: srv, sheet: gen.SheetIDs[0], vars: vars}
}

// BenchmarkColdStart times each function's cold start under the emulator: from the emulator's process start to the
// first answer (the bootstrap starts, loads its configuration and AWS clients, reads the token from Secrets
// Manager, and answers a trivial event), and the same event warm.
func BenchmarkColdStart(b *testing.B) {
	bc := mustBenchChain(b)
	ctx := context.Background()
	payloads := map[string]string{
		"scan":    fmt.Sprintf(`{"mode":"test","sheetIds":[%d]}`, bc.sheet),
		"analyze": `{"Records":[]}`,
		"report":  `{"runId":"none"}`,
	}
	for _, name := range []string{"scan", "analyze", "report"} {
		b.Run(name, func(b *testing.B) {
			f := map[string]*rie.Function{"scan": bc.chain.Scan, "analyze": bc.chain.Analyze, "report": bc.chain.Report}[name]
			var cold, warm time.Duration
			var rss int64
			for range b.N {
				if err := f.Restart(ctx); err != nil {
					b.Fatal(err)
				}
				_, err := f.Invoke(ctx, []byte(payloads[name]))
				cold += time.Since(f.StartedAt())
				if err != nil && !isFunctionError(err) {
					b.Fatalf("%s: %v\n%s", name, err, f.Logs())
				}
				start := time.Now()
				_, _ = f.Invoke(ctx, []byte(payloads[name]))
				warm += time.Since(start)
				if r, err := f.PeakRSS(); err == nil {
					rss = max(rss, r)
				}
			}
			b.ReportMetric(float64(cold.Milliseconds())/float64(b.N), "cold-ms")
			b.ReportMetric(float64(warm.Microseconds())/1000/float64(b.N), "warm-ms")
			b.ReportMetric(float64(rss)/(1<<20), "peak-MB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func isFunctionError(err error) bool {
	_, ok := err.(*rie.FunctionError)
	return ok
}

// timed is an Invoker that adds up the time of its invokes.
type timed struct {
	f     localchain.Invoker
	total time.Duration
}

func (t *timed) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := time.Now()
	out, err := t.f.Invoke(ctx, payload)
	t.total += time.Since(start)
	return out, err
}

// BenchmarkAnalyze500 times the analyze function on a batch of 500 rows, every one changed (Quantity), warm:
// detection, attribution from the rows' writer info, recording in DynamoDB (moto) and 500 audit rows written to the
// simulator. The emulator's "Max Memory Used" is not a measurement; peak-MB is the bootstrap's VmHWM.
func BenchmarkAnalyze500(b *testing.B) {
	bc := mustBenchChain(b)
	ctx := context.Background()
	c := bc.chain
	if _, err := c.InvokeScan(ctx, []byte(`{}`)); err != nil {
		b.Fatal(err)
	}
	if err := c.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	// A fresh analyze process, warmed with an empty event, so that its peak memory is the timed batches'.
	if err := c.Analyze.Restart(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Analyze.Invoke(ctx, []byte(`{"Records":[]}`)); err != nil {
		b.Fatal(err)
	}
	tm := &timed{f: c.Analyze}
	c.Analysis.Function = tm
	sh, err := bc.srv.Sheet(bc.sheet)
	if err != nil {
		b.Fatal(err)
	}
	var qty int64
	for _, col := range sh.Columns {
		if col.Title == smartsim.ColQuantity {
			qty = col.ID
		}
	}
	changes := 0
	history := bc.srv.Counter(smartsim.EndpointCellHistory).Calls
	b.ResetTimer()
	for i := range b.N {
		rows := make([]smartsheet.Row, len(sh.Rows))
		for j, r := range sh.Rows {
			rows[j] = smartsheet.Row{ID: r.ID, Cells: []smartsheet.Cell{{ColumnID: qty, Value: smartsheet.IntValue(int64(1000 + i))}}}
		}
		if _, err := bc.srv.UpdateRows(smartsim.Edit{User: smartsheet.User{Name: "Bench", Email: "bench@example.com"}}, bc.sheet, rows); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second) // the edits' second is over before the scan starts
		if _, err := c.InvokeScan(ctx, []byte(`{}`)); err != nil {
			b.Fatal(err)
		}
		r, err := c.Analysis.PollOnce(ctx, 5*time.Second)
		if err != nil || r.Received != 1 || r.Failed != 0 || r.InvokeErr != nil {
			b.Fatalf("analyze: %+v, %v\n%s", r, err, tail(c.Analyze.Logs()))
		}
		changes += len(rows)
		if _, err := c.Reports.Drain(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rss, err := c.Analyze.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(changes)/tm.total.Seconds(), "changes/s")
	b.ReportMetric(tm.total.Seconds()*1000/float64(b.N), "ms/batch")
	b.ReportMetric(float64(rss)/(1<<20), "peak-MB")
	// Writer info attributes every change: no cell history call (30 a minute) is needed.
	b.ReportMetric(float64(bc.srv.Counter(smartsim.EndpointCellHistory).Calls-history)/float64(b.N), "history-calls/batch")
	b.ReportMetric(0, "ns/op")
}
