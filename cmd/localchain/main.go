// Command localchain plays the serverless product on this machine, as a user
// would see it in AWS, with no Docker, no SAM CLI and no credentials: moto with
// the real template.yaml deployed, the Smartsheet simulator with the demo's
// sheets, the four real bootstraps under aws-lambda-rie, and the SQS and
// EventBridge edges between them. It takes a baseline, applies the demo's
// edits, lets the scheduled scan, the sheet workers and the report run, shows
// an edit reaching the audit sheet through a signed webhook callback, and
// prints what each step did and where to look.
//
//	go run ./cmd/localchain          (make local-chain)
//	go run ./cmd/localchain --keep   leave everything running and print how to invoke each function by hand
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/rie"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// token is the simulator's token: what the stack's token secret is given.
const token = "local-chain-token"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localchain:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("localchain", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "leave moto, the simulator and the functions running (Ctrl-C stops them)")
	root := fs.String("root", ".", "the module's root (template.yaml, functions/, infra/)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := &play{out: out, root: *root}
	defer p.stop()
	if err := p.deploy(ctx); err != nil {
		return err
	}
	if err := p.simulator(ctx); err != nil {
		return err
	}
	if err := p.audit(ctx); err != nil {
		return err
	}
	if !*keep {
		return nil
	}
	printByHand(out, p.vars, p.chain)
	<-ctx.Done()
	return nil
}

// play is one local run of the product: what it started, and what it stops.
type play struct {
	out     io.Writer
	root    string
	moto    *localstack.Process
	vars    map[string]string // the functions' environment
	bin     string            // the bootstraps
	emu     string            // aws-lambda-rie
	srv     *smartsim.Server
	base    string // the simulator's API base URL
	scn     *demo.Setup
	awsCfg  aws.Config
	store   *dynamo.Store
	auditID int64
	chain   *localchain.Chain
}

func (p *play) say(format string, a ...any) { fmt.Fprintf(p.out, format+"\n", a...) }

func (p *play) stop() {
	if p.chain != nil {
		p.chain.Stop()
	}
	if p.srv != nil {
		p.srv.Close()
	}
	if p.bin != "" {
		_ = os.RemoveAll(p.bin)
	}
	if p.moto != nil {
		p.moto.Stop()
	}
}

// deploy starts moto, deploys template.yaml and builds the bootstraps.
func (p *play) deploy(ctx context.Context) error {
	p.say("== Starting moto and deploying template.yaml")
	var err error
	if p.moto, err = localstack.RunMoto(ctx); err != nil {
		return err
	}
	st, err := localstack.DeployFile(ctx, p.moto.URL, "us-east-1", filepath.Join(p.root, "template.yaml"),
		localstack.Options{StackName: "billing-audit-local", Parameters: map[string]string{"Stage": "dev"}})
	if err != nil {
		return fmt.Errorf("deploy template.yaml: %w", err)
	}
	p.vars = localstack.ParseEnvFile(localstack.EnvFile(st, p.moto.URL, "us-east-1"))
	p.say("   stack billing-audit-local: table %s, queues and bus as template.yaml names them", p.vars["AUDIT_TABLE"])
	if p.awsCfg, err = localchain.AWSConfig(ctx, p.vars); err != nil {
		return err
	}

	p.say("== Building the bootstraps (as `sam build` does) and finding aws-lambda-rie")
	if p.emu, err = rie.Ensure(ctx); err != nil {
		return err
	}
	if p.bin, err = os.MkdirTemp("", "localchain-*"); err != nil {
		return err
	}
	return localchain.BuildBootstraps(ctx, p.root, p.bin, "scan", "analyze", "report", "webhook")
}

