// Package lambdaapp wires the Lambda functions: one AWS configuration at cold
// start, the instrumented clients, the Smartsheet client (its token read once
// from Secrets Manager) and the adapters, handed to the same pipeline the CLI
// runs. Each functions/<name>/main.go calls it and starts its handler.
package lambdaapp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/bus"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/aws/kmssign"
	"github.com/fieldaudit/billing-audit/shared/aws/s3store"
	"github.com/fieldaudit/billing-audit/shared/aws/secrets"
	"github.com/fieldaudit/billing-audit/shared/aws/sqsqueue"
	"github.com/fieldaudit/billing-audit/shared/aws/trace"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// App is everything a function needs, built once per container.
type App struct {
	Config     config.Function
	Log        *slog.Logger
	AWS        aws.Config
	Smartsheet *smartsheet.Client
	Store      *dynamo.Store
	FanIn      pipeline.FanIn
	Blobs      *s3store.Blobs
	Queue      *sqsqueue.BatchQueue
	SQS        *awssqs.Client
	Publisher  *bus.Publisher
	Secrets    *secretsmanager.Client
	Runner     *pipeline.Runner
	// Webhook stores: nonces and attribution records in the table, shared
	// secrets in Secrets Manager, refreshes on the webhook queue.
	WebhookStore   *dynamo.WebhookStore
	WebhookSecrets *secrets.WebhookSecrets
	RefreshQueue   *sqsqueue.RefreshQueue
}

// Logger is the functions' logger: JSON with the request id (from ctx) when
// running in Lambda.
func Logger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(&requestIDHandler{slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})})
}

type requestIDHandler struct{ slog.Handler }

func (h *requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *requestIDHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &requestIDHandler{h.Handler.WithAttrs(a)}
}

func (h *requestIDHandler) WithGroup(n string) slog.Handler {
	return &requestIDHandler{h.Handler.WithGroup(n)}
}

// New builds the App for a function that needs the given variables. The
// Smartsheet token is read from Secrets Manager when needSmartsheet is set.
func New(ctx context.Context, needSmartsheet bool, need ...string) (*App, error) {
	if needSmartsheet {
		need = append(need, config.EnvTokenSecretARN)
	}
	cfg, err := config.LoadFunction(os.Getenv, need...)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	trace.AWS(&awsCfg)
	a := &App{Config: cfg, Log: Logger(), AWS: awsCfg}
	a.Secrets = secretsmanager.NewFromConfig(awsCfg)
	if cfg.Table != "" {
		db := dynamodb.NewFromConfig(awsCfg)
		a.Store = dynamo.New(db, cfg.Table, dynamo.Options{Retention: time.Duration(cfg.RetentionDays) * 24 * time.Hour})
		a.FanIn = a.Store
		a.WebhookStore = dynamo.NewWebhookStore(db, cfg.Table, dynamo.WebhookOptions{})
	}
	if cfg.WebhookSecretsARN != "" {
		a.WebhookSecrets = secrets.NewWebhookSecrets(a.Secrets, cfg.WebhookSecretsARN)
	}
	if cfg.ReportBucket != "" {
		a.Blobs = s3store.New(awss3.NewFromConfig(awsCfg, func(o *awss3.Options) { o.UsePathStyle = true }), cfg.ReportBucket)
	}
	a.SQS = awssqs.NewFromConfig(awsCfg)
	if cfg.AnalysisQueueURL != "" {
		a.Queue = sqsqueue.NewBatchQueue(a.SQS, cfg.AnalysisQueueURL, a.Blobs)
	}
	if cfg.WebhookQueueURL != "" {
		a.RefreshQueue = sqsqueue.NewRefreshQueue(a.SQS, cfg.WebhookQueueURL)
	}
	if cfg.EventBus != "" {
		a.Publisher = bus.New(awseb.NewFromConfig(awsCfg), cfg.EventBus)
	}
	if needSmartsheet {
		token, err := secrets.Get(ctx, a.Secrets, cfg.TokenSecretARN)
		if err != nil {
			return nil, err
		}
		a.Smartsheet, err = smartsheet.New(smartsheet.Config{
			BaseURL: cfg.BaseURL, Token: token, ChangeAgent: cfg.ChangeAgent, RetryBudget: cfg.RetryBudget,
			RequestsPerMinute: cfg.RequestsPerMinute, HistoryPerMinute: cfg.HistoryPerMinute,
			HTTPClient: trace.HTTPClient(&http.Client{Timeout: 2 * time.Minute}), Logger: a.Log,
		})
		if err != nil {
			return nil, err
		}
		if a.Store == nil {
			return nil, fmt.Errorf("%s not set", config.EnvTable)
		}
		ac := audit.DefaultConfig()
		ac.TrackColumns, ac.Location, ac.Grace = cfg.TrackColumns, cfg.Location, cfg.Grace
		ac.HighRisk, ac.MediumRisk = cfg.HighRisk, cfg.MediumRisk
		opts := pipeline.Options{
			Audit: ac, SourceSheetIDs: cfg.SourceSheetIDs, SourceFolderIDs: cfg.SourceFolderIDs,
			AuditSheetID: cfg.AuditSheetID, SkipCellHistory: cfg.SkipCellHistory, TestMode: cfg.TestMode,
			Logger: a.Log, PageSize: 500, Stats: a.Smartsheet.Stats,
			RequestsPerMinute: cfg.RequestsPerMinute, HistoryPerMinute: cfg.HistoryPerMinute,
			// Attribution: webhook record → writer info → cell history → unknown.
			Webhooks: pipeline.WebhookAttributor(a.WebhookStore, a.Smartsheet),
		}
		if cfg.WebhookCallbackURL != "" && a.WebhookSecrets != nil {
			opts.WebhookCallbackURL, opts.WebhookAPI, opts.WebhookSecrets = cfg.WebhookCallbackURL, a.Smartsheet, a.WebhookSecrets
		}
		// Digests: signed with the KMS key, kept in the Object Lock bucket.
		if cfg.DigestKeyID != "" && cfg.DigestBucket != "" {
			opts.Signer = kmssign.New(kms.NewFromConfig(awsCfg), cfg.DigestKeyID)
			opts.Digests = s3store.NewDigests(awss3.NewFromConfig(awsCfg, func(o *awss3.Options) { o.UsePathStyle = true }),
				cfg.DigestBucket, "digests/", time.Duration(cfg.DigestRetentionDays)*24*time.Hour)
		}
		a.Runner, err = pipeline.New(a.Smartsheet, a.Store, opts)
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Must is for main: it logs the error and exits when the app cannot be built.
func Must(a *App, err error) *App {
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stdout, nil)).Error("cold start failed", slog.Any("error", err))
		os.Exit(1)
	}
	return a
}
