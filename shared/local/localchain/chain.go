package localchain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/local/rie"
)

// Functions are the chain's functions (functions/<name>) with the timeout and memory template.yaml gives them.
var Functions = map[string]struct {
	Timeout  time.Duration
	MemoryMB int
}{
	"scan":    {300 * time.Second, 512},
	"analyze": {120 * time.Second, 512},
	"report":  {300 * time.Second, 1024},
	"webhook": {10 * time.Second, 256},
}

// BuildBootstraps builds functions/<name> for this machine into dir/<name>/bootstrap, as `make lambdas` does.
func BuildBootstraps(ctx context.Context, moduleRoot, dir string, names ...string) error {
	for _, n := range names {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
			"-o", filepath.Join(dir, n, "bootstrap"), "./functions/"+n)
		cmd.Dir = moduleRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", n, err, out)
		}
	}
	return nil
}

// AWSConfig is an SDK configuration from the stack's variables (AWS_ENDPOINT_URL, AWS_REGION, the fake keys).
func AWSConfig(ctx context.Context, env map[string]string) (aws.Config, error) {
	return awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(env["AWS_REGION"]),
		awsconfig.WithBaseEndpoint(env["AWS_ENDPOINT_URL"]),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], "")),
	)
}

// PutToken stores the Smartsheet token in the stack's secret (the functions read it at cold start).
func PutToken(ctx context.Context, sm *secretsmanager.Client, secretARN, token string) error {
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(secretARN), SecretString: aws.String(token)}); err != nil {
		return fmt.Errorf("put the Smartsheet token into %s: %w", secretARN, err)
	}
	return nil
}

// Options configure a Chain.
type Options struct {
	// Env is the functions' environment: the stack's variables (.local/stack.env) plus SMARTSHEET_BASE_URL,
	// AUDIT_SHEET_ID, SOURCE_FOLDER_IDS or SOURCE_SHEET_IDS.
	Env map[string]string
	// Bootstraps is the folder of <name>/bootstrap (make lambdas: bin/lambda).
	Bootstraps string
	// Emulator is aws-lambda-rie (default: rie.Find).
	Emulator string
	// Visibility of received batches (default 2 s), so that failed messages are retried quickly.
	Visibility time.Duration
	// Output receives the functions' output (default: kept by each rie.Function only).
	Output io.Writer
	// Log receives the pollers' lines.
	Log *slog.Logger
	// Webhooks adds the real-time path: the webhook function under its own emulator behind an HTTP API stand-in
	// (HTTPAPI, route WebhookRoute), WebhookQueue → analyze (batch size 10, as template.yaml maps it), and the scan
	// given WEBHOOK_CALLBACK_URL (the route's URL), so that it registers the webhooks. Needs WEBHOOK_QUEUE_URL and
	// WEBHOOK_SECRETS_ARN, and <Bootstraps>/webhook/bootstrap.
	Webhooks bool
}

// Chain is the three functions under the emulator and the two mappings that feed them: AnalysisQueue → analyze
// (batch size 1: one sheet per invocation), ReportQueue → report (batch size 1), as template.yaml maps them. The schedule is InvokeScan.
// With Options.Webhooks it also holds the webhook function, its HTTP API and WebhookQueue → analyze.
type Chain struct {
	Scan, Analyze, Report *rie.Function
	Analysis, Reports     *Poller
	SQS                   *awssqs.Client
	AWS                   aws.Config

	// Webhook is the webhook function (Options.Webhooks), behind API.
	Webhook *rie.Function
	// API is the HTTP API's stand-in in front of Webhook; its RouteURL is the scan's WEBHOOK_CALLBACK_URL.
	API *HTTPAPI
	// Refreshes is WebhookQueue → analyze: run it continuously (Poller.Run) for the real-time path.
	Refreshes *Poller
}