// simulator starts the simulator with the demo's sheets, creates the audit
// sheet as `billing-audit setup` does, puts the token in the stack's secret,
// and starts the functions on it.
func (p *play) simulator(ctx context.Context) error {
	p.say("== Starting the Smartsheet simulator with the demo's sheets, and the audit sheet (what `billing-audit setup` does)")
	p.srv = smartsim.NewServer(smartsim.Options{Webhooks: smartsim.WebhookOptions{Debounce: 200 * time.Millisecond}})
	var err error
	if p.base, err = p.srv.Listen("127.0.0.1:0"); err != nil {
		return err
	}
	if p.scn, err = demo.Prepare(p.srv, demo.Size{Sheets: 3, Rows: 300, Weeks: 6}); err != nil {
		return err
	}
	p.store = dynamo.New(dynamodb.NewFromConfig(p.awsCfg), p.vars["AUDIT_TABLE"], dynamo.Options{})
	client, err := smartsheet.New(smartsheet.Config{BaseURL: p.base, Token: token, RetryBudget: 30 * time.Second})
	if err != nil {
		return err
	}
	if p.auditID, _, err = pipeline.EnsureAuditSheet(ctx, client, p.store, 0, "Billing Audit Log"); err != nil {
		return err
	}
	if err := localchain.PutToken(ctx, secretsmanager.NewFromConfig(p.awsCfg), p.vars["SMARTSHEET_TOKEN_SECRET_ARN"], token); err != nil {
		return err
	}
	p.vars["SMARTSHEET_BASE_URL"] = p.base
	p.vars["AUDIT_SHEET_ID"] = strconv.FormatInt(p.auditID, 10)
	p.vars["SOURCE_FOLDER_IDS"] = strconv.FormatInt(p.scn.Gen.FolderID, 10)
	p.vars["SOURCE_SHEET_IDS"] = ""
	p.say("   simulator %s: folder %d with %d sheets; audit sheet %d; the token is in the stack's secret",
		p.base, p.scn.Gen.FolderID, len(p.scn.Gen.SheetIDs), p.auditID)

	p.say("== Starting scan, analyze, report and webhook under aws-lambda-rie")
	logs := slog.New(slog.NewTextHandler(io.Discard, nil))
	p.chain, err = localchain.Start(ctx, localchain.Options{Env: p.vars, Bootstraps: p.bin, Emulator: p.emu, Log: logs, Webhooks: true})
	return err
}

// audit plays the baseline, the demo's edits through the webhooks, and a
// forced report, and checks what landed.
func (p *play) audit(ctx context.Context) error {
	event := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(p.root, "events", "scan", name)) }
	schedule, err := event("schedule.json")
	if err != nil {
		return err
	}
	p.say("\n== The scheduled scan, first time: a baseline (and one webhook per sheet, calling the HTTP API)")
	if _, err := scheduled(ctx, p.chain, schedule, p.out); err != nil {
		return err
	}
	p.say("   webhooks registered with the simulator: %d", len(p.srv.Webhooks()))

	p.scn.Pace = 1100 * time.Millisecond // Smartsheet keeps whole seconds
	expected, err := p.scn.Script(p.srv)
	if err != nil {
		return err
	}
	p.say("\n== The demo's edits: %d changes by Kim, Raj, Jesse, Dana and an automation", len(expected))
	// Their callbacks reach the webhook function (through the HTTP API), which
	// checks each signature and queues a refresh of the edited rows: analyze
	// audits them in seconds, before the schedule fires.
	start := time.Now()
	rows := 0
	for deadline := start.Add(30 * time.Second); rows < len(expected) && time.Now().Before(deadline); {
		if err := p.chain.Drain(ctx); err != nil {
			return err
		}
		rows = auditRows(p.srv, p.auditID)
		time.Sleep(200 * time.Millisecond)
	}
	p.say("   through the webhooks alone: %d audit rows, %s after the edits", rows, time.Since(start).Round(100*time.Millisecond))

	p.say("\n== The scan again, on demand with forceReport (events/scan/force-report.json): anything the callbacks did not say,")
	p.say("   the run's completion, the audit log verified and a digest signed, the workbook in S3")
	force, err := event("force-report.json")
	if err != nil {
		return err
	}
	if _, err := scheduled(ctx, p.chain, force, p.out); err != nil {
		return err
	}
	rows = auditRows(p.srv, p.auditID)
	p.say("   audit rows now: %d (the scenario made %d changes; each is on the sheet once)", rows, len(expected))
	if err := printRuns(ctx, p.store, p.out); err != nil {
		return err
	}
	if rows != len(expected) {
		return fmt.Errorf("the chain wrote %d audit rows, the scenario made %d changes", rows, len(expected))
	}
	objects, err := listObjects(ctx, s3.NewFromConfig(p.awsCfg), p.vars["REPORT_BUCKET"], p.vars["DIGEST_BUCKET"])
	if err != nil {
		return err
	}
	for _, o := range objects {
		p.say("   %s", o)
	}
	if !slices.ContainsFunc(objects, func(o string) bool { return strings.HasSuffix(o, ".xlsx") }) {
		return errors.New("no workbook in the report bucket")
	}
	if err := p.printAuditRows(); err != nil {
		return err
	}
	if err := p.samples(ctx); err != nil {
		return err
	}
	p.say("\nWhere to look: the audit sheet %s/sheets/%d (token %q); the objects above on moto (%s).", p.base, p.auditID, token, p.moto.URL)
	return nil
}

