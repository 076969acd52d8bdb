// Package lambdaapp wires the Lambda functions, one constructor each
// (NewScan, NewAnalyze, NewReport, NewWebhook): the function's own variables
// (only those it needs must be set), one AWS configuration at cold start, the
// clients and adapters that function uses and nothing else, and the same
// pipeline the CLI runs, with options from the same builder
// (config.PipelineOptions). Each functions/<name>/main.go calls its
// constructor and hands the result to a handler that sees only the small
// interfaces it declares.
package lambdaapp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/fieldaudit/billing-audit/shared/alert"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/aws/secrets"
	"github.com/fieldaudit/billing-audit/shared/aws/snsalert"
	"github.com/fieldaudit/billing-audit/shared/aws/trace"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// coldStart is what every function starts from.
type coldStart struct {
	cfg config.Function
	log *slog.Logger
	aws aws.Config
}

// start reads the function's configuration (the variables in need must be
// set), makes the logger at LOG_LEVEL and loads the one AWS configuration,
// instrumented for X-Ray.
func start(ctx context.Context, getenv config.Getenv, need ...string) (coldStart, error) {
	cfg, err := config.LoadFunction(getenv, need...)
	if err != nil {
		return coldStart{}, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return coldStart{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	trace.AWS(&awsCfg)
	return coldStart{cfg: cfg, log: NewLogger(os.Stdout, cfg.LogLevel), aws: awsCfg}, nil
}

// retention is how long change records live (RETENTION_DAYS).
func (c coldStart) retention() time.Duration {
	return time.Duration(c.cfg.RetentionDays) * 24 * time.Hour
}

// s3 is the S3 client, with path-style addressing.
func (c coldStart) s3() *awss3.Client {
	return awss3.NewFromConfig(c.aws, func(o *awss3.Options) { o.UsePathStyle = true })
}

// smartsheetClient builds the Smartsheet client, its token read once from
// Secrets Manager (SMARTSHEET_TOKEN_SECRET_ARN) and never logged. Its rate
// limiter is the token's budget in the audit table, shared by every
// invocation of every function that calls Smartsheet: an in-memory limiter
// knows only its own process's calls, and several run at once
// (template.yaml), so together they would exceed the token's limits.
func (c coldStart) smartsheetClient(ctx context.Context, sm secrets.API, db dynamo.BudgetAPI) (*smartsheet.Client, error) {
	token, err := secrets.Get(ctx, sm, c.cfg.TokenSecretARN)
	if err != nil {
		return nil, fmt.Errorf("Smartsheet token (%s): %w", config.EnvTokenSecretARN, err)
	}
	return smartsheet.New(smartsheet.Config{
		BaseURL: c.cfg.BaseURL, Token: token, ChangeAgent: c.cfg.ChangeAgent, RetryBudget: c.cfg.RetryBudget,
		Limiter:    c.budget(db, token),
		HTTPClient: trace.HTTPClient(&http.Client{Timeout: 2 * time.Minute}), Logger: c.log,
	})
}

// budget is the token's shared rate budget (AUDIT_TABLE): the limits of
// SMARTSHEET_REQUESTS_PER_MINUTE and SMARTSHEET_HISTORY_PER_MINUTE hold for
// all the functions together.
func (c coldStart) budget(db dynamo.BudgetAPI, token string) *dynamo.RateBudget {
	return dynamo.NewRateBudget(db, c.cfg.Table, token, dynamo.BudgetOptions{
		RequestsPerMinute: c.cfg.RequestsPerMinute, HistoryPerMinute: c.cfg.HistoryPerMinute,
	})
}

// store is the DynamoDB store of the audit table (AUDIT_TABLE).
func (c coldStart) store(db *dynamodb.Client) *dynamo.Store {
	return dynamo.New(db, c.cfg.Table, dynamo.Options{Retention: c.retention()})
}

// ports are the runner's ports every pipeline function has: the logger, the
// client's figures, and attribution from the webhook records in the table
// (webhook record → writer info → cell history → unknown).
func (c coldStart) ports(db *dynamodb.Client, client *smartsheet.Client) config.Ports {
	return config.Ports{
		Logger: c.log, Stats: client.Stats,
		WebhookRecords: dynamo.NewWebhookStore(db, c.cfg.Table, dynamo.WebhookOptions{}), Users: client,
	}
}

// alertWebhooks is the secret of ALERT_WEBHOOKS_SECRET_ARN; other keys
// (the template's placeholder) are ignored.
type alertWebhooks struct {
	Slack string `json:"slack"`
	Teams string `json:"teams"`
}

// alerts are the alert channels of a function that sends alerts (scan and
// analyze: whichever completes a run or refreshes rows): Slack and Teams
// from the URLs in ALERT_WEBHOOKS_SECRET_ARN, read once and never logged,
// and the SNS topic ALERT_TOPIC_ARN. Either variable empty leaves its part
// out.
func (c coldStart) alerts(ctx context.Context, sm secrets.API) ([]pipeline.AlertChannel, error) {
	opts := alert.Options{Location: c.cfg.Location, Client: trace.HTTPClient(&http.Client{Timeout: 10 * time.Second})}
	var out []pipeline.AlertChannel
	if arn := c.cfg.AlertWebhooksSecretARN; arn != "" {
		raw, err := secrets.Get(ctx, sm, arn)
		if err != nil {
			return nil, fmt.Errorf("alert webhooks (%s): %w", config.EnvAlertWebhooksSecretARN, err)
		}
		var w alertWebhooks
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			// Not the decoder's error: it may quote the secret.
			return nil, fmt.Errorf("alert webhooks (%s): secret %s is not JSON {\"slack\": \"<url>\", \"teams\": \"<url>\"}",
				config.EnvAlertWebhooksSecretARN, arn)
		}
		w.Slack, w.Teams = strings.TrimSpace(w.Slack), strings.TrimSpace(w.Teams)
		for name, u := range map[string]string{"slack": w.Slack, "teams": w.Teams} {
			if u == "" {
				continue
			}
			if err := config.CheckAlertURL(u); err != nil {
				return nil, fmt.Errorf("alert webhooks (%s): secret %s, %q: %w", config.EnvAlertWebhooksSecretARN, arn, name, err)
			}
		}
		out = alert.Channels(w.Slack, w.Teams, opts)
	}
	if arn := c.cfg.AlertTopicARN; arn != "" {
		out = append(out, pipeline.AlertChannel{Name: "sns", Notifier: snsalert.New(sns.NewFromConfig(c.aws), arn, c.cfg.Location)})
	}
	return out, nil
}

// runner is the pipeline over the client and the store, with the options
// the CLI's come from too (the page size included: pipeline.DefaultPageSize).
func (c coldStart) runner(client *smartsheet.Client, store *dynamo.Store, ports config.Ports) (*pipeline.Runner, error) {
	return pipeline.New(client, store, c.cfg.PipelineOptions(ports))
}

// Must is for main: it logs why the function cannot start and exits, so the
// runtime reports an init error instead of serving invocations half-wired.
func Must[T any](deps *T, err error) *T {
	if err != nil {
		NewLogger(os.Stdout, slog.LevelInfo).Error("cold start failed", slog.Any("error", err))
		os.Exit(1)
	}
	return deps
}
