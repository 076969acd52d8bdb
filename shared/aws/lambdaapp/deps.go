package lambdaapp

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/bus"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/aws/kmssign"
	"github.com/fieldaudit/billing-audit/shared/aws/s3store"
	"github.com/fieldaudit/billing-audit/shared/aws/secrets"
	"github.com/fieldaudit/billing-audit/shared/aws/sqsqueue"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// ScanDeps are the scan function's: the runner, the table (its fan-in), the
// sheet queue the changed sheets go on, and the event bus.
type ScanDeps struct {
	Log       *slog.Logger
	Runner    *pipeline.Runner
	Store     *dynamo.Store
	Queue     *sqsqueue.SheetQueue
	Publisher *bus.Publisher
}

// NewScan wires the scan function from AUDIT_TABLE, ANALYSIS_QUEUE_URL,
// EVENT_BUS_NAME and SMARTSHEET_TOKEN_SECRET_ARN; with WEBHOOK_CALLBACK_URL
// set it also needs WEBHOOK_SECRETS_ARN, because each scan then keeps the
// source sheets' webhooks and their shared secrets.
func NewScan(ctx context.Context) (*ScanDeps, error) { return newScan(ctx, os.Getenv) }

func newScan(ctx context.Context, getenv config.Getenv) (*ScanDeps, error) {
	need := []string{config.EnvTable, config.EnvAnalysisQueueURL, config.EnvEventBus, config.EnvTokenSecretARN}
	webhooks := strings.TrimSpace(getenv("WEBHOOK_CALLBACK_URL")) != ""
	if webhooks {
		need = append(need, config.EnvWebhookSecrets)
	}
	c, err := start(ctx, getenv, need...)
	if err != nil {
		return nil, err
	}
	sm := secretsmanager.NewFromConfig(c.aws)
	db := dynamodb.NewFromConfig(c.aws)
	client, err := c.smartsheetClient(ctx, sm, db)
	if err != nil {
		return nil, err
	}
	store := c.store(db)
	ports := c.ports(db, client)
	if webhooks {
		ports.WebhookAPI, ports.WebhookSecrets = client, secrets.NewWebhookSecrets(sm, c.cfg.WebhookSecretsARN)
	}
	// Scan completes a run that queued no sheet: it sends the alerts still owed.
	if ports.Alerts, err = c.alerts(ctx, sm); err != nil {
		return nil, err
	}
	runner, err := c.runner(client, store, ports)
	if err != nil {
		return nil, err
	}
	return &ScanDeps{
		Log: c.log, Runner: runner, Store: store,
		Queue:     sqsqueue.NewSheetQueue(awssqs.NewFromConfig(c.aws), c.cfg.AnalysisQueueURL),
		Publisher: bus.New(awseb.NewFromConfig(c.aws), c.cfg.EventBus),
	}, nil
}

// AnalyzeDeps are the analyze function's — the sheet worker's and the
// webhook refreshes': the runner, the table (its fan-in), the sheet queue a
// sheet not finished in its time slice goes back on, and the event bus the
// last sheet of a run announces AuditRunCompleted on.
type AnalyzeDeps struct {
	Log       *slog.Logger
	Runner    *pipeline.Runner
	Store     *dynamo.Store
	Queue     *sqsqueue.SheetQueue
	Publisher *bus.Publisher
}

// NewAnalyze wires the analyze function from AUDIT_TABLE, ANALYSIS_QUEUE_URL,
// EVENT_BUS_NAME and SMARTSHEET_TOKEN_SECRET_ARN, and its alert channels
// from ALERT_WEBHOOKS_SECRET_ARN and ALERT_TOPIC_ARN when they are set.
func NewAnalyze(ctx context.Context) (*AnalyzeDeps, error) { return newAnalyze(ctx, os.Getenv) }

func newAnalyze(ctx context.Context, getenv config.Getenv) (*AnalyzeDeps, error) {
	c, err := start(ctx, getenv, config.EnvTable, config.EnvAnalysisQueueURL, config.EnvEventBus, config.EnvTokenSecretARN)
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(c.aws)
	sm := secretsmanager.NewFromConfig(c.aws)
	client, err := c.smartsheetClient(ctx, sm, db)
	if err != nil {
		return nil, err
	}
	store := c.store(db)
	ports := c.ports(db, client)
	// Analyze completes runs and refreshes rows: it sends the alerts.
	if ports.Alerts, err = c.alerts(ctx, sm); err != nil {
		return nil, err
	}
	runner, err := c.runner(client, store, ports)
	if err != nil {
		return nil, err
	}
	return &AnalyzeDeps{
		Log: c.log, Runner: runner, Store: store,
		Queue:     sqsqueue.NewSheetQueue(awssqs.NewFromConfig(c.aws), c.cfg.AnalysisQueueURL),
		Publisher: bus.New(awseb.NewFromConfig(c.aws), c.cfg.EventBus),
	}, nil
}