// scheduled invokes the scan as the schedule does and runs the chain until its queues are empty.
func scheduled(ctx context.Context, chain *localchain.Chain, payload []byte, out io.Writer) (string, error) {
	answer, err := chain.InvokeScan(ctx, payload)
	if err != nil {
		return "", fmt.Errorf("invoke scan: %w", err)
	}
	var resp struct {
		RunID   string `json:"runId"`
		Batches int    `json:"batches"`
		Skipped int    `json:"skipped"`
	}
	if err := json.Unmarshal(answer, &resp); err != nil || resp.RunID == "" {
		return "", fmt.Errorf("scan answered %s", answer)
	}
	fmt.Fprintf(out, "   scan: run %s, %d sheets queued for the sheet workers\n", resp.RunID, resp.Batches)
	if err := chain.Drain(ctx); err != nil {
		return "", err
	}
	return resp.RunID, nil
}

// listObjects lists the buckets' objects as s3://bucket/key.
func listObjects(ctx context.Context, api *s3.Client, buckets ...string) ([]string, error) {
	var out []string
	for _, b := range buckets {
		p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: &b})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list s3://%s: %w", b, err)
			}
			for _, o := range page.Contents {
				out = append(out, "s3://"+b+"/"+*o.Key)
			}
		}
	}
	return out, nil
}

// auditRows counts the audit sheet's rows.
// samples invokes every events/ sample on the running functions and prints
// what each answered, so that each is known to work as events/README.md says.
func (p *play) samples(ctx context.Context) error {
	p.say("\n== Every events/ sample on the running functions (events/README.md says what each does)")
	files, err := filepath.Glob(filepath.Join(p.root, "events", "*", "*.json"))
	if err != nil {
		return err
	}
	fns := map[string]*rie.Function{"scan": p.chain.Scan, "analyze": p.chain.Analyze, "report": p.chain.Report, "webhook": p.chain.Webhook}
	for _, f := range files {
		payload, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fn := fns[filepath.Base(filepath.Dir(f))]
		if fn == nil {
			return fmt.Errorf("%s: no function for its folder", f)
		}
		answer, err := fn.Invoke(ctx, payload)
		if err != nil {
			answer = []byte("error: " + err.Error())
		}
		if err := p.chain.Drain(ctx); err != nil {
			return err
		}
		rel, _ := filepath.Rel(p.root, f)
		p.say("   %-36s → %s", rel, clip(strings.TrimSpace(string(answer)), 160))
		want, ok := sampleAnswers[filepath.ToSlash(rel)]
		if !ok {
			return fmt.Errorf("%s: no expected answer in cmd/localchain's sampleAnswers (and events/README.md)", rel)
		}
		if !want.MatchString(string(answer)) {
			return fmt.Errorf("%s answered %s, want /%s/ as events/README.md says", rel, answer, want)
		}
	}
	return nil
}

// sampleAnswers is what each events/ sample gets from a fresh local stack,
// whose sheets, runs and webhooks have other ids than the samples': what
// events/README.md documents.
var sampleAnswers = map[string]*regexp.Regexp{
	// A refresh of a sheet never scanned does nothing.
	"events/analyze/sqs-refresh.json": regexp.MustCompile(`^\{"batchItemFailures":null\}$`),
	// No scan recorded their run: both refused, back to the queue.
	"events/analyze/sqs-sheet-work.json": regexp.MustCompile(`"itemIdentifier":"5fea7756-[^"]*"\},\{"itemIdentifier":"2e1424d4-`),
	// A run the table does not hold: refused, back to the queue (then the DLQ).
	"events/report/force.json":             regexp.MustCompile(`"batchItemFailures":\[\{"itemIdentifier":"91b7a3de-`),
	"events/report/sqs-run-completed.json": regexp.MustCompile(`"batchItemFailures":\[\{"itemIdentifier":"c80e8021-`),
	"events/scan/force-report.json":        regexp.MustCompile(`"runId":"\d{8}T\d{6}Z-[0-9a-f]+"`),
	"events/scan/schedule.json":            regexp.MustCompile(`"runId":"\d{8}T\d{6}Z-[0-9a-f]+"`),
	"events/scan/test-mode.json":           regexp.MustCompile(`"testMode":true`),
	// Its sheet ids are not this stack's sources: a clear error, nothing scanned.
	"events/scan/sheets.json": regexp.MustCompile(`is not a configured source \(SOURCE_SHEET_IDS, SOURCE_FOLDER_IDS\)`),
	// A webhook this stack did not register (its secret is the sample's own): refused.
	"events/webhook/callback.json":  regexp.MustCompile(`"statusCode":403`),
	"events/webhook/challenge.json": regexp.MustCompile(`"statusCode":403`),
}

