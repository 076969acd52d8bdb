package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Names of the Lambda functions' own variables (template.yaml sets them).
const (
	EnvTable            = "AUDIT_TABLE"
	EnvAnalysisQueueURL = "ANALYSIS_QUEUE_URL"
	EnvReportBucket     = "REPORT_BUCKET"
	EnvEventBus         = "EVENT_BUS_NAME"
	EnvWebhookQueueURL  = "WEBHOOK_QUEUE_URL"
	EnvTokenSecretARN   = "SMARTSHEET_TOKEN_SECRET_ARN"
	EnvWebhookSecrets   = "WEBHOOK_SECRETS_ARN"
	EnvRetentionDays    = "RETENTION_DAYS"
	// EnvDigestKeyID is the asymmetric KMS key that signs the ledger digests.
	EnvDigestKeyID = "DIGEST_KEY_ID"
	// EnvDigestBucket is the Object Lock bucket the signed digests are kept in.
	EnvDigestBucket = "DIGEST_BUCKET"
	// EnvDigestRetentionDays is how many days each digest object stays locked.
	EnvDigestRetentionDays = "DIGEST_RETENTION_DAYS"
	// EnvLogLevel is the functions' log level: DEBUG, INFO, WARN or ERROR.
	EnvLogLevel = "LOG_LEVEL"
	// EnvAlertTopicARN is the SNS topic of the alerts (e-mail, SMS).
	EnvAlertTopicARN = "ALERT_TOPIC_ARN"
	// EnvAlertWebhooksSecretARN is the Secrets Manager secret holding the
	// alert webhook URLs, JSON {"slack": "<url>", "teams": "<url>"}.
	EnvAlertWebhooksSecretARN = "ALERT_WEBHOOKS_SECRET_ARN"
)

// DefaultDigestRetentionDays is template.yaml's DigestRetentionDays default:
// seven years, a common retention for billing records.
const DefaultDigestRetentionDays = 2557

// Function is the configuration of a Lambda function: the audit settings of
// Config plus the names of the AWS resources it uses.
type Function struct {
	Config
	Table             string
	AnalysisQueueURL  string
	ReportBucket      string
	EventBus          string
	WebhookQueueURL   string
	TokenSecretARN    string
	WebhookSecretsARN string
	RetentionDays     int
	// DigestKeyID, DigestBucket and DigestRetentionDays say where and how the
	// signed ledger digests are kept; only the functions that write digests
	// need them (pass EnvDigestKeyID and EnvDigestBucket to LoadFunction).
	DigestKeyID         string
	DigestBucket        string
	DigestRetentionDays int
	// LogLevel is LOG_LEVEL (default INFO). template.yaml sets the same
	// spelling in LOG_LEVEL and in LoggingConfig.ApplicationLogLevel: Lambda
	// drops JSON lines below the latter, so both must say DEBUG for a debug
	// line to reach CloudWatch.
	LogLevel slog.Level
	// AlertTopicARN and AlertWebhooksSecretARN are the alert channels in
	// AWS: the SNS topic, and the secret with the Slack and Teams URLs
	// (either empty: that part off).
	AlertTopicARN          string
	AlertWebhooksSecretARN string
}

// LoadFunction reads a function's configuration; the variables in need must
// be set. Errors name every variable at fault.
func LoadFunction(getenv Getenv, need ...string) (Function, error) {
	cfg, err := Load(getenv)
	errs := []error{err}
	p := parser{getenv: getenv}
	f := Function{
		Config:            cfg,
		Table:             p.raw(EnvTable),
		AnalysisQueueURL:  p.raw(EnvAnalysisQueueURL),
		ReportBucket:      p.raw(EnvReportBucket),
		EventBus:          p.raw(EnvEventBus),
		WebhookQueueURL:   p.raw(EnvWebhookQueueURL),
		TokenSecretARN:    p.raw(EnvTokenSecretARN),
		WebhookSecretsARN: p.raw(EnvWebhookSecrets),
		RetentionDays:     p.positive(EnvRetentionDays, 400),

		DigestKeyID:         p.raw(EnvDigestKeyID),
		DigestBucket:        p.raw(EnvDigestBucket),
		DigestRetentionDays: p.positive(EnvDigestRetentionDays, DefaultDigestRetentionDays),

		AlertTopicARN:          p.raw(EnvAlertTopicARN),
		AlertWebhooksSecretARN: p.raw(EnvAlertWebhooksSecretARN),
	}
	level, err := ParseLogLevel(p.raw(EnvLogLevel))
	if err != nil {
		p.fail(EnvLogLevel, err.Error())
	}
	f.LogLevel = level
	var missing []string
	for _, n := range need {
		if p.raw(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%s not set", strings.Join(missing, ", ")))
	}
	errs = append(errs, p.errs...)
	return f, errors.Join(errs...)
}

// ParseLogLevel reads a LOG_LEVEL value: DEBUG, INFO, WARN or ERROR in any
// case, INFO when empty. It is the one spelling the code and template.yaml
// share (Lambda's ApplicationLogLevel uses the same words); anything else is
// an error rather than a silent INFO, so a typo cannot hide debug logs.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "INFO":
		return slog.LevelInfo, nil
	case "DEBUG":
		return slog.LevelDebug, nil
	case "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("must be DEBUG, INFO, WARN or ERROR, got %q", s)
}
