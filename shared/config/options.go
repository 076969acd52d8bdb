package config

import (
	"log/slog"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// Ports are the adapters a pipeline.Runner's options name, besides the
// Smartsheet API and the store it is built with. The operator CLI passes the
// Smartsheet client, bbolt and local digest files; the Lambdas pass the client,
// DynamoDB, Secrets Manager, S3 and KMS. They live here, not in pipeline or
// lambdaapp, so that one builder serves both without the CLI linking the AWS
// SDK or the pipeline naming a concrete store.
type Ports struct {
	// Logger gets the runner's lines.
	Logger *slog.Logger
	// Stats reports the Smartsheet client's figures (smartsheet.Client.Stats).
	Stats func() smartsheet.Stats
	// WebhookRecords holds the stored webhook events and Users names their
	// user ids: attribution is webhook record → writer info → cell history →
	// unknown. Nil WebhookRecords skips the first step.
	WebhookRecords webhook.RecordLookup
	Users          pipeline.UserAPI
	// WebhookAPI and WebhookSecrets keep one webhook per source sheet when
	// WEBHOOK_CALLBACK_URL is set; without either no webhook is registered.
	// Pass an untyped nil, never a nil pointer.
	WebhookAPI     pipeline.WebhookAPI
	WebhookSecrets pipeline.WebhookSecretStore
	// Signer signs the ledger digests and Digests keeps them. Without a
	// Signer no digest is written; Digests alone are still verified.
	Signer  pipeline.Signer
	Digests pipeline.DigestStore
	// Alerts are the alert channels: Slack and Teams (alert.Channels, from
	// the URLs of the settings or, in AWS, of the secret) and in AWS the SNS
	// topic. None: no alerts.
	Alerts []pipeline.AlertChannel
}

// AuditConfig is the domain's configuration: the defaults with the tracked
// columns, the week cutoff and the risk thresholds from the settings.
func (c Config) AuditConfig() audit.Config {
	ac := audit.DefaultConfig()
	ac.TrackColumns = c.TrackColumns
	ac.Location = c.Location
	ac.Grace = c.Grace
	ac.HighRisk, ac.MediumRisk = c.HighRisk, c.MediumRisk
	return ac
}

// PipelineOptions builds a runner's options from the settings and the
// adapters; it is the one place the CLI and the Lambdas turn configuration
// into a pipeline, so the two cannot drift apart. What only one caller has
// (the CLI's clock and progress line, the Lambdas' page size) the caller sets
// on the result.
func (c Config) PipelineOptions(p Ports) pipeline.Options {
	opts := pipeline.Options{
		Audit:             c.AuditConfig(),
		SourceSheetIDs:    c.SourceSheetIDs,
		SourceFolderIDs:   c.SourceFolderIDs,
		AuditSheetID:      c.AuditSheetID,
		SkipCellHistory:   c.SkipCellHistory,
		SkipWriterInfo:    c.SkipWriterInfo,
		TestMode:          c.TestMode,
		Logger:            p.Logger,
		Stats:             p.Stats,
		RequestsPerMinute: c.RequestsPerMinute,
		HistoryPerMinute:  c.HistoryPerMinute,
		// The runner registers webhooks only when all three are set.
		WebhookCallbackURL: c.WebhookCallbackURL,
		WebhookAPI:         p.WebhookAPI,
		WebhookSecrets:     p.WebhookSecrets,
		Signer:             p.Signer,
		Digests:            p.Digests,
		Alerts:             p.Alerts,
		AlertMinRisk:       c.AlertMinRisk,
		AlertDigestOver:    c.AlertDigestOver,
	}
	if p.WebhookRecords != nil {
		opts.Webhooks = pipeline.WebhookAttributor(p.WebhookRecords, p.Users)
	}
	return opts
}