// printAuditRows lists the audit sheet's rows as a manager reads them.
func (p *play) printAuditRows() error {
	sh, err := p.srv.Sheet(p.auditID)
	if err != nil {
		return fmt.Errorf("read the audit sheet %d: %w", p.auditID, err)
	}
	p.say("\n== The audit sheet (%d rows)", len(sh.Rows))
	cols := []string{audit.LogWorkRequest, audit.LogKind, audit.LogColumn, audit.LogOldValue, audit.LogNewValue,
		audit.LogImpact, audit.LogUnauthorized, audit.LogChangedBy, audit.LogAttribution}
	p.say("   %-9s %-14s %-18s %-24s %10s %-5s %s", "WR #", "KIND", "COLUMN", "OLD → NEW", "IMPACT", "UNAUTH", "BY (HOW)")
	for _, r := range sh.Rows {
		v := map[string]string{}
		for _, title := range cols {
			if c := sh.Column(title); c != nil {
				if cell := r.Cell(c.ID); cell != nil {
					v[title] = cell.Value.Text()
				}
			}
		}
		change := clip(v[audit.LogOldValue], 11) + " → " + clip(v[audit.LogNewValue], 11)
		p.say("   %-9s %-14s %-18s %-24s %10s %-6s %s (%s)", v[audit.LogWorkRequest], v[audit.LogKind], clip(v[audit.LogColumn], 18),
			change, v[audit.LogImpact], v[audit.LogUnauthorized], v[audit.LogChangedBy], v[audit.LogAttribution])
	}
	return nil
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func auditRows(srv *smartsim.Server, auditID int64) int {
	sh, err := srv.Sheet(auditID)
	if err != nil {
		return 0
	}
	return len(sh.Rows)
}

// printRuns lists the runs recorded in the table, oldest first.
func printRuns(ctx context.Context, store *dynamo.Store, out io.Writer) error {
	runs, err := store.Runs(ctx, 10)
	if err != nil {
		return err
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.Before(runs[j].StartedAt) })
	for _, r := range runs {
		state := "finished"
		if r.FinishedAt.IsZero() {
			state = "NOT FINISHED"
		}
		fmt.Fprintf(out, "   run %s: %s, %d sheets, %d rows read, %d changes (%d unauthorized), %d audit rows\n",
			r.RunID, state, r.SheetsScanned, r.RowsScanned, r.Changes, r.Unauthorized, r.AuditRows)
	}
	return nil
}

// printByHand says how to call each running function, as `aws lambda invoke` would in AWS.
func printByHand(out io.Writer, vars map[string]string, chain *localchain.Chain) {
	fmt.Fprintln(out, "\nEverything keeps running (Ctrl-C stops it). Each function is its own emulator, always named `function`:")
	for _, f := range []struct {
		name string
		fn   *rie.Function
		ev   string
	}{{"scan", chain.Scan, "events/scan/test-mode.json"}, {"analyze", chain.Analyze, "events/analyze/sqs-sheet-work.json"},
		{"report", chain.Report, "events/report/force.json"}} {
		fmt.Fprintf(out, "  %-8s aws lambda invoke --endpoint-url %s --function-name function --region us-east-1 --no-sign-request \\\n"+
			"             --cli-binary-format raw-in-base64-out --payload file://%s out.json\n", f.name, f.fn.Endpoint(), f.ev)
	}
	if chain.API != nil {
		fmt.Fprintf(out, "  webhook  the HTTP API stand-in is %s: the simulator signs its callbacks there\n", chain.API.RouteURL())
	}
	fmt.Fprintf(out, "  AWS      export AWS_ENDPOINT_URL=%s AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test\n", vars["AWS_ENDPOINT_URL"])
}
