package localchain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/aws/kmssign"
	"github.com/fieldaudit/billing-audit/shared/aws/s3store"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
	"github.com/fieldaudit/billing-audit/shared/local/rie"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/xlsx"
	"github.com/google/go-cmp/cmp"
)

const (
	moduleRoot = "../../.."
	token      = "local-token"
	auditName  = "Billing Audit Log"
)

// switchClock is a simulator's clock: real time, or frozen at an instant so that two simulators record the
// scenario's edits at the same times.
type switchClock struct {
	mu     sync.Mutex
	frozen time.Time
}

func (c *switchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen.IsZero() {
		return c.frozen
	}
	return time.Now()
}

func (c *switchClock) Freeze(t time.Time) { c.mu.Lock(); c.frozen = t; c.mu.Unlock() }
func (c *switchClock) Thaw()              { c.Freeze(time.Time{}) }

// env is a stack deployed into a fresh moto, with the functions built and the emulator found.
type env struct {
	vars      map[string]string
	bootstrap string
	emulator  string
}

// MustStack starts moto (skipping when it is not installed), deploys template.yaml, builds the bootstraps for this
// machine and finds (or installs) aws-lambda-rie.
func MustStack(tb testing.TB) env {
	tb.Helper()
	endpoint := localstacktest.StartMoto(tb)
	ctx := context.Background()
	emu, err := rie.Ensure(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	bin := tb.TempDir()
	start := time.Now()
	if err := localchain.BuildBootstraps(ctx, moduleRoot, bin, "scan", "analyze", "report", "webhook"); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("bootstraps built in %s", time.Since(start).Round(time.Millisecond))
	st, err := localstack.DeployFile(ctx, endpoint, "us-east-1", filepath.Join(moduleRoot, "template.yaml"),
		localstack.Options{StackName: "billing-audit-e2e", Parameters: map[string]string{"Stage": "dev"}})
	if err != nil {
		tb.Fatal(err)
	}
	return env{vars: localstack.ParseEnvFile(localstack.EnvFile(st, endpoint, "us-east-1")), bootstrap: bin, emulator: emu}
}

// local is the `billing-audit run` side: the same scenario on its own simulator with the embedded store.
type local struct {
	srv     *smartsim.Server
	clock   *switchClock
	client  *smartsheet.Client
	store   *bolt.Store
	setup   *demo.Setup
	auditID int64
	cfg     config.Function
}

func mustClient(tb testing.TB, srv *smartsim.Server) *smartsheet.Client {
	tb.Helper()
	c, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: token, ChangeAgent: "billing-audit-e2e", RetryBudget: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func mustSim(tb testing.TB, clk *switchClock) *smartsim.Server {
	tb.Helper()
	return smartsimtest.Start(tb, smartsim.Options{Clock: clk.Now})
}

// run is what `billing-audit run` does — Run, then Report into a folder — with the scan clock at startedAt.
func (l *local) run(t *testing.T, startedAt time.Time) pipeline.Summary {
	t.Helper()
	ctx := context.Background()
	ac := audit.DefaultConfig()
	ac.TrackColumns, ac.Location, ac.Grace = l.cfg.TrackColumns, l.cfg.Location, l.cfg.Grace
	ac.HighRisk, ac.MediumRisk = l.cfg.HighRisk, l.cfg.MediumRisk
	r, err := pipeline.New(l.client, l.store, pipeline.Options{
		Audit: ac, SourceFolderIDs: []int64{l.setup.Gen.FolderID}, AuditSheetID: l.auditID,
		SkipCellHistory: l.cfg.SkipCellHistory, SkipWriterInfo: l.cfg.SkipWriterInfo, Logger: slog.New(slog.DiscardHandler), PageSize: 500,
		Clock: func() time.Time { return startedAt },
	})
	if err != nil {
		t.Fatal(err)
	}
	l.clock.Freeze(startedAt)
	defer l.clock.Thaw()
	sum, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("local Run() error = %v", err)
	}
	dir := t.TempDir()
	if _, err := r.Report(ctx, sum.Run, pipeline.ReportOptions{Workbook: xlsx.Workbook{}, Sink: dirSink(dir), Findings: sum.Findings}); err != nil {
		t.Fatalf("local Report() error = %v", err)
	}
	return sum
}

type dirSink string

func (d dirSink) Put(_ context.Context, name string, data []byte) (string, error) {
	p := filepath.Join(string(d), name)
	return p, os.WriteFile(p, data, 0o600)
}

// auditRowsWithoutRun is the audit sheet's content minus the Run ID and Seal columns, sorted: what two runs of the
// same scenario must agree on (as in shared/local/demo's chain test).
func auditRowsWithoutRun(t *testing.T, srv *smartsim.Server, auditID int64) []string {
	t.Helper()
	sh, err := srv.Sheet(auditID)
	if err != nil {
		t.Fatal(err)
	}
	titles := map[int64]string{}
	for _, c := range sh.Columns {
		titles[c.ID] = c.Title
	}
	var out []string
	for _, r := range sh.Rows {
		m := map[string]string{}
		for _, c := range r.Cells {
			if v := c.Value.Text(); v != "" {
				m[titles[c.ColumnID]] = v
			}
			if c.Hyperlink != nil {
				m[titles[c.ColumnID]+" link"] = c.Hyperlink.URL
			}
		}
		delete(m, audit.LogRunID)
		delete(m, audit.LogSeal) // seals the run id, the time and the order of sealing
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var line strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&line, "%s=%s|", k, m[k])
		}
		out = append(out, line.String())
	}
	sort.Strings(out)
	return out
}

