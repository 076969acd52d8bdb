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
	"github.com/fieldaudit/billing-audit/shared/rie"
)

// Functions are the chain's functions (functions/<name>) with the timeout and memory template.yaml gives them.
var Functions = map[string]struct {
	Timeout  time.Duration
	MemoryMB int
}{
	"scan":    {300 * time.Second, 512},
	"analyze": {120 * time.Second, 512},
	"report":  {300 * time.Second, 1024},
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
}

// Chain is the three functions under the emulator and the two mappings that feed them: AnalysisQueue → analyze
// (batch size 10), ReportQueue → report (batch size 1), as template.yaml maps them. The schedule is InvokeScan.
type Chain struct {
	Scan, Analyze, Report *rie.Function
	Analysis, Reports     *Poller
	SQS                   *awssqs.Client
	AWS                   aws.Config
}

// Start starts the functions and prepares the pollers.
func Start(ctx context.Context, o Options) (*Chain, error) {
	for _, k := range []string{"AWS_ENDPOINT_URL", "ANALYSIS_QUEUE_URL", "REPORT_QUEUE_URL"} {
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
	keys := make([]string, 0, len(o.Env))
	for k := range o.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+o.Env[k])
	}
	c := &Chain{SQS: awssqs.NewFromConfig(cfg), AWS: cfg}
	fns := map[string]**rie.Function{"scan": &c.Scan, "analyze": &c.Analyze, "report": &c.Report}
	for _, name := range []string{"scan", "analyze", "report"} {
		spec := Functions[name]
		f, err := rie.Start(ctx, rie.Config{Name: name, Bootstrap: filepath.Join(o.Bootstraps, name, "bootstrap"),
			Emulator: o.Emulator, Env: env, Timeout: spec.Timeout, MemoryMB: spec.MemoryMB, Output: o.Output})
		if err != nil {
			c.Stop()
			return nil, err
		}
		*fns[name] = f
	}
	c.Analysis = &Poller{SQS: c.SQS, QueueURL: o.Env["ANALYSIS_QUEUE_URL"], Function: c.Analyze, BatchSize: 10, Visibility: o.Visibility, Log: o.Log}
	c.Reports = &Poller{SQS: c.SQS, QueueURL: o.Env["REPORT_QUEUE_URL"], Function: c.Report, BatchSize: 1, Visibility: o.Visibility, Log: o.Log}
	return c, nil
}

// InvokeScan invokes the scan function (the schedule's or an on-demand payload) and returns its answer.
func (c *Chain) InvokeScan(ctx context.Context, payload []byte) ([]byte, error) {
	return c.Scan.Invoke(ctx, payload)
}

// Drain runs both mappings until both queues are empty: the analysis of every batch, then the reports that the
// completed runs announced.
func (c *Chain) Drain(ctx context.Context) error {
	for {
		if _, err := c.Analysis.Drain(ctx); err != nil {
			return err
		}
		r, err := c.Reports.Drain(ctx)
		if err != nil {
			return err
		}
		n, err := c.Analysis.Pending(ctx)
		if err != nil {
			return err
		}
		if n == 0 && r.Received == 0 {
			return nil
		}
	}
}

// Stop ends the functions.
func (c *Chain) Stop() {
	for _, f := range []*rie.Function{c.Scan, c.Analyze, c.Report} {
		if f != nil {
			f.Stop()
		}
	}
}