// Start starts the functions and prepares the pollers.
func Start(ctx context.Context, o Options) (*Chain, error) {
	need := []string{"AWS_ENDPOINT_URL", "ANALYSIS_QUEUE_URL", "REPORT_QUEUE_URL"}
	if o.Webhooks {
		need = append(need, "WEBHOOK_QUEUE_URL", "WEBHOOK_SECRETS_ARN", "AUDIT_TABLE")
	}
	for _, k := range need {
		if o.Env[k] == "" {
			return nil, fmt.Errorf("chain environment: %s not set", k)
		}
	}
	if o.Visibility == 0 {
		o.Visibility = 2 * time.Second
	}
	cfg, err := AWSConfig(ctx, o.Env)
	if err != nil {
		return nil, err
	}
	c := &Chain{SQS: awssqs.NewFromConfig(cfg), AWS: cfg}
	start := func(name string, extra map[string]string) (*rie.Function, error) {
		spec := Functions[name]
		return rie.Start(ctx, rie.Config{Name: name, Bootstrap: filepath.Join(o.Bootstraps, name, "bootstrap"),
			Emulator: o.Emulator, Env: environ(o.Env, extra), Timeout: spec.Timeout, MemoryMB: spec.MemoryMB, Output: o.Output})
	}
	scanEnv := map[string]string{}
	if o.Webhooks {
		// The webhook function and the API in front of it come first, so that the scan is given the route's URL
		// (template.yaml: Scan's WEBHOOK_CALLBACK_URL is the HTTP API's keyed /webhooks/smartsheet/<key>).
		if c.Webhook, err = start("webhook", nil); err != nil {
			return nil, err
		}
		if c.API, err = StartHTTPAPI(&HTTPAPI{RouteKey: WebhookRouteKey(), Function: c.Webhook, Log: o.Log}); err != nil {
			c.Stop()
			return nil, err
		}
		scanEnv["WEBHOOK_CALLBACK_URL"] = c.API.RouteURL()
	}
	for _, fn := range []struct {
		name  string
		f     **rie.Function
		extra map[string]string
	}{{"scan", &c.Scan, scanEnv}, {"analyze", &c.Analyze, nil}, {"report", &c.Report, nil}} {
		f, err := start(fn.name, fn.extra)
		if err != nil {
			c.Stop()
			return nil, err
		}
		*fn.f = f
	}
	c.Analysis = &Poller{SQS: c.SQS, QueueURL: o.Env["ANALYSIS_QUEUE_URL"], Function: c.Analyze, BatchSize: 1, Visibility: o.Visibility, Log: o.Log}
	c.Reports = &Poller{SQS: c.SQS, QueueURL: o.Env["REPORT_QUEUE_URL"], Function: c.Report, BatchSize: 1, Visibility: o.Visibility, Log: o.Log}
	if o.Webhooks {
		c.Refreshes = &Poller{SQS: c.SQS, QueueURL: o.Env["WEBHOOK_QUEUE_URL"], Function: c.Analyze, BatchSize: 10, Visibility: o.Visibility, Log: o.Log}
	}
	return c, nil
}

// environ is env with extra's variables set over it, as KEY=VALUE in key order.
func environ(env, extra map[string]string) []string {
	all := make(map[string]string, len(env)+len(extra))
	for k, v := range env {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+all[k])
	}
	return out
}

// InvokeScan invokes the scan function (the schedule's or an on-demand payload) and returns its answer.
func (c *Chain) InvokeScan(ctx context.Context, payload []byte) ([]byte, error) {
	return c.Scan.Invoke(ctx, payload)
}

// Drain runs the mappings until their queues are empty: the analysis of every batch (and, with webhooks, every
// queued refresh), then the reports that the completed runs announced. It may run while Refreshes.Run does.
func (c *Chain) Drain(ctx context.Context) error {
	for {
		if _, err := c.Analysis.Drain(ctx); err != nil {
			return err
		}
		if c.Refreshes != nil {
			if _, err := c.Refreshes.Drain(ctx); err != nil {
				return err
			}
		}
		r, err := c.Reports.Drain(ctx)
		if err != nil {
			return err
		}
		n, err := c.Analysis.Pending(ctx)
		if err != nil {
			return err
		}
		if c.Refreshes != nil {
			m, err := c.Refreshes.Pending(ctx)
			if err != nil {
				return err
			}
			n += m
		}
		if n == 0 && r.Received == 0 {
			return nil
		}
	}
}

// Stop ends the HTTP API and the functions.
func (c *Chain) Stop() {
	if c.API != nil {
		_ = c.API.Close()
	}
	for _, f := range []*rie.Function{c.Scan, c.Analyze, c.Report, c.Webhook} {
		if f != nil {
			f.Stop()
		}
	}
}
