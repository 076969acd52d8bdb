package localchain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
	"github.com/fieldaudit/billing-audit/shared/local/rie"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The scale harness: a first run and an idle run of many large sheets through the chain — the real bootstraps
// under the emulator, as many sheet workers at once as the template's AnalysisQueue mapping allows
// (ScalingConfig.MaximumConcurrency), the simulator answering with latency and its rate limit on — measured from
// outside the functions. Its last output line is the summary `make scale` prints last.
//
//	SCALE          SHEETSxROWS, e.g. 68x3000 (default 6x300: the small variant that `make test` runs)
//	SCALE_LATENCY  the simulator's base+per-row latency, e.g. 400ms+1ms (default: 400ms+1ms with SCALE, else 2ms+5µs)
//	SCALE_JITTER   the latency's jitter, a fraction (default 0.25)
//	SCALE_STORE    the table's emulator: dynamodb-local (default; moto when java is missing) or moto
//	SCALE_EDITS    the fraction of the rows edited before the third run (default 0.01)

// scaleConfig is the harness's configuration, from the environment.
type scaleConfig struct {
	sheets, rows int
	latency      smartsim.Latency
	store        string  // "dynamodb-local" or "moto"
	edits        float64 // the fraction of the rows the changed run finds edited
}

const (
	storeDynamoDBLocal = "dynamodb-local"
	storeMoto          = "moto"
)

func scaleFromEnv(t *testing.T) scaleConfig {
	t.Helper()
	c := scaleConfig{sheets: 6, rows: 300, latency: smartsim.Latency{Base: 2 * time.Millisecond, PerRow: 5 * time.Microsecond}, store: storeDynamoDBLocal}
	if s := os.Getenv("SCALE"); s != "" {
		a, b, ok := strings.Cut(s, "x")
		sheets, err1 := strconv.Atoi(a)
		rows, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || sheets < 3 || rows < 1 {
			t.Fatalf("SCALE=%q: want SHEETSxROWS with at least 3 sheets (the demo's scenario), e.g. 68x3000", s)
		}
		c.sheets, c.rows = sheets, rows
		c.latency = smartsim.Latency{Base: 400 * time.Millisecond, PerRow: time.Millisecond}
	}
	if s := os.Getenv("SCALE_LATENCY"); s != "" {
		a, b, ok := strings.Cut(s, "+")
		base, err1 := time.ParseDuration(a)
		perRow, err2 := time.ParseDuration(b)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("SCALE_LATENCY=%q: want BASE+PERROW, e.g. 400ms+1ms", s)
		}
		c.latency.Base, c.latency.PerRow = base, perRow
	}
	c.edits = 0.01
	if s := os.Getenv("SCALE_EDITS"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1 {
			t.Fatalf("SCALE_EDITS=%q: want a fraction of the rows in (0, 1]", s)
		}
		c.edits = f
	}
	c.latency.Jitter = 0.25
	if s := os.Getenv("SCALE_JITTER"); s != "" {
		j, err := strconv.ParseFloat(s, 64)
		if err != nil || j < 0 || j > 1 {
			t.Fatalf("SCALE_JITTER=%q: want a fraction in [0, 1]", s)
		}
		c.latency.Jitter = j
	}
	switch s := os.Getenv("SCALE_STORE"); s {
	case "", storeDynamoDBLocal:
		if _, err := exec.LookPath("java"); err != nil {
			t.Logf("java not found: the table is moto's (SCALE_STORE=%s)", storeMoto)
			c.store = storeMoto
		}
	case storeMoto:
		c.store = storeMoto
	default:
		t.Fatalf("SCALE_STORE=%q: want %s or %s", s, storeDynamoDBLocal, storeMoto)
	}
	return c
}

// phase is what one run cost, measured from outside the functions.
type phase struct {
	name        string
	runID       string
	batches     int
	from, to    time.Time
	invocations []localchain.Invocation
	calls       int                          // Smartsheet requests (the simulator's counters)
	byEndpoint  map[string]int64             // Smartsheet requests by endpoint key
	limited     int64                        // of them answered 429
	dynamo      localchain.Counts            // DynamoDB calls of the functions
	callsByFn   map[string]int               // Smartsheet requests that arrived during each function's invocations
	dynamoByFn  map[string]localchain.Counts // DynamoDB calls that arrived during each function's invocations
	sheetCalls  int                          // Smartsheet requests about a source sheet (a path under /sheets/<id>)
	sheetDynamo localchain.Counts            // DynamoDB calls keyed by a sheet (SHEET#<id>: its state, baselines)
	rru, wru    float64                      // DynamoDB read and write units the functions consumed
	messages    int                          // SQS messages the sheet workers and the report received
	run         pipeline.RunRecord
}