type scanResponse struct {
	RunID   string `json:"runId"`
	Batches int    `json:"batches"`
}

func mustScan(t *testing.T, c *localchain.Chain, payload []byte) scanResponse {
	t.Helper()
	out, err := c.InvokeScan(context.Background(), payload)
	if err != nil {
		t.Fatalf("invoke scan: %v\n%s", err, c.Scan.Logs())
	}
	var r scanResponse
	if err := json.Unmarshal(out, &r); err != nil || r.RunID == "" {
		t.Fatalf("scan answered %s (%v), want a run id", out, err)
	}
	return r
}

// TestEndToEnd runs the demo scenario through the real functions under the Lambda runtime emulator, fed by the
// local event-source mappings from the real template's queues in moto, and requires exactly the audit rows the local
// run writes for the same scenario; the second scan runs with every message delivered twice and one analyze
// invocation killed mid-batch.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	began := time.Now()
	stack := MustStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	t.Logf("stack ready in %s", time.Since(began).Round(time.Millisecond))
	cfg, err := localchain.AWSConfig(ctx, stack.vars)
	if err != nil {
		t.Fatal(err)
	}
	ddb := dynamo.New(dynamodb.NewFromConfig(cfg), stack.vars["AUDIT_TABLE"], dynamo.Options{})
	fcfg, err := config.LoadFunction(func(k string) string { return stack.vars[k] })
	if err != nil {
		t.Fatal(err)
	}

	// The same scenario on two simulators, generated at the same instant.
	size := demo.Size{Sheets: 3, Rows: 600, Weeks: 4}
	chainClock, localClock := &switchClock{}, &switchClock{}
	chainSim, localSim := mustSim(t, chainClock), mustSim(t, localClock)
	// The sheets are generated two hours back; the baseline is then dated an hour back (rewind), so that the
	// scenario's edits, a minute apart, fall between the baseline and the audit as they do in real life.
	prepared := time.Now().UTC().Add(-2 * time.Hour)
	chainClock.Freeze(prepared)
	localClock.Freeze(prepared)
	chainSetup, err := demo.Prepare(chainSim, size)
	if err != nil {
		t.Fatal(err)
	}
	auditID, _, err := pipeline.EnsureAuditSheet(ctx, mustClient(t, chainSim), ddb, 0, auditName)
	if err != nil {
		t.Fatal(err)
	}
	l := &local{srv: localSim, clock: localClock, client: mustClient(t, localSim), cfg: fcfg}
	if l.setup, err = demo.Prepare(localSim, size); err != nil {
		t.Fatal(err)
	}
	if l.store, err = bolt.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.store.Close() })
	if l.auditID, _, err = pipeline.EnsureAuditSheet(ctx, l.client, l.store, 0, auditName); err != nil {
		t.Fatal(err)
	}
	chainClock.Thaw()
	localClock.Thaw()

	// The functions: the stack's variables, the simulator, the audit sheet and the token in the stack's secret.
	sm := secretsmanager.NewFromConfig(cfg)
	if err := localchain.PutToken(ctx, sm, stack.vars["SMARTSHEET_TOKEN_SECRET_ARN"], token); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for k, v := range stack.vars {
		vars[k] = v
	}
	vars["SMARTSHEET_BASE_URL"] = chainSim.URL()
	vars["AUDIT_SHEET_ID"] = strconv.FormatInt(auditID, 10)
	vars["SOURCE_FOLDER_IDS"] = strconv.FormatInt(chainSetup.Gen.FolderID, 10)
	vars["SOURCE_SHEET_IDS"] = ""
	var out bytes.Buffer
	logs := &lockedWriter{w: &out}
	chain, err := localchain.Start(ctx, localchain.Options{Env: vars, Bootstraps: stack.bootstrap, Emulator: stack.emulator,
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pollers:\n%s\nanalyze:\n%s\nreport:\n%s", out.String(), tail(chain.Analyze.Logs()), tail(chain.Report.Logs()))
		}
	})

	// Every message of ReportQueue the report function sees: the AuditRunCompleted events, by run.
	completed := map[string]map[string]bool{} // run → ids of original (not copied) messages
	chain.Reports.BeforeInvoke = func(_ context.Context, ev events.SQSEvent) {
		for _, m := range ev.Records {
			var eb struct {
				DetailType string `json:"detail-type"`
				Detail     struct {
					RunID string `json:"runId"`
				} `json:"detail"`
			}
			if json.Unmarshal([]byte(m.Body), &eb) != nil || eb.DetailType != "AuditRunCompleted" || localchain.IsCopy(m) {
				continue
			}
			if completed[eb.Detail.RunID] == nil {
				completed[eb.Detail.RunID] = map[string]bool{}
			}
			completed[eb.Detail.RunID][m.MessageId] = true
		}
	}

	schedule, err := os.ReadFile(filepath.Join(moduleRoot, "events/scan/schedule.json"))
	if err != nil {
		t.Fatal(err)
	}

	// Baseline through the chain.
	phase := time.Now()
	base := mustScan(t, chain, schedule)
	if err := chain.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	rec0 := mustFinished(t, ddb, base.RunID)
	t.Logf("baseline: run %s, %d batches, through the chain in %s", base.RunID, base.Batches, time.Since(phase).Round(time.Millisecond))
	baseline := rec0.StartedAt.Add(-time.Hour)
	rewind(t, ddb, chainSetup.Gen.SheetIDs, baseline)
	l.run(t, baseline)

	// The scenario's edits, at the same instants on both simulators.
	edited := baseline.Add(10 * time.Minute)
	chainClock.Freeze(edited)
	localClock.Freeze(edited)
	want, err := chainSetup.Script(chainSim)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.setup.Script(localSim); err != nil {
		t.Fatal(err)
	}
	chainClock.Thaw()
	localClock.Thaw()

	// The audit, with every message delivered twice and one sheet worker killed mid-sheet.
	chain.Analysis.Duplicate, chain.Reports.Duplicate = true, true
	var kills sync.WaitGroup
	killed := 0
	var killErr error
	chain.Analysis.BeforeInvoke = func(ctx context.Context, ev events.SQSEvent) {
		kills.Wait() // the killed function is back before the next invocation
		if killed > 0 || len(ev.Records) == 0 {
			return
		}
		killed++
		off := chain.Analyze.LogLen()
		kills.Add(1)
		go func() {
			defer kills.Done()
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if killErr = chain.Analyze.WaitLog(wctx, off, `"page analysed"`); killErr != nil {
				return
			}
			chain.Analyze.Kill() // after the sheet's first page, before the invocation answers
			killErr = chain.Analyze.Restart(ctx)
		}()
	}
	phase = time.Now()
	audited := mustScan(t, chain, schedule)
	var interrupted int
	for {
		r, err := chain.Analysis.PollOnce(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.InvokeErr != nil {
			interrupted++
		}
		if r.Received == 0 {
			if n, err := chain.Analysis.Pending(ctx); err != nil || n == 0 {
				break
			}
		}
	}
	kills.Wait()
	if killErr != nil {
		t.Fatalf("kill the sheet worker mid-sheet: %v", killErr)
	}
	if killed != 1 || interrupted != 1 {
		t.Errorf("%d analyze invocations killed, %d interrupted; want 1 and 1", killed, interrupted)
	}
	if err := chain.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	rec1 := mustFinished(t, ddb, audited.RunID)
	t.Logf("audit: run %s, %d batches, %d changes, through the chaotic chain in %s", audited.RunID, audited.Batches, rec1.Changes, time.Since(phase).Round(time.Millisecond))

	// The local run of the same scenario, at the chain's scan time.
	l.run(t, rec1.StartedAt)

	chainRows, localRows := auditRowsWithoutRun(t, chainSim, auditID), auditRowsWithoutRun(t, localSim, l.auditID)
	if diff := cmp.Diff(localRows, chainRows); diff != "" {
		t.Errorf("the chain and the local run wrote different audit rows (-local +chain):\n%s", diff)
	}
	// One row per expected change: the audit sheet holds change rows only.
	if got := len(chainRows); got != len(want) || rec1.Changes != len(want) {
		t.Errorf("chain: %d audit rows and %d changes recorded, want %d of each", got, rec1.Changes, len(want))
	}
	if n := len(completed[audited.RunID]); n != 1 {
		t.Errorf("ReportQueue got %d AuditRunCompleted for run %s, want exactly 1 (all: %v)", n, audited.RunID, completed)
	}

	// One workbook in S3, one attachment on the audit sheet.
	s3c := awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true })
	objs, err := s3c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(vars["REPORT_BUCKET"]), Prefix: aws.String("reports/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Contents) != 1 {
		var keys []string
		for _, o := range objs.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		t.Errorf("S3 reports/ holds %d objects %q, want the one workbook of the run with changes", len(objs.Contents), keys)
	}
	atts, err := mustClient(t, chainSim).ListAttachments(ctx, auditID)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || (len(objs.Contents) == 1 && !strings.HasSuffix(aws.ToString(objs.Contents[0].Key), atts[0].Name)) {
		t.Errorf("audit sheet attachments = %+v, want the one workbook that is in S3", atts)
	}

	t.Run("the report verified the log and signed digests with the KMS key into the Object Lock bucket", func(t *testing.T) {
		checkDigests(t, ctx, cfg, vars, 2)
		fields, err := chainSim.SummaryFields(auditID)
		if err != nil {
			t.Fatal(err)
		}
		if got := summaryValue(fields, pipeline.SumIntegrity); !strings.HasPrefix(got, "verified: 10 audit rows match 10 ledger entries") {
			t.Errorf("summary %s = %q, want the log verified", pipeline.SumIntegrity, got)
		}
	})

	t.Run("sample events write nothing to the audit sheet", func(t *testing.T) {
		before := len(auditRowsWithoutRun(t, chainSim, auditID))
		for _, name := range []string{"sqs-sheet-work.json", "sqs-refresh.json"} {
			ev, err := os.ReadFile(filepath.Join(moduleRoot, "events", "analyze", name))
			if err != nil {
				t.Fatal(err)
			}
			off := chain.Analyze.LogLen()
			out, err := chain.Analyze.Invoke(ctx, ev)
			if err != nil {
				t.Fatalf("invoke analyze with %s: %v", name, err)
			}
			var resp events.SQSEventResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("analyze answered %s: %v", out, err)
			}
			logs := chain.Analyze.Logs()[off:]
			switch name {
			case "sqs-sheet-work.json": // sheets no scan queued: refused, kept for the DLQ, counted
				if len(resp.BatchItemFailures) != 2 || !strings.Contains(logs, `"alert":"BATCH_REFUSED"`) {
					t.Errorf("%s: failures %v, logs:\n%s\nwant both messages refused and a BATCH_REFUSED line", name, resp.BatchItemFailures, tail(logs))
				}
			default: // a refresh of a sheet never scanned: nothing to compare with
				if len(resp.BatchItemFailures) != 0 {
					t.Errorf("%s: failures %v, want none", name, resp.BatchItemFailures)
				}
			}
		}
		if after := len(auditRowsWithoutRun(t, chainSim, auditID)); after != before {
			t.Errorf("audit sheet went from %d to %d rows after the sample events, want no change", before, after)
		}
	})

	t.Run("tampering with the audit sheet is found through the chain", func(t *testing.T) {
		tam, err := demo.Tamper(chainSim, auditID)
		if err != nil {
			t.Fatal(err)
		}
		chain.Analysis.Duplicate, chain.Reports.Duplicate = false, false
		off := chain.Report.LogLen()
		next := mustScan(t, chain, schedule)
		if err := chain.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		mustFinished(t, ddb, next.RunID)
		logs := chain.Report.Logs()[off:]
		if !strings.Contains(logs, `"alert":"AUDIT_LOG_TAMPERED"`) {
			t.Errorf("report logs lack the AUDIT_LOG_TAMPERED alert:\n%s", tail(logs))
		}
		fields, err := chainSim.SummaryFields(auditID)
		if err != nil {
			t.Fatal(err)
		}
		got := summaryValue(fields, pipeline.SumIntegrity)
		if !strings.HasPrefix(got, "TAMPERING DETECTED: 3 problems (1 ALTERED_CELL, 1 DELETED_ROW, 1 FORGED_ROW)") {
			t.Errorf("summary %s = %q, want the three problems named", pipeline.SumIntegrity, got)
		}
		// Verifying from the same table and sheet names each one.
		r, err := pipeline.New(mustClient(t, chainSim), ddb, pipeline.Options{Audit: audit.DefaultConfig(), AuditSheetID: auditID,
			SourceFolderIDs: []int64{chainSetup.Gen.FolderID}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		v, err := r.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		named := map[string]audit.ProblemKind{}
		for _, p := range v.Problems {
			named[p.ChangeID] = p.Kind
		}
		if named[tam.Deleted] != audit.ProblemDeletedRow || named[tam.Altered] != audit.ProblemAlteredCell || named[tam.Forged] != audit.ProblemForgedRow {
			t.Errorf("Verify() named %v, want %s deleted, %s altered, %s forged", named, tam.Deleted, tam.Altered, tam.Forged)
		}
		checkDigests(t, ctx, cfg, vars, 3)
	})

	t.Run("poison message ends in the dead-letter queue", func(t *testing.T) {
		chain.Analysis.Duplicate = false
		sq := awssqs.NewFromConfig(cfg)
		if _, err := sq.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(vars["ANALYSIS_QUEUE_URL"]), MessageBody: aws.String(`{"batch":{}}`)}); err != nil {
			t.Fatal(err)
		}
		r, err := chain.Analysis.Drain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dlq := &localchain.Poller{SQS: sq, QueueURL: vars["ANALYSIS_DLQ_URL"]}
		n, err := dlq.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Received != 5 || r.Failed != 5 || n != 1 {
			t.Errorf("poison message: received %d times, failed %d, %d in the DLQ; want 5, 5 and 1 (maxReceiveCount 5)", r.Received, r.Failed, n)
		}
	})

	t.Run("aws lambda invoke against the emulator", func(t *testing.T) {
		aws, err := exec.LookPath("aws")
		if err != nil {
			t.Skip("aws CLI not installed")
		}
		outFile := filepath.Join(t.TempDir(), "out.json")
		cmd := exec.CommandContext(ctx, aws, "lambda", "invoke", "--endpoint-url", chain.Scan.Endpoint(), "--function-name", "function",
			"--payload", `{"mode":"test"}`, "--region", "us-east-1", "--no-sign-request", outFile)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `"StatusCode": 200`) {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		b, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			RunID    string `json:"runId"`
			TestMode bool   `json:"testMode"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.RunID == "" || !r.TestMode {
			t.Errorf("aws lambda invoke wrote %s, want a test-mode run", b)
		}
	})
	t.Logf("end to end in %s", time.Since(began).Round(time.Millisecond))
}

// checkDigests reads the digests the report function signed into the digest bucket, and verifies each with the
// KMS key's public key alone, as a third party would.
func checkDigests(t *testing.T, ctx context.Context, cfg aws.Config, vars map[string]string, atLeast int) {
	t.Helper()
	store := s3store.NewDigests(awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true }), vars["DIGEST_BUCKET"], "digests/", 0)
	names, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < atLeast {
		t.Fatalf("digest bucket holds %d digests %v, want at least %d (one per completed run)", len(names), names, atLeast)
	}
	pub, err := kmssign.New(kms.NewFromConfig(cfg), vars["DIGEST_KEY_ID"]).PublicKeyPEM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, sig, err := store.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		d, err := audit.ParseDigest(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.VerifySignature(pub, d.Algorithm, data, sig); err != nil || d.Algorithm != audit.AlgECDSASHA256 {
			t.Errorf("digest %s (%s): %v", n, d.Algorithm, err)
		}
	}
}

func summaryValue(fields []smartsheet.SummaryField, title string) string {
	for _, f := range fields {
		if f.Title == title {
			return f.ObjectValue.Text()
		}
	}
	return ""
}

// rewind dates the sheets' last scan back to at, as if the baseline had been taken then.
func rewind(t *testing.T, store *dynamo.Store, sheetIDs []int64, at time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, id := range sheetIDs {
		st, ok, err := store.SheetState(ctx, id)
		if err != nil || !ok {
			t.Fatalf("sheet state %d: %v, %v", id, ok, err)
		}
		st.LastScan = at
		if _, err := store.Commit(ctx, pipeline.Commit{SheetID: id, State: &st}); err != nil {
			t.Fatal(err)
		}
	}
}

func mustFinished(t *testing.T, store *dynamo.Store, runID string) pipeline.RunRecord {
	t.Helper()
	rec, ok, err := store.Run(context.Background(), runID)
	if err != nil || !ok || rec.FinishedAt.IsZero() {
		t.Fatalf("run %s = %+v, %v, %v; want it finished", runID, rec, ok, err)
	}
	return rec
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(s string) string {
	if len(s) > 6000 {
		return "…" + s[len(s)-6000:]
	}
	return s
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