// ReportDeps are the report function's: the runner (which signs digests with
// the KMS key into the Object Lock bucket), the table (the runs), where the
// workbooks go, and the pseudonymizer of people when ANONYMIZE_USERS is set.
type ReportDeps struct {
	Log     *slog.Logger
	Runner  *pipeline.Runner
	Store   *dynamo.Store
	Reports s3store.Reports
	// Anonymize is nil unless ANONYMIZE_USERS=true.
	Anonymize func(string) string
}

// NewReport wires the report function from AUDIT_TABLE, REPORT_BUCKET,
// DIGEST_KEY_ID, DIGEST_BUCKET and SMARTSHEET_TOKEN_SECRET_ARN.
func NewReport(ctx context.Context) (*ReportDeps, error) { return newReport(ctx, os.Getenv) }

func newReport(ctx context.Context, getenv config.Getenv) (*ReportDeps, error) {
	c, err := start(ctx, getenv, config.EnvTable, config.EnvReportBucket, config.EnvDigestKeyID, config.EnvDigestBucket, config.EnvTokenSecretARN)
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(c.aws)
	client, err := c.smartsheetClient(ctx, secretsmanager.NewFromConfig(c.aws), db)
	if err != nil {
		return nil, err
	}
	store := c.store(db)
	s3 := c.s3()
	ports := c.ports(db, client)
	// Digests: signed with the KMS key, kept in the Object Lock bucket.
	ports.Signer = kmssign.New(kms.NewFromConfig(c.aws), c.cfg.DigestKeyID)
	ports.Digests = s3store.NewDigests(s3, c.cfg.DigestBucket, "digests/", time.Duration(c.cfg.DigestRetentionDays)*24*time.Hour)
	runner, err := c.runner(client, store, ports)
	if err != nil {
		return nil, err
	}
	d := &ReportDeps{
		Log: c.log, Runner: runner, Store: store,
		Reports: s3store.Reports{Blobs: s3store.New(s3, c.cfg.ReportBucket), Prefix: "reports/"},
	}
	if c.cfg.AnonymizeUsers {
		d.Anonymize = audit.Pseudonymizer([]byte(c.cfg.AnonymizeKey.Reveal()))
	}
	return d, nil
}

// WebhookDeps are the webhook function's: the receiver, wired to the shared
// secrets in Secrets Manager, the nonces and attribution records in the
// table, and the webhook queue for refreshes. It never calls Smartsheet, so
// it reads no token.
type WebhookDeps struct {
	Receiver *webhook.Receiver
}

// NewWebhook wires the webhook function from AUDIT_TABLE, WEBHOOK_QUEUE_URL
// and WEBHOOK_SECRETS_ARN.
func NewWebhook(ctx context.Context) (*WebhookDeps, error) { return newWebhook(ctx, os.Getenv) }

func newWebhook(ctx context.Context, getenv config.Getenv) (*WebhookDeps, error) {
	c, err := start(ctx, getenv, config.EnvTable, config.EnvWebhookQueueURL, config.EnvWebhookSecrets)
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(c.aws)
	records := dynamo.NewWebhookStore(db, c.cfg.Table, dynamo.WebhookOptions{})
	return &WebhookDeps{Receiver: &webhook.Receiver{
		Secrets: webhook.StoredSecrets(secrets.NewWebhookSecrets(secretsmanager.NewFromConfig(c.aws), c.cfg.WebhookSecretsARN), nil),
		Nonces:  records,
		Sink: &pipeline.WebhookSink{Records: records, Queue: sqsqueue.NewRefreshQueue(awssqs.NewFromConfig(c.aws), c.cfg.WebhookQueueURL),
			Meta: c.store(db), Logger: c.log},
		OwnChangeAgent: c.cfg.ChangeAgent,
		Logger:         c.log,
	}}, nil
}