func (p phase) took() time.Duration { return p.to.Sub(p.from) }

// scaleHarness is the stack, the simulator behind its call log, the chain with its sheet workers, and the counters.
type scaleHarness struct {
	cfg      scaleConfig
	srv      *smartsim.Server
	calls    *localchain.CallLog
	ddb      *localchain.DynamoDBCounter
	store    *dynamo.Store // the harness's own view of the table (not counted)
	chain    *localchain.Chain
	inv      *localchain.Invocations
	scan     localchain.Invoker
	analysis []*localchain.Poller
	reports  *localchain.Poller
	schedule []byte
	sources  map[int64]bool // the source sheets' ids

	mu       sync.Mutex
	reported map[string]bool // runs whose AuditRunCompleted reached the report function
}

// TestScale runs a first run (every sheet read page by page, baselines written) and an idle run (nothing changed)
// through the chain and prints the summary of what they cost. The goals are printed, met or not, and each one missed
// fails the test, as does a run that does not complete.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale: not in -short")
	}
	cfg := scaleFromEnv(t)
	began := time.Now()
	h := mustScaleHarness(t, cfg)
	t.Logf("stack, %s table, simulator with %d sheets × %d rows, %d sheet workers: ready in %s", cfg.store, cfg.sheets, cfg.rows,
		len(h.analysis), time.Since(began).Round(time.Millisecond))

	first := h.run(t, "first")
	idle := h.run(t, "idle")
	edits := h.edit(t, cfg.edits)
	changed := h.run(t, "changed")
	for _, p := range []phase{first, idle, changed} {
		if p.run.SheetsScanned != cfg.sheets {
			t.Errorf("%s run: %d sheets scanned, want %d", p.name, p.run.SheetsScanned, cfg.sheets)
		}
		h.logPhase(t, p)
	}
	if changed.run.Changes != edits {
		t.Errorf("changed run: %d changes recorded, want the %d edits", changed.run.Changes, edits)
	}
	if first.run.RowsScanned != cfg.sheets*cfg.rows {
		t.Errorf("first run: %d rows scanned, want %d", first.run.RowsScanned, cfg.sheets*cfg.rows)
	}
	if idle.batches != 0 || idle.run.SheetsSkipped != cfg.sheets {
		t.Errorf("idle run: %d sheets queued, %d skipped; want 0 and %d", idle.batches, idle.run.SheetsSkipped, cfg.sheets)
	}
	if first.dynamo.Total() == 0 {
		t.Errorf("no DynamoDB call went through the counter: the functions ignored AWS_ENDPOINT_URL_DYNAMODB")
	}

	all := append(append([]localchain.Invocation(nil), first.invocations...), idle.invocations...)
	longest, _ := localchain.Longest(all)
	sheets := float64(cfg.sheets)
	s := summary{
		sheets: cfg.sheets, rows: cfg.sheets * cfg.rows, firstRun: first.took(), maxShare: longest.Share(),
		http429: first.limited + idle.limited, peak: h.calls.Peak(time.Minute), dynamoCalls: first.dynamo.Total() + idle.dynamo.Total(),
		idleCalls: float64(idle.sheetCalls) / sheets, idleReads: float64(idle.sheetDynamo.Reads()) / sheets,
		idleRunCalls: int64(idle.calls - idle.sheetCalls), idleRunReads: idle.dynamo.Reads() - idle.sheetDynamo.Reads(),
		changedRun: changed.took(), changes: changed.run.Changes,
		store: cfg.store, workers: len(h.analysis), latency: cfg.latency,
	}
	t.Logf("longest invocation: %s, %s of its %s timeout (%.3f)", longest.Function, longest.Took.Round(time.Millisecond),
		localchain.Functions[longest.Function].Timeout, longest.Share())
	// Printed, not logged: `make scale` prints these lines last, the summary the very last.
	goals := s.goals()
	for _, g := range goals {
		if !g.met {
			t.Errorf("goal not met: %s (%s)", g.name, g.figure)
		}
	}
	fmt.Println(goalLine(goals))
	fmt.Println(s.String())
}

// mustScaleHarness deploys the stack, starts the table's emulator, the counters, the simulator with the generated
// sheets and the audit sheet, and the chain with one analyze environment per allowed concurrent invocation.
func mustScaleHarness(t *testing.T, cfg scaleConfig) *scaleHarness {
	t.Helper()
	stack := MustStack(t)
	ctx := context.Background()
	awsCfg, err := localchain.AWSConfig(ctx, stack.vars)
	if err != nil {
		t.Fatal(err)
	}
	table := stack.vars["AUDIT_TABLE"]
	upstream := stack.vars["AWS_ENDPOINT_URL"]
	if cfg.store == storeDynamoDBLocal {
		upstream = localstacktest.StartDynamoDBLocal(t, moduleRoot)
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(upstream)
		// DynamoDB Local's error answers (a failed condition) carry a CRC the SDK cannot match on an unread body.
		o.DisableValidateResponseChecksum = cfg.store == storeDynamoDBLocal
	})
	if cfg.store == storeDynamoDBLocal {
		if err := dynamo.CreateTable(ctx, db, table); err != nil {
			t.Fatal(err)
		}
	}
	counter, err := localchain.StartDynamoDBCounter(upstream, cfg.store == storeMoto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = counter.Close() })
	h := &scaleHarness{cfg: cfg, ddb: counter, store: dynamo.New(db, table, dynamo.Options{}), inv: &localchain.Invocations{}, reported: map[string]bool{}}

	// The simulator: the sheets and the audit sheet are made without latency; the functions reach it through the
	// call log.
	h.srv = smartsimtest.Start(t, smartsim.Options{})
	start := time.Now()
	setup, err := demo.Prepare(h.srv, demo.Size{Sheets: cfg.sheets, Rows: cfg.rows, Weeks: 12})
	if err != nil {
		t.Fatal(err)
	}
	auditID, _, err := pipeline.EnsureAuditSheet(ctx, mustClient(t, h.srv), h.store, 0, auditName)
	if err != nil {
		t.Fatal(err)
	}
	h.sources = map[int64]bool{}
	for _, id := range setup.Gen.SheetIDs {
		h.sources[id] = true
	}
	t.Logf("%d sheets × %d rows generated in %s", cfg.sheets, cfg.rows, time.Since(start).Round(time.Millisecond))
	h.calls = &localchain.CallLog{Handler: h.srv.Handler(), Prefix: "/2.0/"}
	front := httptest.NewServer(h.calls)
	t.Cleanup(front.Close)

	if err := localchain.PutToken(ctx, secretsmanager.NewFromConfig(awsCfg), stack.vars["SMARTSHEET_TOKEN_SECRET_ARN"], token); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for k, v := range stack.vars {
		vars[k] = v
	}
	vars["SMARTSHEET_BASE_URL"] = front.URL + "/2.0"
	vars["AUDIT_SHEET_ID"] = strconv.FormatInt(auditID, 10)
	vars["SOURCE_FOLDER_IDS"] = strconv.FormatInt(setup.Gen.FolderID, 10)
	vars["SOURCE_SHEET_IDS"] = ""
	vars["AWS_ENDPOINT_URL_DYNAMODB"] = counter.URL() // the SDK's per-service endpoint: DynamoDB only
	var out bytes.Buffer
	logs := &lockedWriter{w: &out}
	opts := localchain.Options{Env: vars, Bootstraps: stack.bootstrap, Emulator: stack.emulator, Log: slog.New(slog.NewTextHandler(logs, nil))}
	if h.chain, err = localchain.Start(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.chain.Stop)

	// As many analyze environments as the AnalysisQueue mapping runs at once, each behind its own poller; the
	// visibility timeout outlasts an invocation, so that no message is handed to a second worker while the first
	// still has it (the queue's own is 6 × the timeout).
	tmpl, err := os.ReadFile(filepath.Join(moduleRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	workers, err := localchain.MaximumConcurrency(tmpl, "AnalyzeFunction", "AnalysisBatches")
	if err != nil {
		t.Fatal(err)
	}
	if workers == 0 {
		t.Fatal("template.yaml: AnalyzeFunction's AnalysisBatches sets no ScalingConfig.MaximumConcurrency; the harness needs a number")
	}
	analyzers := []localchain.Invoker{h.chain.Analyze}
	logged := map[string]*rie.Function{"scan": h.chain.Scan, "analyze-1": h.chain.Analyze, "report": h.chain.Report}
	for i := range workers - 1 {
		f, err := localchain.StartFunction(ctx, opts, "analyze")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Stop)
		analyzers = append(analyzers, f)
		logged[fmt.Sprintf("analyze-%d", i+2)] = f
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("analyze #%d:\n%s", i+2, tail(f.Logs()))
			}
		})
	}
	visibility := func(fn string) time.Duration { return localchain.Functions[fn].Timeout + 10*time.Second }
	for _, f := range analyzers {
		h.analysis = append(h.analysis, &localchain.Poller{SQS: h.chain.SQS, QueueURL: vars["ANALYSIS_QUEUE_URL"],
			Function: h.inv.Timed("analyze", f), BatchSize: 1, Visibility: visibility("analyze"), Log: opts.Log})
	}
	h.reports = &localchain.Poller{SQS: h.chain.SQS, QueueURL: vars["REPORT_QUEUE_URL"], Function: h.inv.Timed("report", h.chain.Report),
		BatchSize: 1, Visibility: visibility("report"), Log: opts.Log, BeforeInvoke: h.noteReported}
	h.scan = h.inv.Timed("scan", h.chain.Scan)
	if h.schedule, err = os.ReadFile(filepath.Join(moduleRoot, "events/scan/schedule.json")); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("SCALE_LOG_DIR"); dir != "" {
		// Every function's whole output, one file each (registered after the functions' Stop, so run before it).
		t.Cleanup(func() {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Error(err)
				return
			}
			for name, f := range logged {
				if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(f.Logs()), 0o644); err != nil {
					t.Error(err)
				}
			}
			t.Logf("functions' output in %s", dir)
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pollers:\n%s\nscan:\n%s\nanalyze:\n%s\nreport:\n%s", tail(out.String()), tail(h.chain.Scan.Logs()),
				tail(h.chain.Analyze.Logs()), tail(h.chain.Report.Logs()))
		}
	})

	// From here on the functions answer at the configured latency, under the rate limit, counted from zero.
	h.srv.SetLatency(cfg.latency)
	h.srv.SetLimits(smartsim.Limits{})
	h.srv.ResetCounters()
	return h
}

// noteReported notes the runs whose AuditRunCompleted event the report function is given.
func (h *scaleHarness) noteReported(_ context.Context, ev events.SQSEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range ev.Records {
		var eb struct {
			DetailType string `json:"detail-type"`
			Detail     struct {
				RunID string `json:"runId"`
			} `json:"detail"`
		}
		if json.Unmarshal([]byte(m.Body), &eb) == nil && eb.DetailType == "AuditRunCompleted" {
			h.reported[eb.Detail.RunID] = true
		}
	}
}

func (h *scaleHarness) wasReported(runID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reported[runID]
}

// run is one scheduled run: the scan, every sheet through the concurrent sheet workers (with the continuations they
// queue), then the report of the completed run. It lasts from the scan's invoke to the end of the report's.
func (h *scaleHarness) run(t *testing.T, name string) phase {
	t.Helper()
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	p := phase{name: name, from: time.Now()}
	before := h.srv.Counters()
	out, err := h.scan.Invoke(ctx, h.schedule)
	if err != nil {
		t.Fatalf("%s run: invoke scan: %v", name, err)
	}
	var resp scanResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.RunID == "" {
		t.Fatalf("%s run: scan answered %s (%v), want a run id", name, out, err)
	}
	p.runID, p.batches = resp.RunID, resp.Batches
	var quiet time.Time // since when both queues were empty and the run not yet reported
	for !h.wasReported(p.runID) {
		a, err := localchain.DrainConcurrently(ctx, h.analysis...)
		if err != nil {
			t.Fatalf("%s run: sheet workers: %v", name, err)
		}
		r, err := h.reports.Drain(ctx)
		if err != nil {
			t.Fatalf("%s run: report: %v", name, err)
		}
		if a.InvokeErr != nil || r.InvokeErr != nil || a.Failed > 0 || r.Failed > 0 {
			t.Errorf("%s run: %d analyze and %d report messages failed (%v; %v)", name, a.Failed, r.Failed, a.InvokeErr, r.InvokeErr)
		}
		p.messages += a.Received + r.Received
		switch {
		case a.Received > 0 || r.Received > 0:
			quiet = time.Time{}
		case quiet.IsZero():
			quiet = time.Now()
		case time.Since(quiet) > 10*time.Second:
			t.Fatalf("%s run %s: both queues empty for 10 s and no AuditRunCompleted reached the report function", name, p.runID)
		default:
			time.Sleep(200 * time.Millisecond)
		}
	}
	p.to = time.Now()
	p.run = mustFinished(t, h.store, p.runID)

	after := h.srv.Counters()
	p.byEndpoint = map[string]int64{}
	for k, c := range after {
		if d := c.Calls - before[k].Calls; d != 0 {
			p.byEndpoint[k] = d
			p.calls += int(d)
		}
		p.limited += c.RateLimited - before[k].RateLimited
	}
	if logged := h.calls.Between(p.from, p.to); logged != p.calls {
		t.Errorf("%s run: the call log saw %d Smartsheet requests, the simulator counted %d", name, logged, p.calls)
	}
	p.dynamo = h.ddb.Between(p.from, p.to)
	p.sheetCalls = h.calls.ToSheets(p.from, p.to, h.sources)
	p.sheetDynamo = h.ddb.OfKind(p.from, p.to, "SHEET")
	p.rru, p.wru = h.ddb.Units(p.from, p.to)
	p.invocations = h.inv.Between(p.from, p.to)
	// The functions' calls, by function: what arrived while one of its invocations ran. The functions do not run
	// at the same time (the scan queues, the workers work, the report reports), so nothing is counted twice.
	p.callsByFn, p.dynamoByFn = map[string]int{}, map[string]localchain.Counts{}
	for _, fn := range []string{"scan", "analyze", "report"} {
		for _, sp := range busy(p.invocations, fn) {
			p.callsByFn[fn] += h.calls.Between(sp.from, sp.to)
			p.dynamoByFn[fn] = p.dynamoByFn[fn].Add(h.ddb.Between(sp.from, sp.to))
		}
	}
	return p
}

type span struct{ from, to time.Time }

// busy is when fn was running: its invocations' times, overlapping ones merged.
func busy(list []localchain.Invocation, fn string) []span {
	var spans []span
	for _, i := range list {
		if i.Function == fn {
			spans = append(spans, span{i.Start, i.Start.Add(i.Took)})
		}
	}
	sort.Slice(spans, func(a, b int) bool { return spans[a].from.Before(spans[b].from) })
	var out []span
	for _, sp := range spans {
		if n := len(out); n > 0 && !sp.from.After(out[n-1].to) {
			if sp.to.After(out[n-1].to) {
				out[n-1].to = sp.to
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}

// edit changes the Quantity of every n-th row of every sheet, n = 1/frac, as one user, so that the next run finds
// frac of the rows changed; most are in billed weeks (unauthorized). It returns the number of rows edited.
func (h *scaleHarness) edit(t *testing.T, frac float64) int {
	t.Helper()
	every := max(1, int(1/frac+0.5))
	user := smartsheet.User{Name: "Scale Editor", Email: "scale.editor@example.com"}
	edits := 0
	for id := range h.sources {
		sh, err := h.srv.Sheet(id)
		if err != nil {
			t.Fatal(err)
		}
		var qty int64
		for _, c := range sh.Columns {
			if c.Title == smartsim.ColQuantity {
				qty = c.ID
			}
		}
		var rows []smartsheet.Row
		for i := every / 2; i < len(sh.Rows); i += every {
			rows = append(rows, smartsheet.Row{ID: sh.Rows[i].ID,
				Cells: []smartsheet.Cell{{ColumnID: qty, Value: smartsheet.IntValue(int64(9000 + i))}}})
		}
		if _, err := h.srv.UpdateRows(smartsim.Edit{User: user}, id, rows); err != nil {
			t.Fatal(err)
		}
		edits += len(rows)
	}
	time.Sleep(time.Second) // the edits' second is over before the scan starts
	return edits
}

// logPhase logs what a run cost, function by function.
func (h *scaleHarness) logPhase(t *testing.T, p phase) {
	t.Helper()
	byFn := map[string][]localchain.Invocation{}
	for _, i := range p.invocations {
		byFn[i.Function] = append(byFn[i.Function], i)
	}
	t.Logf("%s run %s: %s, %d sheets queued, %d skipped, %d rows; Smartsheet %d calls (%d answered 429) %s; DynamoDB %d calls (%d reads) %s",
		p.name, p.runID, p.took().Round(time.Millisecond), p.batches, p.run.SheetsSkipped, p.run.RowsScanned,
		p.calls, p.limited, endpoints(p.byEndpoint), p.dynamo.Total(), p.dynamo.Reads(), p.dynamo)
	var gbs float64
	for _, i := range p.invocations {
		gbs += i.Took.Seconds() * float64(localchain.Functions[i.Function].MemoryMB) / 1024
	}
	// The cost model's inputs (BENCHMARKS.md): Lambda GB-seconds at the template's memory sizes, DynamoDB units as
	// on-demand billing counts them, SQS messages received (each also sent once), Smartsheet calls.
	t.Logf("%s run cost: invocations=%d lambda_gb_s=%.1f dynamodb_rru=%.1f dynamodb_wru=%.1f sqs_messages=%d smartsheet_calls=%d changes=%d",
		p.name, len(p.invocations), gbs, p.rru, p.wru, p.messages, p.calls, p.run.Changes)
	for _, fn := range []string{"scan", "analyze", "report"} {
		list := byFn[fn]
		if len(list) == 0 {
			continue
		}
		longest, _ := localchain.Longest(list)
		var sum time.Duration
		for _, i := range list {
			sum += i.Took
		}
		t.Logf("  %s: %d invocations, mean %s, longest %s (%.3f of %s); while they ran Smartsheet %d calls, DynamoDB %s",
			fn, len(list), (sum / time.Duration(len(list))).Round(time.Millisecond), longest.Took.Round(time.Millisecond), longest.Share(),
			localchain.Functions[fn].Timeout, p.callsByFn[fn], p.dynamoByFn[fn])
	}
}

func endpoints(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

// summary is the harness's result: the line `make scale` prints last, and the goals.
type summary struct {
	sheets, rows int
	firstRun     time.Duration
	maxShare     float64
	http429      int64
	peak         int
	dynamoCalls  int64
	// The idle run's cost per sheet: Smartsheet requests about a source sheet and DynamoDB reads of items keyed by
	// one (SHEET#<id>), each divided by the sheets. What a run costs once, whatever the number of sheets (discovery,
	// the audit sheet's status, the run record, the rate budget), is counted apart.
	idleCalls, idleReads       float64
	idleRunCalls, idleRunReads int64
	changedRun                 time.Duration // the run after SCALE_EDITS of the rows were edited
	changes                    int           // the changes it recorded
	store                      string
	workers                    int
	latency                    smartsim.Latency
}

// String is the summary line: the required keys first, then what explains them.
func (s summary) String() string {
	return fmt.Sprintf("scale: sheets=%d rows=%d first_run_s=%.1f max_invocation_share=%.3f http_429=%d peak_calls_per_min=%d "+
		"dynamodb_calls=%d idle_calls_per_sheet=%.2f idle_store_reads_per_sheet=%.2f idle_run_calls=%d idle_run_store_reads=%d "+
		"changed_run_s=%.1f changes=%d store=%s sheet_workers=%d latency=%s+%s/row±%.0f%%",
		s.sheets, s.rows, s.firstRun.Seconds(), s.maxShare, s.http429, s.peak, s.dynamoCalls, s.idleCalls, s.idleReads,
		s.idleRunCalls, s.idleRunReads, s.changedRun.Seconds(), s.changes, s.store, s.workers, s.latency.Base, s.latency.PerRow, s.latency.Jitter*100)
}

// goal is one of issue 11's goals, with the figure it is judged on.
type goal struct {
	name   string
	figure string
	met    bool
}

func (s summary) goals() []goal {
	return []goal{
		{"no invocation over 50% of its timeout", fmt.Sprintf("%.3f", s.maxShare), s.maxShare <= 0.5},
		{"zero 429s", fmt.Sprint(s.http429), s.http429 == 0},
		{"peak ≤ 300 calls/min", fmt.Sprint(s.peak), s.peak <= 300},
		{"idle ≤ 1 Smartsheet call per sheet", fmt.Sprintf("%.2f", s.idleCalls), s.idleCalls <= 1},
		{"idle ≤ 1 store read per sheet", fmt.Sprintf("%.2f", s.idleReads), s.idleReads <= 1},
	}
}

// goalLine says which goals the runs met.
func goalLine(goals []goal) string {
	parts := make([]string, len(goals))
	for i, g := range goals {
		verdict := "met"
		if !g.met {
			verdict = "NOT MET"
		}
		parts[i] = fmt.Sprintf("%s (%s) %s", g.name, g.figure, verdict)
	}
	return "scale goals: " + strings.Join(parts, "; ")
}
